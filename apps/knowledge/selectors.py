"""Reads for the knowledge base: entries (with search), settings, and ranking for a customer message."""

from django.db import connection
from django.db.models import BooleanField, FloatField, Q, QuerySet
from django.db.models.expressions import RawSQL

from apps.knowledge.models import Entry, KnowledgeSettings
from apps.knowledge.ranking import RankedEntry, entries_rank, entry_scores

__all__ = ["RankedEntry", "entries_rank", "entry_get", "entry_list", "entry_scores", "knowledge_settings_get"]

_MATCH_SQL = "knowledge_entry.search_vector @@ websearch_to_tsquery('english'::regconfig, %s)"
_RANK_SQL = "ts_rank(knowledge_entry.search_vector, websearch_to_tsquery('english'::regconfig, %s))"


def entry_list(
    *,
    workspace_id: int,
    q: str = "",
    kind: str | None = None,
    enabled: bool | None = None,
    tag: str | None = None,
) -> QuerySet[Entry]:
    """The workspace's entries, newest first; with q, those matching every word of it, best match first.

    q is a search box's query (quotes for phrases, -word to exclude), so its words are AND-ed; ranking
    customer messages is entries_rank's job.
    """
    entries = Entry.objects.filter(workspace_id=workspace_id)
    if kind:
        entries = entries.filter(kind=kind)
    if enabled is not None:
        entries = entries.filter(enabled=enabled)
    if tag:
        entries = (
            entries.filter(tags__contains=[tag])
            if connection.vendor == "postgresql"
            else entries.filter(tags__icontains=f'"{tag}"')
        )
    q = q.strip()
    if not q:
        return entries.order_by("-updated_at", "-id")
    if connection.vendor == "postgresql":
        entries = entries.annotate(
            matched=RawSQL(_MATCH_SQL, [q], output_field=BooleanField()),  # noqa: S611 - constant SQL, q is a parameter
            relevance=RawSQL(_RANK_SQL, [q], output_field=FloatField()),  # noqa: S611 - constant SQL, q is a parameter
        ).filter(Q(matched=True) | Q(title__icontains=q))
        return entries.order_by("-relevance", "-updated_at", "-id")
    for word in q.split():
        entries = entries.filter(Q(title__icontains=word) | Q(body_text__icontains=word))
    return entries.order_by("-updated_at", "-id")


def entry_get(*, workspace_id: int, entry_id: int) -> Entry:
    """The workspace's entry, or Entry.DoesNotExist (another workspace's id is unknown here)."""
    return Entry.objects.get(workspace_id=workspace_id, pk=entry_id)


def knowledge_settings_get(*, workspace_id: int) -> KnowledgeSettings:
    """The workspace's knowledge settings; defaults (unsaved) until an owner changes them."""
    return KnowledgeSettings.objects.filter(workspace_id=workspace_id).first() or KnowledgeSettings(
        workspace_id=workspace_id
    )
