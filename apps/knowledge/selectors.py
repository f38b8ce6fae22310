"""Reads for the knowledge base: entries (with search), settings, ranking for a customer message, reply matching."""

from collections.abc import Iterable
from dataclasses import dataclass

from django.db import connection
from django.db.models import BooleanField, FloatField, Q, QuerySet
from django.db.models.expressions import RawSQL

from apps.knowledge.models import Entry, EntryProposal, KnowledgeSettings, ProposalStatus, SyncRun
from apps.knowledge.ranking import RankedEntry, entries_rank, entry_scores
from apps.knowledge.text import text_overlap
from project.html import html_to_text

__all__ = [
    "EntryMatch",
    "RankedEntry",
    "entries_rank",
    "entry_get",
    "entry_list",
    "entry_matching_reply",
    "entry_scores",
    "knowledge_settings_get",
    "proposal_get",
    "proposal_list",
    "sync_run_list",
]

# A reply "is" an entry's text when text_overlap(reply, entry body) reaches this. Measured on word
# pairs: an entry sent with its greeting and signature changed keeps ~0.8-0.9 (each changed word
# costs two pairs), and 0.6 still admits two or three more edited words in a 20-word reply; a reply
# on the same topic in the agent's own words shares few pairs (under 0.1 in the tests); two saved
# replies that share a stock greeting and sign-off around different answers score ~0.5, under it
# unless the boilerplate is most of their text. Only the best entry counts, so such a twin never
# wins over the entry actually sent.
REPLY_MATCH_MIN_OVERLAP = 0.6
# How many of the ranker's best entries for the reply's own text are compared with it (a reply that
# repeats an entry ranks that entry first, as its body holds every word of it).
REPLY_MATCH_RANKED = 10

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


@dataclass(frozen=True)
class EntryMatch:
    entry_id: int
    overlap: float


def entry_matching_reply(*, workspace_id: int, text: str, candidate_ids: Iterable[int] = ()) -> EntryMatch | None:
    """The workspace's enabled entry whose body the reply (nearly) repeats, or None.

    Compared: the given candidates (say, the entries suggested for the messages it answers) and the
    ranker's best entries for the reply's own text, never the whole knowledge base. The best overlap
    wins (ties: the older entry), if it reaches REPLY_MATCH_MIN_OVERLAP.
    """
    reply = html_to_text(text)
    if not reply:
        return None
    ranked = entries_rank(workspace_id=workspace_id, text=reply, limit=REPLY_MATCH_RANKED, threshold=0.0)
    ids = {r.entry_id for r in ranked} | set(candidate_ids)
    if not ids:
        return None
    bodies = Entry.objects.filter(workspace_id=workspace_id, enabled=True, pk__in=ids).values_list("id", "body_text")
    best = max(((text_overlap(reply, body), -entry_id) for entry_id, body in bodies), default=None)
    if best is None or best[0] < REPLY_MATCH_MIN_OVERLAP:
        return None
    return EntryMatch(entry_id=-best[1], overlap=round(best[0], 4))


def sync_run_list(*, workspace_id: int, limit: int = 10) -> list[SyncRun]:
    """The workspace's latest sync and import runs, newest first."""
    return list(SyncRun.objects.filter(workspace_id=workspace_id).order_by("-created_at", "-id")[:limit])


def proposal_list(*, workspace_id: int, status: str | None = ProposalStatus.PROPOSED) -> QuerySet[EntryProposal]:
    """The workspace's proposed entries, the most often sent first."""
    proposals = EntryProposal.objects.filter(workspace_id=workspace_id)
    if status:
        proposals = proposals.filter(status=status)
    return proposals.order_by("-times_sent", "-id")


def proposal_get(*, workspace_id: int, proposal_id: int) -> EntryProposal:
    """The workspace's proposal, or EntryProposal.DoesNotExist."""
    return EntryProposal.objects.get(workspace_id=workspace_id, pk=proposal_id)
