"""Intercom webhook payloads in the shapes Intercom documents and sends, both generations, signed as Intercom signs.

Generation 1 (API 1.x webhooks): the item has `user`, `assignee`, `conversation_message`,
`links.conversation_web`. Generation 2 (API 2.x): the item has `source`, `contacts`,
`admin_assignee_id`, `team_assignee_id`, `teammates`, `statistics`, ... Both wrap it in the
same notification envelope. Signatures are computed here independently of Cue's code.
"""

import hashlib
import hmac
import itertools
import json
import uuid

APP_ID = "i6wc9ipe"
APP_SECRET = "cue-public-app-client-secret"
ADMIN = {"id": "1957471", "name": "Cordelia Lear", "email": "cordelia@example.com"}
OTHER_ADMIN = {"id": "5017691", "name": "Iago Ancient", "email": "iago@example.com"}
TEAM_ID = "2741863"
CUSTOMER = {"id": "5c9553cb27e377f24eed49f7", "name": "Rose Poodle", "email": "rose@customer.example"}

_ids = itertools.count(2824382500)


def hub_signature(secret: str, body: bytes) -> str:
    return "sha1=" + hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()


def body_signature(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def encode(payload: dict) -> bytes:
    # Intercom sends compact JSON; any byte change breaks the signature, so tests post these exact bytes.
    return json.dumps(payload, separators=(",", ":")).encode()


def notification(topic: str, item: dict, *, app_id: str = APP_ID, created_at: int, notification_id: str | None = None):
    return {
        "type": "notification_event",
        "app_id": app_id,
        "data": {"type": "notification_event_data", "item": item},
        "links": {},
        "id": notification_id or f"notif_{uuid.uuid4()}",
        "topic": topic,
        "delivery_status": "pending",
        "delivery_attempts": 1,
        "delivered_at": 0,
        "first_sent_at": created_at + 1,
        "created_at": created_at,
        "self": None,
    }


def ping(app_id: str = APP_ID, created_at: int = 1553288147) -> dict:
    return {
        "type": "notification_event",
        "app_id": app_id,
        "data": {"type": "notification_event_data", "item": {"type": "ping", "message": "something interzen"}},
        "links": {},
        "id": None,
        "topic": "ping",
        "delivery_status": None,
        "delivery_attempts": 1,
        "delivered_at": 0,
        "first_sent_at": created_at,
        "created_at": created_at,
        "self": None,
    }


def part_v1(part_type: str, *, author: dict, author_type: str, body: str | None, created_at: int, assigned_to=None):
    """A conversation part as API 1.x webhooks carry it."""
    return {
        "type": "conversation_part",
        "id": str(next(_ids)),
        "part_type": part_type,
        "body": body,
        "created_at": created_at,
        "updated_at": created_at,
        "notified_at": created_at,
        "assigned_to": assigned_to,
        "author": {"type": author_type, "id": author["id"], "name": author.get("name")},
        "attachments": [],
        "external_id": None,
    }


def part_v2(part_type: str, *, author: dict, author_type: str, body: str | None, created_at: int, assigned_to=None):
    """A conversation part as API 2.x webhooks carry it: 1.x's fields and more."""
    part = part_v1(
        part_type, author=author, author_type=author_type, body=body, created_at=created_at, assigned_to=assigned_to
    )
    part["author"] |= {"email": author.get("email", ""), "from_ai_agent": False, "is_ai_answer": False}
    return part | {
        "redacted": False,
        "metadata": {},
        "email_message_metadata": None,
        "state": "open",
        "tags": [],
        "event_details": {},
        "app_package_code": None,
    }


class Conversation:
    """One Intercom conversation as its webhooks describe it over time, in generation 1 or 2.

    Each method returns the notification for one topic, with the conversation's state after
    that event (as Intercom sends it: the whole conversation plus the new part).
    """

    def __init__(self, generation: int, *, app_id: str = APP_ID, conversation_id: str | None = None, start=1553290198):
        assert generation in (1, 2)
        self.generation = generation
        self.app_id = app_id
        self.id = conversation_id or str(next(_ids) * 10)
        self.source_id = str(next(_ids))
        self.created_at = start
        self.clock = start
        self.state = "open"
        self.assignee: dict | None = None
        self.snoozed_until: int | None = None
        self.tags: list[dict] = []
        self.opening_body = "<p>Hello! My <b>invoice</b> is wrong &amp; I was charged twice.</p>"

    def _tick(self, seconds: int = 60) -> int:
        self.clock += seconds
        return self.clock

    def _part(self, part_type, *, author, author_type, body, assigned_to=None):
        make = part_v1 if self.generation == 1 else part_v2
        return make(
            part_type, author=author, author_type=author_type, body=body, created_at=self.clock, assigned_to=assigned_to
        )

    def item(self, parts: list[dict]) -> dict:
        if self.generation == 1:
            return self._item_v1(parts)
        return self._item_v2(parts)

    def _item_v1(self, parts: list[dict]) -> dict:
        assignee = (
            {"type": "admin", "id": self.assignee["id"], "name": self.assignee["name"], "email": self.assignee["email"]}
            if self.assignee
            else {"type": "nobody_admin", "id": None}
        )
        return {
            "type": "conversation",
            "id": self.id,
            "created_at": self.created_at,
            "updated_at": self.clock,
            "user": {
                "type": "user",
                "id": CUSTOMER["id"],
                "user_id": "75067020-1204-495c-8edc-abb7d88bdd43",
                "name": CUSTOMER["name"],
                "email": CUSTOMER["email"],
                "do_not_track": None,
            },
            "assignee": assignee,
            "conversation_message": {
                "type": "conversation_message",
                "id": self.source_id,
                "url": "https://customer.example/pricing",
                "subject": "",
                "body": self.opening_body,
                "author": {"type": "user", "id": CUSTOMER["id"]},
                "attachments": [],
            },
            "conversation_parts": {
                "type": "conversation_part.list",
                "conversation_parts": parts,
                "total_count": len(parts),
            },
            "open": self.state != "closed",
            "state": self.state,
            "snoozed_until": self.snoozed_until,
            "read": True,
            "metadata": {},
            "tags": {"type": "tag.list", "tags": [{"type": "tag", **t} for t in self.tags]},
            "tags_added": {"type": "tag.list", "tags": []},
            "links": {"conversation_web": f"https://app.intercom.io/a/apps/{self.app_id}/conversations/{self.id}"},
        }

    def _item_v2(self, parts: list[dict]) -> dict:
        return {
            "type": "conversation",
            "id": self.id,
            "created_at": self.created_at,
            "updated_at": self.clock,
            "waiting_since": self.created_at,
            "snoozed_until": self.snoozed_until,
            "source": {
                "type": "conversation",
                "id": self.source_id,
                "delivered_as": "customer_initiated",
                "subject": "",
                "body": self.opening_body,
                "author": {"type": "lead", "id": CUSTOMER["id"], "name": CUSTOMER["name"], "email": CUSTOMER["email"]},
                "attachments": [],
                "url": "https://customer.example/pricing",
                "redacted": False,
            },
            "contacts": {
                "type": "contact.list",
                "contacts": [{"type": "contact", "id": CUSTOMER["id"], "external_id": "cust-42"}],
            },
            "first_contact_reply": {"created_at": self.created_at, "type": "conversation", "url": None},
            "admin_assignee_id": int(self.assignee["id"]) if self.assignee else None,
            "team_assignee_id": None,
            "open": self.state != "closed",
            "state": self.state,
            "read": False,
            "tags": {"type": "tag.list", "tags": [{"type": "tag", **t, "applied_at": self.clock} for t in self.tags]},
            "priority": "not_priority",
            "sla_applied": None,
            "statistics": {"type": "conversation_statistics", "count_reopens": 0, "count_conversation_parts": 3},
            "conversation_rating": None,
            "teammates": {
                "type": "admin.list",
                "admins": [{"type": "admin", "id": self.assignee["id"]}] if self.assignee else [],
            },
            "title": "",
            "custom_attributes": {},
            "topics": {"type": "topic.list", "topics": [], "total_count": 0},
            "ticket": None,
            "linked_objects": {"type": "list", "data": [], "total_count": 0, "has_more": False},
            "ai_agent": None,
            "ai_agent_participated": False,
            "conversation_parts": {
                "type": "conversation_part.list",
                "conversation_parts": parts,
                "total_count": len(parts),
            },
        }

    def _notify(self, topic: str, parts: list[dict], **kwargs) -> dict:
        return notification(topic, self.item(parts), app_id=self.app_id, created_at=self.clock + 1, **kwargs)

    # --------------------------------------------------------------------------
    # One method per topic Cue subscribes to
    # --------------------------------------------------------------------------
    def user_created(self, **kwargs) -> dict:
        return self._notify("conversation.user.created", [], **kwargs)

    def user_replied(self, body: str = "<p>Any news?</p>", **kwargs) -> dict:
        self._tick()
        author_type = "user" if self.generation == 1 else "lead"
        part = self._part("comment", author=CUSTOMER, author_type=author_type, body=body)
        return self._notify("conversation.user.replied", [part], **kwargs)

    def admin_replied(self, body: str = "<p>Looking into it now.</p>", admin=ADMIN, **kwargs) -> dict:
        self._tick()
        part = self._part("comment", author=admin, author_type="admin", body=body)
        return self._notify("conversation.admin.replied", [part], **kwargs)

    def admin_noted(self, body: str = "<p>Refund approved by finance.</p>", **kwargs) -> dict:
        self._tick()
        return self._notify(
            "conversation.admin.noted", [self._part("note", author=ADMIN, author_type="admin", body=body)], **kwargs
        )

    def admin_assigned(self, to: dict = ADMIN, body: str | None = None, **kwargs) -> dict:
        """Assigned; with a body, the teammate replied and assigned in one go (Intercom's "reply and assign")."""
        self._tick()
        self.assignee = to
        part = self._part(
            "assignment",
            author=ADMIN,
            author_type="admin",
            body=body,
            assigned_to={"type": "admin", "id": to["id"], "name": to["name"]},
        )
        return self._notify("conversation.admin.assigned", [part], **kwargs)

    def admin_closed(self, body: str | None = None, **kwargs) -> dict:
        """Closed; with a body, the teammate replied and closed in one go (the part is a `close` with the reply)."""
        self._tick()
        self.state = "closed"
        return self._notify(
            "conversation.admin.closed", [self._part("close", author=ADMIN, author_type="admin", body=body)], **kwargs
        )

    def admin_opened(self, body: str | None = None, **kwargs) -> dict:
        self._tick()
        self.state = "open"
        self.snoozed_until = None
        return self._notify(
            "conversation.admin.opened", [self._part("open", author=ADMIN, author_type="admin", body=body)], **kwargs
        )

    def admin_snoozed(self, body: str | None = None, **kwargs) -> dict:
        self._tick()
        self.state = "snoozed"
        self.snoozed_until = self.clock + 86400
        part = self._part("snoozed", author=ADMIN, author_type="admin", body=body)
        return self._notify("conversation.admin.snoozed", [part], **kwargs)

    def tag(self, tag_id: str, name: str) -> None:
        self.tags.append({"id": tag_id, "name": name})
