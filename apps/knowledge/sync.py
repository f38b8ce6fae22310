"""Knowledge from Intercom: the Help Center sync and the history import, as chains of page tasks.

A run (SyncRun) is started by an owner (or on install, or by the daily job) and moved on by
`apps.knowledge.tasks.sync_page` (an `atomic=False` task, docs/tasks.md): each task reads the run's
committed cursor, fetches one page from Intercom with no transaction open and no row locked (paced
waits included), then applies the page's items and moves the cursor in one short transaction that
locks the run and re-checks it: a run no longer running, or whose cursor moved since the fetch (a
duplicate delivery got there first), is left as it is. Every effect is an idempotent upsert keyed by
Intercom's ids, and the cursor commits with the effects, so a task that dies mid-page is redone
from the last commit and nothing counts twice. A task stops fetching items when its invocation runs
low and hands the rest of the page to the next. Calls are paced by Intercom's X-RateLimit headers
(apps.integrations.client): a short wait happens in the task, a long one parks the run (status
waiting) until the intercom_sync job resumes it. A permanent Intercom error (401, 404 of a page)
fails the run with its reason and is raised again, so the task is recorded rejected; a retryable
one keeps what the page applied and is raised again, so the task is retried from there.
"""

import hashlib
import logging
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urljoin

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.conversations.services import conversation_upsert_from_intercom
from apps.integrations import payloads
from apps.integrations import selectors as integration_selectors
from apps.integrations.client import IntercomClient, IntercomError, IntercomNotFound, IntercomPaced
from apps.knowledge import services
from apps.knowledge.models import (
    Entry,
    EntryKind,
    EntryProposal,
    ReplyOccurrence,
    SyncKind,
    SyncRun,
    SyncStatus,
)
from apps.knowledge.selectors import entry_matching_reply, knowledge_settings_get
from apps.suggestions.services import UnmatchedReply, suggestions_learn_from_history
from apps.tasks.invocation import remaining_seconds
from apps.tasks.services import task_dispatch
from project.html import html_to_text

logger = logging.getLogger(__name__)

ARTICLE_SOURCE = "intercom_article"
PAGE_TASK = "apps.knowledge.tasks.sync_page"
FINISH_TASK = "apps.knowledge.tasks.sync_finish"
FAILED_TASK = "apps.knowledge.tasks.sync_failed"
# A reply shorter than this (in words) is a pleasantry ("Thanks, you're welcome!"), never a proposed entry.
PROPOSAL_MIN_WORDS = 8
PROPOSAL_EXAMPLES = 5
ERROR_LOG_MAX = 20
# The daily Help Center sync of every connected workspace (the intercom_sync job).
ARTICLES_EVERY = timedelta(hours=24)

_WORDS = re.compile(r"[^\w]+")
_GREETINGS = frozenset({"hi", "hello", "hey", "dear", "morning", "good", "hiya", "bonjour", "hallo", "hola"})
_SIGN_OFFS = frozenset({"cheers", "best", "regards", "kind", "thanks", "thank", "warm", "all", "talk", "speak"})
_HREF = re.compile(r"""(href\s*=\s*)(["'])(.*?)\2""", re.IGNORECASE)


class NotConnected(Exception):
    """The workspace has no Intercom connection: nothing to sync from."""


class RunInProgress(Exception):
    def __init__(self, run: SyncRun):
        self.run = run
        super().__init__(f"A {run.kind} run ({run.id}) is already in progress.")


# ------------------------------------------------------------------------------
# Starting runs
# ------------------------------------------------------------------------------
def _dispatch_page(run: SyncRun) -> None:
    task_dispatch(task=PAGE_TASK, args=[run.id], workspace_id=run.workspace_id, error_callback=FAILED_TASK)


