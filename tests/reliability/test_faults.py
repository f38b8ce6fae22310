"""Faults with counts: database or SNS down while webhooks arrive, tasks redelivered; nothing lost, nothing twice."""

from datetime import timedelta

import pytest
from django.conf import settings
from django.test import Client
from django.utils import timezone

from apps.conversations.models import Conversation as ConversationRow
from apps.conversations.models import Message
from apps.integrations.models import DeliveryStatus, WebhookDelivery
from apps.integrations.services import deliveries_redispatch_stale
from apps.suggestions.models import Suggestion
from apps.tasks import publisher
from apps.tasks.models import TaskRun, TaskStatus
from apps.tasks.services import task_sweep
from tests.integrations.conftest import connect, connection, intercom_settings, post_webhook  # noqa: F401
from tests.integrations.intercom_payloads import APP_SECRET, Conversation, encode, hub_signature
from tests.support.faults import RedeliveringBus, database_unreachable, inserts_fail, sns_blackholed
from tests.support.lambda_harness import SnsCapture


@pytest.fixture
def bus(monkeypatch):
    """Tasks publish (as in Lambda) to a bus that delivers each at least once, 10 % twice, shuffled."""
    bus = RedeliveringBus(duplicate_ratio=0.1)
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "cue-faults")
    monkeypatch.setattr("apps.tasks.publisher.publish", bus.publish)
    return bus


