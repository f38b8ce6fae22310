"""Learning from feedback: accepted entries rank higher for similar messages, dismissed lower, per workspace only."""

from apps.knowledge.selectors import entry_scores
from apps.suggestions.models import Suggestion, SuggestionStatus
from apps.suggestions.services import suggestion_feedback, suggestions_create_for_message

FIRST = "I want to cancel my order and get my money refunded"
LATER = "please cancel the order, I need the money refunded"


def ranked_titles(message) -> list[str]:
    return list(Suggestion.objects.filter(message=message).order_by("rank").values_list("title", flat=True))


def test_feedback_changes_the_order_for_later_messages(owner, kb, make_message):
    """Accept the runner-up and dismiss the winner a few times: a later message like them ranks them the other way."""
    first = make_message(owner.workspace_id, FIRST)
    suggestions_create_for_message(message_id=first.id)
    before = ranked_titles(first)
    assert len(before) >= 2, before
    winner, runner_up = before[0], before[1]

    for n in range(3):
        message = make_message(owner.workspace_id, f"{FIRST} {'now' * n}")
        suggestions_create_for_message(message_id=message.id)
        rows = {s.title: s for s in Suggestion.objects.filter(message=message)}
        suggestion_feedback(membership=owner, suggestion_id=rows[runner_up].id, action="accept")
        suggestion_feedback(membership=owner, suggestion_id=rows[winner].id, action="dismiss")

    later = make_message(owner.workspace_id, LATER)
    suggestions_create_for_message(message_id=later.id)
    after = ranked_titles(later)
    assert runner_up in after, after
    assert winner not in after or after.index(runner_up) < after.index(winner), (before, after)


def test_feedback_is_recorded_with_who_and_when(owner, kb, make_message):
    message = make_message(owner.workspace_id, "how do I reset my password")
    suggestions_create_for_message(message_id=message.id)
    top = Suggestion.objects.get(message=message, rank=1)
    suggestion, changed = suggestion_feedback(membership=owner, suggestion_id=top.id, action="accept")
    assert changed
    assert suggestion.status == SuggestionStatus.ACCEPTED
    assert suggestion.decided_by_id == owner.user_id
    assert suggestion.decided_at is not None
    evidence = top.entry.evidence.get()
    assert (evidence.message_ref, evidence.action, evidence.text) == (
        f"message:{message.id}",
        "accept",
        message.body_text,
    )


def test_one_workspaces_feedback_never_moves_anothers_ranking(make_workspace, make_kb, make_message):
    """A and B hold the same help centre; A's many acceptances change A's scores and leave B's exactly as they were."""
    a, b = make_workspace("Acme"), make_workspace("Bolt")
    kb_a, _kb_b = make_kb(a.workspace_id), make_kb(b.workspace_id)
    probe = "my order was cancelled, where is my money"
    b_before = entry_scores(workspace_id=b.workspace_id, text=probe)
    a_before = entry_scores(workspace_id=a.workspace_id, text=probe)
    target = kb_a["Change your invoice address"]
    for n in range(5):
        message = make_message(a.workspace_id, f"{probe} {n}")
        suggestions_create_for_message(message_id=message.id)
        # A's agents dismiss what they were shown and answer with the invoice entry instead.
        for suggestion in Suggestion.objects.filter(message=message).exclude(entry=target):
            suggestion_feedback(membership=a, suggestion_id=suggestion.id, action="dismiss")
        chosen, _ = Suggestion.objects.get_or_create(
            message=message,
            entry=target,
            defaults={
                "workspace_id": a.workspace_id,
                "conversation_id": message.conversation_id,
                "title": target.title,
                "body": target.body_html,
                "score": 0.0,
                "rank": 9,
            },
        )
        suggestion_feedback(membership=a, suggestion_id=chosen.id, action="accept")
    assert entry_scores(workspace_id=a.workspace_id, text=probe) != a_before, "A learnt"
    assert entry_scores(workspace_id=b.workspace_id, text=probe) == b_before, "B did not move"


def test_feedback_cannot_reach_another_workspaces_suggestion(make_workspace, make_kb, make_message):
    a, b = make_workspace("Acme"), make_workspace("Bolt")
    make_kb(b.workspace_id)
    message = make_message(b.workspace_id, "how do I reset my password")
    suggestions_create_for_message(message_id=message.id)
    theirs = Suggestion.objects.filter(message=message).first()
    try:
        suggestion_feedback(membership=a, suggestion_id=theirs.id, action="accept")
    except Suggestion.DoesNotExist:
        pass
    else:
        raise AssertionError("workspace A decided B's suggestion")
    theirs.refresh_from_db()
    assert theirs.status == SuggestionStatus.SHOWN
    assert not theirs.entry.evidence.exists()
