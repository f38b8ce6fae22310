"""Who owns an Intercom app is what Intercom says (GET /me with the token), on every install, once for old connections.

Intercom's REST API is the stand-in on 127.0.0.1 (pytest-httpserver). Each refusal stores nothing and
sends no task; a proven app is taken over from whichever workspace held it, and both sides see why.
"""

import json
import socket
from io import StringIO
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.db import IntegrityError, transaction
from django.db import connection as db_connection
from django.utils import timezone

from apps.conversations.models import Conversation
from apps.integrations import services
from apps.integrations.models import (
    ConnectionMethod,
    DeliveryStatus,
    IntercomConnection,
    OutboundReply,
    ReplyStatus,
    WebhookDelivery,
)
from apps.tasks.models import TaskRun
from tests.integrations.conftest import OWN_SECRET, TOKEN, me_body
from tests.integrations.intercom_payloads import APP_ID, body_signature
from tests.integrations.intercom_payloads import Conversation as Thread
from tests.support.events import scheduled_event

pytestmark = pytest.mark.django_db

URL = "/api/integrations/intercom"
VICTIM_APP = "victimapp"
PUT = {"access_token": TOKEN, "client_secret": OWN_SECRET, "region": "us"}


def assert_refused(response, status: int, code: str):
    assert response.status_code == status, response.content
    error = response.json()["error"]
    assert error["code"] == code, error
    assert not IntercomConnection.objects.exists(), "nothing is stored"
    assert not TaskRun.objects.exists(), "no task is sent"
    return error


def disable(conn: IntercomConnection, reason: str, code: str = "app_claimed") -> None:
    """The state the takeover or the verification leaves: kept, with a reason, routing nothing."""
    IntercomConnection.objects.filter(pk=conn.pk).update(
        disabled_at=timezone.now(), disabled_code=code, disabled_reason=reason
    )


def me_paths(intercom_api) -> list[str]:
    return [request.path for request, _ in intercom_api.log if request.path.endswith("/me")]


# ------------------------------------------------------------------------------
# A pasted token: Intercom says which app it belongs to
# ------------------------------------------------------------------------------
def test_a_hint_that_matches_connects_the_app_intercom_names(owner_client, owner, serve_me, intercom_api):
    serve_me("ownapp01", token=TOKEN, admin_id="4242")
    response = owner_client.put(URL, PUT | {"app_id": "ownapp01"}, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["app_id"], body["status"], body["token_admin_id"]) == ("ownapp01", "active", "4242")
    assert body["verified_at"] is not None and body["took_over_at"] is None
    conn = IntercomConnection.objects.get()
    assert (conn.workspace_id, conn.method, conn.token_admin_id) == (owner.workspace_id, ConnectionMethod.TOKEN, "4242")
    [(me, _)] = intercom_api.log
    assert me.headers["Authorization"] == f"Bearer {TOKEN}"
    # The teammates' sync, and (a first install) the Help Center sync.
    assert sorted(TaskRun.objects.values_list("name", flat=True)) == [
        "apps.integrations.tasks.sync_admins",
        "apps.knowledge.tasks.sync_help_center",
    ]


def test_the_hint_left_out_connects_the_app_intercom_names(owner_client, serve_me):
    serve_me("ownapp01", region="eu")
    response = owner_client.put(URL, PUT | {"region": "eu"}, format="json")
    assert response.status_code == 201, response.content
    assert (response.json()["app_id"], response.json()["region"]) == ("ownapp01", "eu")


def test_a_hint_naming_another_app_is_400_naming_both(owner_client, serve_me):
    serve_me("ownapp01")
    error = assert_refused(owner_client.put(URL, PUT | {"app_id": VICTIM_APP}, format="json"), 400, "app_mismatch")
    assert "ownapp01" in error["message"] and VICTIM_APP in error["message"]
    assert "app_id" in error["fields"]