def notifications(count: int) -> list[dict]:
    """`count` webhooks: new conversations, each with a customer reply (two messages per conversation)."""
    out = []
    for i in range(count // 2):
        conversation = Conversation(1 + i % 2)
        out += [conversation.user_created(), conversation.user_replied(f"<p>Reply {i}</p>")]
    return out


@pytest.mark.django_db(transaction=True)
def test_database_down_is_503_nothing_written_and_replay_stores_each_once(connection, post_webhook, bus):  # noqa: F811
    payloads = notifications(6)
    with database_unreachable():
        refused = [post_webhook(p) for p in payloads]
    for response in refused:
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "database_unavailable"
        assert set(response.json()["error"]) == {"code", "message", "fields"}
        assert int(response["Retry-After"]) > 0
    assert not WebhookDelivery.objects.exists()
    assert not TaskRun.objects.exists()
    assert bus.published == 0

    # Intercom retries each (some twice): every delivery stored once, every message mirrored once.
    for p in payloads + payloads[:2]:
        assert post_webhook(p).status_code == 200
    bus.run_all()
    assert WebhookDelivery.objects.count() == len(payloads)
    assert set(WebhookDelivery.objects.values_list("status", flat=True)) == {DeliveryStatus.PROCESSED}
    assert ConversationRow.objects.count() == len(payloads) // 2
    assert Message.objects.count() == len(payloads)
    assert bus.duplicates > 0 or bus.deliveries == bus.published


def test_database_down_on_the_agent_api_is_503(owner_client, transactional_db):
    with database_unreachable():
        response = owner_client.get("/api/conversations")
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "database_unavailable"


@pytest.mark.slow
def test_sns_down_webhooks_still_200_and_after_recovery_everything_is_sent_once(
    sns,
    moto_server,
    lambda_handler,
    connection,  # noqa: F811
    post_webhook,  # noqa: F811
):
    moto_server.client("sns").delete_topic(TopicArn=sns.topic_arn)
    payloads = notifications(4)
    for p in payloads:
        response = post_webhook(p)
        assert response.status_code == 200, response.content
        assert response.json()["status"] == "accepted"
    assert WebhookDelivery.objects.count() == len(payloads)
    assert TaskRun.objects.filter(sent_at=None, status=TaskStatus.PENDING).count() == len(payloads)

    # SNS is back. The delivery job and the sweeper both send (the first a fresh task per delivery,
    # the second the original tasks): processing is idempotent, so each message is stored once.
    recovered = SnsCapture(moto_server, lambda_handler)
    later = timezone.now() + timedelta(minutes=11)
    assert deliveries_redispatch_stale(now=later) == len(payloads)
    swept = task_sweep(now=timezone.now() + timedelta(seconds=settings.CUE_TASK_UNSENT_GRACE_SECONDS + 1))
    assert swept["unsent"] == len(payloads)
    assert swept["send_failed"] == 0
    recovered.run_all()
    assert set(WebhookDelivery.objects.values_list("status", flat=True)) == {DeliveryStatus.PROCESSED}
    assert Message.objects.count() == len(payloads)
    assert ConversationRow.objects.count() == len(payloads) // 2
    assert not TaskRun.objects.exclude(status=TaskStatus.SUCCEEDED).exists()


def test_sns_blackholed_webhook_is_acked_and_the_sweeper_sends_it_once(sns, connection, post_webhook):  # noqa: F811
    """SNS accepts the connection and never answers: the webhook is still answered 200 (one quick try, no
    retry), the task row stays unsent with the failure recorded, and the sweeper sends it when SNS is back."""
    payload = Conversation(1).user_created()
    with sns_blackholed() as hole:
        response = post_webhook(payload)
    assert response.status_code == 200, response.content
    assert response.json() == {"status": "accepted"}
    assert hole.accepted == 1, "one try while Intercom waits: no retry in the request"
    run = TaskRun.objects.get()
    assert (run.status, run.sent_at, run.sends) == (TaskStatus.PENDING, None, 1)
    assert run.last_error.startswith("send failed: ReadTimeoutError"), run.last_error
    assert WebhookDelivery.objects.get().status == DeliveryStatus.RECEIVED
    assert sns.drain() == []

    # SNS answers again: the next sweep (a background publish) sends the row; delivered twice, stored once.
    swept = task_sweep(now=timezone.now() + timedelta(seconds=settings.CUE_TASK_UNSENT_GRACE_SECONDS + 1))
    assert (swept["unsent"], swept["send_failed"]) == (1, 0)
    sns.run_all(times=2)
    run.refresh_from_db()
    assert (run.status, run.attempts, run.sends) == (TaskStatus.SUCCEEDED, 1, 2)
    assert WebhookDelivery.objects.get().status == DeliveryStatus.PROCESSED
    assert Message.objects.count() == 1
    assert post_webhook(payload).json() == {"status": "duplicate"}


def test_sns_blackholed_the_sweeper_retries_once_within_its_bounds_and_keeps_the_row(sns, settings):
    """Outside a request the publish waits longer and retries, still bounded; a send that fails stays unsent."""
    from tests.tasks import sample_tasks

    settings.CUE_SNS_BACKGROUND_CONNECT_TIMEOUT_SECONDS = 0.3
    settings.CUE_SNS_BACKGROUND_READ_TIMEOUT_SECONDS = 0.3
    run = TaskRun.objects.create(name="tests.tasks.sample_tasks.make_workspace", args=["blackholed"])
    later = timezone.now() + timedelta(seconds=settings.CUE_TASK_UNSENT_GRACE_SECONDS + 1)
    with sns_blackholed() as hole:
        swept = task_sweep(now=later)
    assert (swept["unsent"], swept["send_failed"]) == (1, 1)
    assert hole.accepted == settings.CUE_SNS_BACKGROUND_MAX_ATTEMPTS == 2
    run.refresh_from_db()
    assert (run.status, run.sent_at) == (TaskStatus.PENDING, None)
    assert "ReadTimeoutError" in run.last_error
    assert task_sweep(now=later)["unsent"] == 1
    sns.run_all()
    assert sample_tasks.workspace_names("blackholed") == ["blackholed"]


def test_request_and_background_publishes_use_their_own_bounds():
    request, background = publisher.client_config(publisher.REQUEST), publisher.client_config(publisher.BACKGROUND)
    assert (request.connect_timeout, request.read_timeout) == (0.5, 1.0)
    assert request.retries["total_max_attempts"] == 1
    assert publisher.publish_budget_seconds(publisher.REQUEST) == 1.5
    assert (background.connect_timeout, background.read_timeout) == (2.0, 5.0)
    assert publisher.publish_budget_seconds() == 14.0


# ------------------------------------------------------------------------------
# Nothing half-written: a delivery and its task commit together or not at all
# ------------------------------------------------------------------------------
@pytest.mark.django_db(transaction=True)
def test_connection_lost_when_the_task_is_recorded_stores_neither_and_is_503(connection, post_webhook, bus):  # noqa: F811
    payload = Conversation(1).user_created()
    with inserts_fail(TaskRun._meta.db_table, how="connection_lost"):
        response = post_webhook(payload)
    assert response.status_code == 503, response.content
    assert response.json()["error"]["code"] == "database_unavailable"
    assert int(response["Retry-After"]) > 0
    assert not WebhookDelivery.objects.exists()
    assert not TaskRun.objects.exists()
    assert bus.published == 0

    # Intercom's retry stores both, and the message is mirrored once.
    assert post_webhook(payload).json() == {"status": "accepted"}
    bus.run_all()
    assert WebhookDelivery.objects.get().status == DeliveryStatus.PROCESSED
    assert Message.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_an_error_when_the_task_is_recorded_stores_neither_and_is_a_json_500(connection, bus):  # noqa: F811
    payload = encode(Conversation(1).user_created())
    client = Client(raise_request_exception=False)
    with inserts_fail(TaskRun._meta.db_table, how="error"):
        response = client.post(
            "/webhooks/intercom",
            payload,
            content_type="application/json",
            HTTP_X_HUB_SIGNATURE=hub_signature(APP_SECRET, payload),
        )
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "server_error"
    assert not WebhookDelivery.objects.exists()
    assert not TaskRun.objects.exists()
    assert bus.published == 0


@pytest.mark.django_db(transaction=True)
def test_load_every_message_and_suggestion_once_per_workspace(make_workspace, connect, client, bus):  # noqa: F811
    """A small run of bench/faults.py's load scenario: 200 webhooks for 5 workspaces, 10 % of tasks twice."""
    from apps.knowledge.services import entry_create
    from tests.support.load import load_run

    apps = {}
    for i in range(5):
        conn = connect(make_workspace(), app_id=f"load{i}")
        entry_create(workspace_id=conn.workspace_id, title="Invoice fixes", body="We fix a wrong invoice in a day.")
        apps[conn.workspace_id] = conn.app_id

    def post(payload):
        body = encode(payload)
        signature = hub_signature(APP_SECRET, body)
        return client.post("/webhooks/intercom", body, content_type="application/json", HTTP_X_HUB_SIGNATURE=signature)

    result = load_run(post=post, bus=bus, apps=apps, webhooks=200)
    assert (result.lost, result.duplicated) == (0, 0)
    assert result.duplicates_delivered > 0
    assert result.redelivered_webhooks > 0
    assert result.stored_messages == result.expected_messages == {w: 40 for w in apps}
    assert result.suggest_runs == 200
    # Suggestions were computed (one set per message, the unique constraint forbids a second).
    assert Suggestion.objects.values("message").distinct().count() == 200
