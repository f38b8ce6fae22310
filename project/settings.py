"""Cue's settings: every value read from the environment, here and nowhere else."""

import base64
import hashlib
import importlib.util
import os
import re
import secrets
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


# ------------------------------------------------------------------------------
# Core
# ------------------------------------------------------------------------------
DEBUG = env_bool("DJANGO_DEBUG")


def local_secret_key(path: Path) -> str:
    """This checkout's own random key, made on first use and kept in an ignored file (mode 0600).

    Linked into place from a private temporary file, so two processes starting at once agree on one key.
    """
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    temporary = path.with_name(f"{path.name}.{secrets.token_hex(8)}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as out:
        out.write(secrets.token_urlsafe(50) + "\n")
    try:
        os.link(temporary, path)
    except FileExistsError:
        pass  # another process made it first: its key is the key
    finally:
        temporary.unlink()
    return path.read_text().strip()


SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG or os.environ.get("AWS_LAMBDA_FUNCTION_NAME"):
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY is not set. Set it to a long random value "
            "(python -c 'import secrets; print(secrets.token_urlsafe(50))'), "
            "or set DJANGO_DEBUG=1 for local development (never on Lambda, where the key is required)."
        )
    # Debug on a laptop: a key of this checkout's own, never a constant anyone could mint tokens with.
    SECRET_KEY = local_secret_key(Path(os.environ.get("CUE_LOCAL_SECRET_KEY_FILE", BASE_DIR / ".secret-key")))

# Lambda behind API Gateway: the execute-api host is always allowed, plus what the
# stage lists (custom domains).
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver" if DEBUG else "")
_AWS_REGION = os.environ.get("AWS_REGION", "us-east-1")
ALLOWED_HOSTS += [f".execute-api.{_AWS_REGION}.amazonaws.com", f".lambda-url.{_AWS_REGION}.on.aws"]
if not DEBUG and "*" in ALLOWED_HOSTS:
    raise ImproperlyConfigured("DJANGO_ALLOWED_HOSTS must not contain '*' when DEBUG is off.")

ROOT_URLCONF = "project.urls"
WSGI_APPLICATION = "project.wsgi.application"
AUTH_USER_MODEL = "accounts.User"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# ------------------------------------------------------------------------------
# Applications
# ------------------------------------------------------------------------------
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework_simplejwt.token_blacklist",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "corsheaders",
    "django_guid",
    "apps.accounts",
    "apps.tasks",
    "apps.integrations",
    "apps.conversations",
    "apps.suggestions",
    "apps.realtime",
    "apps.console",
    "apps.knowledge",
]
# Development tooling (tools/: the local Lambda emulator's `manage.py serve_lambda`) is a Django app only
# where it exists: never on Lambda (bin/package ships no tools/), so no app of Cue depends on it.
if not os.environ.get("AWS_LAMBDA_FUNCTION_NAME") and importlib.util.find_spec("tools") is not None:
    INSTALLED_APPS.append("tools")

MIDDLEWARE = [
    # First: every later layer (throttles, logs) sees the address API Gateway saw, not a client's header.
    "project.middleware.SourceAddressMiddleware",
    # Before django-guid: an over-long or malformed X-Request-ID is dropped, so a fresh id is made (and returned).
    "project.middleware.RequestIdMiddleware",
    "django_guid.middleware.guid_middleware",
    # A task published while answering gets one quick try at SNS; the sweeper sends what it could not.
    "project.middleware.AnsweringRequestMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "project.middleware.StaticFilesMiddleware",  # WhiteNoise, its file index built on the first static request
    "corsheaders.middleware.CorsMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, so it is the first to see a view's exception: a lost database is a 503, not a 500.
    "project.middleware.DatabaseUnavailableMiddleware",
]

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# ------------------------------------------------------------------------------
# Database
# ------------------------------------------------------------------------------
# The embedded default is a SQLite file so a newcomer needs nothing installed;
# every deployed stage sets DATABASE_URL to PostgreSQL.
DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
        # Lambda freezes containers between invocations: never keep a connection
        # past a request (Django closes it on request_finished) or a task.
        conn_max_age=0,
    )
}
# A feature-branch stage shares staging's database server but has a database of its own.
if os.environ.get("CUE_DATABASE_NAME"):
    DATABASES["default"]["NAME"] = os.environ["CUE_DATABASE_NAME"]
IS_POSTGRES = DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"

