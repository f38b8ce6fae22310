"""POST /webhooks/intercom through Django's client: verify, store, dispatch, answer; every bad input stores nothing."""

import json

import pytest

from apps.integrations.models import ConnectionMethod, WebhookDelivery
from apps.tasks.models import TaskRun
from tests.integrations.conftest import OWN_SECRET
from tests.integrations.intercom_payloads import APP_SECRET, Conversation, encode, hub_signature, ping

pytestmark = pytest.mark.django_db

TOPICS = [
    "user_created",
    "user_replied",
    "admin_replied",
    "admin_closed",
    "admin_assigned",
    "admin_noted",
    "admin_opened",
    "admin_snoozed",
]


def assert_nothing_kept():
    assert not WebhookDelivery.objects.exists()
    assert not TaskRun.objects.exists()


def assert_error(response, status: int, code: str):
    assert response.status_code == status, response.content
    assert response.json()["error"]["code"] == code, response.json()


@pytest.mark.parametrize("generation", [1, 2])
@pytest.mark.parametrize("topic", TOPICS)
def test_every_topic_is_stored_and_dispatched(connection, post_webhook, generation, topic):
    """Each subscribed topic, in both payload generations: 200, one delivery stored, one processing task."""
    payload = getattr(Conversation(generation), topic)()
    response = post_webhook(payload)
    assert response.status_code == 200, response.content
    assert response.json() == {"status": "accepted"}
    delivery = WebhookDelivery.objects.get()
    assert delivery.workspace_id == connection.workspace_id
    assert delivery.notification_id == payload["id"]
    assert delivery.topic == payload["topic"]
    assert json.loads(delivery.body) == payload
    [run] = TaskRun.objects.all()
    assert run.name == "apps.integrations.tasks.process_delivery"
    assert run.args == [delivery.id]
    assert run.workspace_id == connection.workspace_id


def test_stored_body_is_the_exact_bytes_signed(connection, post_webhook):
    """The raw body is kept byte for byte (here: indented JSON), so it can be verified again."""
    body = json.dumps(Conversation(2).user_replied(), indent=1).encode()
    assert post_webhook(body).status_code == 200
    assert WebhookDelivery.objects.get().body.encode() == body


def test_redelivery_changes_nothing(connection, post_webhook):
    """Intercom sends the same notification again: answered 200, still one delivery and one task."""
    payload = Conversation(1).user_created()
    first, second = post_webhook(payload), post_webhook(payload)
    assert first.json() == {"status": "accepted"}
    assert second.status_code == 200
    assert second.json() == {"status": "duplicate"}
    assert WebhookDelivery.objects.count() == 1
    assert TaskRun.objects.count() == 1


def test_ping_is_answered_and_not_stored(post_webhook):
    """The ping Intercom sends when the webhook is set up: 200, nothing kept (even before any workspace connects)."""
    response = post_webhook(ping())
    assert response.status_code == 200
    assert response.json() == {"status": "pong"}
    assert_nothing_kept()


@pytest.mark.parametrize(
    ("signature", "code"),
    [
        (False, "signature_missing"),
        ("", "signature_missing"),
        ("sha1=nothex", "signature_missing"),
        ("sha256=" + "a" * 64, "signature_missing"),
        ("sha1=" + "0" * 40, "signature_invalid"),
    ],
)
def test_missing_or_wrong_signature_is_401(connection, post_webhook, signature, code):
    assert_error(post_webhook(Conversation(1).user_created(), signature=signature), 401, code)
    assert_nothing_kept()


def test_signature_with_another_secret_is_401(connection, post_webhook):
    assert_error(post_webhook(Conversation(2).user_created(), secret="not-the-secret"), 401, "signature_invalid")
    assert_nothing_kept()


def test_signature_of_other_bytes_is_401(connection, post_webhook):
    """A signature is of the exact body: one changed byte (here whitespace) and it no longer matches."""
    payload = Conversation(2).user_created()
    signature = hub_signature(APP_SECRET, encode(payload))
    body = json.dumps(payload).encode()  # the same JSON, spaced differently
    assert_error(post_webhook(body, signature=signature), 401, "signature_invalid")
    assert_nothing_kept()


def test_uppercase_hex_signature_is_accepted(connection, post_webhook):
    payload = Conversation(1).user_created()
    signature = hub_signature(APP_SECRET, encode(payload)).upper().replace("SHA1=", "sha1=")
    assert post_webhook(payload, signature=signature).status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        b"not json at all",
        b"\xff\xfe\x00garbage",
        b"[]",
        b'{"type": "something_else"}',
        b'{"type": "notification_event", "app_id": "i6wc9ipe", "data": {"type": "notification_event_data"}}',
        b'{"type": "notification_event", "app_id": "i6wc9ipe", "topic": "conversation.user.created",'
        b' "data": {"item": {"type": "conversation", "id": "1"}}}',
        b'{"type": "notification_event", "app_id": "i6wc9ipe", "topic": "conversation.user.created", "id": "n1",'
        b' "data": {"item": {"type": "conversation"}}}',
        b'{"type": "notification_event", "app_id": "", "topic": "conversation.user.created", "id": "n1",'
        b' "data": {"item": {"type": "conversation", "id": "1"}}}',
        b'{"type": "notification_event", "app_id": "i6wc9ipe", "topic": 7, "id": "n1",'
        b' "data": {"item": {"type": "conversation", "id": "1"}}}',
        b"[" * 100_000,
    ],
)
def test_malformed_signed_body_is_400(connection, post_webhook, body):
    """A correctly signed body that is not a notification: 400, nothing stored, no task."""
    assert_error(post_webhook(body), 400, "invalid_payload")
    assert_nothing_kept()


