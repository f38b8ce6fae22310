"""Ranking a workspace's knowledge base against a customer message: the one entry point the suggestion step calls.

    entries_rank(workspace_id=..., text=message_html) -> [RankedEntry(entry_id, score, rank, title, body, ...)]

Scores are 0..1 (see scoring.py); entries under the workspace's threshold are left out, at most top_k
are returned. PostgreSQL ranks through its full-text index; any other database through a pure-Python
index with the same interface and formula.
"""

from collections import Counter
from dataclasses import dataclass

from django.db import connection

from apps.knowledge import semantic
from apps.knowledge.models import Entry, EvidenceTerm, IndexTotals
from apps.knowledge.ranking import scoring
from apps.knowledge.ranking.postgres import PostgresIndex
from apps.knowledge.ranking.python import PythonIndex
from project.html import html_to_text


@dataclass(frozen=True)
class RankedEntry:
    entry_id: int
    score: float
    rank: int
    title: str
    body: str
    body_text: str


@dataclass
class _Evidence:
    accepted: scoring.FieldPostings
    dismissed: scoring.FieldPostings
    accepted_df: dict[str, int]
    dismissed_df: dict[str, int]

    @property
    def entry_ids(self) -> set[int]:
        return set(self.accepted.tf) | set(self.dismissed.tf)


def _index_for(workspace_id: int):
    return PostgresIndex(workspace_id) if connection.vendor == "postgresql" else PythonIndex(workspace_id)


def analyze_message(*, workspace_id: int, text: str) -> Counter:
    """The lexemes of a (plain-text) message and their counts, as this database's index reads them."""
    return _index_for(workspace_id).analyze(text) if text else Counter()


def _evidence(workspace_id: int, lexemes: list[str]) -> _Evidence:
    """The evidence postings of the lexemes: accepted and dismissed profiles, with exact profile frequencies."""
    found = _Evidence(scoring.FieldPostings(), scoring.FieldPostings(), {}, {})
    rows = EvidenceTerm.objects.filter(workspace_id=workspace_id, lexeme__in=lexemes, entry__enabled=True).values_list(
        "entry_id", "lexeme", "accepted", "dismissed", "entry__accepted_tokens", "entry__dismissed_tokens"
    )
    for entry_id, lexeme, accepted, dismissed, accepted_length, dismissed_length in rows:
        for count, length, postings, df in (
            (accepted, accepted_length, found.accepted, found.accepted_df),
            (dismissed, dismissed_length, found.dismissed, found.dismissed_df),
        ):
            if count > 0:
                postings.tf.setdefault(entry_id, {})[lexeme] = float(count)
                postings.length[entry_id] = length
                df[lexeme] = df.get(lexeme, 0) + 1
    return found


def _totals(workspace_id: int) -> IndexTotals:
    return IndexTotals.objects.filter(workspace_id=workspace_id).first() or IndexTotals(workspace_id=workspace_id)


def _mean(tokens: int, documents: int) -> float:
    return tokens / documents if documents else 0.0