# ------------------------------------------------------------------------------
# Security
# ------------------------------------------------------------------------------
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", not DEBUG)
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
SECURE_HSTS_SECONDS = int(os.environ.get("DJANGO_HSTS_SECONDS", "0" if DEBUG else "31536000"))
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = not DEBUG
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS")
CORS_ALLOWED_ORIGINS = env_list("CORS_ALLOWED_ORIGINS")
CORS_ALLOW_CREDENTIALS = False
# A webhook body larger than this is refused before it is read.
DATA_UPLOAD_MAX_MEMORY_SIZE = int(os.environ.get("DJANGO_MAX_BODY_BYTES", str(5 * 1024 * 1024)))

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# ------------------------------------------------------------------------------
# Static files (WhiteNoise serves them from the Lambda package, through project.middleware.StaticFilesMiddleware:
# the apps' folders, found by the finders, indexed on the first request for a static file)
# ------------------------------------------------------------------------------
# Relative: served under the request's script prefix (`/dev/static/` on a stage URL, project.staticfiles).
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "project.staticfiles.ScriptPrefixedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True
# Matched against the path below the script prefix (PATH_INFO), whatever prefix a request came under.
WHITENOISE_STATIC_PREFIX = "/static/"

# ------------------------------------------------------------------------------
# REST framework, JWT, OpenAPI
# ------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["apps.accounts.authentication.MemberJWTAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["apps.accounts.permissions.IsMember"],
    "DEFAULT_PAGINATION_CLASS": "project.api.Pagination",
    "PAGE_SIZE": 50,
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["project.parsers.JSONParser"],
    "EXCEPTION_HANDLER": "project.api.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "project.openapi.CueAutoSchema",
    # Sign-up, login and refresh: per client address (REMOTE_ADDR, on Lambda the event's sourceIp: see
    # project.middleware.SourceAddressMiddleware; never X-Forwarded-For) and, for login, per account, so
    # neither a changing header nor a fleet of addresses gets unlimited password guesses.
    "DEFAULT_THROTTLE_RATES": {
        "auth": os.environ.get("CUE_AUTH_THROTTLE_RATE", "20/min"),
        "auth_account": os.environ.get("CUE_AUTH_ACCOUNT_THROTTLE_RATE", "30/hour"),
    },
    "NUM_PROXIES": 0,  # any DRF throttle keyed on the address reads REMOTE_ADDR, never X-Forwarded-For
    "UNAUTHENTICATED_USER": None,
}

SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=int(os.environ.get("JWT_ACCESS_MINUTES", "10"))),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=int(os.environ.get("JWT_REFRESH_DAYS", "14"))),
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    "UPDATE_LAST_LOGIN": False,
    "ALGORITHM": "HS256",
    "SIGNING_KEY": os.environ.get("JWT_SIGNING_KEY", SECRET_KEY),
    "USER_ID_CLAIM": "user_id",
    "LEEWAY": 0,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Cue API",
    "DESCRIPTION": "Real-time suggested replies for customer-success teams.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # /api/docs/ is Swagger UI, its assets served from the package (drf-spectacular-sidecar's). No Redoc
    # page is routed: its assets are left out of the Lambda package (zappa_settings.json exclude_glob).
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # A PATCH body is documented as its serializer requires it (PATCH /api/members/<id> needs `role`), not
    # with every field made optional.
    "COMPONENT_SPLIT_PATCH": False,
    # Several models have a `status`: name each choice set after its model so the schema stays stable.
    "ENUM_NAME_OVERRIDES": {
        "TaskStatusEnum": "apps.tasks.models.TaskStatus",
        "SuggestionStatusEnum": "apps.suggestions.models.SuggestionStatus",
        "ReplyStatusEnum": "apps.integrations.models.ReplyStatus",
        "DeliveryStatusEnum": "apps.integrations.models.DeliveryStatus",
        "EntryKindEnum": "apps.knowledge.models.EntryKind",
        "SyncKindEnum": "apps.knowledge.models.SyncKind",
        "SyncStatusEnum": "apps.knowledge.models.SyncStatus",
    },
    # Imports (so registers) Cue's auth extension when a schema is generated, not at start-up.
    "PREPROCESSING_HOOKS": ["apps.accounts.schema.register_extensions"],
}

