"""Realtime events: the JSON envelope every message carries, and the registry of event sources.

An event source is a function of small ids that loads what it needs and returns an Event (or None when
there is nothing to send any more). Apps declare theirs in `apps/<app>/realtime.py` with @event_source;
the publish task names a source and its ids, so only ids travel through SNS.
"""

import json
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from django.core.serializers.json import DjangoJSONEncoder

from apps.realtime import topics

# AWS IoT Core refuses a message payload over 128 KB; refusing it here gives a clear error on every backend.
MAX_PAYLOAD_BYTES = 128 * 1024
ENVELOPE_KEYS = ("type", "version", "event_id")
# A fixed namespace, so the same content always gets the same event id (see Event.event_id).
_EVENT_NAMESPACE = uuid.UUID("5d0f3c56-8a57-4f4e-9a0e-3f7c7b0e6c11")


class InvalidEvent(ValueError):
    """An event that cannot be published: a bad topic, a clash with the envelope, not JSON."""


class PayloadTooLarge(InvalidEvent):
    """An encoded payload over MAX_PAYLOAD_BYTES."""


def _canonical(value) -> str:
    return json.dumps(value, cls=DjangoJSONEncoder, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True)
class Event:
    """One message for one topic of one workspace.

    `event_id`, when not given, is derived from the topic and the content: a retried or duplicated
    publish of the same content carries the same id, so subscribers drop what they have already shown.
    """

    workspace_id: int
    topic_suffix: str
    type: str
    data: Mapping = field(default_factory=dict)
    version: int = 1
    event_id: str = ""

    def __post_init__(self):
        try:
            topics.topic_for(workspace_id=self.workspace_id, suffix=self.topic_suffix)
        except topics.InvalidTopic as exc:
            raise InvalidEvent(str(exc)) from exc
        if not self.type or not isinstance(self.type, str):
            raise InvalidEvent("an event needs a type")
        if not isinstance(self.data, Mapping):
            raise InvalidEvent(f"event data must be a mapping, not {type(self.data).__name__}")
        clash = sorted(set(self.data) & set(ENVELOPE_KEYS))
        if clash:
            raise InvalidEvent(f"event data must not set the envelope's {', '.join(clash)}")
        if not self.event_id:
            try:
                content = _canonical({"type": self.type, "version": self.version, "data": self.data})
            except (TypeError, ValueError) as exc:
                raise InvalidEvent(f"event data is not JSON: {exc}") from exc
            object.__setattr__(self, "event_id", str(uuid.uuid5(_EVENT_NAMESPACE, f"{self.topic}\n{content}")))

    @property
    def topic(self) -> str:
        return topics.topic_for(workspace_id=self.workspace_id, suffix=self.topic_suffix)

    def payload(self) -> dict:
        return {"type": self.type, "version": self.version, "event_id": self.event_id, **self.data}

    def encode(self) -> bytes:
        """The UTF-8 JSON bytes that go on the wire; PayloadTooLarge over AWS IoT's limit."""
        try:
            body = json.dumps(self.payload(), cls=DjangoJSONEncoder, separators=(",", ":"), ensure_ascii=False)
        except (TypeError, ValueError) as exc:
            raise InvalidEvent(f"event data is not JSON: {exc}") from exc
        encoded = body.encode()
        if len(encoded) > MAX_PAYLOAD_BYTES:
            raise PayloadTooLarge(
                f"{self.type} event for {self.topic} is {len(encoded)} bytes, over the {MAX_PAYLOAD_BYTES}-byte "
                "(128 KB) limit of AWS IoT Core: send less (ids, excerpts) and let the client fetch the rest"
            )
        return encoded


# ------------------------------------------------------------------------------
# Event sources
# ------------------------------------------------------------------------------
# A source returns one event, several (published in order, one after the other, by one task), or None.
EventSource = Callable[..., Event | Sequence[Event] | None]
_SOURCES: dict[str, EventSource] = {}


class UnknownEventSource(LookupError):
    pass


def event_source(name: str) -> Callable[[EventSource], EventSource]:
    """Register a source: `@event_source("suggestions") def f(*, message_id: int) -> Event | None`."""

    def register(func: EventSource) -> EventSource:
        existing = _SOURCES.get(name)
        if existing is not None and existing is not func:
            raise ValueError(f"event source {name!r} is already {existing.__module__}.{existing.__qualname__}")
        _SOURCES[name] = func
        return func

    return register


def event_source_get(name: str) -> EventSource:
    try:
        return _SOURCES[name]
    except KeyError as exc:
        raise UnknownEventSource(f"no realtime event source named {name!r}") from exc


def event_ref(source: str, **ids) -> dict:
    """What a task carries to name an event: {"source": name, **ids}; ids are small JSON scalars or lists of them."""
    event_source_get(source)  # fail at the caller, not in a worker
    for key, value in ids.items():
        values = value if isinstance(value, list) else [value]
        if any(v is not None and not isinstance(v, (int, str, float, bool)) for v in values):
            raise InvalidEvent(f"event ref {key}={value!r}: pass ids, not objects")
    if "source" in ids:
        raise InvalidEvent("'source' is the ref's own key")
    return {"source": source, **ids}
