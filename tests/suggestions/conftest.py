"""Suggestion fixtures: a workspace with a small help centre, conversations and customer messages."""

import itertools

import pytest

from apps.conversations.models import Conversation, Message
from tests.knowledge.conftest import kb, make_kb  # noqa: F401 - the knowledge tests' help centre, shared

_parts = itertools.count(1)


@pytest.fixture
def make_message():
    """A customer's comment in a conversation of the workspace (a new conversation unless one is given)."""

    def make(workspace_id: int, text: str, *, conversation=None, author_type="user", kind="comment") -> Message:
        n = next(_parts)
        conversation = conversation or Conversation.objects.create(workspace_id=workspace_id, intercom_id=f"c{n}")
        return Message.objects.create(
            conversation=conversation,
            workspace_id=workspace_id,
            intercom_part_id=f"p{n}",
            author_type=author_type,
            kind=kind,
            body_html=f"<p>{text}</p>",
            body_text=text,
        )

    return make
