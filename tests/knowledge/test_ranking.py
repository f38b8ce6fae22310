"""Ranking a small hand-written knowledge base, on PostgreSQL's index and the pure-Python one alike."""

import pytest
from django.db import connection

from apps.knowledge.models import Entry, EntryEvidence, IndexTotals, LexemeStat
from apps.knowledge.selectors import entries_rank, entry_scores
from apps.knowledge.services import entry_create, entry_delete, entry_update, evidence_record

pytestmark = pytest.mark.django_db


def titles(ranked) -> list[str]:
    return [r.title for r in ranked]


def rank(workspace_id, text, **kw):
    return entries_rank(workspace_id=workspace_id, text=text, **{"limit": 5, "threshold": 0.0, **kw})


def test_the_matching_entry_ranks_first(owner, kb, index_kind):
    ws = owner.workspace_id
    assert titles(rank(ws, "How do I reset my password?"))[0] == "Reset your password"
    assert titles(rank(ws, "when will my refund reach my card"))[0] == "Refunds"
    assert titles(rank(ws, "how long does express shipping take"))[0] == "Shipping times"
    assert titles(rank(ws, "please cancel my order 113542617735902"))[0] == "Cancel an order"


def test_a_long_natural_message_still_matches(owner, kb, index_kind):
    """Words the knowledge base never uses do not stop a match (no AND of every term)."""
    message = (
        "Hi there, good morning! I hope you are well. My grandmother bought me a lovely sweater but honestly "
        "I would like my money back, how long until the refund is on my card? Thanks so much, Bob"
    )
    assert titles(rank(owner.workspace_id, message))[0] == "Refunds"


def test_scores_are_between_0_and_1_best_first_and_limited(owner, kb, index_kind):
    ranked = rank(owner.workspace_id, "refund my cancelled order", limit=3)
    assert 1 <= len(ranked) <= 3
    scores = [r.score for r in ranked]
    assert scores == sorted(scores, reverse=True)
    assert all(0 < s <= 1 for s in scores)
    assert [r.rank for r in ranked] == list(range(1, len(ranked) + 1))
    assert {"entry_id", "score", "rank", "title", "body", "body_text"} <= set(vars(ranked[0]))


def test_threshold_cuts_weak_matches(owner, kb, index_kind):
    ws = owner.workspace_id
    everything = rank(ws, "refund my cancelled order")
    cut = (everything[0].score + everything[-1].score) / 2
    kept = rank(ws, "refund my cancelled order", threshold=cut)
    assert 0 < len(kept) < len(everything)
    assert all(r.score >= cut for r in kept)
    assert rank(ws, "refund my cancelled order", threshold=1.0) == []


def test_workspace_settings_give_the_default_threshold_and_k(owner, kb, index_kind):
    from apps.knowledge.services import knowledge_settings_update

    ws = owner.workspace_id
    knowledge_settings_update(workspace_id=ws, top_k=1, suggestion_threshold=0.0)
    assert len(entries_rank(workspace_id=ws, text="refund my cancelled order")) == 1
    knowledge_settings_update(workspace_id=ws, top_k=5, suggestion_threshold=1.0)
    assert entries_rank(workspace_id=ws, text="refund my cancelled order") == []


def test_html_in_the_message_is_stripped(owner, kb, index_kind):
    """Markup and script contents never count as the customer's words."""
    html = "<div><p>I <b>forgot</b> my&nbsp;<i>password</i></p><script>refund refund invoice</script></div>"
    ranked = rank(owner.workspace_id, html)
    assert titles(ranked)[0] == "Reset your password"
    assert "Refunds" not in titles(ranked)


@pytest.mark.parametrize("message", ["", "   ", "<p></p>", "the and of it is", "!!! ??? ...", "12345678901"])
def test_empty_or_wordless_messages_get_nothing(owner, kb, index_kind, message):
    assert rank(owner.workspace_id, message) == []


def test_a_huge_message_is_ranked_without_error(owner, kb, index_kind):
    message = "please reset my password " + " ".join(f"filler{i}" for i in range(60_000))
    assert titles(rank(owner.workspace_id, message))[0] == "Reset your password"