def test_a_mismatch_leaves_the_workspaces_connection_as_it_was(owner_client, owner, connect, serve_me):
    before = connect(owner, app_id="ownapp01")
    serve_me("ownapp02")
    response = owner_client.put(URL, PUT | {"app_id": "ownapp09"}, format="json")
    assert response.status_code == 400
    after = IntercomConnection.objects.get()
    assert (after.pk, after.app_id, after.updated_at) == (before.pk, "ownapp01", before.updated_at)
    assert not TaskRun.objects.exists()


@pytest.mark.parametrize("status", [401, 403])
def test_a_token_intercom_refuses_is_400(owner_client, serve_me, status):
    serve_me(status=status)
    error = assert_refused(owner_client.put(URL, PUT | {"app_id": "ownapp01"}, format="json"), 400, "token_invalid")
    assert "access_token" in error["fields"]


def test_intercom_failing_is_502_after_one_retry(owner_client, serve_me, intercom_api):
    serve_me(status=500)
    assert_refused(owner_client.put(URL, PUT, format="json"), 502, "intercom_error")
    assert me_paths(intercom_api) == ["/me", "/me"], "one retry, no more, in the request path"


def test_intercom_answering_without_an_app_is_502(owner_client, intercom_api):
    intercom_api.expect_request("/me").respond_with_json({"type": "admin", "id": "1", "app": None})
    assert_refused(owner_client.put(URL, PUT, format="json"), 502, "intercom_error")


def test_intercom_unreachable_is_503(owner_client, settings):
    with socket.socket() as sock:  # a port nothing listens on: the connection is refused
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings.INTERCOM_API_HOSTS = {
        "us": f"http://127.0.0.1:{port}",
        "eu": "http://127.0.0.1:9",
        "au": "http://127.0.0.1:9",
    }
    assert_refused(owner_client.put(URL, PUT, format="json"), 503, "intercom_unavailable")


def test_intercom_too_slow_is_503(owner_client, intercom_api):
    """The read timeout (0.3 s in these tests) cuts the wait; the answer is a clear 503, not a 500."""

    def slow(request):
        import time

        from werkzeug import Response

        time.sleep(0.5)
        return Response(json.dumps(me_body("ownapp01")), content_type="application/json")

    intercom_api.expect_request("/me").respond_with_handler(slow)
    assert_refused(owner_client.put(URL, PUT, format="json"), 503, "intercom_unavailable")


def test_rate_limited_is_503(owner_client, intercom_api):
    intercom_api.expect_request("/me").respond_with_json(
        {"type": "error.list"}, status=429, headers={"Retry-After": "30"}
    )
    assert_refused(owner_client.put(URL, PUT, format="json"), 503, "intercom_unavailable")
    assert len(intercom_api.log) == 1, "a wait of 30 s is not waited for in a request"


# ------------------------------------------------------------------------------
# Takeover: proving an app connected elsewhere takes it over; both sides see why
# ------------------------------------------------------------------------------
def test_takeover_by_token(owner_client, owner, make_workspace, client_for, connect, serve_me):
    squatter = make_workspace("Squatter")
    held = connect(squatter, app_id=VICTIM_APP, method=ConnectionMethod.TOKEN, client_secret="squatter-secret")
    serve_me(VICTIM_APP, token=TOKEN)

    response = owner_client.put(URL, PUT | {"app_id": VICTIM_APP}, format="json")
    assert response.status_code == 201, response.content
    mine = response.json()
    assert (mine["status"], mine["app_id"]) == ("active", VICTIM_APP)
    assert mine["took_over_at"] is not None

    held.refresh_from_db()
    assert not held.is_active
    theirs = client_for(squatter).get(URL).json()
    assert (theirs["connected"], theirs["status"], theirs["disabled_code"]) == (False, "disabled", "app_claimed")
    assert VICTIM_APP in theirs["disabled_reason"]
    assert "proved" in theirs["disabled_reason"]
    assert held.disabled_at.strftime("%Y-%m-%d %H:%M") in theirs["disabled_reason"], "says when"
    assert owner.workspace.name not in theirs["disabled_reason"], "never who"
    assert owner_client.get(URL).json()["took_over_at"] == mine["took_over_at"]
    assert IntercomConnection.objects.filter(app_id=VICTIM_APP, disabled_at=None).get().workspace_id == (
        owner.workspace_id
    )
    synced = sorted(TaskRun.objects.values_list("workspace_id", "name"))
    assert synced == [
        (owner.workspace_id, "apps.integrations.tasks.sync_admins"),
        (owner.workspace_id, "apps.knowledge.tasks.sync_help_center"),
    ], "only the new owner syncs"


