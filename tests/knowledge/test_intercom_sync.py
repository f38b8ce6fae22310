"""Help Center sync and history import from an Intercom stand-in: idempotent, resumable, paced, tenant-scoped."""

# ruff: noqa: F811 - the Intercom fixtures are imported from tests/integrations/conftest.py

import time
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection as db
from django.utils import timezone
from pytest_httpserver import HTTPServer

from apps.conversations.models import Message
from apps.knowledge import jobs, sync
from apps.knowledge.models import (
    Entry,
    EntryEvidence,
    EntryProposal,
    KnowledgeSettings,
    ProposalStatus,
    ReplyOccurrence,
    SyncRun,
    SyncStatus,
)
from apps.knowledge.services import entry_create, evidence_record
from apps.suggestions.models import KnowledgeGap
from apps.tasks.models import TaskRun, TaskStatus
from apps.tasks.outcomes import Outcome
from apps.tasks.services import task_execute, task_sweep
from tests.integrations.conftest import connect, connection, intercom_api, intercom_settings  # noqa: F401
from tests.integrations.intercom_standin import IntercomStandIn, article, closed_conversation
from tests.support.locks import while_intercom_is_called

pytestmark = pytest.mark.django_db

SYNC_URL = "/api/integrations/intercom/sync"
RESET_BODY = (
    "<p>To reset your password, open <b>Settings</b>, choose Security and click <em>Forgot password</em>. "
    'We email you a reset link that works for one hour. See <a href="/en/articles/77-security">security</a> '
    'or <a href="https://status.example.com">our status page</a>.</p>'
)
REFUND_BODY = "<p>We refund any order within 30 days. Refunds reach your card in five to ten business days.</p>"
SHIP_BODY = "<p>Standard shipping takes three to five days, express shipping one or two days.</p>"
# What an agent types by hand, greeting and signature around the entry's text.
TYPED_RESET = (
    "<p>Hi Rose, thanks for writing in!</p><p>To reset your password, open Settings, choose Security and click "
    "Forgot password. We email you a reset link that works for one hour.</p><p>Cheers, Cordelia</p>"
)
# A reply the team keeps sending that no entry holds: it should become a proposed entry.
WAREHOUSE = (
    "<p>Our warehouse in Leipzig packs orders every weekday before noon, so an order placed in the morning "
    "leaves the same day with tracking by email.</p>"
)


@pytest.fixture
def standin(intercom_api) -> IntercomStandIn:
    return IntercomStandIn(server=intercom_api).install()


@pytest.fixture
def fast(settings):
    """Small pages (so a few items make several page tasks), no long waits."""
    settings.CUE_SYNC_ARTICLES_PER_PAGE = 2
    settings.CUE_SYNC_CONVERSATIONS_PER_PAGE = 3
    settings.INTERCOM_HTTP_MAX_RETRY_WAIT_SECONDS = 2
    return settings


@pytest.fixture
def run_sync(owner_client, django_capture_on_commit_callbacks):
    """POST the sync endpoint and run the task chain it starts (inline, after commit) to its end."""

    def start(**body):
        with django_capture_on_commit_callbacks(execute=True):
            response = owner_client.post(SYNC_URL, body, format="json")
        assert response.status_code == 202, response.json()
        return [SyncRun.objects.get(pk=run["id"]) for run in response.json()["runs"]]

    return start


def help_center(standin: IntercomStandIn) -> dict:
    items = {
        "reset": article("Reset your password", RESET_BODY, updated_at=1700000300),
        "refund": article("Refunds", REFUND_BODY, updated_at=1700000200),
        "ship": article("Shipping times", SHIP_BODY, updated_at=1700000100),
        "draft": article("Upcoming pricing", "<p>Not ready yet, prices change in May.</p>", state="draft"),
        "promo": article("Spring promotion", "<p>Twenty percent off every plan until the end of March.</p>"),
    }
    standin.add_articles(*items.values())
    return items


def many_articles(count: int) -> list[dict]:
    return [article(f"Article number {n}", f"<p>Body of article {n}, a few words.</p>") for n in range(count)]


def synced(workspace_id: int) -> dict[str, Entry]:
    return {e.title: e for e in Entry.objects.filter(workspace_id=workspace_id, source=sync.ARTICLE_SOURCE)}


