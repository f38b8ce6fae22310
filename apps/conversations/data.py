"""The shape a conversation arrives in, whatever its source's payload generation: what services.py stores."""

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class MessageData:
    intercom_part_id: str
    kind: str
    author_type: str = ""
    author_id: str = ""
    author_name: str = ""
    body_html: str = ""
    created_at: datetime | None = None


@dataclass(frozen=True)
class ConversationData:
    intercom_id: str
    state: str
    updated_at: datetime | None
    created_at: datetime | None = None
    subject: str = ""
    assignee_id: str = ""
    team_assignee_id: str = ""
    customer_id: str = ""
    customer_name: str = ""
    customer_email: str = ""
    tags: list[dict] = field(default_factory=list)
    intercom_url: str = ""
    snoozed_until: datetime | None = None
    messages: list[MessageData] = field(default_factory=list)
