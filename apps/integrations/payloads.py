"""Intercom's payloads read into Cue's shapes: the webhook envelope, and conversations of both API generations.

Generation 1.x items carry `user`, `assignee` and `conversation_message`; 2.x items carry `source`,
`contacts`, `admin_assignee_id` and `teammates`. Both carry `conversation_parts` and `tags`.
"""

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from apps.conversations.data import ConversationData, MessageData
from project.html import html_to_text
from project.parsers import JSONDocumentError, json_loads

# The topics Cue mirrors; Intercom may send others an app subscribed to, which are acknowledged and dropped.
CONVERSATION_TOPICS = frozenset(
    {
        "conversation.user.created",
        "conversation.user.replied",
        "conversation.admin.replied",
        "conversation.admin.single.created",
        "conversation.admin.closed",
        "conversation.admin.assigned",
        "conversation.admin.noted",
        "conversation.admin.opened",
        "conversation.admin.snoozed",
        "conversation.admin.unsnoozed",
        "conversation.admin.open.assigned",
        "conversation.operator.replied",
    }
)
PING_TOPIC = "ping"

# Intercom's part types, in Cue's words; any other part type is kept as Intercom names it.
_PART_KINDS = {
    "comment": "comment",
    "note": "note",
    "assignment": "assignment",
    "default_assignment": "assignment",
    "away_mode_assignment": "assignment",
    "close": "close",
    "open": "open",
    "snoozed": "snooze",
    "unsnoozed": "unsnooze",
    "timer_unsnooze": "unsnooze",
}
# Teammate-only part types: their text is internal, never what the customer read.
_INTERNAL_PART_TYPES = frozenset({"note", "note_and_reopen"})
_STATES = frozenset({"open", "closed", "snoozed"})
_APP_HOSTS = {"us": "app.intercom.com", "eu": "app.eu.intercom.com", "au": "app.au.intercom.com"}


class PayloadError(ValueError):
    """A body that is not a webhook notification as Intercom documents it."""


@dataclass(frozen=True)
class Notification:
    app_id: str
    topic: str
    notification_id: str
    created_at: datetime | None
    item: dict


def _epoch(value: Any) -> datetime | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        return None
    return datetime.fromtimestamp(value, tz=UTC)


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def notification_parse(body: bytes) -> Notification:
    """The envelope of a (verified) webhook body, or PayloadError naming what is wrong."""
    try:
        # A lone surrogate escape (which PostgreSQL cannot store) becomes U+FFFD: the conversation is still mirrored.
        payload = json_loads(body, repair=True)
    except JSONDocumentError as exc:  # bad JSON, bad UTF-8, too deep
        raise PayloadError("The body is not JSON.") from exc
    if not isinstance(payload, dict) or payload.get("type") != "notification_event":
        raise PayloadError("The body is not an Intercom notification_event.")
    topic, app_id = payload.get("topic"), payload.get("app_id")
    if not isinstance(topic, str) or not topic:
        raise PayloadError("topic: a notification names its topic.")
    if not isinstance(app_id, str) or not app_id:
        raise PayloadError("app_id: a notification names its Intercom workspace.")
    data = payload.get("data")
    item = data.get("item") if isinstance(data, dict) else None
    if not isinstance(item, dict):
        raise PayloadError("data.item: a notification carries its object.")
    notification_id = payload.get("id")
    if topic != PING_TOPIC:
        if not isinstance(notification_id, str) or not notification_id or len(notification_id) > 100:
            raise PayloadError("id: a notification carries its id.")
        if topic in CONVERSATION_TOPICS and (item.get("type") != "conversation" or not _text(item.get("id"))):
            raise PayloadError("data.item: a conversation topic carries a conversation with an id.")
    return Notification(
        app_id=app_id,
        topic=topic,
        notification_id=notification_id or "",
        created_at=_epoch(payload.get("created_at")),
        item=item,
    )


def _author(author: Any) -> tuple[str, str, str]:
    if not isinstance(author, dict):
        return "", "", ""
    return _text(author.get("type")), _text(author.get("id")), _text(author.get("name"))


def part_kind(part_type: str, body: str) -> str:
    """Cue's kind of a part: an action part that carries text (reply-and-close, reply-and-assign...) is a comment.

    Intercom delivers a reply the teammate sent while closing, assigning, opening or snoozing the
    conversation as a part of that action's type with the reply as its body; the customer reads it
    like any comment, so learning, previews and history must too. Notes stay notes.
    """
    if part_type not in _INTERNAL_PART_TYPES and part_type != "comment" and body and html_to_text(body):
        return "comment"
    return _PART_KINDS.get(part_type, part_type or "unknown")


