"""The suggestions API: a conversation's suggestions, feedback (with sending), knowledge gaps and stats."""

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.integrations.models import OutboundReply, ReplyKind
from apps.knowledge.models import EntryEvidence
from apps.suggestions.models import KnowledgeGap, Suggestion, SuggestionStatus
from apps.suggestions.services import suggestions_create_for_message
from apps.tasks.models import TaskRun
from tests.integrations.conftest import TOKEN

SEND_REPLY = "apps.integrations.tasks.send_reply"


@pytest.fixture
def suggested(owner, kb, make_message):
    """A conversation with two customer messages, each with stored suggestions; returns (conversation, [m1, m2])."""
    first = make_message(owner.workspace_id, "how do I reset my password")
    second = make_message(owner.workspace_id, "where is my refund", conversation=first.conversation)
    for message in (first, second):
        assert suggestions_create_for_message(message_id=message.id) == "suggested"
    return first.conversation, [first, second]


@pytest.fixture
def connected(owner):
    from apps.integrations.models import IntercomConnection

    return IntercomConnection.objects.create(
        workspace=owner.workspace, app_id="app1", region="us", access_token=TOKEN, token_admin_id="1957471"
    )


def url_for(conversation) -> str:
    return f"/api/conversations/{conversation.id}/suggestions"


def feedback(client, suggestion, **data):
    return client.post(f"/api/suggestions/{suggestion.id}/feedback", data, format="json")


# ------------------------------------------------------------------------------
# Listing
# ------------------------------------------------------------------------------
def test_list_newest_message_first_best_first(agent_client, suggested, django_assert_max_num_queries):
    conversation, (first, second) = suggested
    with django_assert_max_num_queries(8):
        response = agent_client.get(url_for(conversation))
    assert response.status_code == 200
    results = response.json()["results"]
    assert [r["message_id"] for r in results] == sorted(
        [r["message_id"] for r in results], key=lambda m: m != second.id
    )
    assert results[0]["message_id"] == second.id
    mine = [r for r in results if r["message_id"] == second.id]
    assert [r["rank"] for r in mine] == sorted(r["rank"] for r in mine)
    top = results[0]
    assert set(top) >= {"id", "entry_id", "rank", "score", "status", "title", "body", "message_id", "conversation_id"}
    assert top["status"] == "shown" and top["conversation_id"] == conversation.id


def test_list_for_one_message_and_since(agent_client, suggested):
    conversation, (first, second) = suggested
    response = agent_client.get(url_for(conversation), {"message": first.id})
    assert {r["message_id"] for r in response.json()["results"]} == {first.id}

    Suggestion.objects.filter(message=first).update(created_at=timezone.now() - timedelta(hours=1))
    since = (timezone.now() - timedelta(minutes=5)).isoformat()
    response = agent_client.get(url_for(conversation), {"since": since})
    assert {r["message_id"] for r in response.json()["results"]} == {second.id}


def test_list_refuses_a_bad_since(agent_client, suggested):
    conversation, _ = suggested
    response = agent_client.get(url_for(conversation), {"since": "yesterday"})
    assert response.status_code == 400
    assert response.json()["error"]["fields"].keys() == {"since"}


def test_list_of_another_workspaces_conversation_is_404(other_owner_client, suggested):
    conversation, _ = suggested
    assert other_owner_client.get(url_for(conversation)).status_code == 404


# ------------------------------------------------------------------------------
# Feedback
# ------------------------------------------------------------------------------
def test_accept_records_evidence_and_the_same_verdict_again_is_a_no_op(agent_client, suggested):
    _, (first, _second) = suggested
    top = Suggestion.objects.get(message=first, rank=1)
    response = feedback(agent_client, top, action="accept")
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "accepted"
    assert EntryEvidence.objects.get().entry_id == top.entry_id
    decided_at = Suggestion.objects.get(pk=top.pk).decided_at

    again = feedback(agent_client, top, action="accept")
    assert again.status_code == 200
    assert Suggestion.objects.get(pk=top.pk).decided_at == decided_at
    assert EntryEvidence.objects.count() == 1


def test_a_different_verdict_on_a_decided_suggestion_is_409(agent_client, suggested):
    _, (first, _second) = suggested
    top = Suggestion.objects.get(message=first, rank=1)
    feedback(agent_client, top, action="dismiss")
    response = feedback(agent_client, top, action="accept")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "conflict"
    assert Suggestion.objects.get(pk=top.pk).status == SuggestionStatus.DISMISSED
    assert EntryEvidence.objects.get().action == "dismiss"


@pytest.mark.parametrize(
    "data,field",
    [
        ({"action": "love"}, "action"),
        ({}, "action"),
        ({"action": "accept", "send_as": "email"}, "send_as"),
        ({"action": "dismiss", "send_as": "reply"}, "send_as"),
    ],
)
def test_bad_feedback_is_400_and_nothing_is_stored(agent_client, suggested, connected, data, field):
    _, (first, _second) = suggested
    top = Suggestion.objects.get(message=first, rank=1)
    tasks_before = TaskRun.objects.count()
    response = feedback(agent_client, top, **data)
    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]
    assert Suggestion.objects.get(pk=top.pk).status == SuggestionStatus.SHOWN
    assert not EntryEvidence.objects.exists()
    assert not OutboundReply.objects.exists()
    assert TaskRun.objects.count() == tasks_before