def test_takeover_by_oauth(owner_client, owner, api_client, make_workspace, client_for, connect, intercom_api):
    squatter = make_workspace("Squatter")
    connect(squatter, app_id=VICTIM_APP, method=ConnectionMethod.TOKEN, client_secret="squatter-secret")
    intercom_api.expect_request("/auth/eagle/token", method="POST").respond_with_json({"access_token": "victim-oauth"})
    intercom_api.expect_request("/me", headers={"Authorization": "Bearer victim-oauth"}).respond_with_json(
        me_body(VICTIM_APP, admin_id="777")
    )
    start = owner_client.get(f"{URL}/oauth/start").json()["authorize_url"]
    state = parse_qs(urlsplit(start).query)["state"][0]
    response = api_client.get(f"{URL}/oauth/callback", {"code": "c", "state": state})
    assert "intercom=connected" in response["Location"]

    mine = owner_client.get(URL).json()
    assert (mine["status"], mine["method"], mine["token_admin_id"]) == ("active", "oauth", "777")
    assert mine["took_over_at"] is not None
    theirs = client_for(squatter).get(URL).json()
    assert (theirs["status"], theirs["disabled_code"]) == ("disabled", "app_claimed")


def test_the_previous_holder_can_prove_it_again_and_take_it_back(owner, make_workspace, client_for, connect, serve_me):
    other = make_workspace("Other")
    serve_me(VICTIM_APP)
    assert client_for(other).put(URL, PUT, format="json").status_code == 201
    assert client_for(owner).put(URL, PUT, format="json").status_code == 201
    back = client_for(other).put(URL, PUT, format="json")
    assert back.status_code == 200, back.content
    assert (back.json()["status"], back.json()["disabled_reason"]) == ("active", None)
    assert client_for(owner).get(URL).json()["status"] == "disabled"
    assert IntercomConnection.objects.filter(disabled_at=None).count() == 1


def test_the_database_allows_one_active_connection_per_app(owner, make_workspace, connect):
    connect(owner, app_id=VICTIM_APP)
    with pytest.raises(IntegrityError), transaction.atomic():
        connect(make_workspace("Second"), app_id=VICTIM_APP)
    IntercomConnection.objects.update(disabled_at=timezone.now())
    connect(make_workspace("Third"), app_id=VICTIM_APP)  # a disabled one does not count
    assert IntercomConnection.objects.filter(app_id=VICTIM_APP).count() == 2


# ------------------------------------------------------------------------------
# A disabled connection routes nothing and calls nothing
# ------------------------------------------------------------------------------
@pytest.fixture
def disabled(owner, connect):
    conn = connect(owner, app_id=APP_ID, method=ConnectionMethod.TOKEN, client_secret=OWN_SECRET)
    disable(conn, "Intercom refused the token.", code="token_refused")
    return conn


def test_a_disabled_connection_receives_no_webhook(disabled, post_webhook):
    thread = Thread(2)
    app_signed = post_webhook(thread.user_created())
    assert (app_signed.status_code, app_signed.json()) == (202, {"status": "unknown_app"})
    own_signed = post_webhook(thread.user_replied(), secret=OWN_SECRET)
    assert own_signed.status_code == 401
    assert not WebhookDelivery.objects.exists()
    assert not TaskRun.objects.exists()


