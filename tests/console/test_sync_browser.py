"""The console's Help Center sync, history import progress and proposed entries, in headless Chromium.

An owner starts a Help Center sync against the Intercom stand-in (tests/integrations/intercom_standin.py,
a real HTTP server with Intercom's pagination) and watches the progress panel: a run already going is
refreshed until it ends, then the page stops asking. Proposed entries are listed page by page, accepted
(the entry exists, through the API) and dismissed; an agent sees them without the buttons. Refusals
(no Intercom connection, a bad number of days, a proposal decided meanwhile) show in the page. axe-core
checks each screen (0 serious or critical violations).
"""

# ruff: noqa: F811 - fixtures are imported from tests/integrations/conftest.py and tests/console/test_browser.py

import pytest
from django.utils import timezone

from apps.accounts.models import Role
from apps.knowledge.models import Entry, EntryProposal, ProposalStatus, SyncKind, SyncRun, SyncStatus
from tests.console.test_browser import (  # noqa: F401
    CHROMIUM,
    SIZES,
    assert_accessible,
    browser,
    open_page,
    screenshot,
    sign_in,
)
from tests.integrations.conftest import connect, connection, intercom_api, intercom_settings  # noqa: F401
from tests.integrations.intercom_standin import IntercomStandIn, article

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not __import__("pathlib").Path(CHROMIUM).exists(),
        reason="Debian's chromium is not installed (apt-get install chromium)",
    ),
]


def open_setup(page) -> None:
    page.get_by_role("button", name="Setup", exact=True).click()
    page.wait_for_selector("#setup-view:not([hidden])")


def run_item(page, run_id: int):
    return page.locator(f"#sync-runs li[data-id='{run_id}']")


def propose(workspace, n: int, *, times_sent: int) -> EntryProposal:
    return EntryProposal.objects.create(
        workspace=workspace,
        text_key=f"key-{n}",
        title=f"Proposed answer {n}",
        body_html=f"<p>Answer number {n}: our warehouse ships before noon.</p>",
        body_text=f"Answer number {n}: our warehouse ships before noon.",
        times_sent=times_sent,
        example_questions=[f"When does order {n} ship?", "Is shipping same day?"],
    )


@pytest.fixture
def standin(intercom_api, settings) -> IntercomStandIn:
    settings.CUE_SYNC_ARTICLES_PER_PAGE = 2  # three articles: two page tasks
    return IntercomStandIn(server=intercom_api).install()


def test_owner_syncs_the_help_center_and_watches_progress(live_server, browser, connection, standin, transactional_db):
    standin.add_articles(
        article("Reset your password", "<p>Open Settings, then Security, and click Reset.</p>", updated_at=1700000300),
        article("Refunds", "<p>We refund any order within 30 days.</p>", updated_at=1700000200),
        article("Shipping times", "<p>Standard shipping takes three to five days.</p>", updated_at=1700000100),
    )
    # An import already going (another tab started it): the panel follows it until it ends.
    going = SyncRun.objects.create(
        workspace_id=connection.workspace_id,
        kind=SyncKind.HISTORY,
        params={"days": 30},
        done=2,
        total=5,
        errors=1,
        last_error="Conversation 42 could not be read",
    )
    page = open_page(browser)
    sign_in(page, live_server.url, connection.connected_by)
    page.evaluate("window.cueConsole.state.runsPollMs = 500")  # the next refreshes come sooner; same code path
    open_setup(page)
    bar = run_item(page, going.id).get_by_role("progressbar")
    bar.wait_for()
    assert (bar.get_attribute("aria-valuenow"), bar.get_attribute("aria-valuemax")) == ("2", "5")
    text = run_item(page, going.id).inner_text()
    assert "History import" in text and "last 30 days" in text and "2 of 5 conversations" in text
    assert "left" in text and "1 error" in text and "Conversation 42 could not be read" in text

    page.get_by_role("button", name="Sync Help Center", exact=True).click()
    page.wait_for_selector("#sync-runs li[data-status='succeeded']")
    run = SyncRun.objects.get(workspace_id=connection.workspace_id, kind=SyncKind.ARTICLES)
    assert (run.status, run.done, run.total) == (SyncStatus.SUCCEEDED, 3, 3)
    done = run_item(page, run.id).get_by_role("progressbar")
    assert (done.get_attribute("aria-valuenow"), done.get_attribute("aria-valuemax")) == ("3", "3")
    assert "Help Center sync" in run_item(page, run.id).inner_text()
    assert "3 of 3 articles" in run_item(page, run.id).inner_text()
    page.wait_for_function("document.querySelector('#knowledge-status').textContent.startsWith('3 entries')")
    assert_accessible(page, "setup with sync progress")
    screenshot(page, "sync-progress")
    page.set_viewport_size(SIZES["phone"])
    assert page.evaluate("document.documentElement.scrollWidth") <= SIZES["phone"]["width"], "no sideways scroll"
    screenshot(page, "sync-progress-phone")
    page.set_viewport_size(SIZES["desktop"])

    # The import ends: the next refresh shows it, then the page stops asking.
    assert page.evaluate("window.cueConsole.state.runsTimer !== null"), "a run is going: refreshed"
    SyncRun.objects.filter(pk=going.pk).update(status=SyncStatus.SUCCEEDED, done=5, finished_at=timezone.now())
    page.wait_for_selector(f"#sync-runs li[data-id='{going.id}'][data-status='succeeded']")
    assert "History import finished: 5 of 5 done, 1 error." in page.inner_text("#notice")
    assert bar.get_attribute("aria-valuenow") == "5"
    page.wait_for_function("window.cueConsole.state.runsTimer === null && !window.cueConsole.state.runsActive.size")
    asked = sum(1 for url in page.requested if url.endswith("/api/integrations/intercom/sync"))
    page.get_by_role("button", name="Knowledge base", exact=True).click()
    page.wait_for_selector("#entries li button.entry")
    titles = page.locator("#entries").inner_text()
    assert "Reset your password" in titles and "Shipping times" in titles and "from the Help Center" in titles
    assert sum(1 for url in page.requested if url.endswith("/api/integrations/intercom/sync")) == asked
    assert not page.errors, page.errors