@transaction.atomic
def sync_start(
    *,
    workspace_id: int,
    articles: bool,
    history_days: int | None,
    started_by_id: int | None = None,
    dispatch: bool = True,
) -> list[SyncRun]:
    """Start a Help Center sync and/or a history import of the last `history_days` days of closed conversations.

    NotConnected without an Intercom connection; RunInProgress when a run of that kind is still going
    (one of a kind at a time: two would race on the same entries). Nothing is started unless all are.
    `dispatch=False` leaves the pages to the caller (`manage.py intercom_sync` drives them in its process).
    """
    if integration_selectors.connection_for_workspace(workspace=workspace_id) is None:
        raise NotConnected
    kinds = ([SyncKind.ARTICLES] if articles else []) + ([SyncKind.HISTORY] if history_days else [])
    runs = []
    for kind in kinds:
        active = SyncRun.objects.filter(
            workspace_id=workspace_id, kind=kind, status__in=[SyncStatus.RUNNING, SyncStatus.WAITING]
        ).first()
        if active is not None:
            raise RunInProgress(active)
        params: dict[str, Any]
        if kind == SyncKind.ARTICLES:
            params = {"locales": list(knowledge_settings_get(workspace_id=workspace_id).article_locales)}
        else:
            since = timezone.now() - timedelta(days=history_days or 0)  # a history run has its days
            params = {"days": history_days, "since": int(since.timestamp())}
        try:
            with transaction.atomic():
                run = SyncRun.objects.create(
                    workspace_id=workspace_id, kind=kind, params=params, started_by_id=started_by_id
                )
        except IntegrityError as exc:  # another request started one between the check and the insert
            raise RunInProgress(SyncRun.objects.filter(workspace_id=workspace_id, kind=kind).latest("id")) from exc
        if dispatch:
            _dispatch_page(run)
        runs.append(run)
        logger.info(
            "intercom sync started",
            extra={"workspace_id": workspace_id, "sync_run_id": run.id, "kind": kind, "params": params},
        )
    return runs


def sync_start_help_center(*, workspace_id: int) -> int | None:
    """The install's (and the daily job's) Help Center sync; None when one is running or there is no connection."""
    try:
        [run] = sync_start(workspace_id=workspace_id, articles=True, history_days=None)
    except (NotConnected, RunInProgress):
        return None
    return run.id


def sync_schedule(*, now: datetime | None = None) -> dict:
    """The intercom_sync job: resume runs parked for the rate limit, and sync each Help Center once a day."""
    now = now or timezone.now()
    resumed = 0
    with transaction.atomic():
        for run in SyncRun.objects.select_for_update(skip_locked=True).filter(
            status=SyncStatus.WAITING, resume_at__lte=now
        ):
            run.status = SyncStatus.RUNNING
            run.resume_at = None
            run.save(update_fields=["status", "resume_at", "updated_at"])
            _dispatch_page(run)
            resumed += 1
    recent = SyncRun.objects.filter(kind=SyncKind.ARTICLES, created_at__gt=now - ARTICLES_EVERY).values("workspace_id")
    started = 0
    for workspace_id in integration_selectors.connected_workspace_ids().exclude(workspace_id__in=recent):
        started += sync_start_help_center(workspace_id=workspace_id) is not None
    logger.info("intercom sync schedule", extra={"resumed": resumed, "started": started})
    return {"resumed": resumed, "started": started}


# ------------------------------------------------------------------------------
# One page
# ------------------------------------------------------------------------------
def _client(connection, run: SyncRun) -> IntercomClient:
    """A paced client that knows the rate-limit window the run's previous task last saw."""
    client = IntercomClient.for_connection(
        connection,
        pace_floor=settings.CUE_SYNC_RATE_FLOOR,
        max_pace_wait=settings.CUE_SYNC_MAX_INLINE_WAIT_SECONDS,
        pace_reserve=settings.CUE_SYNC_TASK_RESERVE_SECONDS,
    )
    client.rate_limit, client.rate_remaining, client.rate_reset = run.rate_limit, run.rate_remaining, run.rate_reset
    return client


# What a task's calls cost (added by _client_done), saved even when the task applies nothing.
_CALL_FIELDS = ["requests", "rate_limited", "paced_seconds", "rate_limit", "rate_remaining", "rate_reset"]


def _client_done(run: SyncRun, client: IntercomClient) -> None:
    """What the task's calls cost, and the window they leave to the next task."""
    run.requests += client.requests
    run.rate_limited += client.rate_limited
    run.paced_seconds += client.paced_seconds
    run.rate_limit, run.rate_remaining, run.rate_reset = client.rate_limit, client.rate_remaining, client.rate_reset


def _time_is_short() -> bool:
    remaining = remaining_seconds()
    return remaining is not None and remaining < settings.CUE_SYNC_TASK_RESERVE_SECONDS


def _count(run: SyncRun, **counts: int) -> None:
    for name, value in counts.items():
        run.counts[name] = run.counts.get(name, 0) + value


