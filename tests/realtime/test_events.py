"""The envelope, the topic tree and the size limit, on the embedded log backend."""

import json
from decimal import Decimal

import pytest

from apps.realtime import services, topics
from apps.realtime.backends import LogBackend, get_backend
from apps.realtime.events import (
    MAX_PAYLOAD_BYTES,
    Event,
    InvalidEvent,
    PayloadTooLarge,
    UnknownEventSource,
    event_ref,
)
from tests.realtime import sources


def sent() -> list[tuple[str, dict]]:
    backend = get_backend()
    assert isinstance(backend, LogBackend)
    return [(topic, json.loads(payload)) for topic, payload in backend.sent]


def test_suggestions_payload_and_topic_follow_the_contract():
    """cue/<ws>/conversations/<id>/suggestions carries type, version, event_id and the suggestions."""
    receipt = services.suggestions_publish(
        workspace_id=7, conversation_id=42, message_id=9, suggestions=sources.sample_suggestions("Acme")
    )
    [(topic, payload)] = sent()
    assert topic == "cue/7/conversations/42/suggestions" == receipt["topic"]
    assert payload == {
        "type": "suggestions",
        "version": 1,
        "event_id": receipt["event_id"],
        "conversation_id": 42,
        "message_id": 9,
        "suggestions": sources.sample_suggestions("Acme"),
    }
    assert receipt["backend"] == "log"
    assert receipt["bytes"] == len(json.dumps(payload, separators=(",", ":")).encode())


def test_message_event_topic_and_shape():
    services.message_publish(workspace_id=3, conversation_id="c-77", message={"id": 5, "body": "Hello?"})
    [(topic, payload)] = sent()
    assert topic == "cue/3/conversations/c-77/messages"
    assert payload["type"] == "message"
    assert payload["message_id"] == 5
    assert payload["message"] == {"id": 5, "body": "Hello?"}


def test_conversation_event_topic_and_shape():
    """<root>/<ws>/conversations: the list's object, what changed, and the id beside it."""
    event = services.conversation_event(workspace_id=3, conversation={"id": 8, "state": "closed"}, change="closed")
    services.event_send(event=event)
    [(topic, payload)] = sent()
    assert topic == "cue/3/conversations"
    assert payload == {
        "type": "conversation",
        "version": 1,
        "event_id": event.event_id,
        "conversation_id": 8,
        "change": "closed",
        "conversation": {"id": 8, "state": "closed"},
    }


@pytest.mark.parametrize(
    ("conversation", "change", "problem"),
    [({"state": "open"}, "created", "needs the conversation's id"), ({"id": 1}, "deleted", "change must be one of")],
)
def test_a_conversation_event_needs_an_id_and_a_known_change(conversation, change, problem):
    with pytest.raises(InvalidEvent, match=problem):
        services.conversation_event(workspace_id=1, conversation=conversation, change=change)


def test_a_source_of_several_events_publishes_them_in_order():
    ref = event_ref("test.several", conversation_id=4, message_ids=[3, 1, 2])
    receipts = services.event_source_publish(ref=ref)
    assert [payload["message_id"] for _, payload in sent()] == [3, 1, 2]
    assert [r["event_id"] for r in receipts] == [payload["event_id"] for _, payload in sent()]
    assert services.event_source_publish(ref=event_ref("test.several", conversation_id=4, message_ids=[])) is None


def test_event_id_is_the_same_for_the_same_content_only():
    """A retried publish carries the same id (subscribers drop it); other content gets another id."""
    one = services.suggestions_event(
        workspace_id=1, conversation_id=2, message_id=3, suggestions=sources.sample_suggestions("A")
    )
    again = services.suggestions_event(
        workspace_id=1, conversation_id=2, message_id=3, suggestions=sources.sample_suggestions("A")
    )
    other = services.suggestions_event(
        workspace_id=1, conversation_id=2, message_id=3, suggestions=sources.sample_suggestions("B")
    )
    elsewhere = services.suggestions_event(
        workspace_id=2, conversation_id=2, message_id=3, suggestions=sources.sample_suggestions("A")
    )
    assert one.event_id == again.event_id
    assert len({one.event_id, other.event_id, elsewhere.event_id}) == 3
    explicit = Event(workspace_id=1, topic_suffix="conversations/2/x", type="x", event_id="my-id")
    assert explicit.payload()["event_id"] == "my-id"


def test_topic_root_comes_from_settings(settings):
    settings.REALTIME_TOPIC_ROOT = "cue-staging"
    assert (
        Event(workspace_id=5, topic_suffix="agents/8/notices", type="notice").topic == "cue-staging/5/agents/8/notices"
    )