# Throttle counters live in the cache: per container on Lambda (a floor, not a
# global limit); set CUE_CACHE_URL-style backends when a shared cache exists.
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# ------------------------------------------------------------------------------
# Tasks (apps.tasks): durable tasks over SNS through zappa.asynchronous
# ------------------------------------------------------------------------------
# A quarter of SNS's 256 KB: tasks carry ids, never payloads.
CUE_TASK_MAX_ARGUMENT_BYTES = int(os.environ.get("CUE_TASK_MAX_ARGUMENT_BYTES", "64000"))
# How long a claim lasts when the invocation's remaining time is unknown (outside Lambda).
CUE_TASK_CLAIM_SECONDS = int(os.environ.get("CUE_TASK_CLAIM_SECONDS", "900"))
# A task stops (and is retried) when less than this is left of its invocation.
CUE_TASK_DEADLINE_MARGIN_SECONDS = float(os.environ.get("CUE_TASK_DEADLINE_MARGIN_SECONDS", "3"))
# A row not marked sent this long after it was recorded is sent again by the sweeper.
CUE_TASK_UNSENT_GRACE_SECONDS = int(os.environ.get("CUE_TASK_UNSENT_GRACE_SECONDS", "30"))
# Finished task rows that belong to no workspace are kept this long (workspaces set their own).
CUE_TASK_RETENTION_DAYS = int(os.environ.get("CUE_TASK_RETENTION_DAYS", "30"))
# A row sent this long ago and still pending (its message or its invocation was lost) is sent again.
CUE_TASK_RESEND_SECONDS = int(os.environ.get("CUE_TASK_RESEND_SECONDS", "600"))
# Publishing to SNS while a request is answered: one try within these, else the sweeper sends the row.
CUE_SNS_PUBLISH_CONNECT_TIMEOUT_SECONDS = float(os.environ.get("CUE_SNS_PUBLISH_CONNECT_TIMEOUT_SECONDS", "0.5"))
CUE_SNS_PUBLISH_READ_TIMEOUT_SECONDS = float(os.environ.get("CUE_SNS_PUBLISH_READ_TIMEOUT_SECONDS", "1"))
# Publishing anywhere else (tasks, the sweeper): bounded too, with a retry.
CUE_SNS_BACKGROUND_CONNECT_TIMEOUT_SECONDS = float(os.environ.get("CUE_SNS_BACKGROUND_CONNECT_TIMEOUT_SECONDS", "2"))
CUE_SNS_BACKGROUND_READ_TIMEOUT_SECONDS = float(os.environ.get("CUE_SNS_BACKGROUND_READ_TIMEOUT_SECONDS", "5"))
CUE_SNS_BACKGROUND_MAX_ATTEMPTS = int(os.environ.get("CUE_SNS_BACKGROUND_MAX_ATTEMPTS", "2"))

# ------------------------------------------------------------------------------
# Realtime (apps.realtime): events pushed to agents over MQTT; see docs/realtime.md
# ------------------------------------------------------------------------------
REALTIME_BACKEND = os.environ.get("REALTIME_BACKEND", "log").strip().lower() or "log"
if REALTIME_BACKEND not in {"iot", "mqtt", "log"}:
    raise ImproperlyConfigured(f"REALTIME_BACKEND must be iot, mqtt or log, not {REALTIME_BACKEND!r}.")
MQTT_URL = os.environ.get("MQTT_URL", "").strip()
if REALTIME_BACKEND == "mqtt" and not MQTT_URL:
    raise ImproperlyConfigured("REALTIME_BACKEND=mqtt needs MQTT_URL, e.g. mqtt://127.0.0.1:1883.")
# What a browser connects to with the mqtt backend; derived from MQTT_URL (port 9001) when empty.
REALTIME_WS_URL = os.environ.get("REALTIME_WS_URL", "").strip()
# Stages in one AWS account share one IoT topic space and each numbers its workspaces from 1: every
# stage but production gets a root of its own (Zappa sets STAGE), so dev's workspace 1 is not staging's.
_STAGE = os.environ.get("STAGE", "").strip()
_STAGED = _STAGE and _STAGE != "production"
REALTIME_TOPIC_ROOT = os.environ.get("REALTIME_TOPIC_ROOT", f"cue-{_STAGE}" if _STAGED else "cue").strip()
if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", REALTIME_TOPIC_ROOT):
    raise ImproperlyConfigured("REALTIME_TOPIC_ROOT must be 1-64 letters, digits, '_' or '-'.")
