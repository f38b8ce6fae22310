"""Event sources and tasks used by the realtime tests, shaped like the suggestions app's will be."""

from apps.accounts.models import Workspace
from apps.realtime.events import Event, event_ref, event_source
from apps.realtime.services import message_event, suggestions_event
from apps.tasks.registry import durable_task


def sample_suggestions(workspace_name: str) -> list[dict]:
    return [
        {
            "id": 11,
            "entry_id": 101,
            "title": "Reset your password",
            "body": f"Hi from {workspace_name}!",
            "score": 0.91,
            "rank": 1,
        },
        {
            "id": 12,
            "entry_id": 102,
            "title": "Billing cycle",
            "body": "Invoices go out on the 1st.",
            "score": 0.5,
            "rank": 2,
        },
    ]


@event_source("test.suggestions")
def suggestions_for_message(*, workspace_id: int, conversation_id: int, message_id: int) -> Event | None:
    """Loads from the database as a real source does; nothing to send once the workspace is gone."""
    workspace = Workspace.objects.filter(pk=workspace_id).first()
    if workspace is None:
        return None
    return suggestions_event(
        workspace_id=workspace.id,
        conversation_id=conversation_id,
        message_id=message_id,
        suggestions=sample_suggestions(workspace.name),
    )


@durable_task
def rank_message(workspace_id: int, conversation_id: int, message_id: int) -> dict:
    """Stands in for suggest_replies: stores its work, returns the ref its callback publishes."""
    Workspace.objects.filter(pk=workspace_id).update(name=f"ranked {message_id}")
    return event_ref(
        "test.suggestions", workspace_id=workspace_id, conversation_id=conversation_id, message_id=message_id
    )


@event_source("test.several")
def several(*, conversation_id: int, message_ids: list[int]) -> list[Event]:
    """Several events from one ref, as the conversations app's activity source returns them."""
    return [
        message_event(workspace_id=1, conversation_id=conversation_id, message={"id": message_id})
        for message_id in message_ids
    ]