def test_unknown_app_signed_by_cues_app_is_202_and_kept_nowhere(post_webhook, owner, connect):
    """Signed with Cue's app secret but for an Intercom workspace no Cue workspace holds: 202, nothing stored."""
    connect(owner, app_id="someoneelse")
    response = post_webhook(Conversation(2, app_id="uninstalled1").user_replied())
    assert response.status_code == 202
    assert response.json() == {"status": "unknown_app"}
    assert_nothing_kept()


def test_unknown_app_without_cues_app_secret_is_401(post_webhook, settings):
    """Without Cue's app secret and without a connection naming that app, nothing can verify it: 401."""
    settings.INTERCOM_CLIENT_SECRET = ""
    assert_error(post_webhook(Conversation(2, app_id="nobody1").user_replied()), 401, "signature_invalid")
    assert_nothing_kept()


def test_topics_cue_does_not_mirror_are_acknowledged_and_dropped(connection, post_webhook):
    payload = Conversation(2).user_created()
    payload["topic"] = "contact.user.created"
    response = post_webhook(payload)
    assert response.status_code == 200
    assert response.json() == {"status": "ignored"}
    assert_nothing_kept()


def test_body_over_the_limit_is_413_before_anything(connection, post_webhook, settings):
    settings.INTERCOM_WEBHOOK_MAX_BYTES = 2_000
    payload = Conversation(2).user_replied(body="<p>" + "x" * 3_000 + "</p>")
    assert_error(post_webhook(payload), 413, "too_large")
    assert_nothing_kept()


def test_only_post(client, connection):
    response = client.get("/webhooks/intercom")
    assert_error(response, 405, "method_not_allowed")
    assert response["Allow"] == "POST"


def test_view_queries_before_commit(connection, post_webhook, django_assert_max_num_queries):
    """Find the connection, insert the delivery, record the task (the Lambda-path test counts the transaction's
    BEGIN and COMMIT too: five)."""
    payload = Conversation(2).user_replied()
    with django_assert_max_num_queries(3):
        assert post_webhook(payload).status_code == 200
    with django_assert_max_num_queries(2):
        assert post_webhook(payload).json() == {"status": "duplicate"}


# ------------------------------------------------------------------------------
# A workspace connected with its own Intercom app (pasted token and client secret)
# ------------------------------------------------------------------------------
def test_own_app_secret_verifies_its_own_workspace(owner, connect, post_webhook, settings):
    settings.INTERCOM_CLIENT_SECRET = ""
    conn = connect(owner, app_id="ownapp01", method=ConnectionMethod.TOKEN, client_secret=OWN_SECRET)
    response = post_webhook(Conversation(1, app_id="ownapp01").user_created(), secret=OWN_SECRET)
    assert response.status_code == 200, response.content
    assert WebhookDelivery.objects.get().workspace_id == conn.workspace_id


def test_own_app_secret_cannot_speak_for_another_workspace(make_workspace, connect, post_webhook):
    """Workspace A knows its own secret; a body naming B's app signed with it is refused (tenancy)."""
    a, b = make_workspace("A"), make_workspace("B")
    connect(a, app_id="appaaaaa", method=ConnectionMethod.TOKEN, client_secret=OWN_SECRET)
    connect(b, app_id="appbbbbb")
    forged = Conversation(2, app_id="appbbbbb").user_replied()
    decoy = b'"type":"notification_event","x":{"app_id":"appaaaaa"},'
    body = encode(forged).replace(b'"type":"notification_event",', decoy)
    assert_error(post_webhook(body, secret=OWN_SECRET), 401, "signature_invalid")
    assert_nothing_kept()


def test_a_webhook_lands_in_its_own_workspace_only(make_workspace, connect, post_webhook):
    """The same Intercom conversation id in two Intercom workspaces: each delivery goes to its own Cue workspace."""
    a, b = make_workspace("A"), make_workspace("B")
    connect(a, app_id="appaaaaa")
    connect(b, app_id="appbbbbb")
    post_webhook(Conversation(2, app_id="appaaaaa", conversation_id="777").user_created())
    post_webhook(Conversation(2, app_id="appbbbbb", conversation_id="777").user_created())
    assert sorted(WebhookDelivery.objects.values_list("workspace_id", flat=True)) == sorted(
        [a.workspace_id, b.workspace_id]
    )
    assert sorted(TaskRun.objects.values_list("workspace_id", flat=True)) == sorted([a.workspace_id, b.workspace_id])
