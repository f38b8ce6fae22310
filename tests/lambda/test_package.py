"""Each stage's deployable zip (bin/package): what it holds, and that it answers from a fresh interpreter as on Lambda.

The zips are built once per session, the three at once, exactly as operators build them
(`bin/package STAGE`: `zappa package`, trimmed, with precompiled bytecode). A fresh interpreter
that sees only the unpacked zip and the Lambda runtime's libraries then calls the function's
configured handler, the stage's `lambda_handler` (project.lambda_entry.lambda_handler), with
API Gateway v1 and v2 events, a task message as Cue publishes it to the stage's SNS topic, and
each scheduled event the stage's rules send.
"""

import importlib.util
import json
import re
import secrets
import types
import uuid
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

import pytest
from cryptography.fernet import Fernet
from django.conf import settings
from django.db import connection
from django.utils import timezone

from apps.accounts.models import User
from apps.conversations.models import Conversation as ConversationRow
from apps.integrations import payloads
from apps.integrations import services as integration_services
from apps.integrations.models import WebhookDelivery
from apps.integrations.tasks import process_delivery
from apps.tasks.models import TaskRun, TaskStatus
from tests.conftest import PASSWORD
from tests.integrations.intercom_payloads import Conversation, encode
from tests.support.events import apigw_v1, apigw_v2, response_json, scheduled_event
from tests.support.lambda_harness import SnsCapture, stage_settings_values
from tests.support.package import (
    FreshLambda,
    Package,
    build_artifacts,
    installed_distributions,
    lambda_runtime_dir,
    module_files,
    normalise,
    runtime_distributions,
    top_level_names,
    unpack,
)
from tools.artifact import KEEP_LANGUAGES, LAMBDA_TASK_ROOT, ZIP_EPOCH, runtime_venv, site_packages
from tools.stages import resolved

pytestmark = pytest.mark.slow

SETTINGS = json.loads((Path(settings.BASE_DIR) / "zappa_settings.json").read_text())
STAGES = ("dev", "staging", "production")
MIB = 1024 * 1024
# AWS Lambda's hard limits for a zip uploaded directly: 50 MB zipped, 250 MB unzipped.
LAMBDA_ZIPPED_LIMIT = 50 * MIB
LAMBDA_UNZIPPED_LIMIT = 250 * MIB
# Runtime requirements left out on purpose (zappa_settings.json exclude): the Lambda runtime provides
# boto3; installers and Zappa's own deploy-time (CLI) dependencies never run inside the function.
LEFT_OUT_RUNTIME_DISTRIBUTIONS = {
    *("boto3", "botocore", "s3transfer"),
    *("pip", "setuptools", "wheel"),
    *("troposphere", "cfn-flip", "placebo", "argcomplete", "hjson", "toml", "click"),
    *("python-slugify", "text-unidecode"),
    # Zappa's HTTP client (its CLI's): Cue's Intercom client speaks urllib3 (apps/integrations/client.py).
    *("requests", "charset-normalizer", "idna"),
    # Needed only by tools Cue never runs in Lambda (drf-spectacular's --validate, cryptography's old cffi
    # bindings, pip's version parsing): nothing imports them on any path the package tests drive.
    *("jsonschema", "jsonschema-specifications", "referencing", "rpds-py", "attrs", "cffi", "pycparser"),
    "packaging",
}
# Django's contrib apps Cue does not install (exclude_glob in zappa_settings.json).
LEFT_OUT_DJANGO_CONTRIB = ("gis", "flatpages", "redirects", "sitemaps", "syndication", "humanize")
EVENTS = {"v1": apigw_v1, "v2": apigw_v2}
SUGGEST = "apps.suggestions.tasks.suggest_replies"
KEEP_WARM = "handler.keep_warm_callback"  # the function Zappa's keep-warm rule names


BASE_DIR = Path(settings.BASE_DIR)
# Secret-bearing files a developer's checkout may hold, untracked: planted while the zips are built.
PLANT_TOKEN = uuid.uuid4().hex[:8]
PLANTED = (
    ".env",
    ".secret-key",
    f"cue-{PLANT_TOKEN}.pem",
    "project/.env",
    f"apps/cue-{PLANT_TOKEN}.pem",
    f"project/{PLANT_TOKEN}.pem",
)
PLANTED_TEXT = f"PLANTED-{PLANT_TOKEN} -----BEGIN PRIVATE KEY-----\n"


