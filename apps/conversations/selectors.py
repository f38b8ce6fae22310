"""Reads for conversations: the workspace's list with filters and search, one conversation, its messages."""

from datetime import datetime

from django.db.models import Exists, F, OuterRef, QuerySet

from apps.accounts.models import Workspace
from apps.conversations.models import Conversation, Message


def conversation_list(
    *,
    workspace: Workspace,
    state: str | None = None,
    assignee_ids: list[str] | None = None,
    updated_since: datetime | None = None,
    q: str | None = None,
) -> QuerySet[Conversation]:
    """Newest activity first. `assignee_ids=[""]` means unassigned; `q` searches the messages' text."""
    conversations = Conversation.objects.filter(workspace=workspace)
    if state:
        conversations = conversations.filter(state=state)
    if assignee_ids is not None:
        conversations = conversations.filter(assignee_id__in=assignee_ids)
    if updated_since is not None:
        conversations = conversations.filter(updated_at_intercom__gte=updated_since)
    if q:
        matching = Message.objects.filter(workspace=workspace, conversation=OuterRef("pk"), body_text__icontains=q)
        conversations = conversations.filter(Exists(matching))
    return conversations.order_by("-updated_at_intercom", "-id")


def conversation_get(*, workspace: Workspace, conversation_id: int) -> Conversation:
    """The workspace's conversation, or Conversation.DoesNotExist (another workspace's id is unknown here)."""
    return Conversation.objects.get(workspace=workspace, pk=conversation_id)


def message_list(*, conversation: Conversation) -> QuerySet[Message]:
    return Message.objects.filter(conversation=conversation, workspace_id=conversation.workspace_id).order_by(
        F("created_at_intercom").asc(nulls_first=True), "id"
    )