def _parts(item: dict) -> list[MessageData]:
    container = item.get("conversation_parts")
    parts = container.get("conversation_parts") if isinstance(container, dict) else container
    messages = []
    for part in parts if isinstance(parts, list) else []:
        if not isinstance(part, dict) or not _text(part.get("id")):
            continue
        author_type, author_id, author_name = _author(part.get("author"))
        body = _text(part.get("body"))
        messages.append(
            MessageData(
                intercom_part_id=_text(part["id"]),
                kind=part_kind(_text(part.get("part_type")), body),
                author_type=author_type,
                author_id=author_id,
                author_name=author_name,
                body_html=body,
                created_at=_epoch(part.get("created_at")),
            )
        )
    return messages


def _opening(message: Any, created_at: datetime | None, fallback_name: str) -> MessageData | None:
    """The message that opened the conversation (1.x conversation_message, 2.x source)."""
    if not isinstance(message, dict) or not _text(message.get("id")):
        return None
    author_type, author_id, author_name = _author(message.get("author"))
    return MessageData(
        intercom_part_id=f"source:{message['id']}",
        kind="comment",
        author_type=author_type,
        author_id=author_id,
        author_name=author_name or fallback_name,
        body_html=_text(message.get("body")),
        created_at=created_at,
    )


def _tags(item: dict) -> list[dict]:
    container = item.get("tags")
    tags = container.get("tags") if isinstance(container, dict) else container
    return [
        {"id": _text(t.get("id")), "name": _text(t.get("name"))}
        for t in (tags if isinstance(tags, list) else [])
        if isinstance(t, dict)
    ]


def _state(item: dict) -> str:
    state = item.get("state")
    if state in _STATES:
        return state
    return "open" if item.get("open") else "closed"


def conversation_url(*, app_id: str, region: str, conversation_id: str) -> str:
    host = _APP_HOSTS.get(region, _APP_HOSTS["us"])
    return f"https://{host}/a/apps/{app_id}/inbox/inbox/conversation/{conversation_id}"


def is_generation_2(item: dict) -> bool:
    return "source" in item or "contacts" in item or "admin_assignee_id" in item


def conversation_from_item(item: dict, *, app_id: str, region: str = "us") -> ConversationData:
    """A conversation item of either generation as ConversationData; PayloadError when it has no id."""
    intercom_id = _text(item.get("id"))
    if item.get("type") != "conversation" or not intercom_id:
        raise PayloadError("data.item is not a conversation with an id.")
    created_at = _epoch(item.get("created_at"))
    links = item.get("links") if isinstance(item.get("links"), dict) else {}
    url = _text(links.get("conversation_web")) or conversation_url(
        app_id=app_id, region=region, conversation_id=intercom_id
    )
    common = {
        "intercom_id": intercom_id,
        "state": _state(item),
        "created_at": created_at,
        "updated_at": _epoch(item.get("updated_at")) or created_at,
        "tags": _tags(item),
        "intercom_url": url[:500],
        "snoozed_until": _epoch(item.get("snoozed_until")),
    }
    if is_generation_2(item):
        source = item.get("source") if isinstance(item.get("source"), dict) else {}
        contacts = item.get("contacts") if isinstance(item.get("contacts"), dict) else {}
        contact_list = [c for c in contacts.get("contacts") or [] if isinstance(c, dict)]
        customer_id = _text(contact_list[0].get("id")) if contact_list else ""
        author = source.get("author") if isinstance(source.get("author"), dict) else {}
        # 2.x names the customer only where they wrote: the opening message, when it is theirs.
        is_customer = _text(author.get("type")) in {"user", "lead", "contact"}
        opening = _opening(source, created_at, "")
        return ConversationData(
            **common,
            subject=_text(item.get("title")) or _text(source.get("subject")),
            assignee_id=_text(item.get("admin_assignee_id")),
            team_assignee_id=_text(item.get("team_assignee_id")),
            customer_id=customer_id or (_text(author.get("id")) if is_customer else ""),
            customer_name=_text(author.get("name")) if is_customer else "",
            customer_email=_text(author.get("email")) if is_customer else "",
            messages=[*([opening] if opening else []), *_parts(item)],
        )
    user = item.get("user") if isinstance(item.get("user"), dict) else {}
    assignee = item.get("assignee") if isinstance(item.get("assignee"), dict) else {}
    message = item.get("conversation_message") if isinstance(item.get("conversation_message"), dict) else {}
    message_author = message.get("author") if isinstance(message.get("author"), dict) else {}
    user_name = _text(user.get("name")) if _text(message_author.get("id")) == _text(user.get("id")) else ""
    opening = _opening(message, created_at, user_name)
    return ConversationData(
        **common,
        subject=_text(message.get("subject")),
        assignee_id=_text(assignee.get("id")) if assignee.get("type") == "admin" else "",
        team_assignee_id=_text(assignee.get("id")) if assignee.get("type") == "team" else "",
        customer_id=_text(user.get("id")),
        customer_name=_text(user.get("name")),
        customer_email=_text(user.get("email")),
        messages=[*([opening] if opening else []), *_parts(item)],
    )
