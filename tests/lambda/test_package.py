"""The zip `zappa package dev` builds: what it holds, and that it answers from a fresh interpreter as on Lambda."""

import json
import secrets
from pathlib import Path
from urllib.parse import quote

import pytest
from cryptography.fernet import Fernet
from django.conf import settings
from django.db import connection

from apps.accounts.models import User
from tests.conftest import PASSWORD
from tests.support.events import apigw_v1, apigw_v2, response_json
from tests.support.lambda_harness import stage_settings_values
from tests.support.package import (
    FreshLambda,
    Package,
    build_package,
    installed_distributions,
    lambda_runtime_dir,
    module_files,
    runtime_distributions,
    top_level_names,
    unpack,
)

pytestmark = pytest.mark.slow

MIB = 1024 * 1024
# AWS Lambda's hard limits for a zip uploaded directly: 50 MB zipped, 250 MB unzipped.
LAMBDA_ZIPPED_LIMIT = 50 * MIB
LAMBDA_UNZIPPED_LIMIT = 250 * MIB
# Runtime requirements left out on purpose (zappa_settings.json exclude): the Lambda runtime provides
# boto3; installers and Zappa's own deploy-time (CLI) dependencies never run inside the function.
LEFT_OUT_RUNTIME_DISTRIBUTIONS = {
    *("boto3", "botocore", "s3transfer"),
    *("pip", "setuptools", "wheel"),
    *("troposphere", "cfn-flip", "placebo", "argcomplete", "hjson", "tqdm", "toml", "click"),
    *("python-slugify", "text-unidecode"),
}
EVENTS = {"v1": apigw_v1, "v2": apigw_v2}


@pytest.fixture(scope="session")
def dev_package(tmp_path_factory, moto_server) -> Package:
    """Cue's dev-stage zip, built once per session and unpacked (standing in for /var/task)."""
    out = tmp_path_factory.mktemp("package")
    zip_path = build_package(
        "dev", project_dir=settings.BASE_DIR, out_zip=out / "cue-dev.zip", aws_env=moto_server.env()
    )
    return unpack(zip_path, out / "task")


@pytest.fixture(scope="session")
def lambda_runtime(tmp_path_factory) -> Path:
    return lambda_runtime_dir(tmp_path_factory.mktemp("lambda-runtime"))


def database_url() -> str:
    """The URL of the test database this test process uses (its tables exist; transactional_db commits)."""
    db = connection.settings_dict
    credentials = quote(db["USER"] or "", safe="")
    if db["PASSWORD"]:
        credentials += ":" + quote(db["PASSWORD"], safe="")
    return f"postgres://{credentials}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.fixture
def remote_env(transactional_db) -> dict:
    """The stage's secrets; the database is this test's (requested first so its name is the test database's)."""
    return {
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DATABASE_URL": database_url(),
        "CUE_FIELD_KEY": Fernet.generate_key().decode(),
    }


@pytest.fixture
def fresh_lambda(dev_package, lambda_runtime, moto_server, remote_env):
    """A cold container running the packaged handler; the stage's remote_env (in moto's S3) holds its secrets."""
    if connection.vendor != "postgresql":
        pytest.skip("the packaged stage reads DATABASE_URL as PostgreSQL")
    moto_server.reset()
    values = stage_settings_values(dev_package.root / "zappa_settings.py")
    moto_server.put_remote_env(values["REMOTE_ENV"], remote_env)
    function_name = f"{values['PROJECT_NAME']}-{values['API_STAGE']}"
    with FreshLambda(dev_package.root, lambda_runtime, moto_server.env(), function_name) as container:
        yield container


def test_package_holds_the_handler_settings_and_code(dev_package):
    root = dev_package.root
    for path in ("handler.py", "zappa_settings.py", "django_zappa_app.py", "manage.py"):
        assert (root / path).is_file(), path
    for folder in ("project", "apps", "apps/accounts/migrations", "django", "rest_framework", "zappa", "psycopg2"):
        assert (root / folder).is_dir(), folder


def test_package_leaves_out_tests_tools_and_what_lambda_provides(dev_package):
    shipped = {path.name for path in dev_package.root.iterdir()}
    project_only = {"tests", "bench", "docs", ".git", ".ci", ".venv", "db.sqlite3"}
    test_tools = {"moto", "pytest", "_pytest", "pytest_django", "hypothesis", "ruff", "cfnlint"}
    provided_by_lambda = {"boto3", "botocore", "s3transfer"}
    assert shipped & (project_only | test_tools | provided_by_lambda) == set()


