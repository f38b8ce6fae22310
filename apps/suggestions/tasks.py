"""Async entry points of suggestions: the step a new customer message triggers, and learning from agents' replies."""

from apps.realtime.events import event_ref
from apps.suggestions import services
from apps.tasks.registry import durable_task


@durable_task
def suggest_replies(message_id: int) -> dict:
    """Rank the knowledge base against a new customer message and store its suggestions (or a knowledge gap).

    apps.conversations dispatches it for each NEW customer message with callback
    apps.realtime.tasks.publish_event, which gets the ref returned here. The ref is returned even
    when nothing was stored: the backbone calls the callback with any result, and the source
    answers "nothing to publish" for a gap, so the publish task ends quietly instead of failing.
    """
    services.suggestions_create_for_message(message_id=message_id)
    return event_ref("suggestions", message_id=message_id)


@durable_task
def learn_from_reply(message_id: int) -> dict:
    """Learn from a new agent reply: evidence for the entry whose text it repeats (if any).

    apps.conversations dispatches it for each NEW agent comment mirrored from Intercom.
    """
    return services.suggestion_feedback_from_reply(message_id=message_id)