def _item_error(run: SyncRun, item: str, error: str) -> None:
    run.errors += 1
    run.error_log = [*run.error_log, {"item": item, "error": error[:300]}][-ERROR_LOG_MAX:]
    logger.warning("intercom sync item failed", extra={"sync_run_id": run.id, "item": item, "error": error[:300]})


def _fail(run: SyncRun, error: str) -> None:
    run.status = SyncStatus.FAILED
    run.last_error = error[:2000]
    run.finished_at = timezone.now()
    logger.error(
        "intercom sync failed",
        extra={"sync_run_id": run.id, "workspace_id": run.workspace_id, "error": error[:500]},
    )


def _run_locked(run_id: int) -> SyncRun | None:
    return SyncRun.objects.select_for_update().filter(pk=run_id).first()


def _run_fail(*, run_id: int, error: str) -> None:
    """Fail a run still going, with the reason, in a short transaction of its own."""
    with transaction.atomic():
        run = _run_locked(run_id)
        if run is not None and run.status in (SyncStatus.RUNNING, SyncStatus.WAITING):
            _fail(run, error)
            run.save()


def _park(run: SyncRun, exc: IntercomPaced) -> None:
    run.status = SyncStatus.WAITING
    run.resume_at = datetime.fromtimestamp(exc.resume_at, tz=UTC)
    logger.info("intercom sync parked", extra={"sync_run_id": run.id, "resume_at": run.resume_at.isoformat()})


@dataclass
class PageFetch:
    """What one task read from Intercom, with no transaction open, for the page at the run's `cursor`/`offset`.

    `items`: the articles from `offset` on; or for history, (conversation id, its data or None, item
    error) of each conversation fetched. `complete`: every item of the page from `offset` on was
    fetched (False: time ran short, or `error` stopped it). `error`: the Intercom error that stopped it.
    """

    cursor: str
    offset: int
    body: dict = field(default_factory=dict)
    items: list = field(default_factory=list)
    complete: bool = False
    error: IntercomError | None = None


def sync_page(*, run_id: int, chain: bool = True) -> dict:
    """Do the next page of a run (or what is left of it): the body of the sync_page task.

    Fetch (no transaction open), then apply and move the cursor in one short transaction that
    applies nothing when the cursor moved meanwhile. Returns {"run_id", "next"}: "page" when there
    is more (with `chain`, the next page task is dispatched), "finish" when the pages are done (with
    `chain`, the finishing task is dispatched), "" when the run stopped (parked, failed, not running,
    or this page already applied). Raises the Intercom error that stopped the page (the run already
    failed when it is permanent; the page's progress kept when it is retryable), except a parking one.
    """
    seen = SyncRun.objects.filter(pk=run_id).first()  # committed state, read without a lock
    if seen is None or seen.status != SyncStatus.RUNNING:
        return {"run_id": run_id, "next": ""}
    connection = integration_selectors.connection_for_workspace(workspace=seen.workspace_id)
    if connection is None:
        _run_fail(run_id=run_id, error="The workspace's Intercom connection was removed.")
        return {"run_id": run_id, "next": ""}
    client = _client(connection, seen)
    fetched = PageFetch(cursor=seen.cursor, offset=seen.offset)
    try:
        if seen.kind == SyncKind.ARTICLES:
            _articles_fetch(seen, client, fetched)
        else:
            _history_fetch(seen, client, connection, fetched)
    except IntercomError as exc:
        fetched.error = exc
    step = _page_apply(run_id=run_id, fetched=fetched, client=client, chain=chain)
    if step is not None and fetched.error is not None and not isinstance(fetched.error, IntercomPaced):
        raise fetched.error
    return {"run_id": run_id, "next": step or ""}


def _page_apply(*, run_id: int, fetched: PageFetch, client: IntercomClient, chain: bool) -> str | None:
    """Apply a fetched page under the run's lock: its step, or None when the run moved on without it."""
    with transaction.atomic():
        run = _run_locked(run_id)
        if run is None:
            return None
        _client_done(run, client)  # what the calls cost is counted even when the page is not applied
        if run.status != SyncStatus.RUNNING or (run.cursor, run.offset) != (fetched.cursor, fetched.offset):
            run.save(update_fields=[*_CALL_FIELDS, "updated_at"])
            logger.info(
                "intercom sync page already applied",
                extra={"sync_run_id": run.id, "cursor": fetched.cursor, "offset": fetched.offset, "now": run.cursor},
            )
            return None
        run.tasks += 1
        apply = _articles_apply_page if run.kind == SyncKind.ARTICLES else _history_apply_page
        more = apply(run, fetched)
        step = "page" if more else "finish"
        if isinstance(fetched.error, IntercomPaced):
            _park(run, fetched.error)
            step = ""
        elif fetched.error is not None:
            step = ""
            if not fetched.error.retryable:
                _fail(run, str(fetched.error))
        run.save()
        if step == "page" and chain:
            _dispatch_page(run)
        elif step == "finish" and chain:
            task_dispatch(task=FINISH_TASK, args=[run.id], workspace_id=run.workspace_id, error_callback=FAILED_TASK)
    return step


