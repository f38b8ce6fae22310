"""The webhook through the real Zappa handler, processing through SNS and the handler again, twice where it matters."""

import json
from datetime import timedelta

import pytest
from django.db import connection as db_connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.conversations.models import Conversation as ConversationRow
from apps.conversations.models import Message
from apps.integrations import payloads, services
from apps.integrations.models import WebhookDelivery
from apps.tasks.models import TaskRun, TaskStatus
from tests.integrations.intercom_payloads import APP_SECRET, Conversation, encode, hub_signature
from tests.support.events import apigw_v1, apigw_v2, response_json, scheduled_event
from tests.support.faults import sns_blackholed

EVENTS = {"v1": apigw_v1, "v2": apigw_v2}
SUGGEST = "apps.suggestions.tasks.suggest_replies"
# The suggestion step's callback, and the task that publishes what the mirroring changed.
PUBLISH = "apps.realtime.tasks.publish_event"


def webhook_event(make, payload, *, secret=APP_SECRET, base64_body=False):
    body = encode(payload)
    headers = {"Content-Type": "application/json", "X-Hub-Signature": hub_signature(secret, body)}
    return make("POST", "/webhooks/intercom", headers=headers, body=body.decode(), base64_body=base64_body)


def task_names(messages: list[str]) -> list[str]:
    return [json.loads(m)["args"][0]["task"] for m in messages]


def caused_by_processing(messages: list[str]) -> list[str]:
    """The tasks a delivery's processing caused, sorted (SNS hands them back in no set order); it came first."""
    names = task_names(messages)
    assert names[0] == "apps.integrations.tasks.process_delivery"
    return sorted(names[1:])


@pytest.mark.parametrize("version", ["v1", "v2"])
@pytest.mark.parametrize("generation", [1, 2])
def test_signed_webhook_acknowledged_then_mirrored_through_sns(sns, lambda_handler, connection, version, generation):
    """200 from the handler; the task is published, not run; delivered, it mirrors and asks for suggestions."""
    conversation = Conversation(generation)
    result = lambda_handler(webhook_event(EVENTS[version], conversation.user_created(), base64_body=version == "v2"))
    assert result["statusCode"] == 200, result
    assert response_json(result) == {"status": "accepted"}
    messages = sns.drain()
    assert task_names(messages) == ["apps.integrations.tasks.process_delivery"]
    assert not ConversationRow.objects.exists(), "nothing is processed in the request"

    sns.deliver(messages[0])
    row = ConversationRow.objects.get()
    assert row.workspace_id == connection.workspace_id
    [message] = Message.objects.all()
    assert sorted(task_names(sns.drain())) == [PUBLISH, SUGGEST], "the agents are told, suggestions are asked for"
    assert TaskRun.objects.get(name=SUGGEST).args == [message.id]
    assert TaskRun.objects.get(name=SUGGEST).callback == PUBLISH


def test_redeliveries_everywhere_have_one_effect(sns, lambda_handler, connection):
    """Intercom posts twice, SNS delivers every message twice: one delivery, one conversation, one suggestion each."""
    conversation = Conversation(2)
    event = webhook_event(apigw_v1, conversation.user_replied())
    assert response_json(lambda_handler(event)) == {"status": "accepted"}
    assert response_json(lambda_handler(event)) == {"status": "duplicate"}
    delivered = sns.run_all(times=2)
    # The first sight of the conversation holds two customer messages: the opening one and the reply.
    assert caused_by_processing(delivered) == [PUBLISH, PUBLISH, PUBLISH, SUGGEST, SUGGEST]
    assert WebhookDelivery.objects.count() == 1
    assert ConversationRow.objects.count() == 1
    assert Message.objects.count() == 2
    assert sorted(r.args[0] for r in TaskRun.objects.filter(name=SUGGEST)) == sorted(
        Message.objects.values_list("id", flat=True)
    )
    assert set(TaskRun.objects.values_list("status", flat=True)) == {TaskStatus.SUCCEEDED}


def test_out_of_order_through_the_handler(sns, lambda_handler, connection):
    conversation = Conversation(1)
    replied = conversation.user_replied()
    closed = conversation.admin_closed()
    lambda_handler(webhook_event(apigw_v2, closed))
    lambda_handler(webhook_event(apigw_v2, replied))
    sns.run_all()
    row = ConversationRow.objects.get()
    assert row.state == "closed"
    assert Message.objects.filter(conversation=row).count() == 3