def entry_scores(*, workspace_id: int, text: str) -> dict[int, float]:
    """Every matching enabled entry's 0..1 score for the message (no threshold, no cut)."""
    message = html_to_text(text)[: scoring.MAX_MESSAGE_CHARS]
    index = _index_for(workspace_id)
    counts = index.analyze(message) if message else {}
    if not counts:
        return {}
    query = {lexeme: float(n) for lexeme, n in counts.items()}
    known = index.known(list(query))
    evidence = _evidence(workspace_id, list(query))
    # Misspelt words: read as the closest word the workspace knows (numbers are never guessed).
    unknown = [t for t in query if t not in known and t not in evidence.accepted_df and not t.isdigit()]
    if unknown:
        for term, (lexeme, similarity) in index.nearest(unknown).items():
            del query[term]
            query[lexeme] = max(query.get(lexeme, 0.0), similarity)
        added = [lexeme for lexeme in query if lexeme not in counts]
        if added:
            more = _evidence(workspace_id, added)
            for part in ("accepted", "dismissed"):
                for entry_id, tfs in getattr(more, part).tf.items():
                    getattr(evidence, part).tf.setdefault(entry_id, {}).update(tfs)
                getattr(evidence, part).length.update(getattr(more, part).length)
            evidence.accepted_df.update(more.accepted_df)
            evidence.dismissed_df.update(more.dismissed_df)
    lexemes = list(query)
    totals = _totals(workspace_id)
    accepted = scoring.field_scores(
        query,
        evidence.accepted,
        scoring.FieldStats(
            totals.accepted_profiles,
            _mean(totals.accepted_tokens, totals.accepted_profiles),
            evidence.accepted_df,
        ),
    )
    dismissed = scoring.field_scores(
        query,
        evidence.dismissed,
        scoring.FieldStats(
            totals.dismissed_profiles,
            _mean(totals.dismissed_tokens, totals.dismissed_profiles),
            evidence.dismissed_df,
        ),
    )
    body_stats = index.body_stats(lexemes, totals)  # first: it learns the frequencies postings choose by
    # The best entries by their evidence get their body scored too, even when their body was no candidate.
    learnt = set(sorted(accepted, key=accepted.__getitem__, reverse=True)[: scoring.EVIDENCE_BODY_LOOKUPS])
    body = scoring.field_scores(query, index.body_postings(lexemes, learnt), body_stats)
    words = scoring.combine(body, accepted)
    best_by_words = sorted(words, key=words.__getitem__, reverse=True)[: scoring.MEANING_RERANK_DEPTH]
    scores = scoring.with_meaning(words, _meaning_scores(workspace_id, query, best_by_words))
    return scoring.dismiss(scores, dismissed)


def _meaning_scores(workspace_id: int, query: dict[str, float], candidates) -> dict[int, float]:
    """How alike the message's meaning is to each candidate's: its text's meaning plus its accepted messages'.

    Only the entries the words ranked best are compared (MEANING_RERANK_DEPTH): meaning reorders the
    top of the list, it never makes ranking read the whole knowledge base.
    """
    message = semantic.meaning_of(dict.fromkeys(query, 1.0))  # a short message: each word once
    if not candidates or message is None:
        return {}
    rows = Entry.objects.filter(workspace_id=workspace_id, pk__in=list(candidates)).values_list(
        "id", "meaning", "accepted_meaning"
    )
    meanings = {
        entry_id: semantic.total(semantic.from_bytes(meaning), semantic.from_bytes(accepted_meaning))
        for entry_id, meaning, accepted_meaning in rows
    }
    return semantic.similarities(message, meanings)


def entries_rank(
    *, workspace_id: int, text: str, limit: int | None = None, threshold: float | None = None
) -> list[RankedEntry]:
    """The best entries for a customer message (HTML or text), best first, above the workspace's threshold.

    limit and threshold default to the workspace's KnowledgeSettings.
    """
    if limit is None or threshold is None:
        from apps.knowledge.selectors import knowledge_settings_get

        settings = knowledge_settings_get(workspace_id=workspace_id)
        limit = settings.top_k if limit is None else limit
        threshold = settings.suggestion_threshold if threshold is None else threshold
    scores = entry_scores(workspace_id=workspace_id, text=text)
    best = sorted(((s, i) for i, s in scores.items() if s >= threshold and s > 0), key=lambda p: (-p[0], p[1]))
    best = best[: max(0, limit)]
    if not best:
        return []
    entries = Entry.objects.only("title", "body_html", "body_text").in_bulk([entry_id for _, entry_id in best])
    return [
        RankedEntry(
            entry_id=entry_id,
            score=round(score, 4),
            rank=rank,
            title=entries[entry_id].title,
            body=entries[entry_id].body_html,
            body_text=entries[entry_id].body_text,
        )
        for rank, (score, entry_id) in enumerate(best, start=1)
        if entry_id in entries
    ]
