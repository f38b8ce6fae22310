"""Fixtures for the Intercom integration: connected workspaces, signed posts, and Intercom's API on 127.0.0.1."""

import pytest
import requests

from apps.integrations.models import ConnectionMethod, IntercomConnection
from tests.integrations.intercom_payloads import APP_ID, APP_SECRET, encode, hub_signature

TOKEN = "dG9rOmZha2UtYWNjZXNzLXRva2VuLWZvci10ZXN0cw=="
OWN_SECRET = "the-workspace-own-app-client-secret"


@pytest.fixture(autouse=True)
def intercom_settings(settings):
    """Cue's public Intercom app, as the stage's environment would configure it."""
    settings.INTERCOM_CLIENT_ID = "cue-client-id"
    settings.INTERCOM_CLIENT_SECRET = APP_SECRET
    return settings


@pytest.fixture
def connect(db):
    """Connect a workspace to an Intercom workspace (stored as the services would store it)."""

    def make(membership, *, app_id=APP_ID, method=ConnectionMethod.OAUTH, client_secret="", region="us", **extra):
        return IntercomConnection.objects.create(
            workspace=membership.workspace,
            app_id=app_id,
            region=region,
            api_version="2.11",
            method=method,
            access_token=TOKEN,
            client_secret=client_secret,
            token_admin_id=extra.pop("token_admin_id", "1957471"),
            connected_by=membership,
            **extra,
        )

    return make


@pytest.fixture
def connection(owner, connect) -> IntercomConnection:
    return connect(owner)


@pytest.fixture
def post_webhook(client):
    """POST a payload (dict or raw bytes) to the webhook endpoint, signed with a secret (Cue's app's by default)."""

    def post(payload, *, secret=APP_SECRET, signature=None, headers=None):
        body = payload if isinstance(payload, bytes) else encode(payload)
        if signature is None:
            signature = hub_signature(secret, body)
        extra = {} if signature is False else {"HTTP_X_HUB_SIGNATURE": signature}
        return client.post("/webhooks/intercom", data=body, content_type="application/json", **extra, **(headers or {}))

    return post


@pytest.fixture
def intercom_api(httpserver, settings):
    """Intercom's REST API: a real HTTP server on 127.0.0.1 for every region, and short timeouts."""
    base = httpserver.url_for("").rstrip("/")
    settings.INTERCOM_API_HOSTS = {"us": base, "eu": base + "/eu", "au": base + "/au"}
    settings.INTERCOM_OAUTH_TOKEN_URL = base + "/auth/eagle/token"
    settings.INTERCOM_HTTP_READ_TIMEOUT_SECONDS = 0.3
    settings.INTERCOM_HTTP_CONNECT_TIMEOUT_SECONDS = 0.5
    yield httpserver
    # The server answers one request at a time: this one returns only after any slow handler a
    # timed-out client left behind, so its log entry cannot leak into the next test's log.
    requests.get(httpserver.url_for("/__drain__"), timeout=5)


def me_body(app_id: str, *, admin_id: str = "991") -> dict:
    """Intercom's GET /me: the admin a token belongs to, and the app (Intercom workspace) in `app.id_code`."""
    return {
        "type": "admin",
        "id": admin_id,
        "name": "Olive Owner",
        "email": "olive@example.com",
        "app": {"type": "app", "id_code": app_id, "name": f"Company {app_id}", "region": "US"},
    }


@pytest.fixture
def serve_me(intercom_api):
    """Intercom's GET /me on a region's host: whose token it is (matched on the token when given), or a refusal."""

    def serve(app_id: str = "", *, region: str = "us", token: str | None = None, status: int = 200, **me):
        prefix = "" if region == "us" else f"/{region}"
        headers = {"Authorization": f"Bearer {token}"} if token else None
        if status == 200:
            body = me_body(app_id, **me)
        else:
            body = {"type": "error.list", "errors": [{"code": "token_unauthorized", "message": "Not authorized"}]}
        handler = intercom_api.expect_request(f"{prefix}/me", method="GET", headers=headers)
        handler.respond_with_json(body, status=status)
        return intercom_api

    return serve