@pytest.mark.parametrize(
    "message",
    ["Как сбросить пароль?", "如何重置密码", "كيف يمكنني إعادة تعيين كلمة المرور", "🙂🙂🙂", "Passwort zurücksetzen"],
)
def test_non_english_messages_do_not_crash(owner, kb, index_kind, message):
    ranked = rank(owner.workspace_id, message)
    assert all(0 < r.score <= 1 for r in ranked)


def test_non_english_entries_can_match(owner, make_kb, index_kind):
    make_kb(
        owner.workspace_id,
        [("Пароль", "Чтобы сбросить пароль, откройте настройки."), ("Доставка", "Доставка занимает три дня.")],
    )
    assert titles(rank(owner.workspace_id, "как сбросить пароль"))[0] == "Пароль"


def test_misspelt_words_still_find_the_entry(owner, kb, index_kind):
    """A typo is read as the closest word the knowledge base knows (trigram similarity)."""
    assert titles(rank(owner.workspace_id, "pasword resset"))[0] == "Reset your password"
    assert titles(rank(owner.workspace_id, "shiping tiem"))[0] == "Shipping times"


def test_disabled_entries_are_never_suggested(owner, kb, index_kind):
    entry_update(entry=kb["Reset your password"], enabled=False)
    assert "Reset your password" not in titles(rank(owner.workspace_id, "reset my password"))


def test_edits_and_deletes_change_the_ranking(owner, kb, index_kind):
    ws = owner.workspace_id
    entry_update(entry=kb["Shipping times"], body="Parcels to the moon take a fortnight.")
    assert titles(rank(ws, "parcel to the moon"))[0] == "Shipping times"
    entry_delete(entry=kb["Refunds"])
    assert "Refunds" not in titles(rank(ws, "refund"))


# ------------------------------------------------------------------------------
# Learning from feedback
# ------------------------------------------------------------------------------

ASKS = [
    "my parcel never came, I want my money back",
    "parcel lost, money back please",
    "where is my money, the parcel never arrived",
]


def test_accepted_messages_lift_their_entry(owner, kb, index_kind):
    """Before feedback another entry wins; after agents accept Refunds for messages like it, Refunds wins."""
    ws = owner.workspace_id
    message = "the parcel never arrived and I want my money back"
    before = entry_scores(workspace_id=ws, text=message)
    refunds = kb["Refunds"].id
    assert not before or max(before, key=before.get) != refunds
    for n, text in enumerate(ASKS):
        evidence_record(workspace_id=ws, entry_id=refunds, message_ref=f"m{n}", text=text, action="accept")
    after = entry_scores(workspace_id=ws, text=message)
    assert max(after, key=after.get) == refunds
    assert after[refunds] > before.get(refunds, 0)


def test_misspellings_of_learnt_words_match_the_evidence(owner, kb, index_kind):
    """A word only accepted messages used (never an entry) is known too: its typos still find the entry."""
    ws, refunds = owner.workspace_id, kb["Refunds"].id
    evidence_record(workspace_id=ws, entry_id=refunds, message_ref="m1", text="parcel vanished", action="accept")
    ranked = rank(ws, "parcl vanishd")
    assert titles(ranked)[0] == "Refunds"


def test_dismissals_count_against(owner, kb, index_kind):
    ws = owner.workspace_id
    message = "I forgot my password"
    entry = kb["Reset your password"].id
    before = entry_scores(workspace_id=ws, text=message)[entry]
    evidence_record(workspace_id=ws, entry_id=entry, message_ref="m1", text="forgot my password", action="dismiss")
    after = entry_scores(workspace_id=ws, text=message)[entry]
    assert after < before


def test_feedback_in_one_workspace_never_moves_another(owner, make_workspace, make_kb, index_kind):
    """Workspace A teaches its ranker; workspace B, with the same knowledge base, ranks exactly as before."""
    other = make_workspace()
    a, b = make_kb(owner.workspace_id), make_kb(other.workspace_id)
    message = "the parcel never arrived and I want my money back"
    b_before = entry_scores(workspace_id=other.workspace_id, text=message)
    for n, text in enumerate(ASKS * 3):
        evidence_record(
            workspace_id=owner.workspace_id, entry_id=a["Refunds"].id, message_ref=f"m{n}", text=text, action="accept"
        )
    assert entry_scores(workspace_id=other.workspace_id, text=message) == b_before
    assert set(b_before) <= {e.id for e in b.values()}


