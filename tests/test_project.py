"""Process-level behaviour: health check, schema, docs, error pages, settings guards."""

import os
import subprocess
import sys

import pytest
from django.conf import settings

pytestmark = pytest.mark.django_db


def test_healthz_reports_database(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["database"] == ("postgresql" if settings.IS_POSTGRES else "sqlite")


def test_schema_and_docs_are_public(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    assert "/api/auth/signup" in paths
    assert "/api/members/{membership_id}" in paths
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    assert b"swagger" in docs.content.lower()


def test_unknown_path_is_json_404(client):
    response = client.get("/api/no-such-thing")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_request_id_is_echoed(client):
    response = client.get("/healthz", HTTP_X_REQUEST_ID="abc123")
    assert response["X-Request-ID"] == "abc123"


def _settings_process(env: dict) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup(); print('started')"],
        env={**clean, "DJANGO_SETTINGS_MODULE": "project.settings", **env},
        capture_output=True,
        text=True,
        cwd=settings.BASE_DIR,
    )


def test_production_refuses_to_start_without_secret_key():
    result = _settings_process({})
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY is not set" in result.stderr


def test_production_refuses_wildcard_host():
    result = _settings_process({"DJANGO_SECRET_KEY": "k" * 50, "DJANGO_ALLOWED_HOSTS": "*"})
    assert result.returncode != 0
    assert "must not contain '*'" in result.stderr


def test_check_deploy_is_clean_with_production_settings():
    env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    env |= {"DJANGO_SETTINGS_MODULE": "project.settings", "DJANGO_SECRET_KEY": "s" * 30 + "Z9!q" * 10}
    env["DJANGO_ALLOWED_HOSTS"] = "cue.example.com"
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        env=env,
        capture_output=True,
        text=True,
        cwd=settings.BASE_DIR,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


OLD_DEBUG_CONSTANT = "django-insecure-local-development-only-" + "x" * 20


def _debug_key_processes(key_file, *, count: int = 1, **extra) -> list[subprocess.CompletedProcess]:
    """`count` processes started at once with DJANGO_DEBUG=1 and no secret key; each prints its SECRET_KEY."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_") and k != "AWS_LAMBDA_FUNCTION_NAME"}
    code = "import django; django.setup(); from django.conf import settings; print(settings.SECRET_KEY)"
    env = {**clean, "DJANGO_SETTINGS_MODULE": "project.settings", "DJANGO_DEBUG": "1"}
    env |= {"CUE_LOCAL_SECRET_KEY_FILE": str(key_file)} | extra
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", code],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=settings.BASE_DIR,
        )
        for _ in range(count)
    ]
    return [subprocess.CompletedProcess(p.args, p.wait(), *p.communicate()) for p in processes]


def test_debug_without_a_secret_key_uses_a_random_key_kept_for_the_checkout(tmp_path):
    """Not the old public constant: a random key made once (even by processes starting together), then reused."""
    key_file = tmp_path / ".secret-key"
    first = _debug_key_processes(key_file, count=3)
    assert all(r.returncode == 0 for r in first), [r.stderr for r in first]
    keys = {r.stdout.strip() for r in first}
    assert len(keys) == 1
    [key] = keys
    assert len(key) >= 50 and key != OLD_DEBUG_CONSTANT and "insecure" not in key
    assert key_file.read_text().strip() == key
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert list(tmp_path.iterdir()) == [key_file]  # no temporary file left behind
    [again] = _debug_key_processes(key_file)
    assert again.stdout.strip() == key
    [elsewhere] = _debug_key_processes(tmp_path / "other-checkout-key")
    assert elsewhere.stdout.strip() not in ("", key)


def test_debug_on_lambda_still_requires_a_secret_key(tmp_path):
    key_file = tmp_path / ".secret-key"
    [result] = _debug_key_processes(key_file, AWS_LAMBDA_FUNCTION_NAME="cue-dev")
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY is not set" in result.stderr
    assert not key_file.exists()


def test_the_checkouts_key_file_is_ignored_by_git_and_left_out_of_every_zip():
    from tools.artifact import RUNTIME_PATHS

    root = settings.BASE_DIR
    ignored = subprocess.run(["git", "check-ignore", "-q", ".secret-key"], cwd=root, capture_output=True)
    assert ignored.returncode == 0, "the key file is not in .gitignore"
    # bin/package zips only Cue's runtime paths, git-tracked files of them (tests/lambda/test_package.py plants
    # the key file among others and proves it reaches no stage's zip).
    assert ".secret-key" not in RUNTIME_PATHS


def _imported_modules(path) -> set[str]:
    """Every module a Python file imports (top-level or function-local, `import x` and `from x import y`)."""
    import ast

    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
    return names


def test_the_runtime_imports_no_tooling_and_no_tests():
    """project/ and apps/ are what the Lambda runs; tools/ and tests/ never ship, so nothing there is imported."""
    from pathlib import Path

    base = Path(settings.BASE_DIR)
    offenders = {
        str(path.relative_to(base)): sorted(m for m in modules if m.split(".")[0] in {"tools", "tests", "bench"})
        for folder in ("project", "apps")
        for path in (base / folder).rglob("*.py")
        if (modules := _imported_modules(path))
    }
    assert {path: found for path, found in offenders.items() if found} == {}


def test_tooling_is_an_app_only_off_lambda():
    """`manage.py serve_lambda` comes from tools/ (installed as an app here); on Lambda, tools/ is not installed."""
    from django.core.management import get_commands

    assert get_commands()["serve_lambda"] == "tools"
    code = "from django.conf import settings; print('tools' in settings.INSTALLED_APPS)"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "AWS_LAMBDA_FUNCTION_NAME": "cue-dev"}
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=settings.BASE_DIR, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"
