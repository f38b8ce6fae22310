"""Writes for the knowledge base: entries, imports, settings, and the feedback the ranker learns from."""

import logging
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from itertools import islice

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.knowledge import index, semantic
from apps.knowledge.importing import row_validate
from apps.knowledge.models import (
    Entry,
    EntryEvidence,
    EntryProposal,
    EvidenceAction,
    EvidenceTerm,
    KnowledgeSettings,
    ProposalStatus,
)
from apps.knowledge.ranking import analyze_message
from apps.knowledge.ranking.scoring import MAX_MESSAGE_CHARS
from apps.knowledge.text import token_count
from project.html import clean_html, html_to_text

logger = logging.getLogger(__name__)

IMPORT_BATCH_SIZE = 500


def _entry_fields(*, title: str, body: str, keep_links: bool = False) -> dict:
    title = title.strip()
    body_text = html_to_text(body, keep_links=keep_links)
    if not title:
        raise ValidationError({"title": ["A title is required."]})
    if not body_text:
        raise ValidationError({"body": ["The body has no text."]})
    return {
        "title": title,
        "body_html": clean_html(body),
        "body_text": body_text,
        "token_count": token_count(title) + token_count(body_text),
        "meaning": semantic.entry_meaning(title, body_text),
    }


def _duplicate_external_id() -> ValidationError:
    return ValidationError({"external_id": ["Another entry from this source already has this external id."]})


@transaction.atomic
def entry_create(
    *,
    workspace_id: int,
    title: str,
    body: str,
    kind: str = "saved_reply",
    tags: list[str] | None = None,
    enabled: bool = True,
    source: str = "manual",
    external_id: str = "",
) -> Entry:
    entry = Entry(
        workspace_id=workspace_id,
        kind=kind,
        tags=tags or [],
        enabled=enabled,
        source=source or "manual",
        external_id=external_id,
        **_entry_fields(title=title, body=body),
    )
    try:
        with transaction.atomic():
            entry.save()
    except IntegrityError as exc:
        raise _duplicate_external_id() from exc
    index.entries_indexed(workspace_id=workspace_id, entry_ids=[entry.id], tokens=entry.token_count)
    logger.info("knowledge entry created", extra={"workspace_id": workspace_id, "entry_id": entry.id})
    return entry


@transaction.atomic
def entry_update(*, entry: Entry, **changes) -> Entry:
    """Change an entry's fields; a new title or body is re-indexed in the same transaction."""
    entry = Entry.objects.select_for_update().get(pk=entry.pk)
    text_changes = {"title", "body"} & changes.keys()
    if text_changes:
        fields = _entry_fields(title=changes.pop("title", entry.title), body=changes.pop("body", entry.body_html))
        index.entries_unindexed(workspace_id=entry.workspace_id, entry_ids=[entry.id], tokens=entry.token_count)
        changes.update(fields)
    for name, value in changes.items():
        setattr(entry, name, value)
    try:
        with transaction.atomic():
            entry.save()
    except IntegrityError as exc:
        raise _duplicate_external_id() from exc
    if text_changes:
        index.entries_indexed(workspace_id=entry.workspace_id, entry_ids=[entry.id], tokens=entry.token_count)
    return entry


@transaction.atomic
def entry_delete(*, entry: Entry) -> None:
    """Delete an entry with its evidence, taking it out of every statistic."""
    entry = Entry.objects.select_for_update().get(pk=entry.pk)
    index.entries_unindexed(workspace_id=entry.workspace_id, entry_ids=[entry.id], tokens=entry.token_count)
    learnt = EvidenceTerm.objects.filter(entry=entry, accepted__gt=0).values_list("lexeme", flat=True)
    index.vocabulary_evidence_change(workspace_id=entry.workspace_id, gained=[], lost=list(learnt))
    index.totals_change(
        workspace_id=entry.workspace_id,
        accepted_profiles=-1 if entry.accepted_tokens else 0,
        accepted_tokens=-entry.accepted_tokens,
        dismissed_profiles=-1 if entry.dismissed_tokens else 0,
        dismissed_tokens=-entry.dismissed_tokens,
    )
    entry.delete()
    logger.info("knowledge entry deleted", extra={"workspace_id": entry.workspace_id, "entry_id": entry.pk})


