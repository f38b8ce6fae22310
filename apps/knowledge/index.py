"""Keeps the ranking statistics in step with entry writes: document frequencies (PostgreSQL) and totals.

Services call entries_unindexed() before they change or delete entries and entries_indexed() after they
write them, inside the same transaction, so the statistics never count a half-applied change.
"""

from django.db import connection
from django.db.models import F

from apps.knowledge.models import IndexTotals, LexemeStat

# Rows are upserted in lexeme order so concurrent imports into one workspace lock them in the same order.
_ADD_SQL = """
    INSERT INTO knowledge_lexemestat (workspace_id, lexeme, df, evidence_entries)
    SELECT %s, lexeme, count(*), 0 FROM knowledge_entry e, unnest(tsvector_to_array(e.search_vector)) AS lexeme
    WHERE e.id = ANY(%s) GROUP BY lexeme ORDER BY lexeme
    ON CONFLICT (workspace_id, lexeme) DO UPDATE SET df = knowledge_lexemestat.df + EXCLUDED.df
"""
_SUBTRACT_SQL = """
    UPDATE knowledge_lexemestat s SET df = s.df - counted.n
    FROM (
        SELECT lexeme, count(*) AS n FROM knowledge_entry e, unnest(tsvector_to_array(e.search_vector)) AS lexeme
        WHERE e.id = ANY(%s) GROUP BY lexeme
    ) AS counted
    WHERE s.workspace_id = %s AND s.lexeme = counted.lexeme
"""


def totals_change(*, workspace_id: int, **deltas: int) -> None:
    """Add deltas (entries=1, entry_tokens=120, ...) to the workspace's totals row, creating it if needed."""
    deltas = {name: value for name, value in deltas.items() if value}
    if not deltas:
        return
    updated = IndexTotals.objects.filter(workspace_id=workspace_id).update(
        **{name: F(name) + value for name, value in deltas.items()}
    )
    if not updated:
        IndexTotals.objects.get_or_create(workspace_id=workspace_id)
        IndexTotals.objects.filter(workspace_id=workspace_id).update(
            **{name: F(name) + value for name, value in deltas.items()}
        )


def entries_indexed(*, workspace_id: int, entry_ids: list[int], tokens: int) -> None:
    """Count freshly written entries (their lexemes and lengths) into the statistics."""
    if not entry_ids:
        return
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(_ADD_SQL, [workspace_id, entry_ids])
    totals_change(workspace_id=workspace_id, entries=len(entry_ids), entry_tokens=tokens)


def entries_unindexed(*, workspace_id: int, entry_ids: list[int], tokens: int) -> None:
    """Take entries out of the statistics (before they change or go)."""
    if not entry_ids:
        return
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(_SUBTRACT_SQL, [entry_ids, workspace_id])
    totals_change(workspace_id=workspace_id, entries=-len(entry_ids), entry_tokens=-tokens)


def vocabulary_evidence_change(*, workspace_id: int, gained: list[str], lost: list[str]) -> None:
    """Count lexemes into (gained) or out of (lost) one more entry's accepted evidence, on every database."""
    if gained:
        LexemeStat.objects.bulk_create(
            [LexemeStat(workspace_id=workspace_id, lexeme=lexeme) for lexeme in sorted(gained)], ignore_conflicts=True
        )
        LexemeStat.objects.filter(workspace_id=workspace_id, lexeme__in=gained).update(
            evidence_entries=F("evidence_entries") + 1
        )
    if lost:
        LexemeStat.objects.filter(workspace_id=workspace_id, lexeme__in=lost).update(
            evidence_entries=F("evidence_entries") - 1
        )