# ------------------------------------------------------------------------------
# Help Center sync
# ------------------------------------------------------------------------------
def test_sync_makes_entries_that_remember_their_article(connection, standin, fast, run_sync, owner_client):
    """Published articles become entries with article id, URL, locale and edit time; drafts do not; links stay."""
    items = help_center(standin)
    hand = entry_create(workspace_id=connection.workspace_id, title="Hand written", body="<p>Kept as it is.</p>")
    [run] = run_sync(articles=True)
    run.refresh_from_db()
    assert (run.status, run.done, run.total, run.errors) == (SyncStatus.SUCCEEDED, 5, 5, 0)
    assert run.pages == 3 and run.counts["created"] == 4
    entries = synced(connection.workspace_id)
    assert sorted(entries) == ["Refunds", "Reset your password", "Shipping times", "Spring promotion"]
    reset = entries["Reset your password"]
    assert (reset.kind, reset.external_id, reset.source_locale) == ("article", items["reset"]["id"], "en")
    assert reset.source_url == items["reset"]["url"]
    assert int(reset.source_updated_at.timestamp()) == 1700000300
    # Links stay usable: a relative one is made absolute against the article, and the text keeps the URLs.
    assert 'href="https://help.example.com/en/articles/77-security"' in reset.body_html
    assert "security (https://help.example.com/en/articles/77-security)" in reset.body_text
    assert "our status page (https://status.example.com)" in reset.body_text
    hand_after = Entry.objects.get(pk=hand.pk)
    assert (hand_after.source, hand_after.updated_at, hand_after.enabled) == ("manual", hand.updated_at, True)
    listed = owner_client.get(f"/api/knowledge/entries/{reset.id}").json()
    assert (listed["source"], listed["article_id"], listed["source_url"]) == (
        "intercom_article",
        items["reset"]["id"],
        items["reset"]["url"],
    )


def test_resync_changes_only_what_changed(connection, standin, fast, run_sync):
    """Edited articles update in place (evidence kept), removed/unpublished ones retire, nothing is duplicated."""
    items = help_center(standin)
    run_sync(articles=True)
    before = synced(connection.workspace_id)
    refund = before["Refunds"]
    evidence_record(
        workspace_id=connection.workspace_id,
        entry_id=refund.id,
        message_ref="message:1",
        text="can I get my money back",
        action="accept",
    )
    items["refund"]["body"] = "<p>We refund any order within 60 days, to the card you paid with.</p>"
    items["refund"]["translated_content"]["en"]["body"] = items["refund"]["body"]
    items["refund"]["updated_at"] = items["refund"]["translated_content"]["en"]["updated_at"] = 1700009999
    del standin.articles[items["ship"]["id"]]
    items["promo"]["translated_content"]["en"]["state"] = items["promo"]["state"] = "draft"

    [second] = run_sync(articles=True)
    second.refresh_from_db()
    assert second.status == SyncStatus.SUCCEEDED
    assert {k: second.counts.get(k, 0) for k in ("created", "updated", "unchanged", "retired")} == {
        "created": 0,
        "updated": 1,
        "unchanged": 1,
        "retired": 2,
    }
    after = synced(connection.workspace_id)
    assert len(after) == 4, "nothing duplicated, nothing deleted"
    assert after["Refunds"].id == refund.id
    assert "60 days" in after["Refunds"].body_text
    assert EntryEvidence.objects.filter(entry=refund).count() == 1, "learned evidence survives the edit"
    assert after["Reset your password"].updated_at == before["Reset your password"].updated_at
    for title in ("Shipping times", "Spring promotion"):
        assert not after[title].enabled and after[title].retired_at is not None
    # The removed one was asked for by id before it was retired.
    assert standin.calls_to(f"GET /articles/{items['ship']['id']}") == 1

    items["promo"]["translated_content"]["en"]["state"] = items["promo"]["state"] = "published"
    [third] = run_sync(articles=True)
    third.refresh_from_db()
    promo = synced(connection.workspace_id)["Spring promotion"]
    assert promo.enabled and promo.retired_at is None, "republished: back in service"
    assert third.counts.get("retired", 0) == 0 and third.counts.get("created", 0) == 0