# The account's ATS data endpoint host; discovered once per cold start with iot:DescribeEndpoint when empty.
REALTIME_IOT_ENDPOINT = os.environ.get("REALTIME_IOT_ENDPOINT", "").strip()
# The IoT custom authorizer (one per stage, pointing at the stage's function) that browsers name.
REALTIME_IOT_AUTHORIZER = os.environ.get(
    "REALTIME_IOT_AUTHORIZER", f"cue-realtime-{_STAGE}" if _STAGE else "cue-realtime"
).strip()
# Lifetime of the credential GET /api/realtime/connection hands out (a connection never outlives it by much).
REALTIME_TOKEN_SECONDS = int(os.environ.get("REALTIME_TOKEN_SECONDS", "900"))
# How long an MQTT publish waits for its PUBACK (and a connect for its CONNACK) before it counts as failed.
REALTIME_PUBLISH_TIMEOUT_SECONDS = float(os.environ.get("REALTIME_PUBLISH_TIMEOUT_SECONDS", "5"))
# How often a browser polls the REST API when realtime is off (`log`), and while its live connection is down.
_poll_seconds = os.environ.get("REALTIME_POLL_SECONDS", "5").strip()
if not _poll_seconds.isdigit() or not 1 <= int(_poll_seconds) <= 3600:
    raise ImproperlyConfigured(
        f"REALTIME_POLL_SECONDS must be a whole number of seconds, 1 to 3600, not {_poll_seconds!r}."
    )
REALTIME_POLL_SECONDS = int(_poll_seconds)

# ------------------------------------------------------------------------------
# Encryption of stored secrets (project.encryption)
# ------------------------------------------------------------------------------
# Comma-separated Fernet keys, newest first: the first encrypts, all decrypt (rotation
# with MultiFernet). Production refuses to start without one; only debug derives a key.
CUE_FIELD_KEYS = env_list("CUE_FIELD_KEY")
if not CUE_FIELD_KEYS:
    if not DEBUG:
        raise ImproperlyConfigured(
            "CUE_FIELD_KEY is not set. Set it to a Fernet key "
            "(python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'), "
            "or set DJANGO_DEBUG=1 for local development."
        )
    _derived = hashlib.sha256(f"cue-field-key:{SECRET_KEY}".encode()).digest()
    CUE_FIELD_KEYS = [base64.urlsafe_b64encode(_derived).decode()]

# ------------------------------------------------------------------------------
# Intercom (apps.integrations)
# ------------------------------------------------------------------------------
# Cue's public Intercom app: OAuth installs, and the secret that signs its webhooks and Canvas Kit requests.
INTERCOM_CLIENT_ID = os.environ.get("INTERCOM_CLIENT_ID", "")
INTERCOM_CLIENT_SECRET = os.environ.get("INTERCOM_CLIENT_SECRET", "")
INTERCOM_OAUTH_AUTHORIZE_URL = os.environ.get("INTERCOM_OAUTH_AUTHORIZE_URL", "https://app.intercom.com/oauth")
INTERCOM_OAUTH_TOKEN_URL = os.environ.get("INTERCOM_OAUTH_TOKEN_URL", "https://api.intercom.io/auth/eagle/token")
# Where the browser lands after the OAuth callback (?intercom=connected or ?intercom=error&reason=...).
INTERCOM_OAUTH_RETURN_URL = os.environ.get("INTERCOM_OAUTH_RETURN_URL", "/console/")
# Each region's REST API host: a workspace's data lives in one region and its token works only there.
INTERCOM_API_HOSTS = {
    "us": os.environ.get("INTERCOM_API_HOST_US", "https://api.intercom.io"),
    "eu": os.environ.get("INTERCOM_API_HOST_EU", "https://api.eu.intercom.io"),
    "au": os.environ.get("INTERCOM_API_HOST_AU", "https://api.au.intercom.io"),
}
# The REST API version pinned on new connections (sent as Intercom-Version).
INTERCOM_API_VERSION = os.environ.get("INTERCOM_API_VERSION", "2.11")
INTERCOM_HTTP_CONNECT_TIMEOUT_SECONDS = float(os.environ.get("INTERCOM_HTTP_CONNECT_TIMEOUT_SECONDS", "3"))
INTERCOM_HTTP_READ_TIMEOUT_SECONDS = float(os.environ.get("INTERCOM_HTTP_READ_TIMEOUT_SECONDS", "10"))
INTERCOM_HTTP_MAX_RETRIES = int(os.environ.get("INTERCOM_HTTP_MAX_RETRIES", "3"))
# A Retry-After longer than this is not slept through in the invocation: the task backs off instead.
INTERCOM_HTTP_MAX_RETRY_WAIT_SECONDS = float(os.environ.get("INTERCOM_HTTP_MAX_RETRY_WAIT_SECONDS", "20"))
# Webhook and Canvas Kit bodies over this are refused (413) before they are verified or stored.
INTERCOM_WEBHOOK_MAX_BYTES = int(os.environ.get("INTERCOM_WEBHOOK_MAX_BYTES", str(1024 * 1024)))

