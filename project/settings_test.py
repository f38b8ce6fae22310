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
    "DEFAULT_THROTTLE_RATES": {"auth": os.environ.get("CUE_AUTH_THROTTLE_RATE", "1000/min")},
}
TEST_RUNNER = "project.test_runner.PytestTestRunner"