def test_a_retired_entry_the_owner_disabled_by_hand_is_not_reenabled(connection, standin, fast, run_sync):
    """Only retirement by the sync is undone by the sync: an entry an owner switched off stays off."""
    help_center(standin)
    run_sync(articles=True)
    Entry.objects.filter(title="Refunds").update(enabled=False)
    run_sync(articles=True)
    assert not Entry.objects.get(title="Refunds").enabled


def test_the_workspace_chooses_its_locales(connection, standin, fast, run_sync):
    """Each chosen locale with published content is its own entry; a draft translation is not synced."""
    standin.add_articles(
        article(
            "Refunds",
            REFUND_BODY,
            translations={
                "fr": ("Remboursements", "<p>Nous remboursons toute commande sous 30 jours.</p>", "published"),
                "de": ("Erstattungen", "<p>Wir erstatten jede Bestellung binnen 30 Tagen.</p>", "draft"),
            },
        )
    )
    KnowledgeSettings.objects.create(workspace_id=connection.workspace_id, article_locales=["en", "fr", "de"])
    run_sync(articles=True)
    rows = sorted(Entry.objects.values_list("source_locale", "title"))
    assert rows == [("en", "Refunds"), ("fr", "Remboursements")]
    KnowledgeSettings.objects.filter(workspace_id=connection.workspace_id).update(article_locales=["en"])
    run_sync(articles=True)
    assert not Entry.objects.get(source_locale="fr").enabled, "a locale no longer synced retires"


def test_a_429_and_a_page_that_fails_once_are_ridden_out(connection, standin, fast, run_sync):
    """Intercom's 429 (Retry-After) and a 500 on page 2 are retried; the run completes with every article."""
    help_center(standin)
    standin.forced_429 = 1
    standin.failures["/articles?page=2"] = 1
    [run] = run_sync(articles=True)
    run.refresh_from_db()
    assert run.status == SyncStatus.SUCCEEDED
    assert run.rate_limited == 1 and standin.served_429 == 1
    assert len(synced(connection.workspace_id)) == 4
    assert standin.calls_to("GET /articles?page=2") == 2


@pytest.fixture
def window_waits(monkeypatch, standin) -> list[float]:
    """The sync's waits for Intercom's window: recorded, and the stand-in's window rolls instead of sleeping."""
    waits: list[float] = []

    def wait(seconds: float) -> None:
        waits.append(seconds)
        standin.roll_window()

    class Client(sync.IntercomClient):
        @classmethod
        def for_connection(cls, connection, **kwargs):
            return super().for_connection(connection, sleep=wait, **kwargs)

    monkeypatch.setattr(sync, "IntercomClient", Client)
    return waits


def test_pacing_slows_down_before_a_429(connection, standin, fast, run_sync, window_waits):
    """With few calls left in Intercom's window the next waits for its reset: no 429 at all."""
    fast.CUE_SYNC_RATE_FLOOR = 2
    fast.CUE_SYNC_MAX_INLINE_WAIT_SECONDS = 120
    standin.rate_limit, standin.window_seconds = 10, 60  # a window that never rolls over by itself here
    standin.add_articles(*many_articles(30))
    [run] = run_sync(articles=True)
    run.refresh_from_db()
    assert run.status == SyncStatus.SUCCEEDED
    assert run.requests == 15, "more calls than one window holds"
    assert standin.served_429 == 0 and run.rate_limited == 0
    assert len(window_waits) == 1 and 50 < window_waits[0] <= 60, "one wait, after 9 calls, for the window's reset"
    assert run.paced_seconds == pytest.approx(window_waits[0])
    assert Entry.objects.count() == 30


def test_a_far_reset_parks_the_run_and_the_job_resumes_it(
    connection, standin, fast, run_sync, window_waits, django_capture_on_commit_callbacks
):
    """A reset further away than a task may wait parks the run; apps.knowledge.jobs.intercom_sync resumes it."""
    fast.CUE_SYNC_RATE_FLOOR = 2
    fast.CUE_SYNC_MAX_INLINE_WAIT_SECONDS = 5
    standin.rate_limit, standin.window_seconds = 10, 60
    standin.add_articles(*many_articles(30))
    [run] = run_sync(articles=True)
    run.refresh_from_db()
    assert run.status == SyncStatus.WAITING and run.resume_at is not None
    assert (run.done, run.requests) == (18, 9), "parked before the 10th call, with 9 pages done"
    for _ in range(5):
        # The reset passes: Intercom's window rolls, and the job (run at any later minute) resumes the run.
        standin.roll_window()
        past = run.resume_at - timedelta(minutes=2)
        SyncRun.objects.filter(pk=run.pk).update(resume_at=past, rate_reset=past.timestamp())
        with django_capture_on_commit_callbacks(execute=True):
            assert jobs.intercom_sync({}, None)["resumed"] == 1
        run.refresh_from_db()
        if run.status != SyncStatus.WAITING:
            break
    assert run.status == SyncStatus.SUCCEEDED
    assert len(synced(connection.workspace_id)) == 30
    assert standin.served_429 == 0 and window_waits == []


