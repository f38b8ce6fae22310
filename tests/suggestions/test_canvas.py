"""The inbox app on real suggestions: it shows them, and a click is feedback the ranker learns from."""

import pytest

from apps.conversations.models import Conversation
from apps.integrations.models import OutboundReply
from apps.knowledge.models import EntryEvidence
from apps.suggestions.models import Suggestion, SuggestionStatus
from apps.suggestions.services import suggestions_create_for_message
from tests.integrations.conftest import connect, connection, intercom_settings  # noqa: F401 - shared fixtures
from tests.integrations.test_canvas import INIT, SUBMIT, canvas_request, components, post_canvas, submit_request  # noqa: F401


@pytest.fixture
def shown(connection, kb, make_message) -> list[Suggestion]:  # noqa: F811
    conversation = Conversation.objects.create(workspace_id=connection.workspace_id, intercom_id="123")
    message = make_message(connection.workspace_id, "how do I reset my password", conversation=conversation)
    suggestions_create_for_message(message_id=message.id)
    return list(Suggestion.objects.filter(message=message).order_by("rank"))


def test_initialize_shows_the_stored_suggestions(post_canvas, shown):  # noqa: F811
    ids = [c["id"] for c in components(post_canvas(INIT, canvas_request())) if c["type"] == "button"]
    assert f"send:{shown[0].id}" in ids


def test_send_accepts_and_links_the_reply(post_canvas, shown):  # noqa: F811
    top = shown[0]
    components(post_canvas(SUBMIT, submit_request(f"send:{top.id}")))
    top.refresh_from_db()
    reply = OutboundReply.objects.get()
    assert (top.status, top.sent_as, top.reply_id) == (SuggestionStatus.ACCEPTED, "reply", reply.id)
    assert EntryEvidence.objects.get().action == "accept"
    ids = [c["id"] for c in components(post_canvas(INIT, canvas_request())) if c["type"] == "button"]
    assert f"send:{top.id}" not in ids, "a decided suggestion leaves the sidebar"


def test_dismiss_is_a_dismissal(post_canvas, shown):  # noqa: F811
    top = shown[0]
    components(post_canvas(SUBMIT, submit_request(f"dismiss:{top.id}")))
    top.refresh_from_db()
    assert top.status == SuggestionStatus.DISMISSED
    assert EntryEvidence.objects.get().action == "dismiss"
    assert not OutboundReply.objects.exists()
