"""No log line, at any level, holds a secret: everything logged at DEBUG through a webhook, its tasks, an Intercom
call, a login and a remote_env read is captured from Cue's own log handler and searched for each planted secret."""

import copy
import io
import logging
import logging.config
import uuid
from contextlib import contextmanager

import pytest
from django.conf import settings

from apps.accounts.models import Membership
from apps.integrations.client import IntercomClient
from apps.integrations.models import ConnectionMethod, IntercomConnection
from project.redaction import REDACTED, RedactSecretsFilter
from project.remote_env import load_remote_settings
from tests.integrations.intercom_payloads import APP_ID, APP_SECRET, Conversation, encode, hub_signature
from tests.support.events import apigw_v1, response_json


def _planted() -> dict[str, str]:
    tag = uuid.uuid4().hex
    return {
        "aws secret key": f"AwsSecretPlanted/{tag}+k",
        "aws session token": f"IQoJb3JpZ2luX2VjPlantedSessionToken{tag}//////////wEaCXVzLWVhc3QtMSJH",
        "remote_env value": f"remote-env-planted-{tag}",
        "password": f"Pl4nted-Pass-{tag[:12]}",
        "intercom token": f"dG9rOnBsYW50ZWQ{tag}=",
    }


@contextmanager
def all_logs_at_debug(*, wire: bool = False):
    """Cue's logging configuration (settings.LOGGING) with every level at DEBUG, its handler writing to a buffer.

    With wire, botocore's and urllib3's loggers are opened to DEBUG too, past what LOGGING holds them at,
    to prove the filter by itself keeps their lines clean.
    """
    config = copy.deepcopy(settings.LOGGING)
    config["root"]["level"] = "DEBUG"
    for logger in config["loggers"].values():
        if wire or logger.get("level") != "WARNING" or "handlers" in logger:
            logger["level"] = "DEBUG"
    logging.config.dictConfig(config)
    # Zappa sets its handler's logger from the stage (INFO); at DEBUG it logs every raw event.
    logging.getLogger("zappa").setLevel(logging.DEBUG)
    logging.getLogger("zappa.handler").setLevel(logging.DEBUG)
    buffer = io.StringIO()
    handlers = {h for name in (None, "django") for h in logging.getLogger(name).handlers}
    assert handlers
    for handler in handlers:
        handler.setStream(buffer)
    try:
        yield buffer
    finally:
        logging.config.dictConfig(settings.LOGGING)
        logging.getLogger("zappa.handler").setLevel(logging.INFO)


@pytest.fixture
def planted(monkeypatch, moto_server, httpserver):
    values = _planted()
    # The function's role credentials, as the Lambda runtime sets them (moto takes any).
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", values["aws secret key"])
    monkeypatch.setenv("AWS_SESSION_TOKEN", values["aws session token"])
    monkeypatch.setattr(settings, "INTERCOM_CLIENT_SECRET", APP_SECRET)
    base = httpserver.url_for("").rstrip("/")
    monkeypatch.setattr(settings, "INTERCOM_API_HOSTS", {"us": base, "eu": base, "au": base})
    httpserver.expect_request("/me").respond_with_json({"type": "admin", "id": "1", "app": {"id_code": APP_ID}})
    return values


def _webhook(payload) -> dict:
    body = encode(payload)
    headers = {"Content-Type": "application/json", "X-Hub-Signature": hub_signature(APP_SECRET, body)}
    return apigw_v1("POST", "/webhooks/intercom", headers=headers, body=body.decode())


def _assert_clean(text: str, planted: dict[str, str]) -> None:
    leaked = [what for what, value in planted.items() if value in text]
    assert not leaked, f"{leaked} in the logs"