def test_feedback_cannot_target_another_workspaces_entry(owner, make_workspace, make_kb):
    other = make_workspace()
    foreign = make_kb(other.workspace_id)["Refunds"]
    with pytest.raises(Entry.DoesNotExist):
        evidence_record(
            workspace_id=owner.workspace_id, entry_id=foreign.id, message_ref="m1", text="money back", action="accept"
        )
    assert not EntryEvidence.objects.exists()


def test_feedback_is_one_verdict_per_message(owner, kb):
    """Recording the same verdict twice counts once; a changed verdict moves the words to the other side."""
    ws, entry = owner.workspace_id, kb["Refunds"]
    for _ in range(2):
        evidence_record(workspace_id=ws, entry_id=entry.id, message_ref="m1", text="refund money back", action="accept")
    entry.refresh_from_db()
    assert entry.accepted_tokens == 3
    totals = IndexTotals.objects.get(workspace_id=ws)
    assert (totals.accepted_profiles, totals.accepted_tokens) == (1, 3)
    evidence_record(workspace_id=ws, entry_id=entry.id, message_ref="m1", text="refund money back", action="dismiss")
    entry.refresh_from_db()
    assert (entry.accepted_tokens, entry.dismissed_tokens) == (0, 3)
    totals.refresh_from_db()
    assert (totals.accepted_profiles, totals.dismissed_profiles) == (0, 1)
    assert EntryEvidence.objects.count() == 1


def test_bad_feedback_is_refused(owner, kb):
    from django.core.exceptions import ValidationError

    entry = kb["Refunds"]
    with pytest.raises(ValidationError):
        evidence_record(workspace_id=owner.workspace_id, entry_id=entry.id, message_ref="m", text="x", action="love")
    with pytest.raises(ValidationError):
        evidence_record(workspace_id=owner.workspace_id, entry_id=entry.id, message_ref=" ", text="x", action="accept")
    assert not EntryEvidence.objects.exists()


def test_deleting_an_entry_removes_its_evidence_from_the_totals(owner, kb):
    ws, entry = owner.workspace_id, kb["Refunds"]
    evidence_record(workspace_id=ws, entry_id=entry.id, message_ref="m1", text="refund money back", action="accept")
    entry_delete(entry=entry)
    totals = IndexTotals.objects.get(workspace_id=ws)
    assert (totals.entries, totals.accepted_profiles, totals.accepted_tokens) == (len(kb) - 1, 0, 0)


# ------------------------------------------------------------------------------
# PostgreSQL's statistics stay true
# ------------------------------------------------------------------------------


def _true_document_frequencies(workspace_id) -> dict[str, int]:
    with connection.cursor() as cursor:
        # ts_stat takes its query as text; the id is an int, so formatting it in is safe.
        inner = f"SELECT search_vector FROM knowledge_entry WHERE workspace_id = {int(workspace_id)}"  # noqa: S608
        cursor.execute("SELECT word, ndoc FROM ts_stat(%s)", [inner])
        return dict(cursor.fetchall())


def test_lexeme_statistics_follow_every_write(owner, kb):
    """After creates, an edit and a delete, the kept frequencies equal a full recount (ts_stat)."""
    ws = owner.workspace_id
    entry_update(entry=kb["Refunds"], title="Money back", body="Refunds take ten days. Refund refund.")
    entry_delete(entry=kb["Shipping times"])
    entry_create(workspace_id=ws, title="Gift cards", body="Gift cards never expire.")
    kept = dict(LexemeStat.objects.filter(workspace_id=ws, df__gt=0).values_list("lexeme", "df"))
    assert kept == _true_document_frequencies(ws)
    totals = IndexTotals.objects.get(workspace_id=ws)
    assert totals.entries == Entry.objects.filter(workspace_id=ws).count()
    assert totals.entry_tokens == sum(Entry.objects.filter(workspace_id=ws).values_list("token_count", flat=True))
