"""Feature-branch stages: the overlay they write, the names they validate, the database they create and drop."""

import json
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import psycopg2
import pytest
from django.conf import settings as django_settings

from tests.support.lambda_harness import stage_settings_values, write_stage_settings
from tools import stages


@pytest.fixture
def root(tmp_path):
    shutil.copy(stages.SETTINGS, tmp_path / "zappa_settings.json")
    return tmp_path


def create(root, branch, **kw):
    return stages.stage_create(branch, settings_path=root / "zappa_settings.json", root=root, **kw)


def test_create_writes_overlay_extending_staging(root):
    result = create(root, "feature/Login-Page")
    assert result["stage"] == "feature-login-page"
    assert result["function"] == "cue-feature-login-page"
    assert result["topic"] == "cue-feature-login-page-zappa-async"
    overlay = json.loads((root / "zappa_settings.feature-login-page.json").read_text())
    committed = json.loads((root / "zappa_settings.json").read_text())
    # The committed stages, their policy files named absolutely (Zappa opens them from the folder it runs in).
    assert {k: v for k, v in overlay.items() if k != "feature-login-page"} == stages.absolute_policies(committed, root)
    stage = stages.resolved(overlay, "feature-login-page")
    staging = stages.resolved(overlay, "staging")
    assert stage["remote_env"] == staging["remote_env"]
    assert stage["environment_variables"]["CUE_DATABASE_NAME"] == "cue_feature_login_page"
    # extends is shallow: staging's own variables must still be there.
    assert staging["environment_variables"].items() <= stage["environment_variables"].items()
    assert stage["keep_warm"] is False
    assert "zappa deploy feature-login-page -s zappa_settings.feature-login-page.json" in result["commands"]


def test_create_gives_the_stage_its_own_least_privilege_policy_and_remove_deletes_it(root):
    """Not staging's policy (another function's topic and logs): its own, reading staging's remote_env only."""
    from tools import iam

    create(root, "feature/Login-Page")
    overlay = json.loads((root / "zappa_settings.feature-login-page.json").read_text())
    stage = stages.resolved(overlay, "feature-login-page")
    policy_file = root / "iam" / "feature-login-page.json"
    assert stage["attach_policy"] == str(policy_file)
    document = json.loads(policy_file.read_text())
    assert iam.policy_problems(document, stage, "feature-login-page") == []
    text = json.dumps(document)
    assert "cue-feature-login-page-zappa-async" in text and "topic/cue-feature-login-page/*" in text
    assert "arn:aws:s3:::cue-config-staging/env.json" in text
    assert "cue-staging-zappa-async" not in text
    stages.stage_remove("feature/Login-Page", settings_path=root / "zappa_settings.json", root=root)
    assert not policy_file.exists()


def test_zappa_reads_the_overlay(root, tmp_path_factory):
    """Zappa itself resolves the new stage from the overlay: function name, stage and environment."""
    result = create(root, "feature/zappa-check")
    out = write_stage_settings(
        result["stage"], tmp_path_factory.mktemp("fs"), settings_file=root / "zappa_settings.feature-zappa-check.json"
    )
    values = stage_settings_values(out)
    assert values["API_STAGE"] == "feature-zappa-check"
    assert values["ENVIRONMENT_VARIABLES"]["CUE_DATABASE_NAME"] == "cue_feature_zappa_check"
    assert values["DEBUG"] is False


@pytest.mark.parametrize("branch", ["", "///", "feature/", "___"])
def test_malformed_branch_names_write_nothing(root, branch):
    with pytest.raises(stages.StageError):
        create(root, branch)
    assert sorted(p.name for p in root.iterdir()) == ["zappa_settings.json"]


def test_too_long_branch_is_refused(root):
    with pytest.raises(stages.StageError, match="too long"):
        create(root, "feature/" + "a" * 40)
    assert not list(root.glob("zappa_settings.feature-*.json"))


def test_name_limit_is_the_iam_role():
    names = stages.stage_names(stages.load_settings(), "a" * 27)
    assert len(names["role"]) == 64
    with pytest.raises(stages.StageError):
        stages.stage_names(stages.load_settings(), "a" * 28)


def test_existing_stage_is_refused(root):
    create(root, "feature/twice")
    before = (root / "zappa_settings.feature-twice.json").read_text()
    with pytest.raises(stages.StageError, match="already exists"):
        create(root, "feature/twice")
    assert (root / "zappa_settings.feature-twice.json").read_text() == before