# ------------------------------------------------------------------------------
# Help Center articles
# ------------------------------------------------------------------------------
def _absolute_links(html: str, base: str) -> str:
    """Relative links of an article made absolute against its URL, so they still lead somewhere elsewhere."""
    if not base:
        return html
    return _HREF.sub(lambda m: f"{m.group(1)}{m.group(2)}{urljoin(base, m.group(3))}{m.group(2)}", html)


def _dict(value: Any) -> dict:
    """A JSON object of Intercom's answer, or an empty one when it is missing or not an object."""
    return value if isinstance(value, dict) else {}


def _epoch(value) -> datetime | None:
    return datetime.fromtimestamp(value, tz=UTC) if isinstance(value, int | float) and value > 0 else None


def _article_versions(article: dict, locales: list[str]) -> dict[str, dict | None]:
    """The article's content in each locale the workspace syncs: {locale: content, or None when not published}."""
    default = str(article.get("default_locale") or "en")
    translated = _dict(article.get("translated_content"))
    versions: dict[str, dict | None] = {}
    for locale in locales or [default]:
        content: dict | None = translated.get(locale)
        if not isinstance(content, dict):
            content = article if locale == default else None
        published = content is not None and content.get("state") == "published" and content.get("title")
        versions[locale] = content if content and published and html_to_text(content.get("body")) else None
    return versions


def articles_apply(*, run: SyncRun, articles: list[dict]) -> None:
    """Upsert (or retire) each article's entry in each synced locale, a page at a time: new and edited ones
    written in one batch, unchanged ones only marked seen by this run, unpublished or missing ones retired."""
    locales = run.params.get("locales") or []
    wanted: dict[tuple[str, str], dict | None] = {}
    for item in articles:
        article_id = str(item.get("id") or "")
        if not article_id:
            _item_error(run, "article", "An article without an id.")
            continue
        for locale, content in _article_versions(item, locales).items():
            wanted[(article_id, locale)] = content
    existing = {
        (e.external_id, e.source_locale): e
        for e in Entry.objects.filter(
            workspace_id=run.workspace_id,
            source=ARTICLE_SOURCE,
            external_id__in={article_id for article_id, _ in wanted},
        )
    }
    new, changed, seen, retire = [], {}, [], []
    for (article_id, locale), content in wanted.items():
        entry = existing.get((article_id, locale))
        if content is None:
            if entry is not None:
                retire.append(entry)
            continue
        url = str(content.get("url") or "")[:1000]
        updated_at = _epoch(content.get("updated_at"))
        if (
            entry is not None
            and entry.retired_at is None
            and (entry.source_updated_at, entry.source_url)
            == (
                updated_at,
                url,
            )
        ):
            seen.append(entry.id)  # unchanged: not rewritten
            continue
        try:
            text = services.entry_fields_for(
                title=str(content.get("title") or "")[:300],
                body=_absolute_links(str(content.get("body") or ""), url),
                keep_links=True,
            )
        except ValidationError as exc:
            _item_error(run, f"article {article_id} ({locale})", "; ".join(exc.messages))
            continue
        fields = {**text, "source_url": url, "source_updated_at": updated_at, "source_run_id": run.id}
        if entry is None:
            new.append(
                {
                    **fields,
                    "kind": EntryKind.ARTICLE,
                    "source": ARTICLE_SOURCE,
                    "external_id": article_id,
                    "source_locale": locale,
                }
            )
        else:
            restored = {"enabled": True, "retired_at": None} if entry.retired_at else {}
            changed[entry.id] = {**fields, **restored}
    services.entries_write_synced(workspace_id=run.workspace_id, new=new, changed=changed)
    Entry.objects.filter(pk__in=seen).update(source_run_id=run.id)
    for entry in retire:
        _retire(run, entry)
    _count(run, created=len(new), updated=len(changed), unchanged=len(seen))