@pytest.fixture(scope="session")
def planted_reports(tmp_path_factory, moto_server) -> dict[str, dict]:
    """Every stage's zip, built at once (each build mostly waits on files) from the checkout with PLANTED in it."""
    out = tmp_path_factory.mktemp("packages")
    planted = [BASE_DIR / name for name in PLANTED if not (BASE_DIR / name).exists()]  # never touch a real one
    try:
        for path in planted:
            path.write_text(PLANTED_TEXT)
        reports = build_artifacts(
            {stage: out / f"cue-{stage}.zip" for stage in STAGES}, project_dir=BASE_DIR, aws_env=moto_server.env()
        )
    finally:
        for path in planted:
            path.unlink(missing_ok=True)
    return reports


@pytest.fixture(scope="session")
def stage_packages(planted_reports, tmp_path_factory) -> dict[str, Package]:
    """Every stage's zip, unpacked as /var/task."""
    out = tmp_path_factory.mktemp("unpacked")
    return {stage: unpack(Path(planted_reports[stage]["zip_path"]), out / f"{stage}-task") for stage in STAGES}


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


@pytest.fixture(params=STAGES)
def stage(request) -> str:
    return request.param


@pytest.fixture
def package(stage, stage_packages) -> Package:
    return stage_packages[stage]


@pytest.fixture
def function_name(package) -> str:
    values = stage_settings_values(package.root / "zappa_settings.py")
    return f"{values['PROJECT_NAME']}-{values['API_STAGE']}"


@pytest.fixture
def fresh_lambda(stage, package, function_name, lambda_runtime, moto_server, remote_env):
    """A cold container of the stage's function; its remote_env (in moto's S3) holds the secrets."""
    if connection.vendor != "postgresql":
        pytest.skip("the packaged stage reads DATABASE_URL as PostgreSQL")
    moto_server.reset()
    values = stage_settings_values(package.root / "zappa_settings.py")
    moto_server.put_remote_env(values["REMOTE_ENV"], remote_env)
    handler = resolved(SETTINGS, stage)["lambda_handler"]
    with FreshLambda(package.root, lambda_runtime, moto_server.env(), function_name, handler=handler) as container:
        yield container


@pytest.fixture
def stage_topic(fresh_lambda, function_name, moto_server, monkeypatch) -> SnsCapture:
    """The stage's async topic in moto, read through a queue; this process publishes to it as the function would."""
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", function_name)
    return SnsCapture(moto_server, types.SimpleNamespace(function_name=function_name))


# ------------------------------------------------------------------------------
# What the zip holds
# ------------------------------------------------------------------------------
def test_package_holds_the_handler_settings_and_code(package):
    root = package.root
    for path in ("handler.py", "zappa_settings.py", "django_zappa_app.py", "manage.py", "project/lambda_entry.py"):
        assert (root / path).is_file(), path
    for folder in ("project", "apps", "apps/accounts/migrations", "django", "rest_framework", "zappa", "psycopg2"):
        assert (root / folder).is_dir(), folder


def test_package_leaves_out_tests_tools_and_what_lambda_provides(package):
    shipped = {path.name for path in package.root.iterdir()}
    project_only = {"tests", "bench", "docs", "dist", ".git", ".ci", ".venv", "db.sqlite3"}
    test_tools = {"moto", "pytest", "_pytest", "pytest_django", "hypothesis", "ruff", "cfnlint", "playwright"}
    provided_by_lambda = {"boto3", "botocore", "s3transfer"}
    assert shipped & (project_only | test_tools | provided_by_lambda) == set()
    assert not [p.name for p in package.root.glob("boto*.dist-info")], "stale metadata would shadow the runtime's"


