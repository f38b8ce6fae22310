"""Everything that changes in a conversation is pushed: signed webhooks → Zappa handler → tasks over SNS → Mosquitto.

The subscriber is a real MQTT client on the shared broker, subscribed to exactly the topics
`GET /api/realtime/connection` hands the agent; every SNS message is delivered twice.
"""

import json
import time
from datetime import UTC, datetime, timedelta

import pytest

from apps.conversations.data import ConversationData, MessageData
from apps.conversations.models import Conversation as ConversationRow
from apps.conversations.models import Message
from apps.conversations.services import MAX_LIVE_MESSAGES, conversation_change, conversation_upsert_from_intercom
from apps.realtime.backends import get_backend
from apps.realtime.events import event_ref
from apps.realtime.services import event_source_publish
from apps.tasks.models import TaskRun, TaskStatus
from tests.integrations.conftest import connect, connection, intercom_settings  # noqa: F401
from tests.integrations.intercom_payloads import OTHER_ADMIN, Conversation
from tests.integrations.test_webhook_lambda import webhook_event
from tests.realtime.conftest import _fresh_backends, mqtt_backend, mqtt_url, subscribe, topic_root  # noqa: F401
from tests.support.events import apigw_v1, response_json

SILENCE_SECONDS = 0.5
PUBLISH = "apps.realtime.tasks.publish_event"


@pytest.fixture
def agent(connection, client_for):  # noqa: F811
    return client_for(connection.connected_by)


@pytest.fixture
def listener(agent, mqtt_backend, subscribe):  # noqa: F811
    """A browser's view: the shared Mosquitto, with the topics the connection endpoint gives the agent."""
    topics = agent.get("/api/realtime/connection").json()["topics"]
    return subscribe(mqtt_backend, topics)


def activity_publishes():
    """The publish tasks the mirroring dispatched (the suggestion step's callbacks are publish tasks too)."""
    return TaskRun.objects.filter(name=PUBLISH, parent__name="apps.integrations.tasks.process_delivery")


def rest_conversation(agent, conversation_id: int) -> dict:
    [item] = [c for c in agent.get("/api/conversations").json()["results"] if c["id"] == conversation_id]
    return item


def rest_messages(agent, conversation_id: int) -> dict[int, dict]:
    body = agent.get(f"/api/conversations/{conversation_id}").json()
    return {m["id"]: m for m in body["messages"]["results"]}


def test_a_conversations_life_arrives_in_order_once_each_as_the_rest_objects(
    sns,
    lambda_handler,
    connection,  # noqa: F811
    agent,
    listener,
    make_workspace,
    mqtt_backend,  # noqa: F811
    subscribe,  # noqa: F811
    topic_root,  # noqa: F811
):
    """Created, assigned, replied both ways, noted, snoozed, opened, closed: each webhook's events, in order."""
    bystander = make_workspace("Bystander")
    theirs = subscribe(mqtt_backend, [f"{topic_root}/{bystander.workspace_id}/#"])
    conversation = Conversation(2)
    steps = [
        (conversation.user_created(), "created", ["comment"]),
        (conversation.admin_assigned(to=OTHER_ADMIN), "assigned", ["assignment"]),
        (conversation.user_replied("<p>Any news on my refund?</p>"), "updated", ["comment"]),
        (conversation.admin_replied("<p>Refund on its way.</p>"), "updated", ["comment"]),
        (conversation.admin_noted("<p>Refund approved.</p>"), "updated", ["note"]),
        (conversation.admin_snoozed(), "snoozed", ["snooze"]),
        (conversation.admin_opened(), "opened", ["open"]),
        (conversation.admin_closed(), "closed", ["close"]),
    ]
    seen = 0
    for step, (payload, change, kinds) in enumerate(steps):
        result = lambda_handler(webhook_event(apigw_v1, payload))
        assert response_json(result) == {"status": "accepted"}
        assert activity_publishes().count() == step, "nothing is published in the webhook's request"
        sns.run_all(times=2)
        got = listener.wait_count(seen + 1 + len(kinds))[seen:]
        row = ConversationRow.objects.get(workspace_id=connection.workspace_id)

        # The conversation event first, on the list topic, as GET /api/conversations lists the row now.
        first, messages = got[0], got[1:]
        assert first.topic == f"{topic_root}/{connection.workspace_id}/conversations"
        assert {k: first.payload[k] for k in ("type", "version", "conversation_id", "change")} == {
            "type": "conversation",
            "version": 1,
            "conversation_id": row.id,
            "change": change,
        }
        assert first.payload["conversation"] == rest_conversation(agent, row.id)

        # Then this webhook's new messages, each as GET /api/conversations/<id> shows it.
        rest = rest_messages(agent, row.id)
        assert [m.payload["message"]["kind"] for m in messages] == kinds
        for received in messages:
            assert received.topic == f"{topic_root}/{connection.workspace_id}/conversations/{row.id}/messages"
            assert (received.payload["type"], received.payload["version"]) == ("message", 1)
            assert received.payload["conversation_id"] == row.id
            assert received.payload["message"] == rest[received.payload["message"]["id"]]
        seen += len(got)

    time.sleep(SILENCE_SECONDS)
    event_ids = [m.payload["event_id"] for m in listener.received]
    assert len(event_ids) == seen == len(set(event_ids)), "once each, though SNS delivered every task twice"
    assert [
        (m.payload["message"]["author_type"], m.payload["message"]["body_text"])
        for m in listener.received
        if m.payload["type"] == "message" and m.payload["message"]["body_text"]
    ] == [
        ("lead", "Hello! My invoice is wrong & I was charged twice."),
        ("lead", "Any news on my refund?"),
        ("admin", "Refund on its way."),
        ("admin", "Refund approved."),
    ], "customer and agent messages and notes alike"
    assert theirs.received == [], "another workspace hears nothing"
    assert activity_publishes().count() == len(steps), "one publish task per webhook"
    assert set(TaskRun.objects.values_list("status", flat=True)) == {TaskStatus.SUCCEEDED}