def _retire(run: SyncRun, entry: Entry) -> None:
    """Removed or unpublished at the source: disabled and marked retired, kept with its evidence."""
    if entry.retired_at is None:
        Entry.objects.filter(pk=entry.pk).update(enabled=False, retired_at=timezone.now(), source_run_id=run.id)
        _count(run, retired=1)
    else:
        Entry.objects.filter(pk=entry.pk).update(source_run_id=run.id)


def _articles_fetch(run: SyncRun, client: IntercomClient, fetched: PageFetch) -> None:
    page = int(run.cursor or 1)
    fetched.body = client.list_articles(page=page, per_page=settings.CUE_SYNC_ARTICLES_PER_PAGE)
    fetched.items = [a for a in fetched.body.get("data") or [] if isinstance(a, dict)]
    fetched.complete = True


def _articles_apply_page(run: SyncRun, fetched: PageFetch) -> bool:
    """Write a fetched page of articles (one batch, a few statements) and move the cursor: True when more."""
    if not fetched.complete:
        return False
    body, articles = fetched.body, fetched.items
    page = int(run.cursor or 1)
    if isinstance(body.get("total_count"), int):
        run.total = body["total_count"]
    articles_apply(run=run, articles=articles[run.offset :])
    run.done += len(articles) - run.offset
    run.offset = len(articles)
    run.pages += 1
    pages = _dict(body.get("pages"))
    total_pages = pages.get("total_pages")
    total_pages = total_pages if isinstance(total_pages, int) else 0
    if articles and (pages.get("next") or page < total_pages):
        run.cursor, run.offset = str(page + 1), 0
        return True
    return False


def articles_finish(*, run_id: int, client: IntercomClient) -> bool:
    """Retire the synced entries this run did not see; True when done (False: time ran out, call again).

    An article edited while the run paged moves to the first page (the list is newest edit first) and
    can be missed, so each unseen article is asked for by id (no transaction open) before its entries
    are retired, each in a short transaction under the run's lock that re-checks the article is still
    unseen (a duplicate delivery may have done it). Stops (True) when the run is no longer running.
    """
    with transaction.atomic():
        run = _run_locked(run_id)
        if run is None or run.status != SyncStatus.RUNNING:
            return True
        locales = run.params.get("locales") or []
        unseen = Entry.objects.filter(workspace_id=run.workspace_id, source=ARTICLE_SOURCE).exclude(
            source_run_id=run.id
        )
        if locales:  # a locale no longer synced retires without asking
            for entry in unseen.exclude(source_locale__in=locales):
                _retire(run, entry)
            run.save(update_fields=["counts", "updated_at"])
        article_ids = list(unseen.values_list("external_id", flat=True).distinct().order_by("external_id"))
    for article_id in article_ids:
        if _time_is_short():
            return False
        try:
            article = client.request("GET", f"/articles/{article_id}")
        except IntercomNotFound:
            article = {"id": article_id}  # gone: every version retires
        with transaction.atomic():
            run = _run_locked(run_id)
            if run is None or run.status != SyncStatus.RUNNING:
                return True
            still_unseen = unseen.filter(external_id=article_id)
            if not still_unseen.exists():
                continue  # done meanwhile by a duplicate delivery
            articles_apply(run=run, articles=[{**article, "id": article_id}])
            for entry in still_unseen:  # a locale the article no longer has
                _retire(run, entry)
            run.save(update_fields=["counts", "errors", "error_log", "updated_at"])
    return True


# ------------------------------------------------------------------------------
# History
# ------------------------------------------------------------------------------
def _history_query(since: int) -> dict:
    return {
        "operator": "AND",
        "value": [
            {"field": "state", "operator": "=", "value": "closed"},
            {"field": "updated_at", "operator": ">", "value": since},
        ],
    }