def test_every_top_level_entry_is_a_runtime_requirement_or_ours(stage_packages):
    """Allow-list: at the top of every stage's zip, only what requirements.txt installs (the RECORDs of the runtime
    venv bin/package builds from say which distribution put each name there), Cue's runtime folders, and Zappa's
    generated files; every `*.dist-info` is a runtime distribution's."""
    site = site_packages(runtime_venv(BASE_DIR / "requirements.txt"))
    runtime = runtime_distributions(BASE_DIR / "requirements.txt", site=site)
    assert {"django", "zappa", "psycopg2-binary", "cryptography"} <= runtime
    owner = {name: dist for dist in runtime for name in top_level_names(dist, site=site)}
    ours = {"apps", "project", "manage.py"}
    # Zappa's handler, its generated settings and app module, the empty __init__.py it adds; bin/package's stamp.
    zappas = {"handler.py", "zappa_settings.py", "django_zappa_app.py", "__init__.py", "package_info.json"}
    zappas.add("__pycache__")
    strangers = {}
    for stage, package in stage_packages.items():
        for entry in sorted(package.root.iterdir()):
            name = entry.name
            if name.endswith(".dist-info"):
                allowed = normalise(name.removesuffix(".dist-info").rsplit("-", 1)[0]) in runtime
            else:
                source = name[:-1] if name.endswith(".pyc") else name  # a module shipped as its bytecode alone
                allowed = name in ours | zappas or name in owner or source in owner
            if not allowed:
                strangers.setdefault(stage, []).append(name)
    assert strangers == {}


def test_planted_secrets_and_test_settings_never_ship(planted_reports, stage_packages):
    """Untracked `.env` and `*.pem` files planted in the checkout (top and runtime folders) reach no stage's zip;
    those inside a runtime folder are named as left out; test settings live under tests/ and do not ship either."""
    for stage, package in stage_packages.items():
        names = {p.relative_to(package.root).as_posix() for p in package.root.rglob("*")}
        planted_names = {Path(name).name for name in PLANTED}  # .env, cue-<token>.pem, <token>.pem
        assert not [n for n in names if Path(n).name in planted_names or PLANT_TOKEN in n], stage
        assert not [p for p in package.root.rglob("*") if p.is_file() and PLANTED_TEXT.encode() in p.read_bytes()], (
            stage
        )
        assert not [n for n in names if "settings_test" in n or n.startswith("tests/")], stage
        assert {name for name in PLANTED if name.startswith(("apps/", "project/"))} <= set(
            planted_reports[stage]["left_out_untracked"]
        )


def test_no_development_only_distribution_ships(stage_packages):
    """Everything installed in the venv beyond requirements.txt's closure is left out (exclude list is complete)."""
    runtime = runtime_distributions(Path(settings.BASE_DIR) / "requirements.txt")
    shipped = {path.name for path in stage_packages["dev"].root.iterdir()}
    leaked = {}
    for distribution in installed_distributions() - runtime:
        names = top_level_names(distribution) & shipped
        if names:
            leaked[distribution] = sorted(names)
    assert leaked == {}, f"add these to zappa_settings.json base.exclude: {leaked}"


def test_exclude_list_drops_no_module_of_a_runtime_requirement(stage_packages):
    """The exclude patterns match names at any depth: none may remove a module a runtime requirement needs.

    Only other languages' translation folders go on purpose (with Django's date formats for them).
    """
    runtime = runtime_distributions(Path(settings.BASE_DIR) / "requirements.txt") - LEFT_OUT_RUNTIME_DISTRIBUTIONS
    root = stage_packages["dev"].root
    other_language = re.compile(r"/locale/([^/]+)/")
    missing = {}
    for distribution in sorted(runtime):
        lost = [
            path
            for path in module_files(distribution)
            if "/tests/" not in path
            and not path.startswith(tuple(f"django/contrib/{app}/" for app in LEFT_OUT_DJANGO_CONTRIB))
            and not (root / path).is_file()
            and not (root / f"{path}c").is_file()  # a .py ships as its bytecode alone
            and not (other_language.search(path) and other_language.search(path)[1] not in KEEP_LANGUAGES)
        ]
        if lost:
            missing[distribution] = lost[:5]
    assert missing == {}


def test_stages_differ_only_in_their_generated_settings(stage_packages):
    """One code tree for every stage: what makes a zip dev, staging or production is its zappa_settings.py."""
    names = {
        stage: {path.relative_to(package.root) for path in package.root.rglob("*") if path.is_file()}
        for stage, package in stage_packages.items()
    }
    assert names["dev"] == names["staging"] == names["production"]
    differing = {
        str(path)
        for path in names["dev"]
        if len({(stage_packages[stage].root / path).read_bytes() for stage in STAGES}) > 1
    }
    assert differing == {"zappa_settings.py", "__pycache__/zappa_settings.cpython-311.pyc", "package_info.json"}
    stamps = [json.loads((stage_packages[stage].root / "package_info.json").read_text()) for stage in STAGES]
    assert len({stamp["uuid"] for stamp in stamps}) == len(STAGES), "each stage's contents name its build"


