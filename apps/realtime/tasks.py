"""Realtime tasks: publish the event a source builds from ids (the callback step of a worker)."""

from apps.realtime import services
from apps.tasks.registry import durable_task


# Backoff 5 s doubling to 2 min over 8 attempts, each retry sent by the minute sweeper: a broker or IoT
# outage shorter than about 3 minutes (about 6 typically, with jitter) never makes a publish dead.
@durable_task(max_attempts=8, backoff_seconds=5, backoff_max_seconds=120)
def publish_event(ref: dict) -> dict | list[dict] | None:
    """Publish the event(s) `ref` names, e.g. {"source": "suggestions", "message_id": 5}, in the source's order.

    Dispatch it as the `callback` of the worker that stored the data (the worker returns the ref,
    built with apps.realtime.events.event_ref), or on its own with `publish_event.delay(ref)`.
    A PublishFailed fails the attempt, and the backbone retries it.
    """
    return services.event_source_publish(ref=ref)