def test_no_development_only_distribution_ships(dev_package):
    """Everything installed in the venv beyond requirements.txt's closure is left out (exclude list is complete)."""
    runtime = runtime_distributions(Path(settings.BASE_DIR) / "requirements.txt")
    shipped = {path.name for path in dev_package.root.iterdir()}
    leaked = {}
    for distribution in installed_distributions() - runtime:
        names = top_level_names(distribution) & shipped
        if names:
            leaked[distribution] = sorted(names)
    assert leaked == {}, f"add these to zappa_settings.json base.exclude: {leaked}"


def test_exclude_list_drops_no_module_of_a_runtime_requirement(dev_package):
    """The exclude patterns match names at any depth: none may remove a module a runtime requirement needs."""
    runtime = runtime_distributions(Path(settings.BASE_DIR) / "requirements.txt") - LEFT_OUT_RUNTIME_DISTRIBUTIONS
    missing = {}
    for distribution in sorted(runtime):
        lost = [
            path
            for path in module_files(distribution)
            if "/tests/" not in path and not (dev_package.root / path).is_file()
        ]
        if lost:
            missing[distribution] = lost[:5]
    assert missing == {}


def test_generated_settings_carry_no_secret(dev_package):
    """Secrets come from remote_env at cold start; none is baked into zappa_settings.py."""
    text = (dev_package.root / "zappa_settings.py").read_text()
    assert "SECRET" not in text.upper()
    assert "PASSWORD" not in text.upper()
    values = stage_settings_values(dev_package.root / "zappa_settings.py")
    assert not {"DJANGO_SECRET_KEY", "DATABASE_URL", "JWT_SIGNING_KEY"} & set(values["ENVIRONMENT_VARIABLES"])
    assert values["REMOTE_ENV"] == "s3://cue-config-dev/env.json"


def test_package_fits_lambda_limits(dev_package, capsys):
    zipped, unzipped = dev_package.zipped_bytes, dev_package.unzipped_bytes
    with capsys.disabled():
        print(f"\ncue-dev.zip: {zipped / MIB:.1f} MiB zipped, {unzipped / MIB:.1f} MiB unzipped")
    assert zipped < LAMBDA_ZIPPED_LIMIT
    assert unzipped < LAMBDA_UNZIPPED_LIMIT


def test_fresh_interpreter_sees_only_the_package_and_lambda_runtime(fresh_lambda, dev_package, lambda_runtime):
    """The child imports Django from the zip and boto3 from the runtime folder; test tools are absent."""
    found = fresh_lambda.probe("moto", "pytest", "tests", "django", "boto3", "handler")
    assert found["moto"] is None
    assert found["pytest"] is None
    assert found["tests"] is None
    assert found["django"].startswith(str(dev_package.root))
    assert found["handler"] == str(dev_package.root / "handler.py")
    assert found["boto3"].startswith(str(lambda_runtime))


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_signup_then_me_through_the_packaged_handler(fresh_lambda, remote_env, version):
    """Cold start loads remote_env (secret key, database) from S3; sign-up's token then opens /api/me."""
    make = EVENTS[version]
    payload = {"email": "packaged@example.com", "password": PASSWORD, "workspace_name": "Zip Co"}

    signup = fresh_lambda.invoke(make("POST", "/api/auth/signup", body=payload))
    assert signup["result"]["statusCode"] == 201, fresh_lambda.stderr()[-3000:]
    body = response_json(signup["result"])
    assert body["workspace"]["name"] == "Zip Co"
    assert User.objects.filter(email="packaged@example.com").exists()  # written to this test's database

    me = fresh_lambda.invoke(make("GET", "/api/me", headers={"Authorization": f"Bearer {body['access']}"}))
    assert me["result"]["statusCode"] == 200
    assert response_json(me["result"])["user"]["email"] == "packaged@example.com"
    assert response_json(me["result"])["role"] == "owner"

    anonymous = fresh_lambda.invoke(make("GET", "/api/me"))
    assert anonymous["result"]["statusCode"] == 401

    # Zappa at log_level DEBUG prints every remote_env value and every raw event (bearer tokens) to the logs.
    logs = fresh_lambda.stderr()
    assert "Instancing.." in logs  # the handler's own output is captured here
    for secret in (remote_env["DJANGO_SECRET_KEY"], remote_env["DATABASE_URL"], body["access"]):
        assert secret not in logs


def test_healthz_through_the_packaged_handler(fresh_lambda):
    """DATABASE_URL from remote_env is used: PostgreSQL answers, not the embedded SQLite default."""
    result = fresh_lambda.invoke(apigw_v2("GET", "/healthz"))["result"]
    assert result["statusCode"] == 200
    assert json.loads(result["body"]) == {"status": "ok", "database": "postgresql"}