def test_a_delivery_and_its_task_in_one_transaction_five_statements(sns, lambda_handler, connection):
    """Find the connection, then one transaction: the delivery and its task's ledger row commit together."""
    lambda_handler(webhook_event(apigw_v1, Conversation(2).user_created()))  # warm: first-request work
    conversation = Conversation(2)
    with CaptureQueriesContext(db_connection) as queries:
        result = lambda_handler(webhook_event(apigw_v1, conversation.user_created()))
    assert result["statusCode"] == 200
    statements = [(q["sql"].split() or [""])[0] for q in queries.captured_queries]
    assert statements == ["SELECT", "BEGIN", "INSERT", "INSERT", "COMMIT"], statements
    assert "webhookdelivery" in queries.captured_queries[2]["sql"]
    assert "tasks_taskrun" in queries.captured_queries[3]["sql"]
    event = webhook_event(apigw_v1, conversation.user_created(notification_id="notif_x"))
    lambda_handler(event)
    with CaptureQueriesContext(db_connection) as duplicate:
        assert response_json(lambda_handler(event)) == {"status": "duplicate"}
    statements = [(q["sql"].split() or [""])[0] for q in duplicate.captured_queries]
    assert statements == ["SELECT", "BEGIN", "INSERT", "COMMIT"], statements


def test_a_delivery_whose_dispatch_was_lost_is_dispatched_again(sns, lambda_handler, connection):
    """A delivery with no live task (stored by hand here; its task went dead or was purged): the scheduled job
    dispatches it, once."""
    body = encode(Conversation(2).user_created())
    services._delivery_insert(
        workspace_id=connection.workspace_id, notification=payloads.notification_parse(body), body=body.decode()
    )
    delivery = WebhookDelivery.objects.get()
    assert services.deliveries_redispatch_stale() == 0, "not before it is overdue"
    WebhookDelivery.objects.update(received_at=timezone.now() - timedelta(minutes=11))
    lambda_handler(scheduled_event(f"{lambda_handler.function_name}-apps.integrations.jobs.redispatch_deliveries"))
    assert caused_by_processing(sns.run_all()) == [PUBLISH, PUBLISH, SUGGEST]
    delivery.refresh_from_db()
    assert delivery.status == "processed"
    assert delivery.redispatched_at is not None
    assert services.deliveries_redispatch_stale(now=timezone.now() + timedelta(hours=1)) == 0


def test_sns_blackholed_the_handler_answers_and_the_scheduled_sweep_sends_it_once(sns, lambda_handler, connection):
    """SNS accepts and never answers: the stage's handler still answers 200 (one quick try); the row waits
    unsent, and the sweeper's scheduled invocation sends it when SNS is back; delivered twice, mirrored once."""
    with sns_blackholed() as hole:
        result = lambda_handler(webhook_event(apigw_v1, Conversation(2).user_created()))
    assert result["statusCode"] == 200, result
    assert response_json(result) == {"status": "accepted"}
    assert hole.accepted == 1
    run = TaskRun.objects.get()
    assert (run.status, run.sent_at) == (TaskStatus.PENDING, None)
    assert "ReadTimeoutError" in run.last_error
    TaskRun.objects.update(created_at=timezone.now() - timedelta(minutes=1))  # past the unsent grace
    assert lambda_handler(scheduled_event(f"{lambda_handler.function_name}-apps.tasks.jobs.sweep"))["unsent"] == 1
    assert caused_by_processing(sns.run_all(times=2)) == [PUBLISH, PUBLISH, SUGGEST]
    assert Message.objects.count() == 1
    run.refresh_from_db()
    assert (run.status, run.attempts) == (TaskStatus.SUCCEEDED, 1)


def test_bad_signature_through_the_handler_publishes_nothing(sns, lambda_handler, connection):
    result = lambda_handler(webhook_event(apigw_v2, Conversation(2).user_created(), secret="wrong"))
    assert result["statusCode"] == 401
    assert response_json(result)["error"]["code"] == "signature_invalid"
    assert sns.drain() == []
    assert not WebhookDelivery.objects.exists()