def test_the_job_syncs_each_connected_help_center_daily(connection, standin, fast, django_capture_on_commit_callbacks):  # noqa: E501
    """The job starts an articles run for a workspace without one in the last day, and only then."""
    help_center(standin)
    with django_capture_on_commit_callbacks(execute=True):
        first = jobs.intercom_sync({}, None)
    with django_capture_on_commit_callbacks(execute=True):
        second = jobs.intercom_sync({}, None)
    assert (first["started"], second["started"]) == (1, 0)
    assert SyncRun.objects.get().status == SyncStatus.SUCCEEDED


# ------------------------------------------------------------------------------
# History import
# ------------------------------------------------------------------------------
def history(standin: IntercomStandIn, *, recent: int) -> dict:
    """Closed conversations: typed entry replies, a recurring unmatched reply, an unanswerable question."""
    convs = {
        "typed": [
            closed_conversation(
                [(f"<p>I am locked out of my account {n}, the login fails</p>", TYPED_RESET)], updated_at=recent - n
            )
            for n in range(2)
        ],  # fmt: skip
        "warehouse": [
            closed_conversation(
                [(f"<p>When will my parcel {n} leave your warehouse?</p>", f"<p>Hi {name},</p>{WAREHOUSE}<p>Best</p>")],
                updated_at=recent - 10 - n,
            )
            for n, name in enumerate(["Rose", "Ana", "Li", "Bo"])
        ],
        "gap": [
            closed_conversation(
                [("<p>Do you sell gift vouchers for birthdays?</p>", "<p>Let me check with the team.</p>")],
                updated_at=recent - 30,
            )
        ],
        "old": [closed_conversation([("<p>Ancient question</p>", WAREHOUSE)], updated_at=recent - 90 * 86400)],
    }
    standin.add_conversations(*[c for group in convs.values() for c in group])
    return convs


def outcome(workspace_id: int) -> dict:
    proposal = EntryProposal.objects.filter(workspace_id=workspace_id).first()
    return {
        "messages": Message.objects.filter(workspace_id=workspace_id).count(),
        "evidence": EntryEvidence.objects.filter(workspace_id=workspace_id).count(),
        "gaps": sorted(KnowledgeGap.objects.filter(workspace_id=workspace_id).values_list("text", flat=True)),
        "occurrences": ReplyOccurrence.objects.filter(workspace_id=workspace_id).count(),
        "proposal": (proposal.times_sent, len(proposal.example_questions)) if proposal else None,
    }


EXPECTED = {
    "messages": 14,  # 7 conversations, a question and a reply each
    "evidence": 2,  # each typed "reset" reply teaches the question it answered
    # Questions no entry answers: the voucher one, and the warehouse ones (answered, but by no entry yet).
    "gaps": ["Do you sell gift vouchers for birthdays?"]
    + [f"When will my parcel {n} leave your warehouse?" for n in range(4)],
    "occurrences": 4,
    "proposal": (4, 4),
}


def test_history_import_learns_gaps_and_proposes(connection, kb, standin, fast, run_sync):
    """Replies repeating an entry teach it; unanswered questions are gaps; a recurring reply is proposed."""
    history(standin, recent=int(time.time()) - 86400)
    [run] = run_sync(history_days=30)
    run.refresh_from_db()
    assert (run.status, run.done, run.total, run.errors) == (SyncStatus.SUCCEEDED, 7, 7, 0)
    assert run.pages == 3 and run.tasks >= 3
    assert outcome(connection.workspace_id) == EXPECTED
    target = kb["Reset your password"]
    assert EntryEvidence.objects.filter(entry=target, action="accept").count() == 2
    proposal = EntryProposal.objects.get()
    assert proposal.status == ProposalStatus.PROPOSED
    assert "Leipzig" in proposal.body_text and proposal.title.startswith("When will my parcel")
    assert all("warehouse" in q for q in proposal.example_questions)
    # Imported history shows nothing to agents and asks no live step of anything.
    assert not TaskRun.objects.filter(name__startswith="apps.suggestions.tasks").exists()


