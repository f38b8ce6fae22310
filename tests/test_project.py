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
