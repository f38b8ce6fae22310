"""Learning from agents' own replies: a reply typed in Intercom that repeats an entry teaches Cue like an accept.

Driven through the real webhook endpoint with signed payloads; the tasks it causes run inline after commit.
"""

import pytest

from apps.conversations.models import Message
from apps.integrations.models import IntercomAdmin
from apps.knowledge.models import Entry, EntryEvidence, LexemeStat
from apps.knowledge.selectors import REPLY_MATCH_MIN_OVERLAP, entry_matching_reply, entry_scores
from apps.knowledge.services import evidence_record
from apps.knowledge.text import text_overlap
from apps.suggestions.models import Suggestion, SuggestionStatus
from apps.suggestions.services import suggestion_feedback, suggestion_feedback_from_reply
from apps.tasks.models import TaskRun, TaskStatus
from tests.integrations.conftest import connect, connection, intercom_settings, post_webhook  # noqa: F401
from tests.integrations.intercom_payloads import ADMIN, Conversation
from tests.integrations.test_processing import deliver  # noqa: F401

pytestmark = pytest.mark.django_db

LEARN = "apps.suggestions.tasks.learn_from_reply"
# The "Reset your password" entry as an agent sends it by hand: its own greeting and signature around it.
TYPED_RESET = (
    "<p>Hi Rose, thanks for writing in!</p><p>To reset your password, open Settings, choose Security and click "
    "Forgot password. We email you a reset link that works for one hour.</p><p>Cheers, Cordelia</p>"
)
LOCKED_OUT = "<p>I am locked out of my account, the login page keeps saying my credentials are wrong</p>"
LATER = "locked out again: the login page says my credentials are wrong"


def learn_runs() -> list[TaskRun]:
    return list(TaskRun.objects.filter(name=LEARN).order_by("created_at"))


def customer_messages(workspace_id: int) -> list[Message]:
    return list(
        Message.objects.filter(workspace_id=workspace_id, author_type__in=["user", "lead"]).order_by(
            "created_at_intercom", "id"
        )
    )


def evidence(entry: Entry) -> list[tuple[str, str]]:
    return sorted(EntryEvidence.objects.filter(entry=entry).values_list("message_ref", "action"))


def cancelling_asked(post) -> tuple[Conversation, Message, Suggestion]:
    """A customer asks how to cancel an order; the "Cancel an order" entry is suggested (shown)."""
    conversation = Conversation(2)
    conversation.opening_body = "<p>How can I cancel my order before it ships?</p>"
    post(conversation.user_created())
    [asked] = Message.objects.filter(conversation__intercom_id=conversation.id, author_type="lead")
    return (
        conversation,
        asked,
        Suggestion.objects.select_related("entry").get(message=asked, entry__title="Cancel an order"),
    )


def rank_of(workspace_id: int, text: str, entry: Entry) -> int:
    scores = entry_scores(workspace_id=workspace_id, text=text)
    order = sorted(scores, key=lambda entry_id: (-scores[entry_id], entry_id))
    return order.index(entry.id) + 1 if entry.id in scores else len(order) + 1


@pytest.mark.parametrize("generation", [1, 2])
def test_a_typed_reply_repeating_an_entry_accepts_it_for_the_customer_message(
    connection,  # noqa: F811
    owner,
    kb,
    deliver,  # noqa: F811
    generation,
):
    """The customer's message becomes accepted evidence for the entry, and a later message like it ranks it higher."""
    workspace_id = connection.workspace_id
    target = kb["Reset your password"]
    IntercomAdmin.objects.create(workspace_id=workspace_id, intercom_id=ADMIN["id"], membership=owner)
    before_score = entry_scores(workspace_id=workspace_id, text=LATER).get(target.id, 0.0)
    before_rank = rank_of(workspace_id, LATER, target)

    conversation = Conversation(generation)
    conversation.opening_body = LOCKED_OUT
    deliver(conversation.user_created())
    deliver(conversation.admin_replied(TYPED_RESET))

    [asked] = customer_messages(workspace_id)
    assert evidence(target) == [(f"message:{asked.id}", "accept")]
    assert EntryEvidence.objects.count() == 1, "only that entry learnt"
    [run] = learn_runs()
    assert run.status == TaskStatus.SUCCEEDED
    assert run.workspace_id == workspace_id
    assert (run.result["status"], run.result["entry_id"], run.result["message_ids"]) == (
        "learnt",
        target.id,
        [asked.id],
    )
    suggested = Suggestion.objects.filter(message=asked, entry=target).first()
    if suggested is not None:  # it was on the agent's screen: the agent used it
        assert (suggested.status, suggested.decided_by_id, suggested.sent_as) == (
            SuggestionStatus.ACCEPTED,
            owner.user_id,
            "",
        )

    after_score = entry_scores(workspace_id=workspace_id, text=LATER).get(target.id, 0.0)
    assert after_score > before_score
    assert rank_of(workspace_id, LATER, target) <= before_rank
    assert rank_of(workspace_id, LATER, target) == 1