def test_generated_settings_carry_no_secret(stage, package):
    """Secrets come from the stage's remote_env at cold start; none is baked into zappa_settings.py."""
    text = (package.root / "zappa_settings.py").read_text()
    assert "SECRET" not in text.upper()
    assert "PASSWORD" not in text.upper()
    values = stage_settings_values(package.root / "zappa_settings.py")
    secretish = re.compile(r"SECRET|PASSWORD|TOKEN|DATABASE_URL|_KEY$", re.IGNORECASE)
    assert not [name for name in values["ENVIRONMENT_VARIABLES"] if secretish.search(name)]
    assert values["REMOTE_ENV"] == f"s3://cue-config-{stage}/env.json"
    assert values["API_STAGE"] == stage


def test_no_secret_bearing_file_ships(package):
    """No local database, environment file, private key or stage overlay is picked up from the project folder."""
    suspicious = re.compile(r"(^\.env|\.sqlite3$|^env\.json$|\.key$|^id_(rsa|ed25519)|^zappa_settings\.feature-)")
    found = [str(p.relative_to(package.root)) for p in package.root.rglob("*") if suspicious.search(p.name)]
    assert found == []
    private_keys = [
        str(p.relative_to(package.root)) for p in package.root.rglob("*.pem") if b"PRIVATE KEY" in p.read_bytes()
    ]
    assert private_keys == []


def test_package_fits_lambda_limits(stage, package, capsys):
    zipped, unzipped = package.zipped_bytes, package.unzipped_bytes
    with capsys.disabled():
        print(f"\ncue-{stage}.zip: {zipped / MIB:.1f} MiB zipped, {unzipped / MIB:.1f} MiB unzipped")
    assert zipped < LAMBDA_ZIPPED_LIMIT
    assert unzipped < LAMBDA_UNZIPPED_LIMIT


def test_only_english_translations_ship(stage_packages):
    root = stage_packages["dev"].root
    languages = {p.parent.name for p in root.rglob("LC_MESSAGES")}
    assert languages <= KEEP_LANGUAGES
    assert (root / "django/conf/locale/en/LC_MESSAGES/django.mo").is_file(), "Django needs its default language"
    assert (root / "rest_framework/locale/en/LC_MESSAGES/django.mo").is_file()


def test_every_module_has_bytecode_lambda_uses_as_is(stage_packages):
    """Cue's own modules: source and an unchecked-hash .pyc naming /var/task; third-party ones: the .pyc alone."""
    root = stage_packages["dev"].root
    own = [p for top in ("apps", "project") for p in (root / top).rglob("*.py")] + list(root.glob("*.py"))
    assert {"handler.py", "zappa_settings.py", "manage.py"} <= {p.name for p in own}
    missing = [str(p.relative_to(root)) for p in own if not Path(importlib.util.cache_from_source(str(p))).is_file()]
    assert missing == []
    pyc = Path(importlib.util.cache_from_source(str(root / "project" / "lambda_entry.py")))
    flags = int.from_bytes(pyc.read_bytes()[4:8], "little")
    assert flags == 0b01, "hash-based (bit 0), not checked against the source (bit 1)"
    assert f"{LAMBDA_TASK_ROOT}/project/lambda_entry.py".encode() in pyc.read_bytes()

    third_party = ("django", "rest_framework", "zappa", "jwt", "cryptography", "psycopg2")
    sources = [str(p.relative_to(root)) for top in third_party for p in (root / top).rglob("*.py")]
    assert sources == [], "third-party code ships as bytecode alone"
    assert not [p for top in third_party for p in (root / top).rglob("__pycache__")]
    assert (root / "django" / "__init__.pyc").is_file()
    assert (root / "typing_extensions.pyc").is_file() and not (root / "typing_extensions.py").exists()
    assert f"{LAMBDA_TASK_ROOT}/django/__init__.py".encode() in (root / "django" / "__init__.pyc").read_bytes()
    assert not list(root.glob("*.dist-info/RECORD")), "the RECORDs would list the replaced files"


