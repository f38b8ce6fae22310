"""Ranking on meaning as well as words: the word vectors, entries' stored meanings, and their backfill."""

import importlib

import pytest

from apps.knowledge import semantic
from apps.knowledge.models import Entry
from apps.knowledge.ranking import scoring
from apps.knowledge.selectors import entry_scores
from apps.knowledge.services import entry_create, entry_update, evidence_record
from apps.knowledge.text import lexemes_of

# Two entries that share the message's only known word ("account"); only meaning tells them apart.
ACCOUNT_ENTRIES = [
    ("Upgrade your account", "To upgrade your account to Premium, open Settings, choose Account and press "
     "Upgrade. The new plan starts at once."),
    ("Close your account", "To close your account for good, open Settings, choose Account and press Close. "
     "Your data is erased after 30 days."),
]  # fmt: skip


def test_the_word_vectors_place_synonyms_near_each_other():
    refund = semantic.meaning_of(lexemes_of("refund"))
    assert semantic.cosine(refund, semantic.meaning_of(lexemes_of("reimbursement"))) > 0.4
    assert semantic.cosine(refund, semantic.meaning_of(lexemes_of("password"))) < 0.2
    assert semantic.meaning_of(lexemes_of("zxqvbnm")) is None
    assert semantic.cosine(None, refund) == 0.0


def test_common_words_count_for_less_than_rare_ones():
    rows = semantic.word_vectors().rows
    assert rows["the"][0] < rows["refund"][0] <= 1.0


def test_a_damaged_vector_file_is_refused(tmp_path):
    good = semantic.VECTORS_FILE.read_bytes()
    truncated = tmp_path / "truncated.bin"
    truncated.write_bytes(good[:-10])
    with pytest.raises(ValueError, match="truncated"):
        semantic.word_vectors.__wrapped__(truncated)
    foreign = tmp_path / "foreign.bin"
    foreign.write_bytes(b"not vectors\n")
    with pytest.raises(ValueError, match="not a Cue word-vector file"):
        semantic.word_vectors.__wrapped__(foreign)


@pytest.mark.django_db
def test_a_synonym_finds_its_entry_where_words_alone_cannot(owner, index_kind, monkeypatch):
    ws = owner.workspace_id
    upgrade, close = (entry_create(workspace_id=ws, title=t, body=b).id for t, b in ACCOUNT_ENTRIES)
    message = "how do I delete my account"
    scores = entry_scores(workspace_id=ws, text=message)
    assert scores[close] > scores[upgrade]
    monkeypatch.setattr(scoring, "MEANING_WEIGHT", 0.0)
    words_only = entry_scores(workspace_id=ws, text=message)
    assert words_only[close] <= words_only[upgrade]


@pytest.mark.django_db
def test_meaning_only_reorders_what_the_words_found(owner, index_kind):
    """An entry sharing no word with the message is never read for its meaning (bounded work)."""
    ws = owner.workspace_id
    entry_create(workspace_id=ws, title="Refunds", body="We refund any order within 30 days.")
    assert entry_scores(workspace_id=ws, text="reimbursement") == {}


@pytest.mark.django_db
def test_entries_keep_their_meaning_in_step_with_their_text(owner):
    ws = owner.workspace_id
    entry = entry_create(workspace_id=ws, title="Refunds", body="We refund any order within 30 days.")
    stored = Entry.objects.get(pk=entry.pk).meaning
    assert semantic.from_bytes(stored) == semantic.meaning_of(lexemes_of("Refunds") + lexemes_of(entry.body_text))
    entry_update(entry=entry, body="Reset your password from the sign-in page.")
    changed = semantic.from_bytes(Entry.objects.get(pk=entry.pk).meaning)
    password = semantic.meaning_of(lexemes_of("password"))
    assert semantic.cosine(changed, password) > semantic.cosine(semantic.from_bytes(stored), password)


@pytest.mark.django_db
def test_accepted_messages_add_to_the_entrys_meaning_and_a_changed_verdict_takes_it_back(owner):
    ws = owner.workspace_id
    entry = entry_create(workspace_id=ws, title="Refunds", body="We refund any order within 30 days.")
    evidence_record(workspace_id=ws, entry_id=entry.id, message_ref="m1", text="money back please", action="accept")
    one = semantic.from_bytes(Entry.objects.get(pk=entry.pk).accepted_meaning)
    assert one is not None
    evidence_record(workspace_id=ws, entry_id=entry.id, message_ref="m2", text="parcel lost", action="accept")
    two = semantic.from_bytes(Entry.objects.get(pk=entry.pk).accepted_meaning)
    assert two != one
    evidence_record(workspace_id=ws, entry_id=entry.id, message_ref="m2", text="parcel lost", action="dismiss")
    back = semantic.from_bytes(Entry.objects.get(pk=entry.pk).accepted_meaning)
    assert back == pytest.approx(one, abs=1e-4)
    evidence_record(workspace_id=ws, entry_id=entry.id, message_ref="m1", text="money back please", action="dismiss")
    assert Entry.objects.get(pk=entry.pk).accepted_meaning is None


@pytest.mark.django_db
def test_the_backfill_fills_entries_written_before_meanings_and_can_run_again(owner):
    ws = owner.workspace_id
    entry = entry_create(workspace_id=ws, title="Refunds", body="We refund any order within 30 days.")
    evidence_record(workspace_id=ws, entry_id=entry.id, message_ref="m1", text="money back please", action="accept")
    expected = Entry.objects.values_list("meaning", "accepted_meaning").get(pk=entry.pk)
    Entry.objects.filter(pk=entry.pk).update(meaning=None, accepted_meaning=None)
    migration = importlib.import_module("apps.knowledge.migrations.0004_entry_meaning_backfill")
    from django.apps import apps

    migration.backfill(apps, None)
    filled = Entry.objects.values_list("meaning", "accepted_meaning").get(pk=entry.pk)
    assert semantic.from_bytes(filled[0]) == semantic.from_bytes(expected[0])
    assert semantic.from_bytes(filled[1]) == pytest.approx(semantic.from_bytes(expected[1]), abs=1e-4)
    migration.backfill(apps, None)  # nothing left to fill: a second run changes nothing
    assert Entry.objects.values_list("meaning", "accepted_meaning").get(pk=entry.pk) == filled


@pytest.mark.django_db
def test_meaning_reads_only_the_best_entries_by_words(owner, monkeypatch):
    ws = owner.workspace_id
    upgrade, close = (entry_create(workspace_id=ws, title=t, body=b).id for t, b in ACCOUNT_ENTRIES)
    message = "how do I delete my account"
    monkeypatch.setattr(scoring, "MEANING_WEIGHT", 0.0)
    words = entry_scores(workspace_id=ws, text=message)
    monkeypatch.setattr(scoring, "MEANING_WEIGHT", 0.5)
    monkeypatch.setattr(scoring, "MEANING_RERANK_DEPTH", 1)
    scores = entry_scores(workspace_id=ws, text=message)
    best, other = sorted(words, key=lambda entry_id: (-words[entry_id], entry_id))
    assert scores[other] == pytest.approx(0.5 * words[other]), "below the depth: its words alone"
    assert scores[best] > 0.5 * words[best], "within the depth: its meaning counts too"