def test_sync_refusals_show_in_the_page(live_server, browser, owner, transactional_db):
    """Without an Intercom connection the sync is refused (409) and a bad number of days names the field."""
    page = open_page(browser)
    sign_in(page, live_server.url, owner)
    open_setup(page)
    page.get_by_role("button", name="Sync Help Center", exact=True).click()
    page.wait_for_function("document.querySelector('#sync-error').textContent.includes('Connect Intercom first')")
    assert page.get_by_role("alert").filter(has_text="Not started").count() == 1
    page.fill("#history-days", "0")
    page.get_by_role("button", name="Import history", exact=True).click()
    page.wait_for_function("document.querySelector('.field-error[data-for=history_days]').textContent.length > 0")
    assert not SyncRun.objects.exists()
    assert_accessible(page, "setup with sync errors")
    assert not page.errors, page.errors


def test_proposed_entries_accept_dismiss_and_read_only(
    live_server, browser, owner, make_member, client_for, transactional_db
):
    proposals = [propose(owner.workspace, n, times_sent=100 - n) for n in range(21)]
    page = open_page(browser)
    sign_in(page, live_server.url, owner)
    page.get_by_role("button", name="Proposed entries", exact=True).click()
    page.wait_for_selector("#proposals li.proposal")
    assert page.locator("#proposals li.proposal").count() == 20
    first = page.locator(f"#proposals li[data-id='{proposals[0].id}']")
    assert "Sent in 100 conversations" in first.inner_text()
    assert "When does order 0 ship?" in first.inner_text()
    assert_accessible(page, "proposed entries")

    # Accept: one click, the entry exists (seen through the API), and the page says so with a way to it.
    first.get_by_role("button", name="Accept", exact=True).click()
    first.get_by_role("button", name="Open it in the knowledge base").wait_for()
    assert "Added to the knowledge base" in first.inner_text()
    found = client_for(owner).get("/api/knowledge/entries", {"q": "warehouse"}).json()["results"]
    assert [e["title"] for e in found] == ["Proposed answer 0"]

    # Dismiss: gone from the list, and decided.
    second = page.locator(f"#proposals li[data-id='{proposals[1].id}']")
    second.get_by_role("button", name="Dismiss", exact=True).click()
    second.wait_for(state="detached")
    assert EntryProposal.objects.get(pk=proposals[1].pk).status == ProposalStatus.DISMISSED

    # The next page after two decisions: none skipped (page 2 of the 19 left would start past the 21st).
    page.get_by_role("button", name="Load more", exact=True).click()
    page.wait_for_selector(f"#proposals li[data-id='{proposals[20].id}']")
    shown = page.eval_on_selector_all("#proposals li.proposal", "items => items.map(li => Number(li.dataset.id))")
    assert sorted(shown) == sorted(p.id for p in proposals[2:])
    assert page.locator("#proposals-more").is_hidden()

    # Decided elsewhere meanwhile: the refusal shows on the card, nothing is created.
    EntryProposal.objects.filter(pk=proposals[2].pk).update(status=ProposalStatus.DISMISSED)
    third = page.locator(f"#proposals li[data-id='{proposals[2].id}']")
    third.get_by_role("button", name="Accept", exact=True).click()
    third.get_by_role("alert").wait_for()
    assert "Could not accept" in third.get_by_role("alert").inner_text()
    assert Entry.objects.filter(workspace=owner.workspace).count() == 1
    assert_accessible(page, "proposed entries after deciding")
    page.set_viewport_size(SIZES["phone"])
    assert page.evaluate("document.documentElement.scrollWidth") <= SIZES["phone"]["width"], "no sideways scroll"
    screenshot(page, "proposals-phone")
    page.set_viewport_size(SIZES["desktop"])

    # Shown again: fetched from the start (a card of the old list is marked, to wait for its replacement).
    page.eval_on_selector(f"#proposals li[data-id='{proposals[3].id}']", "li => { li.dataset.old = '1'; }")
    page.get_by_role("button", name="Proposed entries", exact=True).click()
    page.wait_for_selector(f"#proposals li[data-id='{proposals[3].id}']:not([data-old])")
    first = page.locator(f"#proposals li[data-id='{proposals[3].id}']")
    first.get_by_role("button", name="Accept", exact=True).click()
    first.get_by_role("button", name="Open it in the knowledge base").click()
    page.wait_for_selector("#knowledge-view:not([hidden])")
    assert page.input_value("#entry-title") == "Proposed answer 3"
    assert_accessible(page, "knowledge base after accepting")
    assert not page.errors, page.errors

    # An agent reads the proposals but cannot decide, and sees no sync controls.
    agent = make_member(owner, Role.AGENT)
    other = open_page(browser)
    sign_in(other, live_server.url, agent)
    other.get_by_role("button", name="Proposed entries", exact=True).click()
    other.wait_for_selector("#proposals li.proposal")
    assert other.locator("#proposals li.proposal").count() == 17  # 21, two accepted, two dismissed
    assert other.locator("#proposals button[data-action]").count() == 0
    assert "Owners and admins can accept" in other.inner_text("#proposals-view")
    open_setup(other)
    assert other.locator("#sync-controls").is_hidden()
    assert_accessible(other, "proposed entries for an agent")
    assert not other.errors, other.errors
