"""Secrets at rest: Fernet with CUE_FIELD_KEY, rotation through a key list, and no start without a key in production."""

import os
import subprocess
import sys

import pytest
from cryptography.fernet import Fernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from project import encryption


def test_round_trip_and_no_plaintext():
    token = encryption.encrypt("s3cret-token")
    assert "s3cret" not in token
    assert encryption.decrypt(token) == "s3cret-token"
    assert encryption.encrypt("s3cret-token") != token, "each encryption is fresh"


def test_rotation_keeps_old_values_readable(monkeypatch):
    old = encryption.encrypt("value")
    new_key = Fernet.generate_key().decode()
    monkeypatch.setattr(settings, "CUE_FIELD_KEYS", [new_key, *settings.CUE_FIELD_KEYS])
    assert encryption.decrypt(old) == "value"
    rotated = encryption.rotate(old)
    monkeypatch.setattr(settings, "CUE_FIELD_KEYS", [new_key])
    assert encryption.decrypt(rotated) == "value"


@pytest.mark.django_db
def test_a_value_no_key_opens_is_a_clear_error(owner, monkeypatch):
    from apps.integrations.models import IntercomConnection

    IntercomConnection.objects.create(
        workspace=owner.workspace, app_id="k1", api_version="2.11", method="token", access_token="t"
    )
    monkeypatch.setattr(settings, "CUE_FIELD_KEYS", [Fernet.generate_key().decode()])
    with pytest.raises(ImproperlyConfigured, match="cannot be decrypted"):
        IntercomConnection.objects.get(app_id="k1")


def test_a_bad_key_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(settings, "CUE_FIELD_KEYS", ["not-a-fernet-key"])
    with pytest.raises(ImproperlyConfigured, match="CUE_FIELD_KEY"):
        encryption.encrypt("x")


def _start(env: dict) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in {"CUE_FIELD_KEY", "DJANGO_DEBUG"}}
    return subprocess.run(
        [sys.executable, "-c", "import project.settings"],
        cwd=settings.BASE_DIR,
        env=clean | {"DJANGO_SECRET_KEY": "k" * 50} | env,
        capture_output=True,
        text=True,
    )


def test_production_refuses_to_start_without_a_key():
    result = _start({})
    assert result.returncode != 0
    assert "CUE_FIELD_KEY is not set" in result.stderr


def test_debug_derives_a_key_and_production_takes_the_given_one():
    assert _start({"DJANGO_DEBUG": "1"}).returncode == 0
    assert _start({"CUE_FIELD_KEY": Fernet.generate_key().decode()}).returncode == 0