def entry_fields_for(*, title: str, body: str, keep_links: bool = False) -> dict:
    """What an entry stores for a title and an HTML body (ValidationError when either is empty): check a batch's
    items one by one before entries_write_synced writes them all."""
    return _entry_fields(title=title, body=body, keep_links=keep_links)


@transaction.atomic
def entries_write_synced(*, workspace_id: int, new: list[dict], changed: dict[int, dict]) -> list[Entry]:
    """Write a page of entries synced from a source at once: create `new` ones (each a dict of Entry fields, the
    text ones from entry_fields_for) and rewrite `changed` ones ({entry id: fields}); their evidence stays.

    One statistics update for the whole batch instead of one per entry. Returns the entries created.
    """
    rewritten = list(Entry.objects.select_for_update().filter(workspace_id=workspace_id, pk__in=list(changed)))
    if rewritten:
        index.entries_unindexed(
            workspace_id=workspace_id,
            entry_ids=[e.id for e in rewritten],
            tokens=sum(e.token_count for e in rewritten),
        )
        names = sorted({name for fields in changed.values() for name in fields} | {"updated_at"})
        now = timezone.now()
        for entry in rewritten:
            for name, value in changed[entry.id].items():
                setattr(entry, name, value)
            entry.updated_at = now
        Entry.objects.bulk_update(rewritten, names)
    created = Entry.objects.bulk_create([Entry(workspace_id=workspace_id, **fields) for fields in new])
    written = rewritten + created
    index.entries_indexed(
        workspace_id=workspace_id, entry_ids=[e.id for e in written], tokens=sum(e.token_count for e in written)
    )
    return created


# ------------------------------------------------------------------------------
# Import
# ------------------------------------------------------------------------------


@dataclass
class ImportRowResult:
    row: int  # 1-based position in the file's rows (a CSV's header is not a row)
    status: str  # created | updated | error
    entry_id: int | None = None
    errors: dict | None = None


@dataclass
class ImportReport:
    created: int = 0
    updated: int = 0
    failed: int = 0
    rows: list[ImportRowResult] = field(default_factory=list)


def _import_batch(workspace_id: int, default_source: str, batch: list[tuple[int, dict]], report: ImportReport) -> None:
    keyed: dict[tuple[str, str], tuple[int, dict]] = {}  # rows that carry an external id
    plain: list[tuple[int, dict]] = []
    for number, data in batch:
        data["source"] = data.get("source") or default_source
        try:
            data.update(_entry_fields(title=data["title"], body=data.pop("body")))
        except ValidationError as exc:
            report.failed += 1
            report.rows.append(ImportRowResult(number, "error", errors=exc.message_dict))
            continue
        if not data["external_id"]:
            plain.append((number, data))
        elif (data["source"], data["external_id"]) in keyed:
            report.failed += 1
            report.rows.append(ImportRowResult(number, "error", errors={"external_id": ["Repeated in this file."]}))
        else:
            keyed[(data["source"], data["external_id"])] = (number, data)

    existing = {}
    if keyed:
        candidates = Entry.objects.select_for_update().filter(
            workspace_id=workspace_id,
            source__in={source for source, _ in keyed},
            external_id__in={external_id for _, external_id in keyed},
        )
        existing = {(e.source, e.external_id): e for e in candidates if (e.source, e.external_id) in keyed}

    to_update = list(existing.values())
    if to_update:
        index.entries_unindexed(
            workspace_id=workspace_id,
            entry_ids=[e.id for e in to_update],
            tokens=sum(e.token_count for e in to_update),
        )
        names = ["title", "body_html", "body_text", "token_count", "meaning", "kind", "tags", "enabled"]
        for entry in to_update:
            _, data = keyed[(entry.source, entry.external_id)]
            for name in names:
                setattr(entry, name, data[name])
        Entry.objects.bulk_update(to_update, [*names, "updated_at"])

    fresh = [pair for key, pair in keyed.items() if key not in existing] + plain
    to_create = [(number, Entry(workspace_id=workspace_id, **data)) for number, data in fresh]
    created = Entry.objects.bulk_create([entry for _, entry in to_create])
    written = to_update + created
    index.entries_indexed(
        workspace_id=workspace_id, entry_ids=[e.id for e in written], tokens=sum(e.token_count for e in written)
    )
    for entry in to_update:
        report.updated += 1
        report.rows.append(ImportRowResult(keyed[(entry.source, entry.external_id)][0], "updated", entry.id))
    for (number, _), entry in zip(to_create, created, strict=True):
        report.created += 1
        report.rows.append(ImportRowResult(number, "created", entry.id))


