"""Realtime writes: publish an event to its workspace's topic, and issue an agent's connection details.

Call the publish services from tasks (the callback step), never inside a request's transaction: a
publish is a network round trip that cannot be rolled back. From a request, dispatch
apps.realtime.tasks.publish_event after commit instead (docs/realtime.md).
"""

import logging
import secrets
from collections.abc import Iterable, Mapping
from urllib.parse import urlsplit

from django.conf import settings

from apps.accounts.models import Membership
from apps.realtime import topics
from apps.realtime.backends import PublishFailed, get_backend
from apps.realtime.events import Event, InvalidEvent, event_source_get
from apps.realtime.tokens import realtime_token_issue
from project.metrics import metric_emit

logger = logging.getLogger(__name__)

SUGGESTION_FIELDS = ("id", "entry_id", "title", "body", "score", "rank")


# ------------------------------------------------------------------------------
# Events the other apps publish (built here so every payload has one shape)
# ------------------------------------------------------------------------------
def _conversation_suffix(conversation_id, name: str) -> str:
    try:
        return topics.conversation_suffix(conversation_id, name)
    except topics.InvalidTopic as exc:  # an id like "1/x" would otherwise add a level
        raise InvalidEvent(str(exc)) from exc


def suggestions_event(
    *, workspace_id: int, conversation_id, message_id, suggestions: Iterable[Mapping], event_id: str = ""
) -> Event:
    """`<root>/<ws>/conversations/<id>/suggestions`: the ranked suggestions for one customer message."""
    items = []
    for position, suggestion in enumerate(suggestions):
        missing = [f for f in SUGGESTION_FIELDS if f not in suggestion]
        if missing:
            raise InvalidEvent(f"suggestion {position} lacks {', '.join(missing)}")
        items.append({**suggestion, "score": float(suggestion["score"]), "rank": int(suggestion["rank"])})
    return Event(
        workspace_id=workspace_id,
        topic_suffix=_conversation_suffix(conversation_id, "suggestions"),
        type="suggestions",
        data={"conversation_id": conversation_id, "message_id": message_id, "suggestions": items},
        event_id=event_id,
    )


# What a conversation event says happened; the conversation object it carries is the whole truth.
CONVERSATION_CHANGES = ("created", "updated", "closed", "opened", "assigned", "snoozed")


def conversation_event(*, workspace_id: int, conversation: Mapping, change: str, event_id: str = "") -> Event:
    """`<root>/<ws>/conversations`: a new conversation or a change to one (the list's object, at least its id)."""
    if "id" not in conversation:
        raise InvalidEvent("a conversation event needs the conversation's id")
    if change not in CONVERSATION_CHANGES:
        raise InvalidEvent(f"change must be one of {', '.join(CONVERSATION_CHANGES)}, not {change!r}")
    return Event(
        workspace_id=workspace_id,
        topic_suffix=topics.conversations_suffix(),
        type="conversation",
        data={"conversation_id": conversation["id"], "change": change, "conversation": dict(conversation)},
        event_id=event_id,
    )


def message_event(*, workspace_id: int, conversation_id, message: Mapping, event_id: str = "") -> Event:
    """`<root>/<ws>/conversations/<id>/messages`: a new message in a conversation (at least its id)."""
    if "id" not in message:
        raise InvalidEvent("a message event needs the message's id")
    return Event(
        workspace_id=workspace_id,
        topic_suffix=_conversation_suffix(conversation_id, "messages"),
        type="message",
        data={"conversation_id": conversation_id, "message_id": message["id"], "message": dict(message)},
        event_id=event_id,
    )


# ------------------------------------------------------------------------------
# Publishing
# ------------------------------------------------------------------------------
def event_send(*, event: Event) -> dict:
    """Publish one event with this process's backend; returns a receipt (what the task records as its result)."""
    payload = event.encode()
    backend = get_backend()
    try:
        backend.publish(event.topic, payload)
    except PublishFailed:
        metric_emit(name="RealtimePublishFailed", dimensions={"Backend": backend.name})
        raise
    logger.info(
        "realtime event published",
        extra={
            "workspace_id": event.workspace_id,
            "topic": event.topic,
            "type": event.type,
            "event_id": event.event_id,
            "bytes": len(payload),
            "backend": backend.name,
        },
    )
    return {"topic": event.topic, "event_id": event.event_id, "bytes": len(payload), "backend": backend.name}


