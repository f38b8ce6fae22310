"""No secret in any log line: a logging filter that redacts secret values and secret-shaped fields.

Installed on the console handler in settings.LOGGING, so every record Cue writes, from any logger and at
any level, passes through it. It redacts, in the message, the extra fields, a traceback and a stack:
- the values of secrets Cue knows: the secret settings read from the environment (AWS credentials and
  session token, Django's and the JWT signing key, CUE_FIELD_KEY, Intercom's client secret, the
  database password), every value of the stage's remote_env (registered when it is read), and every
  secret the encryption layer seals or opens (Intercom access tokens, client secrets);
- whatever follows a secret-shaped name (`X-Amz-Security-Token: ...`, `"password": "..."`,
  `access_token=...`), a bearer token, and a JWT.
botocore's and urllib3's own DEBUG logs (every AWS request with its headers, every response body) are
quieted in LOGGING as well; this filter is the net under that.
"""

import logging
import os
import re
import threading
from urllib.parse import urlsplit

REDACTED = "[REDACTED]"
# Shorter values are not secrets worth the noise (a remote_env "1" would blank every digit one).
MIN_SECRET_LENGTH = 8

SECRET_SETTINGS = (
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "DJANGO_SECRET_KEY",
    "JWT_SIGNING_KEY",
    "CUE_FIELD_KEY",
    "INTERCOM_CLIENT_SECRET",
)

# The names of secret fields (not secrets themselves).
_SECRET_NAMES = "|".join(
    (
        "x-amz-security-token",
        "x-amz-signature",
        "aws_secret_access_key",
        "aws_session_token",
        "secretaccesskey",
        "sessiontoken",
        r"password\d?",
        "passwd",
        "new_password",
        "access_token",
        "refresh_token",
        "client_secret",
        "secret_key",
        "api_key",
    )
)
_PATTERNS = (
    # name, separator (quotes, colon or equals, a bytes prefix), value up to a quote, space, comma or &
    (re.compile(rf"(?i)\b({_SECRET_NAMES})(['\"]?\s*[:=]\s*b?['\"]?)([^'\"\s,&;}}]+)"), rf"\1\2{REDACTED}"),
    (re.compile(r"(?i)\bBearer\s+[A-Za-z0-9._~+/=-]+"), f"Bearer {REDACTED}"),
    (re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]+"), REDACTED),  # a JWT
)

_registered: set[str] = set()
_lock = threading.Lock()

# What a LogRecord carries by itself: anything else on it came from `extra=` and is redacted too.
_RECORD_FIELDS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


def secret_values_add(*values) -> None:
    """Treat each value as a secret from now on: it is redacted from every log line of this process."""
    fresh = {v for v in values if isinstance(v, str) and len(v) >= MIN_SECRET_LENGTH} - _registered
    if fresh:
        with _lock:
            _registered.update(fresh)


def _configured_secrets() -> set[str]:
    found: set[str] = set()
    for name in SECRET_SETTINGS:
        found.update(part.strip() for part in os.environ.get(name, "").split(","))
    database_password = urlsplit(os.environ.get("DATABASE_URL", "")).password
    if database_password:
        found.add(database_password)
    return {v for v in found if len(v) >= MIN_SECRET_LENGTH}


def secrets_known() -> list[str]:
    """Every secret value, longest first (so a secret containing another is removed whole)."""
    return sorted(_configured_secrets() | _registered, key=len, reverse=True)


def redact(text: str, secrets: list[str] | None = None) -> str:
    for secret in secrets if secrets is not None else secrets_known():
        if secret in text:
            text = text.replace(secret, REDACTED)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def _redact_value(value, secrets: list[str], depth: int = 0):
    if isinstance(value, str):
        return redact(value, secrets)
    if depth > 5:
        return value
    if isinstance(value, dict):
        return {k: _redact_value(v, secrets, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_redact_value(v, secrets, depth + 1) for v in value)
    if isinstance(value, bytes):
        return redact(value.decode("utf-8", "replace"), secrets)
    return value


class RedactSecretsFilter(logging.Filter):
    """Rewrites each record with its secrets redacted; never drops one."""

    def filter(self, record: logging.LogRecord) -> bool:
        secrets = secrets_known()
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a badly formatted record is logging's own error to report, not ours
            return True
        record.msg, record.args = redact(message, secrets), None
        for key, value in list(vars(record).items()):
            if key not in _RECORD_FIELDS and isinstance(value, str | bytes | dict | list | tuple):
                setattr(record, key, _redact_value(value, secrets))
        if record.exc_info:
            # Formatted (and redacted) now: a formatter would otherwise format the exception afresh.
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info), secrets)
            record.exc_info = None
        elif record.exc_text:
            record.exc_text = redact(record.exc_text, secrets)
        if record.stack_info:
            record.stack_info = redact(record.stack_info, secrets)
        return True
