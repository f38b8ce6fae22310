"""Writes for conversations: mirror a conversation and its messages, newest state wins, each message once."""

import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from django.db import IntegrityError, transaction

from apps.conversations.data import ConversationData, MessageData
from apps.conversations.models import (
    AGENT_AUTHOR_TYPE,
    CUSTOMER_AUTHOR_TYPES,
    Conversation,
    ConversationState,
    Message,
)
from apps.realtime.events import event_ref
from apps.tasks.services import task_dispatch
from project.html import clean_html, html_to_text

logger = logging.getLogger(__name__)

# The suggestion step's contract: a durable task taking [message_id], filled in by apps.suggestions.
SUGGEST_REPLIES_TASK = "apps.suggestions.tasks.suggest_replies"
# Its callback: publishes the stored suggestions to the agents' realtime topic (the ref it returns).
PUBLISH_EVENT_TASK = "apps.realtime.tasks.publish_event"
# Learning from what an agent typed: a durable task taking [message_id] of a new agent reply, filled in by
# apps.suggestions (a reply that repeats an entry's text makes the customer's messages it answers evidence).
LEARN_FROM_REPLY_TASK = "apps.suggestions.tasks.learn_from_reply"
# The realtime source (apps.conversations.realtime) that publishes what one upsert changed.
ACTIVITY_EVENT_SOURCE = "conversation_activity"
# At most this many new messages of one event go out live (the newest): a first webhook for a long
# conversation may carry hundreds of parts, and the client fetches the thread from the REST API anyway.
MAX_LIVE_MESSAGES = 50
# A conversation event's `change` for a new state.
_STATE_CHANGES = {
    ConversationState.CLOSED: "closed",
    ConversationState.OPEN: "opened",
    ConversationState.SNOOZED: "snoozed",
}
# Message kinds whose text is a preview worth showing in a list.
_PREVIEW_KINDS = frozenset({"comment", "note"})
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_STATE_FIELDS = [
    "state",
    "subject",
    "assignee_id",
    "team_assignee_id",
    "customer_id",
    "customer_name",
    "customer_email",
    "tags",
    "intercom_url",
    "snoozed_until",
    "created_at_intercom",
    "updated_at_intercom",
    "last_event_at",
]
# What an agent sees of a conversation in the list; a change to any of them is worth an event (Intercom's
# own times alone are not: they move with events that change nothing an agent sees).
_VISIBLE_FIELDS = [
    *(f for f in _STATE_FIELDS if f not in ("created_at_intercom", "updated_at_intercom", "last_event_at")),
    "last_message_at",
    "last_message_text",
]


@dataclass(frozen=True)
class UpsertResult:
    conversation_id: int
    created: bool
    state_applied: bool
    new_message_ids: list[int]
    suggestion_message_ids: list[int]
    reply_message_ids: list[int]
    change: str | None = None

    def as_dict(self) -> dict:
        return {
            "conversation_id": self.conversation_id,
            "created": self.created,
            "state_applied": self.state_applied,
            "change": self.change,
            "new_message_ids": self.new_message_ids,
            "suggestion_message_ids": self.suggestion_message_ids,
            "reply_message_ids": self.reply_message_ids,
        }


def _version(updated_at: datetime | None, event_at: datetime | None) -> tuple[datetime, datetime]:
    return (updated_at or _EPOCH, event_at or _EPOCH)


def _apply_state(conversation: Conversation, data: ConversationData, event_at: datetime | None) -> None:
    conversation.state = data.state
    conversation.subject = data.subject[:500] or conversation.subject
    conversation.assignee_id = data.assignee_id
    conversation.team_assignee_id = data.team_assignee_id
    conversation.tags = data.tags
    conversation.intercom_url = data.intercom_url or conversation.intercom_url
    conversation.snoozed_until = data.snoozed_until
    conversation.created_at_intercom = data.created_at or conversation.created_at_intercom
    conversation.updated_at_intercom = data.updated_at
    conversation.last_event_at = event_at
    # A later payload may name the contact without name or email: never blank out what is known.
    conversation.customer_id = data.customer_id or conversation.customer_id
    conversation.customer_name = data.customer_name[:200] or conversation.customer_name
    conversation.customer_email = data.customer_email[:254] or conversation.customer_email


def _lock_or_create(
    *, workspace_id: int, data: ConversationData, event_at: datetime | None
) -> tuple[Conversation, bool]:
    """The conversation row, locked for this transaction, so events of one conversation apply one at a time."""
    lookup = {"workspace_id": workspace_id, "intercom_id": data.intercom_id}
    conversation = Conversation.objects.select_for_update().filter(**lookup).first()
    if conversation is not None:
        return conversation, False
    conversation = Conversation(**lookup)
    _apply_state(conversation, data, event_at)
    try:
        with transaction.atomic():
            conversation.save(force_insert=True)
        return conversation, True
    except IntegrityError:
        # Another worker created it first: take its row (and wait for its lock).
        return Conversation.objects.select_for_update().get(**lookup), False


def _message_row(conversation: Conversation, data: MessageData) -> Message:
    body_html = clean_html(data.body_html)
    return Message(
        conversation=conversation,
        workspace_id=conversation.workspace_id,
        intercom_part_id=data.intercom_part_id,
        author_type=data.author_type[:20],
        author_id=data.author_id[:64],
        author_name=data.author_name[:200],
        kind=data.kind[:40],
        body_html=body_html,
        body_text=html_to_text(body_html),
        created_at_intercom=data.created_at,
    )


