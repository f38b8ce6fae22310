"""The suggestion step: rank, store once however often it is delivered, record gaps, hand the ref to publishing."""

import json

from apps.conversations.services import SUGGEST_REPLIES_TASK
from apps.realtime.tasks import publish_event
from apps.suggestions.models import KnowledgeGap, Suggestion, SuggestionStatus
from apps.suggestions.services import suggestions_create_for_message
from apps.suggestions.tasks import suggest_replies
from apps.tasks.models import TaskRun, TaskStatus
from apps.tasks.registry import task_get

PUBLISH = "apps.realtime.tasks.publish_event"


def test_the_task_name_is_the_contract():
    assert suggest_replies.name == SUGGEST_REPLIES_TASK == "apps.suggestions.tasks.suggest_replies"
    assert task_get(SUGGEST_REPLIES_TASK) is suggest_replies


def test_stores_ranked_suggestions_for_a_customer_message(owner, kb, make_message):
    message = make_message(owner.workspace_id, "How do I reset my password? I forgot it.")
    assert suggestions_create_for_message(message_id=message.id) == "suggested"
    rows = list(Suggestion.objects.filter(message=message).order_by("rank"))
    assert rows, "a message about passwords finds the password entry"
    assert rows[0].entry_id == kb["Reset your password"].id
    assert rows[0].title == "Reset your password"
    assert [r.rank for r in rows] == list(range(1, len(rows) + 1))
    assert all(r.status == SuggestionStatus.SHOWN for r in rows)
    assert rows[0].conversation_id == message.conversation_id
    assert not KnowledgeGap.objects.exists()


def test_a_message_without_a_good_match_is_a_knowledge_gap(owner, kb, make_message):
    message = make_message(owner.workspace_id, "Do you sponsor football clubs?")
    assert suggestions_create_for_message(message_id=message.id) == "gap"
    gap = KnowledgeGap.objects.get()
    assert (gap.message_id, gap.workspace_id, gap.text) == (message.id, owner.workspace_id, message.body_text)
    assert not Suggestion.objects.exists()
    assert suggestions_create_for_message(message_id=message.id) == "already"
    assert KnowledgeGap.objects.count() == 1


def test_only_customer_comments_are_answered(owner, kb, make_message):
    teammate = make_message(owner.workspace_id, "reset your password", author_type="admin")
    note = make_message(owner.workspace_id, "reset your password", kind="note")
    assert suggestions_create_for_message(message_id=teammate.id) == "not_customer"
    assert suggestions_create_for_message(message_id=note.id) == "not_customer"
    assert suggestions_create_for_message(message_id=10**9) == "missing"
    assert not Suggestion.objects.exists() and not KnowledgeGap.objects.exists()


def test_calling_twice_stores_once(owner, kb, make_message):
    message = make_message(owner.workspace_id, "my refund has not arrived on my card")
    suggestions_create_for_message(message_id=message.id)
    first = list(Suggestion.objects.values_list("id", "entry_id", "rank"))
    assert suggestions_create_for_message(message_id=message.id) == "already"
    assert list(Suggestion.objects.values_list("id", "entry_id", "rank")) == first


def test_redelivered_through_sns_stores_once_and_publishes_once(sns, owner, kb, make_message):
    """Every SNS message delivered three times, and the step dispatched twice: one set of rows, one publish each."""
    message = make_message(owner.workspace_id, "How long does express shipping take?")
    for _ in range(2):
        suggest_replies.dispatch(args=[message.id], workspace_id=owner.workspace_id, callback=publish_event)
    delivered = sns.run_all(times=3)
    names = [json.loads(m)["args"][0]["task"] for m in delivered]
    assert sorted(names) == sorted([SUGGEST_REPLIES_TASK] * 2 + [PUBLISH] * 2)
    rows = Suggestion.objects.filter(message=message)
    assert rows.count() == len({r.entry_id for r in rows}) > 0
    assert rows.order_by("rank").first().title == "Shipping times"
    runs = TaskRun.objects.filter(name=SUGGEST_REPLIES_TASK)
    assert {r.status for r in runs} == {TaskStatus.SUCCEEDED}
    assert [r.result for r in runs] == [{"source": "suggestions", "message_id": message.id}] * 2
    assert TaskRun.objects.filter(name=PUBLISH, status=TaskStatus.SUCCEEDED).count() == 2


def test_a_gap_publishes_nothing_and_the_callback_succeeds(sns, owner, kb, make_message):
    message = make_message(owner.workspace_id, "Do you sponsor football clubs?")
    suggest_replies.dispatch(args=[message.id], workspace_id=owner.workspace_id, callback=publish_event)
    sns.run_all()
    publish = TaskRun.objects.get(name=PUBLISH)
    assert (publish.status, publish.result) == (TaskStatus.SUCCEEDED, None)
    assert KnowledgeGap.objects.filter(message=message).exists()