def _history_fetch(run: SyncRun, client: IntercomClient, connection, fetched: PageFetch) -> None:
    """Search the page at the cursor, then fetch its conversations from `offset` until time runs short."""
    fetched.body = client.search_conversations(
        query=_history_query(run.params["since"]),
        per_page=settings.CUE_SYNC_CONVERSATIONS_PER_PAGE,
        starting_after=run.cursor,
    )
    found = [c for c in fetched.body.get("conversations") or [] if isinstance(c, dict)]
    for summary in found[run.offset :]:
        if _time_is_short():
            return
        conversation_id = str(summary.get("id") or "")
        try:
            item = client.get_conversation(conversation_id)
            data = payloads.conversation_from_item(item, app_id=connection.app_id, region=connection.region)
        except (IntercomNotFound, payloads.PayloadError) as exc:
            fetched.items.append((conversation_id, None, str(exc)))
        else:
            fetched.items.append((conversation_id, data, ""))
    fetched.complete = True


def _history_apply_page(run: SyncRun, fetched: PageFetch) -> bool:
    """Import the fetched conversations and move the offset, or the cursor once the page is done: True when more."""
    if isinstance(fetched.body.get("total_count"), int):
        run.total = fetched.body["total_count"]
    for conversation_id, data, error in fetched.items:
        if data is None:
            _item_error(run, f"conversation {conversation_id}", error)
        else:
            conversation_import(run=run, data=data)
        run.offset += 1
        run.done += 1
    if not fetched.complete:
        return True  # the next task fetches the rest of this page
    found = [c for c in fetched.body.get("conversations") or [] if isinstance(c, dict)]
    run.pages += 1
    following = _dict(_dict(fetched.body.get("pages")).get("next"))
    cursor = str(following.get("starting_after") or "")
    if found and cursor:
        run.cursor, run.offset = cursor[:500], 0
        return True
    return False


def conversation_import(*, run: SyncRun, data) -> None:
    """Mirror one closed conversation and learn from its new messages (none: it was imported before)."""
    result = conversation_upsert_from_intercom(workspace_id=run.workspace_id, data=data, live=False)
    _count(run, conversations=1, messages=len(result.new_message_ids))
    if not result.new_message_ids:
        return
    lesson = suggestions_learn_from_history(message_ids=result.new_message_ids)
    proposed = reply_occurrences_record(
        workspace_id=run.workspace_id, conversation_ref=data.intercom_id, replies=lesson.unmatched
    )
    _count(run, learnt=lesson.learnt, gaps=lesson.gaps, proposals=proposed)


def reply_text_key(text: str) -> tuple[str, int]:
    """A reply's identity across conversations and its word count: case, spacing and punctuation aside, and
    without a short greeting or sign-off line ("Hi Rose," / "Cheers, Cordelia"), which names who it was for."""
    lines = [_WORDS.sub(" ", line.lower()).split() for line in html_to_text(text).splitlines()]
    lines = [words for words in lines if words]
    if len(lines) > 1 and len(lines[0]) <= 4 and lines[0][0] in _GREETINGS:
        lines = lines[1:]
    if len(lines) > 1 and len(lines[-1]) <= 4 and lines[-1][0] in _SIGN_OFFS:
        lines = lines[:-1]
    words = [word for line in lines for word in line]
    return hashlib.sha256(" ".join(words).encode()).hexdigest(), len(words)


def _proposal_title(reply: UnmatchedReply) -> str:
    source = next((q for q in reply.questions if q.strip()), "") or reply.text
    first = source.strip().splitlines()[0] if source.strip() else "Proposed reply"
    return first[:120]


def reply_occurrences_record(*, workspace_id: int, conversation_ref: str, replies: list[UnmatchedReply]) -> int:
    """Count each unmatched reply once per conversation; one sent in enough conversations becomes a proposal.

    Returns how many proposals this created. A proposal already there counts the new conversation and
    gains example questions; a reply an entry already holds (written since) proposes nothing.
    """
    created = 0
    threshold = settings.CUE_SYNC_PROPOSAL_MIN_CONVERSATIONS
    for reply in replies:
        key, words = reply_text_key(reply.text)
        if words < PROPOSAL_MIN_WORDS:
            continue
        _, new = ReplyOccurrence.objects.get_or_create(
            workspace_id=workspace_id,
            text_key=key,
            conversation_ref=conversation_ref[:100],
            defaults={"question": "\n".join(reply.questions)[:2000]},
        )
        if not new:
            continue  # this conversation was counted already (a re-import)
        times = ReplyOccurrence.objects.filter(workspace_id=workspace_id, text_key=key).count()
        proposal = EntryProposal.objects.select_for_update().filter(workspace_id=workspace_id, text_key=key).first()
        if proposal is not None:
            proposal.times_sent = times
            if reply.questions and len(proposal.example_questions) < PROPOSAL_EXAMPLES:
                proposal.example_questions = [*proposal.example_questions, reply.questions[-1][:500]]
            proposal.save(update_fields=["times_sent", "example_questions", "updated_at"])
        elif times >= threshold and entry_matching_reply(workspace_id=workspace_id, text=reply.text) is None:
            examples = [
                q.splitlines()[-1][:500]
                for q in ReplyOccurrence.objects.filter(workspace_id=workspace_id, text_key=key)
                .exclude(question="")
                .order_by("id")
                .values_list("question", flat=True)[:PROPOSAL_EXAMPLES]
            ]
            EntryProposal.objects.create(
                workspace_id=workspace_id,
                text_key=key,
                title=_proposal_title(reply),
                body_html=reply.html,
                body_text=reply.text,
                times_sent=times,
                example_questions=examples,
            )
            created += 1
            logger.info("entry proposed", extra={"workspace_id": workspace_id, "times_sent": times})
    return created