def test_a_shown_suggestion_the_agent_typed_out_is_marked_accepted(connection, kb, deliver):  # noqa: F811
    """No teammate mapping: accepted by nobody in particular, and the stats count it as used."""
    conversation, asked, shown = cancelling_asked(deliver)
    target = shown.entry
    assert shown.status == SuggestionStatus.SHOWN
    deliver(
        conversation.admin_replied(
            "<p>Hello!</p><p>You can cancel an order until it ships: open Orders, pick the order and press "
            "Cancel. A cancelled order is refunded in full.</p>"
        )
    )
    shown.refresh_from_db()
    assert (shown.status, shown.decided_by_id) == (SuggestionStatus.ACCEPTED, None)
    assert shown.decided_at is not None
    assert evidence(target) == [(f"message:{asked.id}", "accept")]
    others = Suggestion.objects.filter(message=asked).exclude(entry=target)
    assert all(s.status == SuggestionStatus.SHOWN for s in others), "the other suggestions stay undecided"


@pytest.mark.parametrize(
    "body",
    [
        "<p>Looking into it now, give me a minute.</p>",
        # The same topic in the agent's own words is not the entry's text.
        "<p>No worries, you can change your password from the security page in your settings.</p>",
        # Only a piece of the entry, inside a longer answer of the agent's own.
        "<p>Sorry for the trouble! I checked your account and it looks fine on our side. Could you try a "
        "different browser, and clear its cookies first? If that fails, click Forgot password and tell me "
        "whether the email arrives.</p>",
    ],
)
def test_a_reply_that_is_not_an_entry_teaches_nothing(connection, kb, deliver, body):  # noqa: F811
    conversation = Conversation(2)
    conversation.opening_body = LOCKED_OUT
    deliver(conversation.user_created())
    deliver(conversation.admin_replied(body))
    [run] = learn_runs()
    assert (run.status, run.result) == (TaskStatus.SUCCEEDED, {"status": "no_match"})
    assert not EntryEvidence.objects.exists()
    assert not Suggestion.objects.exclude(status=SuggestionStatus.SHOWN).exists()


def test_only_the_messages_since_the_agents_previous_reply_are_answered(connection, kb, deliver):  # noqa: F811
    """A burst of customer messages is answered together; what an earlier reply answered is not."""
    target = kb["Reset your password"]
    conversation = Conversation(1)
    conversation.opening_body = "<p>Where is my parcel?</p>"
    deliver(conversation.user_created())
    deliver(conversation.admin_replied("<p>It left our warehouse yesterday.</p>"))
    deliver(conversation.user_replied("<p>thanks. another thing</p>"))
    deliver(conversation.admin_noted("<p>Customer seems fine.</p>"))  # a note answers nothing
    deliver(conversation.user_replied(LOCKED_OUT))
    deliver(conversation.admin_replied(TYPED_RESET))
    parcel, another, locked = customer_messages(connection.workspace_id)
    assert evidence(target) == sorted([(f"message:{another.id}", "accept"), (f"message:{locked.id}", "accept")])
    assert [r.result["status"] for r in learn_runs()] == ["no_match", "learnt"]


def test_redelivery_and_reruns_learn_once(connection, kb, deliver, post_webhook):  # noqa: F811
    """The same notification again, the part in a later notification, the service run again: one piece of evidence."""
    target = kb["Reset your password"]
    conversation = Conversation(2)
    conversation.opening_body = LOCKED_OUT
    deliver(conversation.user_created())
    replied = conversation.admin_replied(TYPED_RESET)
    deliver(replied)
    target.refresh_from_db()
    learnt = (
        evidence(target),
        target.accepted_tokens,
        sorted(LexemeStat.objects.values_list("lexeme", "evidence_entries")),
    )
    assert learnt[0] and learnt[1] > 0, "the first delivery taught something"

    assert post_webhook(replied).json() == {"status": "duplicate"}
    again = dict(replied, id="notif_resent_with_the_same_part")
    # Intercom sends the part again in another notification: stored once, not dispatched again.
    assert deliver(again).json() == {"status": "accepted"}
    [run] = learn_runs()
    assert suggestion_feedback_from_reply(message_id=run.args[0])["status"] == "learnt"  # an operator's retry

    target.refresh_from_db()
    lexemes = sorted(LexemeStat.objects.values_list("lexeme", "evidence_entries"))
    assert (evidence(target), target.accepted_tokens, lexemes) == learnt
    assert EntryEvidence.objects.count() == 1