@pytest.mark.parametrize(
    "workspace_id, suffix",
    [
        (1, "conversations/+/suggestions"),
        (1, "conversations/#"),
        (1, "conversations//suggestions"),
        (1, "/conversations/1/suggestions"),
        (1, "billing/1/suggestions"),
        (1, "agents/5"),
        (1, "conversations/1/a/b/c/d/e"),
        (1, "conversations/" + "x" * 65 + "/suggestions"),
        (1, "conversations/ü/suggestions"),
        (0, "conversations/1/suggestions"),
        ("1", "conversations/1/suggestions"),
        (True, "conversations/1/suggestions"),
    ],
)
def test_events_outside_the_tree_are_refused(workspace_id, suffix):
    with pytest.raises(InvalidEvent):
        services.event_publish(workspace_id=workspace_id, topic_suffix=suffix, payload_type="x", data={})
    assert sent() == []


@pytest.mark.parametrize("data", [{"type": "other"}, {"event_id": "x"}, {"version": 2}, {"when": object()}, [1, 2]])
def test_bad_data_is_refused(data):
    with pytest.raises(InvalidEvent):
        services.event_publish(workspace_id=1, topic_suffix="conversations/1/x", payload_type="x", data=data)
    assert sent() == []


def _event_of_size(size: int) -> Event:
    """An event whose encoded payload is exactly `size` bytes, most of them two-byte characters."""
    base = Event(workspace_id=1, topic_suffix="conversations/1/big", type="big", data={"text": ""}, event_id="e")
    room = size - len(base.encode())
    text = "é" * (room // 2) + "x" * (room % 2)
    return Event(workspace_id=1, topic_suffix="conversations/1/big", type="big", data={"text": text}, event_id="e")


def test_payload_at_the_iot_limit_is_published():
    event = _event_of_size(MAX_PAYLOAD_BYTES)
    receipt = services.event_send(event=event)
    assert receipt["bytes"] == MAX_PAYLOAD_BYTES == 131072


def test_payload_over_the_iot_limit_is_refused_with_a_clear_error():
    """One byte over 128 KB (counted in UTF-8 bytes, not characters): refused, nothing published."""
    with pytest.raises(PayloadTooLarge) as refused:
        services.event_send(event=_event_of_size(MAX_PAYLOAD_BYTES + 1))
    assert "131073 bytes, over the 131072-byte (128 KB) limit of AWS IoT Core" in str(refused.value)
    assert sent() == []


@pytest.mark.parametrize("conversation_id", ["1/x", "+", "", None])
def test_a_conversation_id_is_one_topic_level(conversation_id):
    with pytest.raises(InvalidEvent):
        services.message_publish(workspace_id=1, conversation_id=conversation_id, message={"id": 1})
    with pytest.raises(InvalidEvent):
        services.suggestions_publish(workspace_id=1, conversation_id=conversation_id, message_id=1, suggestions=[])
    assert sent() == []


def test_suggestion_fields_are_required_and_numbers_normalised():
    with pytest.raises(InvalidEvent, match="suggestion 0 lacks score"):
        services.suggestions_event(
            workspace_id=1,
            conversation_id=1,
            message_id=1,
            suggestions=[{"id": 1, "entry_id": 1, "title": "t", "body": "b", "rank": 1}],
        )
    event = services.suggestions_event(
        workspace_id=1,
        conversation_id=1,
        message_id=1,
        suggestions=[{"id": 1, "entry_id": 1, "title": "t", "body": "b", "score": Decimal("0.25"), "rank": "1"}],
    )
    assert event.payload()["suggestions"][0]["score"] == 0.25
    assert event.payload()["suggestions"][0]["rank"] == 1


def test_event_ref_names_a_registered_source_and_carries_ids_only():
    assert event_ref("test.suggestions", workspace_id=1, conversation_id=2, message_id=3) == {
        "source": "test.suggestions",
        "workspace_id": 1,
        "conversation_id": 2,
        "message_id": 3,
    }
    with pytest.raises(UnknownEventSource):
        event_ref("no.such.source", message_id=1)
    with pytest.raises(InvalidEvent, match="pass ids"):
        event_ref("test.suggestions", message_id={"body": "a blob"})
    assert event_ref("test.several", conversation_id=1, message_ids=[1, 2])["message_ids"] == [1, 2]
    with pytest.raises(InvalidEvent, match="pass ids"):
        event_ref("test.several", conversation_id=1, message_ids=[{"id": 1}])


def test_topic_helpers_build_the_agent_tree():
    assert topics.subscribe_filters(workspace_id=4, user_id=9) == [
        "cue/4/conversations",
        "cue/4/conversations/+/#",
        "cue/4/agents/9/#",
    ]
    assert topics.agent_suffix(9, "notices") == "agents/9/notices"
