"""Reads for conversations: the workspace's list with filters and search, one conversation, its messages."""

from datetime import datetime

from django.db.models import Exists, F, OuterRef, QuerySet

from apps.accounts.models import Workspace
from apps.conversations.models import AGENT_AUTHOR_TYPE, CUSTOMER_AUTHOR_TYPES, Conversation, Message


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


def messages_answered_by(*, reply: Message, limit: int) -> list[Message]:
    """The customer's messages an agent's reply answers, oldest first.

    Those the customer wrote (comments with text) before the reply and after the agent's previous reply
    in the conversation, the newest `limit` of them: what the customer asked since they were last
    answered. A note or a bot's part is no answer, so it does not close the window. Ordered by
    Intercom's time; a reply without one cannot be placed, and answers nothing.
    """
    if reply.created_at_intercom is None:
        return []
    earlier = Message.objects.filter(
        workspace_id=reply.workspace_id,
        conversation_id=reply.conversation_id,
        kind="comment",
        created_at_intercom__lt=reply.created_at_intercom,
    ).exclude(body_text="")
    previous_reply_at = (
        earlier.filter(author_type=AGENT_AUTHOR_TYPE)
        .order_by("-created_at_intercom")
        .values_list("created_at_intercom", flat=True)
        .first()
    )
    asked = earlier.filter(author_type__in=CUSTOMER_AUTHOR_TYPES)
    if previous_reply_at is not None:
        asked = asked.filter(created_at_intercom__gt=previous_reply_at)
    return list(reversed(asked.order_by("-created_at_intercom", "-id")[:limit]))