def test_sending_without_intercom_is_400_and_nothing_is_stored(agent_client, suggested):
    _, (first, _second) = suggested
    top = Suggestion.objects.get(message=first, rank=1)
    response = feedback(agent_client, top, action="accept", send_as="reply")
    assert response.status_code == 400
    assert "Intercom is not connected" in response.json()["error"]["message"]
    assert Suggestion.objects.get(pk=top.pk).status == SuggestionStatus.SHOWN
    assert not EntryEvidence.objects.exists()
    assert not TaskRun.objects.filter(name=SEND_REPLY).exists()


@pytest.mark.parametrize("send_as,kind", [("reply", ReplyKind.COMMENT), ("note", ReplyKind.NOTE)])
def test_accept_and_send_queues_the_reply_task(agent_client, suggested, connected, send_as, kind):
    _, (first, _second) = suggested
    top = Suggestion.objects.get(message=first, rank=1)
    response = feedback(agent_client, top, action="accept", send_as=send_as)
    assert response.status_code == 200, response.content
    assert response.json()["sent_as"] == send_as
    reply = OutboundReply.objects.get()
    assert (reply.kind, reply.source, reply.source_id) == (kind, "suggestion", str(top.id))
    assert reply.body == top.body.strip()
    assert TaskRun.objects.get(name=SEND_REPLY).args == [reply.id]
    assert response.json()["reply"]["id"] == reply.id
    assert response.json()["reply"]["status"] in ("pending", "sent", "failed")
    # Asked again (a double click): no second reply.
    assert feedback(agent_client, top, action="accept", send_as=send_as).status_code == 200
    assert OutboundReply.objects.count() == 1


@pytest.mark.parametrize("request_id", ["r" * 65, "id\r\nX-Injected: 1"])
def test_accept_and_send_with_a_bad_request_id_queues_the_reply_under_a_fresh_one(
    agent_client, suggested, connected, request_id
):
    """The reply task's ledger row carries the request id: a bad one is replaced, not a 500 (varchar(64))."""
    _, (first, _second) = suggested
    top = Suggestion.objects.get(message=first, rank=1)
    response = agent_client.post(
        f"/api/suggestions/{top.id}/feedback",
        {"action": "accept", "send_as": "reply"},
        format="json",
        HTTP_X_REQUEST_ID=request_id,
    )
    assert response.status_code == 200, response.content
    used = response["X-Request-ID"]
    assert used != request_id and len(used) == 32
    assert TaskRun.objects.get(name=SEND_REPLY).correlation_id == used


def test_the_list_shows_how_a_sent_reply_went(agent_client, suggested, connected, django_assert_max_num_queries):
    """Intercom's refusal reaches the agent: the suggestion carries its reply's status and error."""
    conversation, (first, _second) = suggested
    top = Suggestion.objects.get(message=first, rank=1)
    assert feedback(agent_client, top, action="accept", send_as="reply").status_code == 200
    OutboundReply.objects.update(status="failed", error="Intercom refused: body too long")
    with django_assert_max_num_queries(5):
        rows = agent_client.get(url_for(conversation), {"message": first.id}).json()["results"]
    sent = next(row for row in rows if row["id"] == top.id)
    assert (sent["reply"]["status"], sent["reply"]["error"]) == ("failed", "Intercom refused: body too long")
    assert all(row["reply"] is None for row in rows if row["id"] != top.id)


def test_feedback_on_another_workspaces_suggestion_is_404(other_owner_client, suggested):
    _, (first, _second) = suggested
    top = Suggestion.objects.get(message=first, rank=1)
    assert feedback(other_owner_client, top, action="accept").status_code == 404
    assert Suggestion.objects.get(pk=top.pk).status == SuggestionStatus.SHOWN


# ------------------------------------------------------------------------------
# Gaps and stats
# ------------------------------------------------------------------------------
def test_gaps_list(agent_client, owner, kb, make_message, make_workspace, django_assert_max_num_queries):
    mine = make_message(owner.workspace_id, "Do you sponsor football clubs?")
    other = make_workspace("Other")
    theirs = make_message(other.workspace_id, "Do you sell umbrellas?")
    for message in (mine, theirs):
        suggestions_create_for_message(message_id=message.id)
    assert KnowledgeGap.objects.count() == 2
    with django_assert_max_num_queries(6):
        response = agent_client.get("/api/knowledge/gaps")
    assert response.status_code == 200
    [gap] = response.json()["results"]
    assert (gap["message_id"], gap["text"], gap["conversation_id"]) == (mine.id, mine.body_text, mine.conversation_id)


def test_stats_by_entry(agent_client, suggested, other_owner_client, django_assert_max_num_queries):
    _, (first, second) = suggested
    top = Suggestion.objects.get(message=first, rank=1)
    feedback(agent_client, top, action="accept")
    with django_assert_max_num_queries(7):
        response = agent_client.get("/api/suggestions/stats")
    assert response.status_code == 200
    body = response.json()
    total = Suggestion.objects.filter(workspace_id=top.workspace_id).count()
    assert body["totals"] == {"suggested": total, "accepted": 1, "dismissed": 0, "acceptance_rate": round(1 / total, 4)}
    row = next(r for r in body["results"] if r["entry_id"] == top.entry_id)
    suggested_count = Suggestion.objects.filter(entry_id=top.entry_id).count()
    assert row["accepted"] == 1 and row["acceptance_rate"] == round(1 / suggested_count, 4)
    other = other_owner_client.get("/api/suggestions/stats").json()
    assert other["results"] == [] and other["totals"]["suggested"] == 0