def test_the_zip_meets_the_package_size_target(stage_packages, capsys):
    """Issue #2's target for the artifact operators deploy (bench/coldstart.py prints it beside bare's): <= 20 MB."""
    zipped = stage_packages["dev"].zipped_bytes
    with capsys.disabled():
        print(f"\ncue-dev.zip: {zipped / 1e6:.1f} MB zipped")
    assert zipped <= 20 * 1000**2


def test_zip_is_written_reproducibly(stage_packages):
    import zipfile

    with zipfile.ZipFile(stage_packages["dev"].zip_path) as archive:
        infos = archive.infolist()
    names = [info.filename for info in infos]
    assert names == sorted(names)
    assert {info.date_time for info in infos} == {ZIP_EPOCH}
    assert {info.external_attr >> 16 for info in infos} == {0o100755}


# ------------------------------------------------------------------------------
# The zip answering through the stage's entry point
# ------------------------------------------------------------------------------
def test_fresh_interpreter_sees_only_the_package_and_lambda_runtime(fresh_lambda, package, lambda_runtime):
    """The child imports Django from the zip and boto3 from the runtime folder; test tools are absent."""
    found = fresh_lambda.probe("moto", "pytest", "tests", "django", "boto3", "project.lambda_entry", "yaml._yaml")
    assert found["moto"] is None
    assert found["pytest"] is None
    assert found["tests"] is None
    assert found["django"].startswith(str(package.root))
    assert found["project.lambda_entry"] == str(package.root / "project" / "__init__.py")
    assert found["boto3"].startswith(str(lambda_runtime))
    assert found["yaml._yaml"].startswith(str(package.root)), "the stripped C extension still loads"


def test_packages_that_read_their_own_metadata_find_it(fresh_lambda):
    versions = fresh_lambda.metadata("djangorestframework_simplejwt", "jsonschema", "Django", "boto3", "moto")
    assert versions["djangorestframework_simplejwt"] and versions["Django"]
    assert versions["jsonschema"] is None, "left out (exclude_glob): nothing Cue runs imports it"
    assert versions["boto3"] is None, "boto3's record was left out with boto3"
    assert versions["moto"] is None


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_signup_then_me_through_the_entry_point(stage, fresh_lambda, remote_env, version):
    """Cold start loads remote_env (secret key, database) from S3; sign-up's token then opens /api/me."""
    make = EVENTS[version]
    payload = {"email": f"packaged-{stage}@example.com", "password": PASSWORD, "workspace_name": "Zip Co"}

    signup = fresh_lambda.invoke(make("POST", "/api/auth/signup", body=payload, stage=stage))
    assert signup["result"]["statusCode"] == 201, fresh_lambda.stderr()[-3000:]
    body = response_json(signup["result"])
    assert body["workspace"]["name"] == "Zip Co"
    assert User.objects.filter(email=payload["email"]).exists()  # written to this test's database

    me = fresh_lambda.invoke(make("GET", "/api/me", headers={"Authorization": f"Bearer {body['access']}"}, stage=stage))
    assert me["result"]["statusCode"] == 200
    assert response_json(me["result"])["user"]["email"] == payload["email"]
    assert response_json(me["result"])["role"] == "owner"

    anonymous = fresh_lambda.invoke(make("GET", "/api/me", stage=stage))
    assert anonymous["result"]["statusCode"] == 401

    # English messages come from the translations kept in the zip.
    invalid = fresh_lambda.invoke(make("POST", "/api/auth/signup", body={}, stage=stage))
    assert invalid["result"]["statusCode"] == 400
    assert response_json(invalid["result"])["error"]["fields"]["email"] == ["This field is required."]

    # Zappa at log_level DEBUG prints every remote_env value and every raw event (bearer tokens) to the logs.
    logs = fresh_lambda.stderr()
    assert "Instancing.." in logs  # the handler's own output is captured here
    for secret in (remote_env["DJANGO_SECRET_KEY"], remote_env["DATABASE_URL"], body["access"]):
        assert secret not in logs