@transaction.atomic
def entries_import(
    *,
    workspace_id: int,
    rows: Iterable,
    source: str = "import",
    progress: Callable[[int], None] | None = None,
) -> ImportReport:
    """Import rows into the workspace's knowledge base, all in one transaction.

    Each invalid row is reported and skipped; valid rows are kept. A row with an external id that
    the workspace already has from the same source updates that entry. A fatal error (an unreadable
    file, a database error) raises and leaves nothing of the import behind.
    """
    report = ImportReport()
    numbered = enumerate(rows, start=1)
    while batch := list(islice(numbered, IMPORT_BATCH_SIZE)):
        valid = []
        for number, row in batch:
            data, errors = row_validate(row)
            if errors:
                report.failed += 1
                report.rows.append(ImportRowResult(number, "error", errors=errors))
            else:
                valid.append((number, data))
        _import_batch(workspace_id, source, valid, report)
        if progress:
            progress(len(batch))
    report.rows.sort(key=lambda r: r.row)
    logger.info(
        "knowledge import",
        extra={
            "workspace_id": workspace_id,
            "rows_created": report.created,
            "rows_updated": report.updated,
            "rows_failed": report.failed,
        },
    )
    return report


# ------------------------------------------------------------------------------
# Settings
# ------------------------------------------------------------------------------


def knowledge_settings_update(*, workspace_id: int, **changes) -> KnowledgeSettings:
    settings, _ = KnowledgeSettings.objects.get_or_create(workspace_id=workspace_id)
    for name, value in changes.items():
        setattr(settings, name, value)
    settings.full_clean(exclude=["workspace"])
    settings.save()
    return settings


# ------------------------------------------------------------------------------
# Feedback: what the ranker learns from
# ------------------------------------------------------------------------------


def _profile_apply(entry: Entry, action: str, counts: Counter, sign: int) -> None:
    """Add (sign=1) or take away (sign=-1) one message's words from the entry's accepted/dismissed profile."""
    column = "accepted" if action == EvidenceAction.ACCEPT else "dismissed"
    tokens_column = f"{column}_tokens"
    if counts:
        terms = {t.lexeme: t for t in EvidenceTerm.objects.filter(entry=entry, lexeme__in=list(counts))}
        new, gained, lost = [], [], []
        for lexeme, count in counts.items():
            term = terms.get(lexeme)
            if term is None:
                term = EvidenceTerm(workspace_id=entry.workspace_id, entry=entry, lexeme=lexeme)
                new.append(term)
            before_count = getattr(term, column)
            setattr(term, column, max(0, before_count + sign * count))
            if getattr(term, column) and not before_count:
                gained.append(lexeme)
            elif before_count and not getattr(term, column):
                lost.append(lexeme)
        EvidenceTerm.objects.bulk_create(new)
        if terms:
            EvidenceTerm.objects.bulk_update(list(terms.values()), [column])
        if column == "accepted":
            index.vocabulary_evidence_change(workspace_id=entry.workspace_id, gained=gained, lost=lost)
    before = getattr(entry, tokens_column)
    after = max(0, before + sign * sum(counts.values()))
    setattr(entry, tokens_column, after)
    changed = [tokens_column]
    if column == "accepted":
        # The profile's meaning is the sum of its messages' meanings; an emptied profile means nothing.
        entry.accepted_meaning = (
            semantic.add(entry.accepted_meaning, semantic.meaning_of(counts), sign) if after else None
        )
        changed.append("accepted_meaning")
    entry.save(update_fields=changed)
    index.totals_change(
        workspace_id=entry.workspace_id,
        **{
            f"{column}_profiles": int(after > 0) - int(before > 0),
            f"{column}_tokens": after - before,
        },
    )