def test_a_second_import_of_the_same_history_changes_nothing(connection, kb, standin, fast, run_sync):
    history(standin, recent=int(time.time()) - 86400)
    run_sync(history_days=30)
    run_sync(history_days=30)
    assert outcome(connection.workspace_id) == EXPECTED
    assert EntryProposal.objects.count() == 1


def test_import_resumes_after_a_task_dies_mid_page_with_nothing_twice(connection, kb, standin, fast, run_sync):
    """A page task that dies on its third conversation rolls back; the sweeper's retry redoes the page once."""
    fast.INTERCOM_HTTP_MAX_RETRIES = 0
    convs = history(standin, recent=int(time.time()) - 86400)
    dying = convs["warehouse"][2]["id"]  # on the second page, after others of that page were applied
    standin.failures[f"/conversations/{dying}"] = 1
    [run] = run_sync(history_days=30)
    run.refresh_from_db()
    assert run.status == SyncStatus.RUNNING
    [failed] = TaskRun.objects.filter(name=sync.PAGE_TASK, status=TaskStatus.FAILED)
    assert "Intercom failed (500)" in failed.last_error
    partial = outcome(connection.workspace_id)
    assert partial["messages"] < EXPECTED["messages"]
    callbacks_before = len(db.run_on_commit)
    task_sweep(now=failed.next_attempt_at)
    while len(db.run_on_commit) > callbacks_before:  # run the retried chain inline, as the sweeper sends it
        _, callback, _ = db.run_on_commit.pop(callbacks_before)
        callback()
    run.refresh_from_db()
    assert run.status == SyncStatus.SUCCEEDED
    assert (run.done, run.total) == (7, 7)
    assert outcome(connection.workspace_id) == EXPECTED


def test_a_page_split_by_the_invocation_deadline_applies_each_item_once(
    connection, kb, standin, fast, run_sync, monkeypatch
):  # noqa: E501
    """With time short after every item, each task applies one conversation and hands the rest on."""
    history(standin, recent=int(time.time()) - 86400)
    calls = iter(range(10_000))
    monkeypatch.setattr(sync, "_time_is_short", lambda: next(calls) % 2 == 1)
    [run] = run_sync(history_days=30)
    run.refresh_from_db()
    assert run.status == SyncStatus.SUCCEEDED
    assert run.tasks >= 7
    assert outcome(connection.workspace_id) == EXPECTED


def test_proposals_need_enough_conversations(connection, kb, standin, fast, run_sync):
    """A reply sent in fewer conversations than the threshold proposes nothing (yet)."""
    fast.CUE_SYNC_PROPOSAL_MIN_CONVERSATIONS = 5
    history(standin, recent=int(time.time()) - 86400)
    run_sync(history_days=30)
    assert EntryProposal.objects.count() == 0
    assert ReplyOccurrence.objects.count() == 4


# ------------------------------------------------------------------------------
# The page tasks: nothing locked while Intercom is called, permanent errors, duplicate deliveries
# ------------------------------------------------------------------------------
def start_runs(connection, **kinds) -> list[SyncRun]:
    """Start runs as the API does; with the `sns` fixture their tasks wait on the topic for sns.run_all()."""
    return sync.sync_start(workspace_id=connection.workspace_id, **{"articles": False, "history_days": None, **kinds})


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("kind", "path"), [("articles", "/articles"), ("history", "/conversations/")])
def test_no_transaction_or_run_lock_is_held_while_intercom_is_called(connection, standin, fast, sns, kind, path):
    """Each page is fetched with no transaction open and the run row unlocked; a redelivery meanwhile is busy."""
    if kind == "articles":
        help_center(standin)
        start = {"articles": True}
    else:
        history(standin, recent=int(time.time()) - 86400)
        start = {"history_days": 30}
    seen = []

    def probe(request):
        if not request.path.startswith(path) or request.path == "/conversations/search":
            return
        run = SyncRun.objects.get()
        [task] = TaskRun.objects.filter(name=sync.PAGE_TASK, status=TaskStatus.RUNNING)
        seen.append(while_intercom_is_called(run, task, task_id=task.id))

    standin.on_request = probe
    [run] = start_runs(connection, **start)
    sns.run_all()
    run.refresh_from_db()
    assert run.status == SyncStatus.SUCCEEDED and run.done == run.total
    calls = 3 if kind == "articles" else 7  # the article pages; each conversation of the history
    assert seen == [{"rows_locked": False, "transactions_open": 0, "redelivery": Outcome.BUSY}] * calls