def test_cold_start_pauses_the_collector_then_freezes_what_it_loaded(stage, fresh_lambda):
    """Importing the entry point turns the collector off; the first invocation, Django up, freezes and resumes it."""
    assert fresh_lambda.gc_state() == {"enabled": False, "frozen": 0}
    assert fresh_lambda.invoke(apigw_v2("GET", "/healthz", stage=stage))["result"]["statusCode"] == 200
    state = fresh_lambda.gc_state()
    assert state["enabled"] is True
    assert state["frozen"] > 100_000, "the modules and settings loaded at start-up are frozen"


def test_schema_machinery_loads_only_when_the_schema_is_asked_for(stage, fresh_lambda):
    """A cold start serving the API leaves schema and ranking code unloaded; /api/schema/ still documents auth.

    (drf_spectacular.openapi itself loads with the first `@extend_schema` of an API module.)
    """
    assert fresh_lambda.invoke(apigw_v1("GET", "/api/me", stage=stage))["result"]["statusCode"] == 401
    modules = ("drf_spectacular.views", "drf_spectacular.generators", "apps.accounts.schema", "snowballstemmer")
    assert fresh_lambda.loaded(*modules) == dict.fromkeys(modules, False)
    result = fresh_lambda.invoke(
        apigw_v1("GET", "/api/schema/", headers={"Accept": "application/vnd.oai.openapi+json"}, stage=stage)
    )["result"]
    assert result["statusCode"] == 200
    schema = json.loads(response_json_text(result))
    assert schema["components"]["securitySchemes"]["jwtAuth"]["scheme"] == "bearer"
    assert {"jwtAuth": []} in schema["paths"]["/api/me"]["get"]["security"]


def test_healthz_and_admin_through_the_entry_point(stage, fresh_lambda):
    """DATABASE_URL from remote_env is used (PostgreSQL, not the embedded SQLite default); the admin renders."""
    result = fresh_lambda.invoke(apigw_v2("GET", "/healthz", stage=stage))["result"]
    assert result["statusCode"] == 200
    assert json.loads(result["body"]) == {"status": "ok", "database": "postgresql"}
    login = fresh_lambda.invoke(apigw_v1("GET", "/admin/login/", stage=stage))["result"]
    assert login["statusCode"] == 200
    assert "Log in" in response_json_text(login)


def test_docs_page_and_its_assets_through_the_entry_point(stage, fresh_lambda, package):
    """Swagger UI's page and assets come from the zip (static files indexed on that first request)."""
    page = fresh_lambda.invoke(apigw_v1("GET", "/api/docs/", stage=stage))["result"]
    assert page["statusCode"] == 200
    asset = re.search(r'src="[^"]*?(/static/drf_spectacular_sidecar/[^"]+\.js)"', response_json_text(page))[1]
    script = fresh_lambda.invoke(apigw_v1("GET", asset, stage=stage))["result"]
    assert script["statusCode"] == 200, asset
    content_type = (script.get("headers") or {}).get("Content-Type") or script["multiValueHeaders"]["Content-Type"][0]
    assert "javascript" in content_type
    # What no page of Cue's links to is not shipped: the browsable API's assets (JSON-only API) and Redoc's.
    assert not (package.root / "rest_framework" / "static").exists()
    assert not (package.root / "drf_spectacular_sidecar" / "static" / "drf_spectacular_sidecar" / "redoc").exists()
    assert (package.root / "rest_framework" / "templates").is_dir()


def test_management_commands_find_third_party_migrations_shipped_as_bytecode(stage, fresh_lambda):
    """`zappa manage STAGE migrate` runs in the function: Django's migrations and commands load from .pyc alone."""
    assert fresh_lambda.invoke({"manage": "showmigrations auth token_blacklist accounts"})["result"] == {}
    listed = fresh_lambda.stderr()
    assert " [X] 0001_initial" in listed
    for app in ("auth", "token_blacklist", "accounts"):  # two third-party (sourceless), Cue's own
        assert f"\n{app}\n" in listed, app
    assert "0012_alter_user_first_name_max_length" in listed  # one of django.contrib.auth's .pyc migrations
    assert "Traceback" not in listed


def response_json_text(result: dict) -> str:
    import base64

    body = result.get("body") or ""
    return base64.b64decode(body).decode() if result.get("isBase64Encoded") else body