# ------------------------------------------------------------------------------
# Finishing, failing, progress
# ------------------------------------------------------------------------------
def sync_finish(*, run_id: int, chain: bool = True) -> dict:
    """The chain's callback: an articles run retires what it did not see; then the run has succeeded.

    Intercom is called with no transaction open (see articles_finish). Returns {"run_id", "status"};
    a run still "running" has more to retire (with `chain`, dispatched again). Raises the Intercom
    error that stopped it (the run already failed when it is permanent), except a parking one.
    """
    seen = SyncRun.objects.filter(pk=run_id).first()
    if seen is None or seen.status != SyncStatus.RUNNING:
        return {"run_id": run_id, "status": seen.status if seen else "missing"}
    done, error, client = True, None, None
    if seen.kind == SyncKind.ARTICLES:
        connection = integration_selectors.connection_for_workspace(workspace=seen.workspace_id)
        if connection is None:
            _run_fail(run_id=run_id, error="The workspace's Intercom connection was removed.")
            return {"run_id": run_id, "status": SyncStatus.FAILED}
        client = _client(connection, seen)
        try:
            done = articles_finish(run_id=run_id, client=client)
        except IntercomError as exc:
            done, error = False, exc
    with transaction.atomic():
        run = _run_locked(run_id)
        if run is None:
            return {"run_id": run_id, "status": "missing"}
        if client is not None:
            _client_done(run, client)
            run.tasks += 1
        if run.status != SyncStatus.RUNNING:
            run.save()
            return {"run_id": run_id, "status": run.status}
        if isinstance(error, IntercomPaced):
            _park(run, error)  # the job resumes it: the page task finds the cursor at the end
        elif error is not None and not error.retryable:
            _fail(run, str(error))
        elif done:
            run.status = SyncStatus.SUCCEEDED
            run.finished_at = timezone.now()
            logger.info(
                "intercom sync finished",
                extra={"sync_run_id": run.id, "workspace_id": run.workspace_id, "kind": run.kind, "counts": run.counts},
            )
        run.save()
        if run.status == SyncStatus.RUNNING and error is None and chain:
            task_dispatch(task=FINISH_TASK, args=[run.id], workspace_id=run.workspace_id, error_callback=FAILED_TASK)
    if error is not None and not isinstance(error, IntercomPaced):
        raise error
    return {"run_id": run_id, "status": run.status}


def sync_mark_failed(*, task_id: str, run_id: int | None, error: str) -> None:
    """The chain's error callback: a page task that went dead fails its run (operators retry the task).

    A rejected one (a permanent Intercom error) failed the run with its reason already: left as it is.
    """
    if run_id is not None:
        _run_fail(run_id=run_id, error=f"task {task_id} failed: {error}")


def run_progress(run: SyncRun, *, now: datetime | None = None) -> dict:
    """Items per second since the run started, and the seconds left at that pace (None when unknown)."""
    end = run.finished_at or now or timezone.now()
    elapsed = max((end - run.created_at).total_seconds(), 1e-3)
    rate = run.done / elapsed if run.done else 0.0
    eta = None
    if run.status in (SyncStatus.RUNNING, SyncStatus.WAITING) and run.total is not None and rate > 0:
        eta = max(0.0, (run.total - run.done) / rate)
    return {"rate": round(rate, 3), "eta_seconds": None if eta is None else round(eta, 1), "elapsed": elapsed}