@transaction.atomic
def evidence_record(
    *, workspace_id: int, entry_id: int, message_ref: str, text: str, action: str, keep_existing: bool = False
) -> EntryEvidence:
    """Record that an agent accepted or dismissed an entry for a customer message.

    The message's words become evidence for (accept) or against (dismiss) the entry, so later messages
    like it rank the entry higher (lower). One verdict per (entry, message): recording the same one again
    changes nothing, a different one replaces it, unless `keep_existing` (an inferred verdict, which
    never overrides one already given). The entry must belong to the workspace: feedback can never
    reach another workspace's entries (Entry.DoesNotExist otherwise).
    """
    if action not in EvidenceAction.values:
        raise ValidationError({"action": [f"Use one of: {', '.join(EvidenceAction.values)}."]})
    message_ref = (message_ref or "").strip()
    if not message_ref or len(message_ref) > 200:
        raise ValidationError({"message_ref": ["A message reference of 1 to 200 characters is required."]})
    entry = Entry.objects.select_for_update().get(workspace_id=workspace_id, pk=entry_id)
    clean = html_to_text(text)[:MAX_MESSAGE_CHARS]
    evidence = EntryEvidence.objects.filter(entry=entry, message_ref=message_ref).first()
    if evidence is not None:
        if evidence.action == action or keep_existing:
            return evidence
        _profile_apply(entry, evidence.action, analyze_message(workspace_id=workspace_id, text=evidence.text), -1)
    else:
        evidence = EntryEvidence(workspace_id=workspace_id, entry=entry, message_ref=message_ref)
    counts = analyze_message(workspace_id=workspace_id, text=clean)
    evidence.action = action
    evidence.text = clean
    evidence.token_count = sum(counts.values())
    evidence.save()
    _profile_apply(entry, action, counts, 1)
    logger.info(
        "knowledge evidence recorded",
        extra={"workspace_id": workspace_id, "entry_id": entry.id, "action": action, "message_ref": message_ref},
    )
    return evidence


# ------------------------------------------------------------------------------
# Entries proposed from the team's recurring replies (apps.knowledge.sync)
# ------------------------------------------------------------------------------
PROPOSAL_SOURCE = "history_proposal"


class ProposalDecided(Exception):
    def __init__(self, proposal: EntryProposal):
        self.proposal = proposal
        super().__init__(f"The proposal is already {proposal.status}.")


@transaction.atomic
def proposal_accept(*, proposal: EntryProposal, decided_by_id: int | None, title: str | None = None) -> Entry:
    """Turn a proposed entry into a saved reply; its example questions become the entry's accepted evidence."""
    proposal = EntryProposal.objects.select_for_update().get(pk=proposal.pk)
    if proposal.status != ProposalStatus.PROPOSED:
        raise ProposalDecided(proposal)
    entry = entry_create(
        workspace_id=proposal.workspace_id,
        title=title or proposal.title,
        body=proposal.body_html or proposal.body_text,
        source=PROPOSAL_SOURCE,
        external_id=proposal.text_key,
    )
    for number, question in enumerate(proposal.example_questions, start=1):
        if question.strip():
            evidence_record(
                workspace_id=proposal.workspace_id,
                entry_id=entry.id,
                message_ref=f"proposal:{proposal.id}:{number}",
                text=question,
                action=EvidenceAction.ACCEPT,
            )
    proposal.status = ProposalStatus.ACCEPTED
    proposal.entry = entry
    proposal.decided_by_id = decided_by_id
    proposal.decided_at = timezone.now()
    proposal.save(update_fields=["status", "entry", "decided_by", "decided_at", "updated_at"])
    logger.info(
        "proposal accepted",
        extra={"workspace_id": proposal.workspace_id, "proposal_id": proposal.id, "entry_id": entry.id},
    )
    return entry


@transaction.atomic
def proposal_dismiss(*, proposal: EntryProposal, decided_by_id: int | None) -> EntryProposal:
    """Dismiss a proposal: it stays dismissed (the same reply recurring later only counts on it)."""
    proposal = EntryProposal.objects.select_for_update().get(pk=proposal.pk)
    if proposal.status == ProposalStatus.DISMISSED:
        return proposal
    if proposal.status != ProposalStatus.PROPOSED:
        raise ProposalDecided(proposal)
    proposal.status = ProposalStatus.DISMISSED
    proposal.decided_by_id = decided_by_id
    proposal.decided_at = timezone.now()
    proposal.save(update_fields=["status", "decided_by", "decided_at", "updated_at"])
    logger.info("proposal dismissed", extra={"workspace_id": proposal.workspace_id, "proposal_id": proposal.id})
    return proposal