def stored_delivery(workspace_id: int, *, received_minutes_ago: int = 0) -> WebhookDelivery:
    """An Intercom webhook delivery as the endpoint stores it (new conversation, one customer message)."""
    body = encode(Conversation(2).user_created())
    integration_services._delivery_insert(
        workspace_id=workspace_id, notification=payloads.notification_parse(body), body=body.decode()
    )
    delivery = WebhookDelivery.objects.latest("id")
    if received_minutes_ago:
        WebhookDelivery.objects.filter(pk=delivery.pk).update(
            received_at=timezone.now() - timedelta(minutes=received_minutes_ago)
        )
    return delivery


def task_of(message: str) -> str:
    body = json.loads(message)
    assert body["command"] == "zappa.asynchronous.route_sns_task"
    return body["args"][0]["task"]


def test_task_message_through_the_entry_point(fresh_lambda, stage_topic, owner):
    """A product task published to the stage's topic as Cue publishes it runs in the zip, and chains the next."""
    delivery = stored_delivery(owner.workspace_id)
    run = process_delivery.dispatch(args=[delivery.id], workspace_id=owner.workspace_id)
    [message] = stage_topic.drain()
    assert task_of(message) == "apps.integrations.tasks.process_delivery"

    answer = fresh_lambda.invoke(stage_topic.event_for(message))
    assert answer["result"] == "succeeded", fresh_lambda.stderr()[-3000:]
    run.refresh_from_db()
    assert run.status == TaskStatus.SUCCEEDED
    delivery.refresh_from_db()
    assert delivery.status == "processed"
    assert ConversationRow.objects.filter(workspace_id=owner.workspace_id).count() == 1

    # The packaged function published the next steps to its own topic (the suggestion step, and the realtime
    # events of the new conversation and message); delivered, the suggestion step runs there too.
    follow_ups = {task_of(message): message for message in stage_topic.drain()}
    assert set(follow_ups) == {SUGGEST, "apps.realtime.tasks.publish_event"}
    follow_up = follow_ups[SUGGEST]
    assert fresh_lambda.invoke(stage_topic.event_for(follow_up))["result"] == "succeeded"
    assert TaskRun.objects.get(name=SUGGEST).status == TaskStatus.SUCCEEDED


def test_every_scheduled_event_through_the_entry_point(stage, fresh_lambda, stage_topic, function_name, owner):
    """Each rule the stage declares (and keep-warm where it is on) fires the packaged job, which does its work."""
    config = resolved(SETTINGS, stage)
    jobs = [event["function"] for event in config["events"]]
    assert "apps.tasks.jobs.sweep" in jobs
    # Work for the jobs whose effect shows in SNS: a task whose send was lost, a delivery whose task was lost.
    unsent = TaskRun.objects.create(name=SUGGEST, args=[1], workspace_id=owner.workspace_id)
    TaskRun.objects.filter(pk=unsent.pk).update(created_at=timezone.now() - timedelta(minutes=5))
    stale = stored_delivery(owner.workspace_id, received_minutes_ago=30)

    results = {}
    for job in jobs:
        answer = fresh_lambda.invoke(scheduled_event(f"{function_name}-{job}"))
        results[job] = answer["result"]
        assert answer["result"] is not None, f"{job} answered nothing:\n{fresh_lambda.stderr()[-3000:]}"
    if config.get("keep_warm"):
        assert fresh_lambda.invoke(scheduled_event(f"{function_name}-{KEEP_WARM}"))["result"] is None

    assert results["apps.tasks.jobs.sweep"]["unsent"] == 1
    if "apps.integrations.jobs.redispatch_deliveries" in results:
        assert results["apps.integrations.jobs.redispatch_deliveries"] == 1
        stale.refresh_from_db()
        assert stale.redispatched_at is not None
    if "apps.accounts.jobs.purge_expired" in results:
        assert results["apps.accounts.jobs.purge_expired"]["workspaces"] >= 1
    sent = sorted(task_of(m) for m in stage_topic.drain())
    assert SUGGEST in sent, "the sweep sent the task whose send was lost"
    if "apps.integrations.jobs.redispatch_deliveries" in results:
        assert "apps.integrations.tasks.process_delivery" in sent
    logs = fresh_lambda.stderr()
    assert logs.count("Instancing..") == 1, "one initialisation per container, keep-warm included"
    assert "Traceback" not in logs