REFUSALS = [
    ("articles", 401, "Intercom refused the access token (401)"),
    ("articles", 404, "Not found in Intercom (404)"),
    ("history", 401, "Intercom refused the access token (401)"),
]


@pytest.mark.parametrize(("kind", "status", "reason"), REFUSALS)
def test_a_permanent_error_on_a_page_rejects_the_task_and_fails_the_run(
    connection, standin, fast, run_sync, kind, status, reason
):
    """A 401/404 of a page is no success: the task is rejected, the run failed with the reason, the chain stops."""
    if kind == "articles":
        help_center(standin)
        standin.refused["/articles?page=2"] = status
        [run] = run_sync(articles=True)
    else:
        convs = history(standin, recent=int(time.time()) - 86400)
        standin.refused[f"/conversations/{convs['warehouse'][0]['id']}"] = status  # second of the second page
        [run] = run_sync(history_days=30)
    run.refresh_from_db()
    assert run.status == SyncStatus.FAILED and run.finished_at is not None
    assert run.last_error.startswith(reason), run.last_error
    pages = TaskRun.objects.filter(name=sync.PAGE_TASK).order_by("created_at")
    assert [task.status for task in pages] == [TaskStatus.SUCCEEDED, TaskStatus.REJECTED]
    rejected = pages.last()
    assert rejected.attempts == 1 and "permanent error, not retried" in rejected.last_error
    assert reason in rejected.last_error
    assert not TaskRun.objects.filter(name=sync.FINISH_TASK).exists()
    # The error callback ran and left the run's reason as the page task recorded it.
    assert TaskRun.objects.get(name=sync.FAILED_TASK).status == TaskStatus.SUCCEEDED
    # What came before the refusal stays applied, once.
    assert run.done == (2 if kind == "articles" else 4)
    assert run.done == (len(synced(connection.workspace_id)) if kind == "articles" else run.counts["conversations"])


@pytest.fixture
def concurrent_standin(settings) -> IntercomStandIn:
    """The stand-in on a server that answers calls concurrently: one made while another call is held answers."""
    server = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    server.start()
    base = server.url_for("").rstrip("/")
    settings.INTERCOM_API_HOSTS = {"us": base, "eu": base + "/eu", "au": base + "/au"}
    try:
        yield IntercomStandIn(server=server).install()
    finally:
        server.clear()
        server.stop()


@pytest.mark.django_db(transaction=True)
def test_a_duplicate_delivery_racing_a_page_applies_it_once(connection, concurrent_standin, fast, sns):
    """The first delivery's claim runs out while it fetches page 1 and the message comes again: the duplicate
    applies the page and chains on; the first then finds the cursor moved and applies nothing, dispatches nothing."""
    standin = concurrent_standin
    help_center(standin)
    raced = []

    def redeliver(request):
        if request.path != "/articles" or request.args.get("page") != "1" or raced:
            return
        raced.append(None)
        try:
            [task] = TaskRun.objects.filter(name=sync.PAGE_TASK, status=TaskStatus.RUNNING)
            TaskRun.objects.filter(pk=task.pk).update(claimed_until=timezone.now() - timedelta(seconds=1))
            raced[0] = task_execute(task_id=str(task.id))
        finally:
            db.close()

    standin.on_request = redeliver
    [run] = start_runs(connection, articles=True)
    sns.run_all()
    assert raced == [Outcome.SUCCEEDED]
    assert standin.calls_to("GET /articles?page=1") == 2, "both deliveries fetched page 1"
    run.refresh_from_db()
    assert run.status == SyncStatus.SUCCEEDED
    assert (run.done, run.total, run.pages) == (5, 5, 3)
    assert run.counts == {"created": 4, "updated": 0, "unchanged": 0}
    assert len(synced(connection.workspace_id)) == 4
    # One chain: a task per page and one finish, not a second chain from the first delivery.
    assert TaskRun.objects.filter(name=sync.PAGE_TASK).count() == 3
    assert TaskRun.objects.filter(name=sync.FINISH_TASK).count() == 1


