"""The realtime topic tree: one per workspace, `<root>/<workspace_id>/…`, and what an agent may subscribe to."""

import re

from django.conf import settings

# AWS IoT Core's limits on a topic name; Mosquitto allows more, but one tree must work on both.
MAX_TOPIC_BYTES = 256
MAX_TOPIC_SLASHES = 7

# The branches under a workspace. Publishing anywhere else is refused, so nothing can be sent
# where no agent is allowed to listen.
CONVERSATIONS = "conversations"
AGENTS = "agents"
BRANCHES = (CONVERSATIONS, AGENTS)

_LEVEL = re.compile(r"[A-Za-z0-9_-]{1,64}")


class InvalidTopic(ValueError):
    """A topic that is not in the tree: wildcards, empty levels, unknown branches, or too long."""


def _level(value) -> str:
    text = str(value) if isinstance(value, (int, str)) and not isinstance(value, bool) else ""
    if not _LEVEL.fullmatch(text):
        raise InvalidTopic(f"{value!r} is not a topic level (1-64 letters, digits, '_' or '-')")
    return text


def _workspace_level(workspace_id) -> str:
    if isinstance(workspace_id, bool) or not isinstance(workspace_id, int) or workspace_id <= 0:
        raise InvalidTopic(f"workspace id must be a positive integer, not {workspace_id!r}")
    return str(workspace_id)


def workspace_root(workspace_id: int) -> str:
    return f"{settings.REALTIME_TOPIC_ROOT}/{_workspace_level(workspace_id)}"


def topic_for(*, workspace_id: int, suffix: str) -> str:
    """The full topic of an event: `<root>/<workspace_id>/<suffix>`, checked level by level."""
    levels = suffix.split("/") if isinstance(suffix, str) else [None]
    for level in levels:
        _level(level)
    if levels[0] not in BRANCHES:
        raise InvalidTopic(f"{suffix!r} is not under a known branch ({', '.join(BRANCHES)})")
    if levels[0] == AGENTS and len(levels) < 3:
        raise InvalidTopic(f"{suffix!r}: an agent's topics are agents/<user_id>/<name>")
    topic = f"{workspace_root(workspace_id)}/{suffix}"
    if len(topic.encode()) > MAX_TOPIC_BYTES or topic.count("/") > MAX_TOPIC_SLASHES:
        raise InvalidTopic(f"{topic!r} is over AWS IoT's limits ({MAX_TOPIC_BYTES} bytes, {MAX_TOPIC_SLASHES} '/')")
    return topic


def conversations_suffix() -> str:
    """The workspace's conversation list: new conversations and their state changes."""
    return CONVERSATIONS


def conversation_suffix(conversation_id, name: str) -> str:
    return f"{CONVERSATIONS}/{_level(conversation_id)}/{_level(name)}"


def agent_suffix(user_id: int, name: str) -> str:
    return f"{AGENTS}/{_level(user_id)}/{_level(name)}"


def subscribe_filters(*, workspace_id: int, user_id: int) -> list[str]:
    """What an agent subscribes to: the conversation list, every conversation's events, their own branch.

    `conversations` and `conversations/+/#` rather than one `conversations/#`: whether `#` also matches
    its parent level is where brokers differ (the MQTT spec says yes, AWS IoT's policy `topic/…/*` does
    not cover it); and not `conversations` beside `conversations/#`, since MQTT 3.1.1 lets a broker
    deliver a message once per matching filter (Mosquitto 2 sends it once; others need not).
    """
    root = workspace_root(workspace_id)
    return [f"{root}/{CONVERSATIONS}", f"{root}/{CONVERSATIONS}/+/#", f"{root}/{AGENTS}/{_level(user_id)}/#"]