def test_accept_then_the_same_text_typed_counts_once(connection, owner, kb, deliver):  # noqa: F811
    """The agent clicked accept and also typed the entry (or Cue sent it and it came back): one verdict."""
    conversation, asked, shown = cancelling_asked(deliver)
    target = shown.entry
    suggestion_feedback(membership=owner, suggestion_id=shown.id, action="accept")
    target.refresh_from_db()
    accepted = (evidence(target), target.accepted_tokens)
    decided_at = Suggestion.objects.get(pk=shown.pk).decided_at

    deliver(conversation.admin_replied(target.body_html))
    [run] = learn_runs()
    assert run.result["status"] == "learnt"
    target.refresh_from_db()
    assert (evidence(target), target.accepted_tokens) == accepted
    shown.refresh_from_db()
    assert (shown.status, shown.decided_by_id, shown.decided_at) == (
        SuggestionStatus.ACCEPTED,
        owner.user_id,
        decided_at,
    )


def test_a_dismissal_is_not_overridden_by_a_typed_reply(connection, owner, kb, deliver):  # noqa: F811
    """What the agent said explicitly wins over what Cue infers from the text."""
    conversation, asked, shown = cancelling_asked(deliver)
    target = shown.entry
    suggestion_feedback(membership=owner, suggestion_id=shown.id, action="dismiss")
    deliver(conversation.admin_replied(target.body_html))
    assert evidence(target) == [(f"message:{asked.id}", "dismiss")]
    shown.refresh_from_db()
    assert shown.status == SuggestionStatus.DISMISSED


def test_a_reply_in_one_workspace_never_teaches_another(make_workspace, connect, make_kb, deliver):  # noqa: F811
    """Same help centre, same Intercom ids in both: A's reply makes evidence in A only, B's ranking is unmoved."""
    a, b = make_workspace("A"), make_workspace("B")
    connect(a, app_id="appaaaaa")
    connect(b, app_id="appbbbbb")
    kb_a, kb_b = make_kb(a.workspace_id), make_kb(b.workspace_id)
    in_a = Conversation(2, app_id="appaaaaa", conversation_id="555")
    in_b = Conversation(2, app_id="appbbbbb", conversation_id="555")
    in_b.source_id = in_a.source_id
    in_a.opening_body = in_b.opening_body = LOCKED_OUT
    deliver(in_b.user_created())
    b_before = entry_scores(workspace_id=b.workspace_id, text=LATER)

    deliver(in_a.user_created())
    deliver(in_a.admin_replied(TYPED_RESET))

    [asked_in_a] = customer_messages(a.workspace_id)
    assert evidence(kb_a["Reset your password"]) == [(f"message:{asked_in_a.id}", "accept")]
    assert not EntryEvidence.objects.filter(workspace_id=b.workspace_id).exists()
    assert not EntryEvidence.objects.filter(entry__in=kb_b.values()).exists()
    assert entry_scores(workspace_id=b.workspace_id, text=LATER) == b_before
    [run] = learn_runs()
    assert run.workspace_id == a.workspace_id


def test_odd_replies_store_nothing_and_raise_nothing(connection, kb, deliver):  # noqa: F811
    """Empty, image-only, a note or Intercom's bot repeating an entry, a conversation without a customer message."""
    entry_text = kb["Reset your password"].body_html
    conversation = Conversation(2)
    conversation.opening_body = LOCKED_OUT
    deliver(conversation.user_created())
    deliver(conversation.admin_replied(""))
    deliver(conversation.admin_replied('<p><img src="https://downloads.intercomcdn.com/i/o/1/screenshot.png"></p>'))
    deliver(conversation.admin_noted(entry_text))
    bot = {"id": "814860", "name": "Operator"}
    bot_replied = conversation.admin_replied(entry_text, admin=bot)
    for part in bot_replied["data"]["item"]["conversation_parts"]["conversation_parts"]:
        part["author"]["type"] = "bot"
    bot_replied["topic"] = "conversation.operator.replied"
    deliver(bot_replied)
    assert learn_runs() == [], "no agent reply with text: nothing to learn from"

    # An image with alt text is a reply with text, but no entry's.
    deliver(conversation.admin_replied('<p><img src="https://example.com/s.png" alt="screenshot"></p>'))
    assert [r.result for r in learn_runs()] == [{"status": "no_match"}]

    outbound = Conversation(2)
    outbound.opening_body = ""  # started by the team: no customer words
    deliver(outbound.user_created())
    deliver(outbound.admin_replied(entry_text))
    assert [r.result for r in learn_runs()][-1] == {"status": "nothing_answered"}
    assert all(r.status == TaskStatus.SUCCEEDED for r in learn_runs())
    assert not EntryEvidence.objects.exists()
    assert not Suggestion.objects.exclude(status=SuggestionStatus.SHOWN).exists()