# ------------------------------------------------------------------------------
# The endpoints: validation, roles, tenancy
# ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"history_days": 0}, "history_days"),
        ({"history_days": 366}, "history_days"),
        ({"history_days": "soon"}, "history_days"),
        ({"articles": "maybe"}, "articles"),
        ({}, "non_field_errors"),
        ({"articles": False, "history_days": None}, "non_field_errors"),
    ],
)
def test_bad_sync_requests_are_400_and_start_nothing(connection, owner_client, body, field):
    response = owner_client.post(SYNC_URL, body, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid"
    assert field in response.json()["error"]["fields"]
    assert not SyncRun.objects.exists() and not TaskRun.objects.filter(name=sync.PAGE_TASK).exists()


def test_sync_without_a_connection_is_409(owner_client):
    response = owner_client.post(SYNC_URL, {"articles": True}, format="json")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "not_connected"
    assert not SyncRun.objects.exists()


def test_a_disabled_connection_syncs_nothing(connection, owner_client, standin, django_capture_on_commit_callbacks):
    """A connection taken over or no longer proven routes and calls nothing: 409, and the daily job skips it."""
    connection.disabled_at = timezone.now()
    connection.save(update_fields=["disabled_at"])
    response = owner_client.post(SYNC_URL, {"articles": True}, format="json")
    assert response.status_code == 409 and response.json()["error"]["code"] == "not_connected"
    with django_capture_on_commit_callbacks(execute=True):
        assert jobs.intercom_sync({}, None)["started"] == 0
    assert not SyncRun.objects.exists() and standin.calls == []


def test_one_run_of_a_kind_at_a_time(connection, owner_client, owner):
    """While a run is going, starting another of its kind is 409 naming it; nothing is sent."""
    running = SyncRun.objects.create(workspace_id=owner.workspace_id, kind="articles")
    response = owner_client.post(SYNC_URL, {"articles": True, "history_days": 7}, format="json")
    assert response.status_code == 409
    assert response.json()["error"]["fields"]["run"] == [str(running.id)]
    assert SyncRun.objects.count() == 1, "the history run was not started either"


def test_members_see_progress_agents_cannot_start(connection, owner, agent_client, other_owner_client):
    run = SyncRun.objects.create(workspace_id=owner.workspace_id, kind="history", done=30, total=120)
    SyncRun.objects.filter(pk=run.pk).update(created_at=timezone.now() - timedelta(seconds=60))  # 0.5 a second
    assert agent_client.post(SYNC_URL, {"articles": True}, format="json").status_code == 403
    [seen] = agent_client.get(SYNC_URL).json()["results"]
    assert (seen["id"], seen["done"], seen["total"], seen["errors"]) == (run.id, 30, 120, 0)
    assert 0.45 < seen["rate"] <= 0.5
    assert 180 <= seen["eta_seconds"] < 200, "90 left at 0.5 a second"
    assert other_owner_client.get(SYNC_URL).json()["results"] == [], "another workspace's runs are not listed"


@pytest.fixture
def proposal(owner) -> EntryProposal:
    return EntryProposal.objects.create(
        workspace_id=owner.workspace_id,
        text_key="k" * 64,
        title="When will my parcel leave?",
        body_html=WAREHOUSE,
        body_text="Our warehouse in Leipzig packs orders every weekday before noon",
        times_sent=4,
        example_questions=["When will my parcel leave your warehouse?", "Has my order left yet?"],
    )


def test_accepting_a_proposal_makes_an_entry_that_already_knows_its_questions(owner_client, agent_client, proposal):
    assert agent_client.post(f"/api/knowledge/proposals/{proposal.id}/accept").status_code == 403
    [listed] = agent_client.get("/api/knowledge/proposals").json()["results"]
    assert (listed["id"], listed["times_sent"], len(listed["example_questions"])) == (proposal.id, 4, 2)
    response = owner_client.post(f"/api/knowledge/proposals/{proposal.id}/accept", {}, format="json")
    assert response.status_code == 201
    entry = Entry.objects.get(pk=response.json()["id"])
    assert entry.title == "When will my parcel leave?" and "Leipzig" in entry.body_text
    assert EntryEvidence.objects.filter(entry=entry, action="accept").count() == 2
    proposal.refresh_from_db()
    assert (proposal.status, proposal.entry_id) == (ProposalStatus.ACCEPTED, entry.id)
    again = owner_client.post(f"/api/knowledge/proposals/{proposal.id}/accept", {}, format="json")
    assert again.status_code == 409 and again.json()["error"]["code"] == "already_decided"
    assert Entry.objects.count() == 1
    assert owner_client.get("/api/knowledge/proposals").json()["results"] == []
    assert len(owner_client.get("/api/knowledge/proposals?status=accepted").json()["results"]) == 1


def test_dismissing_a_proposal(owner_client, proposal):
    response = owner_client.post(f"/api/knowledge/proposals/{proposal.id}/dismiss")
    assert response.status_code == 200 and response.json()["status"] == "dismissed"
    assert owner_client.post(f"/api/knowledge/proposals/{proposal.id}/dismiss").status_code == 200
    assert owner_client.post(f"/api/knowledge/proposals/{proposal.id}/accept").status_code == 409
    assert not Entry.objects.exists()


def test_proposals_of_another_workspace_are_404(other_owner_client, proposal):
    for action in ("accept", "dismiss"):
        response = other_owner_client.post(f"/api/knowledge/proposals/{proposal.id}/{action}")
        assert response.status_code == 404
    assert other_owner_client.get("/api/knowledge/proposals").json()["results"] == []
    proposal.refresh_from_db()
    assert proposal.status == ProposalStatus.PROPOSED


def test_bad_proposal_requests(owner_client, proposal):
    assert owner_client.get("/api/knowledge/proposals?status=maybe").status_code == 400
    long_title = owner_client.post(
        f"/api/knowledge/proposals/{proposal.id}/accept", {"title": "x" * 301}, format="json"
    )
    assert long_title.status_code == 400 and "title" in long_title.json()["error"]["fields"]
    assert owner_client.post("/api/knowledge/proposals/999999/accept").status_code == 404
    assert not Entry.objects.exists()


def test_bad_article_locales_are_400(owner_client):
    response = owner_client.patch("/api/knowledge/settings", {"article_locales": ["en", "not a locale"]}, format="json")
    assert response.status_code == 400 and "article_locales" in response.json()["error"]["fields"]
    ok = owner_client.patch("/api/knowledge/settings", {"article_locales": ["en", "pt-BR"]}, format="json")
    assert ok.json()["article_locales"] == ["en", "pt-BR"]


# ------------------------------------------------------------------------------
# manage.py intercom_sync
# ------------------------------------------------------------------------------
def test_the_command_runs_a_sync_here_and_reports_it(connection, standin, fast, capsys):
    help_center(standin)
    call_command("intercom_sync", str(connection.workspace_id), "--articles", "--no-progress")
    out = capsys.readouterr().out
    run = SyncRun.objects.get()
    assert run.status == SyncStatus.SUCCEEDED
    assert f"run {run.id} (articles): succeeded, 5/5 done, 0 errors" in out
    assert len(synced(connection.workspace_id)) == 4
    call_command("intercom_sync", str(connection.workspace_id), "--follow", str(run.id), "--no-progress")
    with pytest.raises(CommandError, match="--articles, --history-days"):
        call_command("intercom_sync", str(connection.workspace_id))
    with pytest.raises(CommandError, match="--history-days must be"):
        call_command("intercom_sync", str(connection.workspace_id), "--history-days", "0")


def test_the_command_reports_a_run_a_permanent_error_failed(connection, standin, fast, capsys):
    """A 401 of a page fails the run (nothing is left open) and the command says why."""
    help_center(standin)
    standin.refused["/articles?page=2"] = 401
    with pytest.raises(CommandError, match=r"failed: Intercom refused the access token \(401\)"):
        call_command("intercom_sync", str(connection.workspace_id), "--articles", "--no-progress")
    run = SyncRun.objects.get()
    assert (run.status, run.done) == (SyncStatus.FAILED, 2)
    assert f"run {run.id} (articles): failed, 2/5 done" in capsys.readouterr().out