def test_nothing_secret_is_logged_through_webhook_tasks_intercom_login_and_remote_env(
    sns, lambda_handler, moto_server, planted
):
    # A cold start first (it configures logging afresh), then everything else captured at DEBUG.
    assert lambda_handler(apigw_v1("GET", "/healthz"))["statusCode"] == 200
    remote_env = "s3://cue-config-dev/secrets-test.json"
    moto_server.put_remote_env(remote_env, {"CUE_PLANTED_SECRET": planted["remote_env value"]})
    with all_logs_at_debug() as logs:
        # A remote_env read (moto S3, signed with the planted credentials).
        load_remote_settings(None, "cue-config-dev", "secrets-test.json")
        # Sign-up and login: the password travels in the events' bodies.
        signup = {"email": "logs@example.com", "password": planted["password"], "workspace_name": "Logs Co"}
        assert lambda_handler(apigw_v1("POST", "/api/auth/signup", body=signup))["statusCode"] == 201
        login = {"email": "logs@example.com", "password": planted["password"]}
        tokens = response_json(lambda_handler(apigw_v1("POST", "/api/auth/token", body=login)))
        # An Intercom connection (its token encrypted at rest), a call to Intercom's API with it.
        membership = Membership.objects.get(user__email="logs@example.com")
        connection = IntercomConnection.objects.create(
            workspace=membership.workspace,
            app_id=APP_ID,
            region="us",
            api_version="2.11",
            method=ConnectionMethod.OAUTH,
            access_token=planted["intercom token"],
            connected_by=membership,
        )
        connection = IntercomConnection.objects.get(pk=connection.pk)
        assert IntercomClient.for_connection(connection).me()["app"]["id_code"] == APP_ID
        # A signed webhook, and the tasks it starts delivered back through the handler.
        conversation = Conversation(2)
        assert lambda_handler(_webhook(conversation.user_created()))["statusCode"] == 200
        delivered = sns.run_all()
        logging.getLogger("cue.test").debug(
            "an Authorization header %s", {"Authorization": f"Bearer {tokens['access']}"}
        )
    text = logs.getvalue()
    # The capture saw it all: DEBUG lines, the raw events Zappa logs, the tasks, the request to Intercom.
    assert '"level": "DEBUG"' in text and "Zappa Event" in text
    assert "process_delivery" in text and len(delivered) >= 2
    assert "/me" in text
    _assert_clean(text, planted)
    assert tokens["access"] not in text and tokens["refresh"] not in text
    assert REDACTED in text
    # botocore's wire logs (each request's headers, each response's body) stay quiet at DEBUG.
    assert "botocore" not in text and "CanonicalRequest" not in text


def test_the_filter_alone_keeps_botocores_wire_logs_clean(moto_server, planted):
    """Even with botocore's and urllib3's DEBUG opened (past LOGGING), the session token and the values are gone."""
    import boto3

    moto_server.put_remote_env("s3://cue-config-dev/wire.json", {"CUE_PLANTED_SECRET": planted["remote_env value"]})
    with all_logs_at_debug(wire=True) as logs:
        load_remote_settings(None, "cue-config-dev", "wire.json")
        s3 = boto3.client("s3", region_name="us-east-1", endpoint_url=moto_server.url)
        s3.get_object(Bucket="cue-config-dev", Key="wire.json")["Body"].read()
        logging.getLogger("cue.test").info("posted %s", {"email": "a@example.com", "password": planted["password"]})
    text = logs.getvalue()
    assert "CanonicalRequest" in text and "x-amz-security-token" in text.lower(), "the wire logs were not captured"
    _assert_clean(text, planted)


def test_every_handler_cue_configures_redacts():
    """The filter sits on the console handler that the root and django loggers write through."""
    config = settings.LOGGING
    assert config["filters"]["redact_secrets"]["()"] == "project.redaction.RedactSecretsFilter"
    for name in config["handlers"]:
        assert "redact_secrets" in config["handlers"][name]["filters"], name
    for name in settings.QUIET_LOGGERS:
        assert config["loggers"][name]["level"] == "WARNING"
    handlers = {h for name in (None, "django") for h in logging.getLogger(name).handlers}
    assert all(any(isinstance(f, RedactSecretsFilter) for f in h.filters) for h in handlers if h.name == "console")


def test_extras_and_tracebacks_are_redacted_too(planted):
    """A secret in an `extra=` field or in an exception's message leaves as [REDACTED] as well."""
    from project.redaction import secret_values_add

    secret_values_add(planted["intercom token"])
    with all_logs_at_debug() as logs:
        try:
            raise ValueError(f"Intercom refused token {planted['intercom token']}")
        except ValueError:
            logging.getLogger("apps.test").exception(
                "call failed", extra={"headers": {"X-Amz-Security-Token": planted["aws session token"]}}
            )
    text = logs.getvalue()
    assert "Intercom refused token [REDACTED]" in text and "Traceback" in text
    _assert_clean(text, planted)
