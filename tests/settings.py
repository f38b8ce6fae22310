"""Settings for the test suite: production settings plus a fast hasher and in-memory email."""

import os

os.environ.setdefault("DJANGO_SECRET_KEY", "test-secret-key-not-for-any-deployed-stage-0123456789")
os.environ.setdefault("DJANGO_SECURE_SSL_REDIRECT", "0")
# A fixed Fernet key for tests only (never a deployed stage's).
os.environ.setdefault("CUE_FIELD_KEY", "dGVzdC1maWVsZC1rZXktMDEyMzQ1Njc4OWFiY2RlZjA=")

from project.settings import *  # noqa: E402,F403
from project.settings import ALLOWED_HOSTS, REST_FRAMEWORK  # noqa: E402

ALLOWED_HOSTS = [*ALLOWED_HOSTS, "testserver", "localhost", "127.0.0.1"]
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
REST_FRAMEWORK = {
    **REST_FRAMEWORK,
    "DEFAULT_THROTTLE_RATES": {
        "auth": os.environ.get("CUE_AUTH_THROTTLE_RATE", "1000/min"),
        "auth_account": os.environ.get("CUE_AUTH_ACCOUNT_THROTTLE_RATE", "1000/min"),
    },
}
TEST_RUNNER = "tests.runner.PytestTestRunner"

# A test database of this run's own: two suites against one PostgreSQL (two checkouts, CI beside a
# session) never create, use or drop each other's. pytest-xdist workers add their own suffix to it.
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":  # noqa: F405
    _run = os.environ.setdefault("CUE_TEST_RUN_ID", os.urandom(4).hex())
    # PostgreSQL cuts names at 63 bytes; xdist's "_gw<n>" comes after this (room left for 99 workers).
    _name = f"test_{DATABASES['default']['NAME']}"[: 63 - len(_run) - 6]  # noqa: F405
    DATABASES["default"]["TEST"] = {**DATABASES["default"].get("TEST", {}), "NAME": f"{_name}_{_run}"}  # noqa: F405