def test_broken_settings_file_is_refused(root):
    (root / "zappa_settings.json").write_text("{ not json")
    with pytest.raises(stages.StageError, match="not valid JSON"):
        create(root, "feature/x")
    assert not list(root.glob("zappa_settings.feature-*.json"))


def _admin_url() -> str:
    db = django_settings.DATABASES["default"]
    if db["ENGINE"] != "django.db.backends.postgresql":
        pytest.skip("database creation is tested on PostgreSQL (DATABASE_URL)")
    return f"postgres://{db['USER'] or 'postgres'}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/postgres"


def _database_exists(url: str, name: str) -> bool:
    conn = psycopg2.connect(url)
    try:
        with conn.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
            return cursor.fetchone() is not None
    finally:
        conn.close()


def test_create_and_remove_manage_the_database(root):
    url = _admin_url()
    branch = f"feature/db-{uuid.uuid4().hex[:8]}"
    result = create(root, branch, database_url=url)
    assert _database_exists(url, result["database"])
    stages.stage_remove(branch, database_url=url, settings_path=root / "zappa_settings.json", root=root)
    assert not _database_exists(url, result["database"])
    assert not list(root.glob("zappa_settings.feature-*.json"))


def test_remove_unknown_stage_is_refused(root):
    with pytest.raises(stages.StageError, match="does not exist"):
        stages.stage_remove("feature/nope", settings_path=root / "zappa_settings.json", root=root)


def test_cli_reports_errors_with_exit_code():
    result = subprocess.run(
        [sys.executable, "-m", "tools.stages", "create", "///"],
        capture_output=True,
        text=True,
        cwd=django_settings.BASE_DIR,
    )
    assert result.returncode == 2
    assert "error:" in result.stderr
    assert not list(django_settings.BASE_DIR.glob("zappa_settings.feature-*.json"))


def test_create_and_remove_manage_the_stages_aws_resources(root, moto_server):
    """The IoT authorizer (Stubber: moto has none), domain configuration and failure queue come and go with the stage;
    the function's parts wait for `zappa deploy`, then the documented `tools.stage_aws` step makes them."""
    from tests.ops.test_stage_aws import NOTHING, REGION, authorizer_stub, deploy_function, inventory
    from tools import stage_aws

    branch = f"feature/aws-{uuid.uuid4().hex[:8]}"
    iot, stubber = authorizer_stub(stage_aws.stage_aws({"project_name": "cue"}, "feature-" + branch[8:]))
    stubber.add_response("create_authorizer", {"authorizerName": f"cue-realtime-feature-{branch[8:]}"}, None)
    with stubber:
        result = create(root, branch, aws=stage_aws.Clients(REGION, overrides={"authorizer": iot}))
    stubber.assert_no_pending_responses()
    overlay = json.loads(Path(result["settings_file"]).read_text())
    names = stage_aws.stage_aws(stages.resolved(overlay, result["stage"]), result["stage"])
    assert names.function == result["function"] and names.authorizer == f"cue-realtime-{result['stage']}"
    made = [line for line in result["aws"] if not isinstance(line, stage_aws.Waiting)]
    assert made[:4] == [
        f"created IoT authorizer {names.authorizer} -> {names.function}",
        f"created IoT domain configuration {names.domain_configuration} (authorizer {names.authorizer})",
        f"created SQS queue {names.failure_queue}",
        f"created SNS topic {names.alarm_topic}",
    ]
    assert made[4:] == [f"created alarm {name}" for name in stage_aws.alarm_definitions(names, "123456789012")]
    assert len(result["aws"]) - len(made) == 2  # the permission and the invoke config wait for the function
    assert (
        f"python -m tools.stage_aws {result['stage']} create -s {Path(result['settings_file']).name}"
        in (result["commands"])
    )

    deploy_function(names.function)
    after_deploy = stage_aws.apply(names, "create", stage_aws.Clients(REGION), parts=("permission", "failures"))
    assert [c.split(" ")[0] for c in after_deploy] == ["added", "asynchronous"]

    iot, stubber = authorizer_stub(names, exists={"authorizerFunctionArn": "x", "status": "ACTIVE"})
    stubber.add_response("update_authorizer", {}, None)
    stubber.add_response("delete_authorizer", {}, None)
    with stubber:
        removed = stages.stage_remove(
            branch,
            settings_path=root / "zappa_settings.json",
            root=root,
            aws=stage_aws.Clients(REGION, overrides={"authorizer": iot}),
        )
    stubber.assert_no_pending_responses()
    assert removed["aws"][-1] == f"deleted IoT authorizer {names.authorizer}"
    assert inventory(names) == NOTHING
    assert not list(root.glob("zappa_settings.feature-*.json"))
