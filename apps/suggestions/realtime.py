"""The "suggestions" realtime source: a message's stored suggestions as the contract's event."""

from apps.realtime.events import Event, event_source
from apps.realtime.services import suggestions_event
from apps.suggestions import selectors

# AWS IoT refuses payloads over 128 KB: long entry bodies travel cut, and the client fetches the whole
# suggestion from the REST API when body_truncated is set.
MAX_EVENT_BODY_CHARS = 8_000


def suggestion_item(suggestion) -> dict:
    return {
        "id": suggestion.id,
        "entry_id": suggestion.entry_id,
        "title": suggestion.title,
        "body": suggestion.body[:MAX_EVENT_BODY_CHARS],
        "body_truncated": len(suggestion.body) > MAX_EVENT_BODY_CHARS,
        "score": suggestion.score,
        "rank": suggestion.rank,
    }


@event_source("suggestions")
def suggestions_for_message(*, message_id: int) -> Event | None:
    """None (nothing to send, the task succeeds) for a deleted message or one without suggestions (a gap)."""
    message, suggestions = selectors.suggestions_of_message(message_id=message_id)
    if message is None or not suggestions:
        return None
    return suggestions_event(
        workspace_id=message.workspace_id,
        conversation_id=message.conversation_id,
        message_id=message.id,
        suggestions=[suggestion_item(s) for s in suggestions],
    )