def _visible(conversation: Conversation) -> dict:
    return {name: getattr(conversation, name) for name in _VISIBLE_FIELDS}


def conversation_change(*, before: dict | None, after: dict) -> str | None:
    """The most telling change between two `_visible` snapshots (None before: created), or None for none.

    A new state first (closed, opened, snoozed), then a new assignee, then anything else an agent sees.
    """
    if before is None:
        return "created"
    if before["state"] != after["state"]:
        return _STATE_CHANGES.get(after["state"], "updated")
    if (before["assignee_id"], before["team_assignee_id"]) != (after["assignee_id"], after["team_assignee_id"]):
        return "assigned"
    return "updated" if before != after else None


def _activity_publish(*, conversation: Conversation, change: str | None, new_messages: list[Message]) -> None:
    """Dispatch the one publish task that sends what this upsert changed, in order, after commit."""
    newest = sorted(new_messages, key=lambda m: (m.created_at_intercom or _EPOCH, m.id))[-MAX_LIVE_MESSAGES:]
    if change is None and not newest:
        return
    ref = event_ref(
        ACTIVITY_EVENT_SOURCE, conversation_id=conversation.id, change=change, message_ids=[m.id for m in newest]
    )
    task_dispatch(task=PUBLISH_EVENT_TASK, args=[ref], workspace_id=conversation.workspace_id)


def is_suggestion_trigger(message: Message) -> bool:
    """A customer's own words (not an action, not a teammate's or a bot's part) are what suggestions answer."""
    return message.kind == "comment" and message.author_type in CUSTOMER_AUTHOR_TYPES and bool(message.body_text)


def is_agent_reply(message: Message) -> bool:
    """What a teammate told the customer: an admin's comment with text (a note is internal, a bot is no agent)."""
    return message.kind == "comment" and message.author_type == AGENT_AUTHOR_TYPE and bool(message.body_text)


@transaction.atomic
def conversation_upsert_from_intercom(
    *, workspace_id: int, data: ConversationData, event_at: datetime | None = None, live: bool = True
) -> UpsertResult:
    """Mirror one event's view of a conversation.

    The conversation's state is replaced only when the event is at least as new as what is stored
    (by Intercom's updated_at, then the event's own time), so a late or repeated event never rolls
    it back. Messages are added once each whatever the order; what changed (the conversation, its new
    messages) is published to the agents, a NEW customer message dispatches the suggestion step, a NEW
    agent reply the learning from it (all after commit, through the task ledger).
    `live=False` (imported history) dispatches none of them: nobody waits for suggestions on a closed
    conversation, the importer learns from its new messages itself, and an import of thousands of old
    conversations would flood the agents' topics (the console's list shows them on its next load).
    """
    conversation, created = _lock_or_create(workspace_id=workspace_id, data=data, event_at=event_at)
    before = None if created else _visible(conversation)
    state_applied = created
    if not created and _version(data.updated_at, event_at) >= _version(
        conversation.updated_at_intercom, conversation.last_event_at
    ):
        _apply_state(conversation, data, event_at)
        state_applied = True

    by_part = {m.intercom_part_id: m for m in data.messages if m.intercom_part_id}
    known = set(
        Message.objects.filter(workspace_id=workspace_id, intercom_part_id__in=list(by_part)).values_list(
            "intercom_part_id", flat=True
        )
    )
    # The conversation row is locked, so no other worker inserts these parts meanwhile.
    new_messages = Message.objects.bulk_create(
        [_message_row(conversation, m) for part_id, m in by_part.items() if part_id not in known]
    )

    preview_changed = False
    for message in sorted(new_messages, key=lambda m: m.created_at_intercom or _EPOCH):
        if message.kind in _PREVIEW_KINDS and message.body_text:
            at = message.created_at_intercom or _EPOCH
            if conversation.last_message_at is None or at >= conversation.last_message_at:
                conversation.last_message_at = at
                conversation.last_message_text = message.body_text[:300]
                preview_changed = True

    fields: list[str] = []
    if state_applied and not created:
        fields += _STATE_FIELDS
    if preview_changed:
        fields += ["last_message_at", "last_message_text"]
    if fields:
        conversation.save(update_fields=[*fields, "updated_at"])

    # Agents hear of the change before any suggestion for it: this task is sent first.
    change = conversation_change(before=before, after=_visible(conversation))
    if live:
        _activity_publish(conversation=conversation, change=change, new_messages=new_messages)
    triggers = [m.id for m in new_messages if is_suggestion_trigger(m)] if live else []
    for message_id in triggers:
        task_dispatch(
            task=SUGGEST_REPLIES_TASK, args=[message_id], workspace_id=workspace_id, callback=PUBLISH_EVENT_TASK
        )
    replies = [m.id for m in new_messages if is_agent_reply(m)] if live else []
    for message_id in replies:
        task_dispatch(task=LEARN_FROM_REPLY_TASK, args=[message_id], workspace_id=workspace_id)
    logger.info(
        "conversation mirrored",
        extra={
            "workspace_id": workspace_id,
            "conversation_id": conversation.id,
            "conversation_created": created,
            "state_applied": state_applied,
            "change": change,
            "new_messages": len(new_messages),
            "suggestions_dispatched": len(triggers),
            "replies_dispatched": len(replies),
        },
    )
    return UpsertResult(
        conversation_id=conversation.id,
        created=created,
        state_applied=state_applied,
        new_message_ids=[m.id for m in new_messages],
        suggestion_message_ids=triggers,
        reply_message_ids=replies,
        change=change,
    )
