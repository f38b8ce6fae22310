"""Reads for conversations: the workspace's list with filters and search, one conversation, its messages."""

from collections.abc import Iterable
from datetime import datetime

from django.db.models import Exists, F, OuterRef, Q, QuerySet, Subquery

from apps.accounts.models import Workspace
from apps.conversations.models import AGENT_AUTHOR_TYPE, CUSTOMER_AUTHOR_TYPES, Conversation, Message
from apps.integrations.models import IntercomAdmin


def _latest_comment_at(author_types: Iterable[str]) -> Subquery:
    """When the conversation's newest comment with text by one of `author_types` was written (Intercom's time)."""
    comments = Message.objects.filter(
        workspace_id=OuterRef("workspace_id"),
        conversation=OuterRef("pk"),
        kind="comment",
        author_type__in=author_types,
        created_at_intercom__isnull=False,
    ).exclude(body_text="")
    return Subquery(comments.order_by("-created_at_intercom").values("created_at_intercom")[:1])


def with_inbox_fields(conversations: QuerySet[Conversation]) -> QuerySet[Conversation]:
    """What an inbox row shows beyond the conversation's own columns, in the same query: the assignee's name
    (synced teammates), when the customer last wrote and when a teammate last replied."""
    assignee = IntercomAdmin.objects.filter(workspace_id=OuterRef("workspace_id"), intercom_id=OuterRef("assignee_id"))
    return conversations.annotate(
        assignee_name=Subquery(assignee.values("name")[:1]),
        last_customer_message_at=_latest_comment_at(sorted(CUSTOMER_AUTHOR_TYPES)),
        last_agent_reply_at=_latest_comment_at([AGENT_AUTHOR_TYPE]),
    )


def conversation_list(
    *,
    workspace: Workspace,
    state: str | None = None,
    assignee_ids: list[str] | None = None,
    updated_since: datetime | None = None,
    q: str | None = None,
) -> QuerySet[Conversation]:
    """Newest activity first. `assignee_ids=[""]` means unassigned; `q` searches the messages' text and the
    customer's name and email."""
    conversations = Conversation.objects.filter(workspace=workspace)
    if state:
        conversations = conversations.filter(state=state)
    if assignee_ids is not None:
        conversations = conversations.filter(assignee_id__in=assignee_ids)
    if updated_since is not None:
        conversations = conversations.filter(updated_at_intercom__gte=updated_since)
    if q:
        matching = Message.objects.filter(workspace=workspace, conversation=OuterRef("pk"), body_text__icontains=q)
        conversations = conversations.filter(
            Q(Exists(matching)) | Q(customer_name__icontains=q) | Q(customer_email__icontains=q)
        )
    return with_inbox_fields(conversations).order_by("-updated_at_intercom", "-id")


def conversation_get(*, workspace: Workspace, conversation_id: int, inbox_fields: bool = False) -> Conversation:
    """The workspace's conversation, or Conversation.DoesNotExist (another workspace's id is unknown here);
    with `inbox_fields`, annotated as a list row is (with_inbox_fields)."""
    conversations = Conversation.objects.filter(workspace=workspace)
    if inbox_fields:
        conversations = with_inbox_fields(conversations)
    return conversations.get(pk=conversation_id)


def conversation_as_listed(*, conversation_id: int) -> Conversation | None:
    """The conversation as a row of its workspace's list (with all the list adds), for a worker handed its id.

    Built on conversation_list, so a realtime event carries exactly what GET /api/conversations shows.
    """
    workspace_id = Conversation.objects.filter(pk=conversation_id).values_list("workspace_id", flat=True).first()
    if workspace_id is None:
        return None
    return conversation_list(workspace=Workspace(pk=workspace_id)).filter(pk=conversation_id).first()


def messages_by_ids(*, conversation: Conversation, message_ids: list[int]) -> list[Message]:
    """Those of the conversation's messages named, in the thread's order (deleted ones left out)."""
    return list(message_list(conversation=conversation).filter(pk__in=message_ids))


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