def test_a_disabled_connection_gets_no_inbox_app(disabled, client):
    body = json.dumps({"workspace_id": APP_ID, "conversation": {"id": "123"}}).encode()
    response = client.post(
        "/intercom/canvas/initialize",
        data=body,
        content_type="application/json",
        HTTP_X_BODY_SIGNATURE=body_signature(OWN_SECRET, body),
    )
    assert response.status_code == 401, "its own secret no longer speaks for the app"
    from tests.integrations.intercom_payloads import APP_SECRET

    signed_by_app = client.post(
        "/intercom/canvas/initialize",
        data=body,
        content_type="application/json",
        HTTP_X_BODY_SIGNATURE=body_signature(APP_SECRET, body),
    )
    assert "not connected" in signed_by_app.content.decode()


def test_a_disabled_connection_sends_no_reply(owner, connect, intercom_api):
    conn = connect(owner)
    conversation = Conversation.objects.create(workspace=owner.workspace, intercom_id="123")
    reply = services.reply_request(workspace=owner.workspace, conversation=conversation, body="Hello")
    disable(conn, "Claimed by another workspace.")
    with pytest.raises(services.ReplyNotSendable, match="disabled before sending"):  # the send_reply task: rejected
        services.reply_send(reply_id=reply.id)
    reply.refresh_from_db()
    assert reply.status == ReplyStatus.FAILED
    assert "Claimed by another workspace." in reply.error
    assert intercom_api.log == [], "Intercom is not called with a disabled connection's token"
    with pytest.raises(ValidationError, match="disabled"):
        services.reply_request(workspace=owner.workspace, conversation=conversation, body="Again")
    assert OutboundReply.objects.count() == 1


def test_a_delivery_stored_before_the_disabling_is_not_mirrored(owner, connect):
    conn = connect(owner)
    body = json.dumps(Thread(2).user_created())
    delivery = WebhookDelivery.objects.create(
        workspace=owner.workspace,
        notification_id="n1",
        topic="conversation.user.created",
        body=body,
        received_at=conn.connected_at,
    )
    disable(conn, "Claimed.")
    assert services.delivery_process(delivery_id=delivery.id) == {"skipped": "connection_disabled"}
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.SKIPPED
    assert not Conversation.objects.exists()


# ------------------------------------------------------------------------------
# Connections stored before the rule: verified once, disabled when the token proves nothing
# ------------------------------------------------------------------------------
def verify(*args) -> dict:
    out = StringIO()
    call_command("verify_intercom_connections", *args, stdout=out)
    return json.loads(out.getvalue())


@pytest.fixture
def legacy(make_workspace, connect, serve_me):
    """Four connections stored before ownership was proven, each with its own token, and what Intercom says of each."""
    rows = {}
    for name, answer in {
        "proven": {"app_id": "provenapp"},
        "revoked": {"status": 401},
        "squatter": {"app_id": "squattersown"},
        "flaky": {"status": 503},
    }.items():
        conn = connect(make_workspace(name), app_id=f"{name}app", token_admin_id="")
        IntercomConnection.objects.filter(pk=conn.pk).update(access_token=f"token-of-{name}")
        conn.refresh_from_db()
        answer.setdefault("app_id", "")
        serve_me(token=f"token-of-{name}", admin_id="55", **answer)
        rows[name] = conn
    return rows