def test_a_redelivered_webhook_publishes_nothing_more(sns, lambda_handler, connection, listener):  # noqa: F811
    conversation = Conversation(1)
    event = webhook_event(apigw_v1, conversation.user_created())
    assert response_json(lambda_handler(event)) == {"status": "accepted"}
    sns.run_all()
    listener.wait_count(2)
    assert response_json(lambda_handler(event)) == {"status": "duplicate"}
    assert sns.run_all() == []
    time.sleep(SILENCE_SECONDS)
    assert [m.payload["type"] for m in listener.received] == ["conversation", "message"]


# ------------------------------------------------------------------------------
# What one upsert publishes (inline tasks, the log backend: what `bin/dev` without a broker does)
# ------------------------------------------------------------------------------
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def data(state="open", *, minutes=0, assignee="", messages=()) -> ConversationData:
    return ConversationData(
        intercom_id="901",
        state=state,
        updated_at=T0 + timedelta(minutes=minutes),
        assignee_id=assignee,
        customer_name="Rose",
        messages=[
            MessageData(
                intercom_part_id=part,
                kind="comment",
                author_type="user",
                body_html=f"<p>{part}</p>",
                created_at=T0 + timedelta(minutes=minutes, seconds=i),
            )
            for i, part in enumerate(messages)
        ],
    )


@pytest.fixture
def published(owner, django_capture_on_commit_callbacks):
    """upsert(...) -> the events the log backend sent for it (the tasks run inline after commit)."""

    def upsert(conversation: ConversationData, **kwargs) -> list[dict]:
        backend = get_backend()
        before = len(backend.sent)
        with django_capture_on_commit_callbacks(execute=True):
            conversation_upsert_from_intercom(
                workspace_id=owner.workspace_id, data=conversation, event_at=None, **kwargs
            )
        return [json.loads(payload) for _, payload in list(backend.sent)[before:]]

    return upsert


@pytest.mark.parametrize(
    ("before", "after", "change"),
    [
        (None, {"state": "open"}, "created"),
        ({"state": "open", "assignee_id": ""}, {"state": "closed", "assignee_id": "7"}, "closed"),
        ({"state": "closed"}, {"state": "open"}, "opened"),
        ({"state": "open"}, {"state": "snoozed"}, "snoozed"),
        ({"state": "open", "assignee_id": ""}, {"state": "open", "assignee_id": "7"}, "assigned"),
        ({"state": "open", "team_assignee_id": ""}, {"state": "open", "team_assignee_id": "3"}, "assigned"),
        ({"state": "open", "subject": "a"}, {"state": "open", "subject": "b"}, "updated"),
        ({"state": "open", "subject": "a"}, {"state": "open", "subject": "a"}, None),
    ],
)
def test_the_most_telling_change_is_named(before, after, change):
    base = {"state": "open", "assignee_id": "", "team_assignee_id": "", "subject": ""}
    assert conversation_change(before=before and {**base, **before}, after={**base, **after}) == change


def test_a_late_older_event_publishes_nothing(db, published):
    assert [e["type"] for e in published(data(minutes=5, messages=["a"]))] == ["conversation", "message"]
    assert published(data("closed", minutes=1)) == [], "an older state is not applied, so nothing changed"
    assert ConversationRow.objects.get().state == "open"


def test_imported_history_is_not_pushed(db, published):
    """live=False (the history import): stored, but thousands of old conversations do not flood the topics."""
    assert published(data("closed", messages=["old"]), live=False) == []
    assert Message.objects.count() == 1
    assert [e["change"] for e in published(data("open", minutes=1)) if e["type"] == "conversation"] == ["opened"]


def test_only_the_newest_messages_go_out_live(db, published):
    parts = [f"p{i:03}" for i in range(MAX_LIVE_MESSAGES + 5)]
    events = published(data(messages=parts))
    assert events[0]["change"] == "created"
    texts = [e["message"]["body_text"] for e in events[1:]]
    assert texts == parts[-MAX_LIVE_MESSAGES:], "oldest first, the newest MAX_LIVE_MESSAGES"
    assert Message.objects.count() == len(parts), "all are stored; the client fetches the rest"


def test_a_conversation_deleted_before_its_task_ran_publishes_nothing(owner, db):
    row = ConversationRow.objects.create(workspace=owner.workspace, intercom_id="77")
    ref = event_ref("conversation_activity", conversation_id=row.id, change="created", message_ids=[])
    row.delete()
    assert event_source_publish(ref=ref) is None