def event_publish(
    *, workspace_id: int, topic_suffix: str, payload_type: str, data: Mapping, event_id: str = ""
) -> dict:
    """Publish `{"type", "version": 1, "event_id", **data}` to `<root>/<workspace_id>/<topic_suffix>`."""
    event = Event(workspace_id=workspace_id, topic_suffix=topic_suffix, type=payload_type, data=data, event_id=event_id)
    return event_send(event=event)


def suggestions_publish(
    *, workspace_id: int, conversation_id, message_id, suggestions: Iterable[Mapping], event_id: str = ""
) -> dict:
    return event_send(
        event=suggestions_event(
            workspace_id=workspace_id,
            conversation_id=conversation_id,
            message_id=message_id,
            suggestions=suggestions,
            event_id=event_id,
        )
    )


def message_publish(*, workspace_id: int, conversation_id, message: Mapping, event_id: str = "") -> dict:
    return event_send(
        event=message_event(
            workspace_id=workspace_id, conversation_id=conversation_id, message=message, event_id=event_id
        )
    )


def event_source_publish(*, ref: Mapping) -> dict | list[dict] | None:
    """Load the event(s) a ref names ({"source": name, **ids}) from its source and publish them, in order.

    A receipt for one event, a list of receipts for several (each sent after the previous one's
    PUBACK, so subscribers get them in that order), None when the source says there is nothing to
    send any more (say, the row was deleted). If a publish fails midway, the retry loads and sends
    them all again: those whose content did not change meanwhile carry the same event ids, and
    subscribers drop them.
    """
    ids = dict(ref)
    source = event_source_get(ids.pop("source", ""))
    loaded = source(**ids)
    if loaded is None or (not isinstance(loaded, Event) and not loaded):
        logger.info("realtime event source had nothing to publish", extra={"ref": dict(ref)})
        return None
    if isinstance(loaded, Event):
        return event_send(event=loaded)
    return [event_send(event=event) for event in loaded]


# ------------------------------------------------------------------------------
# Connecting a browser
# ------------------------------------------------------------------------------
def _websocket_url() -> str | None:
    if settings.REALTIME_WS_URL:
        return settings.REALTIME_WS_URL
    broker = urlsplit(settings.MQTT_URL) if settings.MQTT_URL else None
    if broker is None or not broker.hostname:
        return None
    # Mosquitto's conventional websockets listener (docs/realtime.md has the two lines of its config).
    return f"{'wss' if broker.scheme == 'mqtts' else 'ws'}://{broker.hostname}:9001"


def connection_issue(*, membership: Membership) -> dict:
    """What the member's browser needs to listen: url, client id, topics, and (in AWS) a short-lived credential."""
    workspace_id, user_id = membership.workspace_id, membership.user_id
    client_id = f"{settings.REALTIME_TOPIC_ROOT}-{workspace_id}-{user_id}-{secrets.token_hex(6)}"
    details: dict = {
        "backend": settings.REALTIME_BACKEND,
        # "poll" only where realtime is really off (the log backend): the page polls instead of reconnecting.
        "mode": "poll" if settings.REALTIME_BACKEND == "log" else "live",
        "poll_seconds": settings.REALTIME_POLL_SECONDS,
        "url": None,
        "client_id": client_id,
        "topics": topics.subscribe_filters(workspace_id=workspace_id, user_id=user_id),
        "qos": 1,
        "credentials": None,
        "expires_at": None,
    }
    if settings.REALTIME_BACKEND == "mqtt":
        details["url"] = _websocket_url()
    elif settings.REALTIME_BACKEND == "iot":
        authorizer = settings.REALTIME_IOT_AUTHORIZER
        endpoint = get_backend().data_endpoint()
        token, expires_at = realtime_token_issue(user_id=user_id, workspace_id=workspace_id, client_id=client_id)
        details["url"] = f"wss://{endpoint}/mqtt?x-amz-customauthorizer-name={authorizer}"
        details["credentials"] = {"username": f"cue?x-amz-customauthorizer-name={authorizer}", "password": token}
        details["expires_at"] = expires_at
    return details