def test_the_command_verifies_and_disables_what_no_longer_proves_its_app(legacy, intercom_api, client_for):
    assert all(c.verified_at is None for c in legacy.values())
    counts = verify()
    assert counts == {"verified": 1, "disabled": 2, "deferred": 1, "skipped": 0, "left": 0}
    for conn in legacy.values():
        conn.refresh_from_db()

    assert legacy["proven"].is_active and legacy["proven"].verified_at is not None
    assert legacy["proven"].token_admin_id == "55", "the token's admin recorded, as an install does"

    assert (legacy["revoked"].is_active, legacy["revoked"].disabled_code) == (False, "token_refused")
    assert "401" in legacy["revoked"].disabled_reason
    assert (legacy["squatter"].is_active, legacy["squatter"].disabled_code) == (False, "app_mismatch")
    reason = client_for(legacy["squatter"].connected_by).get(URL).json()["disabled_reason"]
    assert "squatterapp" in reason and "squattersown" in reason

    assert legacy["flaky"].is_active and legacy["flaky"].verified_at is None, "a passing error disables nothing"
    assert len(intercom_api.log) == 4, "one call each, no retry inside the job"

    again = verify()
    assert again == {"verified": 0, "disabled": 0, "deferred": 1, "skipped": 0, "left": 0}, "only the flaky one"
    assert len(intercom_api.log) == 5


def test_verification_does_not_disable_a_connection_reconnected_meanwhile(owner, connect, intercom_api, monkeypatch):
    """The owner reconnects while Intercom is being asked about the old token: the old answer changes nothing."""
    conn = connect(owner, app_id="oldapp")
    real_ask = services.token_owner_ask

    def ask_while_reconnecting(**kwargs):
        IntercomConnection.objects.filter(pk=conn.pk).update(access_token="a-new-token", app_id="newapp")
        return real_ask(**kwargs)

    intercom_api.expect_request("/me").respond_with_json({"type": "error.list"}, status=401)
    monkeypatch.setattr(services, "token_owner_ask", ask_while_reconnecting)
    assert services.connection_verify(connection_id=conn.pk) == "skipped"
    conn.refresh_from_db()
    assert conn.is_active


def test_a_stored_token_that_cannot_even_be_sent_is_disabled(owner, connect, intercom_api):
    """A token stored before tokens were checked, with a character no HTTP header carries: it proves nothing."""
    conn = connect(owner, app_id="oldapp")
    IntercomConnection.objects.filter(pk=conn.pk).update(access_token="tok\u0100en")
    assert verify() == {"verified": 0, "disabled": 1, "deferred": 0, "skipped": 0, "left": 0}
    conn.refresh_from_db()
    assert conn.disabled_code == "token_refused"
    assert intercom_api.log == []


def test_all_reverifies_connections_already_verified(owner_client, serve_me, intercom_api):
    serve_me("ownapp01")
    owner_client.put(URL, PUT, format="json")
    assert verify()["verified"] == 0, "verified by its install"
    assert verify("--all")["verified"] == 1
    assert len(me_paths(intercom_api)) == 2


def test_the_job_through_the_handler(lambda_handler, make_workspace, connect, serve_me):
    """apps.integrations.jobs.verify_connections, fired by EventBridge, disables a squatter's legacy connection."""
    squatter = connect(make_workspace("Squatter"), app_id=VICTIM_APP)
    serve_me("squattersown")
    rule = f"{lambda_handler.function_name}-apps.integrations.jobs.verify_connections"
    result = lambda_handler(scheduled_event(rule))
    assert result["disabled"] == 1, result
    squatter.refresh_from_db()
    assert squatter.disabled_code == "app_mismatch"
    assert lambda_handler(scheduled_event(rule))["disabled"] == 0, "once"


def test_migration_left_old_rows_unverified_and_the_old_unique_index_gone():
    """The partial constraint replaced the column's unique index (a disabled row no longer blocks a new owner)."""
    with db_connection.cursor() as cursor:
        constraints = db_connection.introspection.get_constraints(cursor, IntercomConnection._meta.db_table)
    unique_on_app = [name for name, c in constraints.items() if c["columns"] == ["app_id"] and c["unique"]]
    assert unique_on_app == ["integrations_conn_active_app_uniq"]
