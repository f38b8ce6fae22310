"""The "conversation_activity" realtime source: what one mirrored event changed, as the contract's events.

The objects are the REST API's own (the serializers of apps.conversations.api), so what arrives live is
exactly what `GET /api/conversations` and `GET /api/conversations/<id>` would answer for the same row.
"""

from apps.conversations import selectors
from apps.conversations.api import ConversationOutputSerializer, MessageOutputSerializer
from apps.realtime.events import Event, event_source
from apps.realtime.services import conversation_event, message_event


@event_source("conversation_activity")
def conversation_activity(*, conversation_id: int, change: str | None, message_ids: list[int]) -> list[Event]:
    """The conversation event (when `change` is set) first, then one message event per message, oldest first.

    Loaded when the task runs: a late task carries the newest state of the conversation (clients keep
    the object with the latest `updated_at`). Rows deleted meanwhile are left out; nothing left, nothing sent.
    """
    conversation = selectors.conversation_as_listed(conversation_id=conversation_id)
    if conversation is None:
        return []
    events = []
    if change:
        events.append(
            conversation_event(
                workspace_id=conversation.workspace_id,
                conversation=ConversationOutputSerializer(conversation).data,
                change=change,
            )
        )
    for message in selectors.messages_by_ids(conversation=conversation, message_ids=message_ids):
        events.append(
            message_event(
                workspace_id=conversation.workspace_id,
                conversation_id=conversation.id,
                message=MessageOutputSerializer(message).data,
            )
        )
    return events