def test_text_overlap_tolerates_greetings_and_tells_topics_apart():
    """The measure itself: an edited copy stays high, the same topic in other words stays low."""
    entry = (
        "To reset your password, open Settings, choose Security and click Forgot password. "
        "We email you a reset link that works for one hour."
    )
    assert text_overlap(entry, entry) == 1.0
    assert text_overlap(f"Hi Rose! {entry} Cheers, Cordelia", entry) >= 0.8
    assert text_overlap("You can change your password from the security page in your settings.", entry) < 0.3
    greeting, sign_off = "Hi there, thanks for reaching out to Acme support!", "Anything else? Best, the Acme team"
    twin = f"{greeting} We refund any order within 30 days, to your card in five to ten business days. {sign_off}"
    assert text_overlap(f"{greeting} {entry} {sign_off}", twin) < REPLY_MATCH_MIN_OVERLAP, "boilerplate is not the text"
    assert text_overlap("", entry) == 0.0
    assert text_overlap("Thanks!", "thanks") == 1.0


def test_an_inferred_verdict_never_replaces_a_recorded_one(connection, kb, deliver):  # noqa: F811
    """Evidence already recorded for (entry, message) some other way (no suggestion row) is kept as it is."""
    target = kb["Reset your password"]
    conversation = Conversation(2)
    conversation.opening_body = LOCKED_OUT
    deliver(conversation.user_created())
    [asked] = customer_messages(connection.workspace_id)
    evidence_record(
        workspace_id=connection.workspace_id,
        entry_id=target.id,
        message_ref=f"message:{asked.id}",
        text=asked.body_text,
        action="dismiss",
    )
    deliver(conversation.admin_replied(TYPED_RESET))
    assert learn_runs()[0].result["status"] == "learnt"
    assert evidence(target) == [(f"message:{asked.id}", "dismiss")]


def test_reply_matching_reads_only_the_workspaces_entries(make_workspace, make_kb):
    """Another workspace's entry given as a candidate is never matched, even by its exact text."""
    a, b = make_workspace("A"), make_workspace("B")
    theirs = make_kb(b.workspace_id)["Reset your password"]
    text = theirs.body_text
    assert entry_matching_reply(workspace_id=a.workspace_id, text=text, candidate_ids=[theirs.id]) is None
    match = entry_matching_reply(workspace_id=b.workspace_id, text=text)
    assert (match.entry_id, match.overlap) == (theirs.id, 1.0)


@pytest.mark.parametrize("generation", [1, 2])
@pytest.mark.parametrize("action", ["admin_closed", "admin_assigned", "admin_opened", "admin_snoozed"])
def test_a_reply_sent_with_an_action_is_an_agent_reply(connection, kb, deliver, generation, action):  # noqa: F811
    """Reply-and-close (assign, open, snooze): the part carries the reply as its body, and it teaches like a comment."""
    workspace_id = connection.workspace_id
    target = kb["Reset your password"]
    conversation = Conversation(generation)
    conversation.opening_body = LOCKED_OUT
    deliver(conversation.user_created())
    deliver(getattr(conversation, action)(body=TYPED_RESET))

    [asked] = customer_messages(workspace_id)
    reply = Message.objects.get(workspace_id=workspace_id, author_type="admin")
    assert reply.kind == "comment"
    assert evidence(target) == [(f"message:{asked.id}", "accept")]
    [run] = learn_runs()
    assert run.result["status"] == "learnt"
    assert reply.conversation.last_message_text.startswith("Hi Rose")


def test_an_action_without_text_and_a_note_are_no_replies(connection, kb, deliver):  # noqa: F811
    """A close without a body stays a close, and a note's text (even a typed entry) teaches nothing."""
    conversation = Conversation(2)
    conversation.opening_body = LOCKED_OUT
    deliver(conversation.user_created())
    deliver(conversation.admin_noted(TYPED_RESET))
    deliver(conversation.admin_closed(body="<p> </p>"))
    kinds = sorted(Message.objects.filter(author_type="admin").values_list("kind", flat=True))
    assert kinds == ["close", "note"]
    assert learn_runs() == []
    assert EntryEvidence.objects.count() == 0