# ------------------------------------------------------------------------------
# Knowledge base (apps.knowledge)
# ------------------------------------------------------------------------------
# Rows one upload to POST /api/knowledge/import may carry (a Lambda request has 30 s);
# larger files go through `manage.py import_knowledge`.
CUE_KNOWLEDGE_IMPORT_MAX_ROWS = int(os.environ.get("CUE_KNOWLEDGE_IMPORT_MAX_ROWS", "5000"))
# Intercom sync and history import (apps.knowledge.sync): items per page task, the most days of history
# one import may read, how many conversations a reply must recur in to become a proposed entry, and pacing:
# with fewer than CUE_SYNC_RATE_FLOOR calls left in Intercom's window the next call waits for its reset
# (in the invocation when the wait is short, else the run parks and the intercom_sync job resumes it).
CUE_SYNC_ARTICLES_PER_PAGE = int(os.environ.get("CUE_SYNC_ARTICLES_PER_PAGE", "50"))
CUE_SYNC_CONVERSATIONS_PER_PAGE = int(os.environ.get("CUE_SYNC_CONVERSATIONS_PER_PAGE", "20"))
CUE_SYNC_HISTORY_MAX_DAYS = int(os.environ.get("CUE_SYNC_HISTORY_MAX_DAYS", "365"))
CUE_SYNC_PROPOSAL_MIN_CONVERSATIONS = int(os.environ.get("CUE_SYNC_PROPOSAL_MIN_CONVERSATIONS", "3"))
CUE_SYNC_RATE_FLOOR = int(os.environ.get("CUE_SYNC_RATE_FLOOR", "20"))
CUE_SYNC_MAX_INLINE_WAIT_SECONDS = float(os.environ.get("CUE_SYNC_MAX_INLINE_WAIT_SECONDS", "10"))
# A task stops taking items with less than this left in its invocation and hands the rest to the next task.
CUE_SYNC_TASK_RESERVE_SECONDS = float(os.environ.get("CUE_SYNC_TASK_RESERVE_SECONDS", "12"))

# ------------------------------------------------------------------------------
# Email
# ------------------------------------------------------------------------------
EMAIL_BACKEND = os.environ.get("DJANGO_EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = os.environ.get("DJANGO_DEFAULT_FROM_EMAIL", "Cue <no-reply@cue.invalid>")

# ------------------------------------------------------------------------------
# Logging: one JSON object per line, carrying the request (correlation) id
# ------------------------------------------------------------------------------
DJANGO_GUID = {
    "GUID_HEADER_NAME": "X-Request-ID",
    "VALIDATE_GUID": False,
    "RETURN_HEADER": True,
    "EXPOSE_HEADER": True,
}
LOG_LEVEL = os.environ.get("LOG_LEVEL", "INFO").upper()
# Wire-level loggers that print every AWS request with its headers (X-Amz-Security-Token) and every response
# body (a remote_env file, STS credentials) at DEBUG: held at WARNING whatever LOG_LEVEL says.
QUIET_LOGGERS = ("botocore", "boto3", "s3transfer", "urllib3")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "correlation_id": {"()": "django_guid.log_filters.CorrelationId"},
        # No secret in any line, at any level: see project/redaction.py.
        "redact_secrets": {"()": "project.redaction.RedactSecretsFilter"},
    },
    "formatters": {
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s %(correlation_id)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "correlation_id": "request_id"},
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json",
            "filters": ["redact_secrets", "correlation_id"],
        },
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django": {"handlers": ["console"], "level": LOG_LEVEL, "propagate": False},
        "django_guid": {"handlers": ["console"], "level": "WARNING", "propagate": False},
        **{name: {"level": "WARNING"} for name in QUIET_LOGGERS},
    },
}
