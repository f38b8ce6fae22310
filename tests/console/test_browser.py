"""The console end to end in headless Chromium, at `/` and under an API Gateway stage.

The path a new team takes: sign up -> connect Intercom (a stand-in Intercom on 127.0.0.1) -> import
answers -> a signed webhook for a new conversation -> it appears in the inbox without a reload -> its
suggestion appears under its message -> "Send to Intercom" reaches the stand-in -> a refused send shows
its error in the page. At `/` Django runs as pytest-django's live server with realtime over a private
Mosquitto's WebSockets listener; under `/dev/` the dev stage is served by the API Gateway emulator
(the real Zappa handler, tasks through SNS) with realtime off, so the page polls. axe-core checks every
screen (0 serious or critical violations); screenshots at 1280x800 and 390x844 go to test-output/console/.
"""

import json
import shutil
import threading
import time
import uuid
from pathlib import Path

import pytest
import requests
from django.db.backends.signals import connection_created
from werkzeug import Response

from tests.conftest import PASSWORD
from tests.integrations.intercom_payloads import APP_ID, encode, hub_signature
from tests.integrations.intercom_payloads import Conversation as IntercomConversation
from tests.support.mqtt import Mosquitto

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
OUTPUT = Path(__file__).resolve().parents[2] / "test-output" / "console"
AXE = Path(__file__).resolve().parent / "vendor" / "axe-core" / "axe.min.js"
SIZES = {"desktop": {"width": 1280, "height": 800}, "phone": {"width": 390, "height": 844}}
CLIENT_SECRET = "workspace-own-client-secret"
ADMIN_ID = "1957471"
ANSWERS_CSV = (
    b"title,body\n"
    b'Reset your password,"<p>Open <b>Settings &gt; Security</b> and click Reset password; '
    b'a link arrives by email.</p>"\n'
    b'Refund policy,"<p>Refunds are issued within 14 days of purchase to the original card.</p>"\n'
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed (apt-get install chromium)"
    ),
]


# ------------------------------------------------------------------------------
# Fixtures: the browser, Intercom's stand-in, realtime
# ------------------------------------------------------------------------------
@pytest.fixture
def browser(monkeypatch):
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop on this thread; the test's own ORM calls are still
    # plain synchronous code between browser steps (Django's documented escape hatch for this).
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

    # Playwright runs its event loop on this thread, and Django's connections are per context: a
    # connection opened meanwhile on this thread can be one that pytest-django's teardown never sees,
    # and it would hold the test database open when the database is dropped. Close each one here.
    opened = []

    def opened_here(sender, connection, **kwargs):
        if threading.get_ident() == main:
            opened.append(connection)

    main = threading.get_ident()
    connection_created.connect(opened_here, weak=False)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=CHROMIUM,
                args=[
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-quic",
                    "--no-first-run",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                ],
            )
            yield browser
            browser.close()
    finally:
        connection_created.disconnect(opened_here)
        for connection in opened:
            connection.close()


class IntercomStandIn:
    """Intercom's REST API as Cue uses it here: /me, /admins, and replies (refused once `refuse` is set)."""

    def __init__(self, httpserver, email: str):
        self.server = httpserver
        self.email = email
        self.replies: list[dict] = []
        self.refuse = False
        httpserver.expect_request("/me", method="GET").respond_with_json(
            {"type": "admin", "id": ADMIN_ID, "name": "Ada Agent", "email": email, "app": {"id_code": APP_ID}}
        )
        httpserver.expect_request("/admins", method="GET").respond_with_json(
            {"type": "admin.list", "admins": [{"type": "admin", "id": ADMIN_ID, "name": "Ada Agent", "email": email}]}
        )
        httpserver.expect_request(
            __import__("re").compile(r"^/conversations/[0-9]+/reply$"), method="POST"
        ).respond_with_handler(self._reply)

    def _reply(self, request):
        body = json.loads(request.data)
        self.replies.append({"path": request.path, **body})
        if self.refuse:
            error = {"code": "parameter_invalid", "message": "Body contains a link Intercom does not allow"}
            return Response(json.dumps({"type": "error.list", "errors": [error]}), 400, content_type="application/json")
        conversation_id = request.path.split("/")[2]
        part = {
            "type": "conversation_part",
            "id": str(9000 + len(self.replies)),
            "part_type": body.get("message_type", "comment"),
            "body": body.get("body", ""),
            "created_at": int(time.time()),
            "author": {"type": "admin", "id": body.get("admin_id")},
        }
        conversation = {
            "type": "conversation",
            "id": conversation_id,
            "conversation_parts": {"type": "conversation_part.list", "conversation_parts": [part]},
        }
        return Response(json.dumps(conversation), 200, content_type="application/json")


@pytest.fixture
def intercom(httpserver, settings):
    base = httpserver.url_for("").rstrip("/")
    settings.INTERCOM_API_HOSTS = {"us": base, "eu": base + "/eu", "au": base + "/au"}
    email = f"owner-{uuid.uuid4().hex[:8]}@example.com"
    return IntercomStandIn(httpserver, email)


@pytest.fixture
def broker(tmp_path):
    broker = Mosquitto(tmp_path).start()
    yield broker
    broker.stop()


@pytest.fixture
def realtime(settings, broker):
    from apps.realtime.backends import reset_backends

    reset_backends()
    settings.REALTIME_BACKEND = "mqtt"
    settings.MQTT_URL = broker.url
    settings.REALTIME_WS_URL = broker.ws_url
    settings.REALTIME_TOPIC_ROOT = "cue"
    yield broker
    reset_backends()


@pytest.fixture
def realtime_off(settings):
    from apps.realtime.backends import reset_backends

    reset_backends()
    settings.REALTIME_BACKEND = "log"
    yield
    reset_backends()


@pytest.fixture
def stage(moto_server, dev_settings_dir, transactional_db, realtime_off):
    """The dev stage behind the API Gateway emulator: http://127.0.0.1:<port>/dev/..."""
    from tools.emulator.stage import StageEmulator

    moto_server.reset()
    emulator = StageEmulator(
        "dev",
        aws=moto_server,
        settings_dir=dev_settings_dir,
        port=0,
        remote_env={"CUE_REMOTE_ENV_LOADED": "1"},
        log=lambda line: None,
        schedules=False,
    )
    emulator.start()
    yield emulator
    emulator.stop()


# ------------------------------------------------------------------------------
# Steps
# ------------------------------------------------------------------------------
def open_page(browser, size="desktop"):
    page = browser.new_page(viewport=SIZES[size])
    page.errors = []
    page.requested = []
    page.on("pageerror", lambda exc: page.errors.append(str(exc)))
    # The browser logs every 4xx answer as an error; those the page expects (a form's 400) are not its errors.
    page.on(
        "console",
        lambda msg: (
            page.errors.append(msg.text)
            if msg.type == "error" and not msg.text.startswith("Failed to load resource")
            else None
        ),
    )
    page.on("request", lambda request: page.requested.append(request.url))
    return page


def sign_in(page, site: str, membership) -> None:
    """Sign in through the console's form as a member would, and wait for the signed-in navigation."""
    page.goto(f"{site}/console/")
    page.fill("#signin-email", membership.user.email)
    page.fill("#signin-password", PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_selector("#nav:not([hidden])")


def assert_accessible(page, where: str) -> None:
    """axe-core (vendored for the tests only): no serious or critical violation on what is shown."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(AXE))
    result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    bad = [
        {"id": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"]][:5]}
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]
    assert not bad, f"{where}: {bad}"


def screenshot(page, name: str) -> None:
    OUTPUT.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(OUTPUT / f"{name}.png"), full_page=True)


def sign_up(page, site: str, email: str) -> None:
    page.goto(f"{site}/")
    page.wait_for_selector("#signup-form")
    assert page.url.endswith("/console/"), f"/ leads to the console: {page.url}"
    assert_accessible(page, "sign-in screen")
    page.fill("#signup-workspace", "Acme support")
    page.fill("#signup-email", email)
    page.fill("#signup-password", PASSWORD)
    page.get_by_role("button", name="Create workspace", exact=True).click()
    page.wait_for_selector("#setup-view:not([hidden])")
    assert "password" not in page.url.lower() and "?" not in page.url, page.url


def connect_and_import(page) -> None:
    page.wait_for_function("document.querySelector('#connect-status').textContent.includes('Not connected')")
    page.fill("#connect-token", "dG9rOmZha2U=")
    page.fill("#connect-secret", CLIENT_SECRET)
    page.fill("#connect-app", APP_ID)
    page.get_by_role("button", name="Connect", exact=True).click()
    page.wait_for_function("document.querySelector('#connect-status').textContent.includes('Connected to Intercom')")
    page.set_input_files("#import-file", files=[{"name": "answers.csv", "mimeType": "text/csv", "buffer": ANSWERS_CSV}])
    page.get_by_role("button", name="Import", exact=True).click()
    page.wait_for_function("document.querySelector('#import-result').textContent.includes('2 new')")
    page.get_by_role("button", name="Suggest", exact=True).click()
    page.wait_for_selector("#try-results > *")
    assert "Reset your password" in page.locator("#try-results").inner_text()
    assert_accessible(page, "setup screen")


def post_signed(site: str, payload: dict) -> None:
    body = encode(payload)
    response = requests.post(
        f"{site}/webhooks/intercom",
        data=body,
        headers={"Content-Type": "application/json", "X-Hub-Signature": hub_signature(CLIENT_SECRET, body)},
        timeout=30,
    )
    assert response.status_code == 200, response.text


def inbox_to_intercom(page, site: str, intercom: IntercomStandIn, *, timeout_ms: int) -> None:
    """From the empty inbox to a reply in Intercom and a refused one shown, all without a reload."""
    page.get_by_role("button", name="Inbox", exact=True).click()
    page.wait_for_selector("#conversations li.empty")
    assert "customer writes" in page.inner_text("#conversations")  # the empty state says what comes next
    page.evaluate("window.notReloaded = true")

    customer = IntercomConversation(2, start=int(time.time()) - 120)
    customer.opening_body = "<p>How do I reset my password? I forgot it.</p>"
    post_signed(site, customer.user_created())
    row = page.wait_for_selector("#conversations li[data-id]", timeout=timeout_ms)
    assert page.evaluate("window.notReloaded === true"), "the page was reloaded"
    assert "reset my password" in row.inner_text()
    assert row.get_attribute("class") == "unread"

    row.query_selector("button").focus()
    page.keyboard.press("Enter")
    page.wait_for_selector("#messages li.msg.customer")
    group = page.wait_for_selector("#suggestions section.group", timeout=timeout_ms)
    assert "How do I reset my password?" in group.query_selector("h3").inner_text(), "grouped under its message"
    card = page.locator("#suggestions li.suggestion").first
    text = card.inner_text()
    assert "Reset your password" in text
    assert "match" in text and "password" in text.split("Open")[0], "confidence in words, the matching words"
    assert "&gt;" not in text and "<b>" not in text
    assert page.locator("#suggestions li.suggestion h4", has_text="Reset your password").count() == 1
    assert_accessible(page, "inbox")
    screenshot(page, f"{page.name}-desktop")

    card.get_by_role("button", name="Send to Intercom", exact=True).click()
    page.wait_for_function(
        "document.querySelector('#suggestions li.suggestion.accepted .result')"
        "?.textContent.includes('sent to Intercom')",
        timeout=timeout_ms,
    )
    assert len(intercom.replies) == 1
    assert intercom.replies[0]["admin_id"] == ADMIN_ID and "Reset password" in intercom.replies[0]["body"]

    # Intercom refuses the next one: the page says so, with Intercom's reason.
    intercom.refuse = True
    post_signed(site, customer.user_replied(body="<p>Also, what is your refund policy?</p>"))
    # Newest message first, headed by its text (once the thread has it: the suggestions may come first).
    page.wait_for_function(
        "document.querySelectorAll('#suggestions section.group').length === 2"
        " && document.querySelector('#suggestions section.group h3').textContent.includes('refund policy')",
        timeout=timeout_ms,
    )
    newest = page.locator("#suggestions section.group").first
    newest.locator("li.suggestion.shown").first.get_by_role("button", name="Send to Intercom", exact=True).click()
    alert = page.wait_for_selector("#suggestions [role=alert]", timeout=timeout_ms)
    assert "Not sent" in alert.inner_text()
    assert "Body contains a link Intercom does not allow" in alert.inner_text()
    assert len(intercom.replies) == 2

    page.set_viewport_size(SIZES["phone"])
    screenshot(page, f"{page.name}-phone")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= SIZES["phone"]["width"], f"horizontal scroll at 390 px: {width}"
    assert_accessible(page, "inbox on a phone")


# ------------------------------------------------------------------------------
# The tests
# ------------------------------------------------------------------------------
def test_at_the_root_live(live_server, realtime, intercom, browser, transactional_db):
    page = open_page(browser)
    page.name = "root"
    sign_up(page, live_server.url, intercom.email)
    connect_and_import(page)
    page.wait_for_function("document.querySelector('#connection').dataset.state === 'connected'", timeout=10000)
    inbox_to_intercom(page, live_server.url, intercom, timeout_ms=15000)
    assert not page.errors, page.errors


def test_under_a_stage_prefix_through_the_api_gateway_emulator(stage, intercom, browser):
    site = stage.url  # http://127.0.0.1:<port>/dev
    page = open_page(browser)
    page.name = "stage"
    sign_up(page, site, intercom.email)
    stylesheet = page.evaluate("document.querySelector('link[rel=stylesheet]').href")
    assert stylesheet.startswith(f"{site}/static/"), stylesheet
    assert page.evaluate("getComputedStyle(document.querySelector('.bar')).display") == "flex", "styled"
    connect_and_import(page)
    # Realtime is off on this stage: the page says so once and polls, never "reconnecting".
    page.wait_for_function("document.querySelector('#connection').dataset.state === 'polling'")
    assert "refreshes every" in page.inner_text("#live-notice")
    inbox_to_intercom(page, site, intercom, timeout_ms=40000)
    outside = [u for u in page.requested if u.startswith(site.rsplit("/", 1)[0]) and not u.startswith(f"{site}/")]
    assert not outside, f"requests outside the stage: {outside[:5]}"
    assert not page.errors, page.errors

    docs = open_page(browser)
    docs.goto(f"{site}/api/docs/")
    docs.wait_for_selector(".swagger-ui .info", timeout=20000)
    assert "Cue API" in docs.inner_text(".swagger-ui .info")
    assert not [u for u in docs.requested if "/static/" in u and not u.startswith(f"{site}/static/")]


def test_after_a_reconnect_the_list_is_fetched_again(live_server, realtime, intercom, browser, owner):
    """What happened while the broker was away (its events lost) is in the list once the page is back."""
    from apps.integrations.models import ConnectionMethod, IntercomConnection

    IntercomConnection.objects.create(
        workspace=owner.workspace, app_id=APP_ID, region="us", method=ConnectionMethod.TOKEN,
        access_token="dG9rOmZha2U=", client_secret=CLIENT_SECRET, token_admin_id=ADMIN_ID, connected_by=owner,
    )  # fmt: skip
    page = open_page(browser)
    sign_in(page, live_server.url, owner)
    page.wait_for_function("document.querySelector('#connection').dataset.state === 'connected'", timeout=10000)
    page.get_by_role("button", name="Inbox", exact=True).click()
    page.wait_for_selector("#conversations li.empty")

    realtime.stop()
    page.wait_for_function("['reconnecting', 'polling'].includes(document.querySelector('#connection').dataset.state)")
    customer = IntercomConversation(2, start=int(time.time()) - 60)
    post_signed(live_server.url, customer.user_created())  # stored; its live events cannot go out
    assert page.locator("#conversations li[data-id]").count() == 0
    realtime.start()
    page.wait_for_function("document.querySelector('#connection').dataset.state === 'connected'", timeout=20000)
    page.wait_for_selector("#conversations li[data-id]", timeout=10000)
    assert not page.errors, page.errors


def test_conversation_and_message_events_of_the_contract_update_the_page(live_server, realtime, browser, owner):
    """`conversation` and `message` events (docs/realtime.md) as the backend publishes them: a new conversation
    joins the list, a closed one leaves the Open list, a new message joins the open thread; a repeated
    event_id changes nothing."""
    import paho.mqtt.publish as publish

    from apps.conversations import selectors
    from apps.conversations.api import ConversationOutputSerializer, MessageOutputSerializer
    from apps.conversations.models import Conversation, Message
    from apps.realtime.topics import workspace_root

    first = Conversation.objects.create(
        workspace=owner.workspace, intercom_id="501", customer_name="Ann", last_message_text="Hi there"
    )
    page = open_page(browser)
    sign_in(page, live_server.url, owner)
    page.wait_for_function("document.querySelector('#connection').dataset.state === 'connected'", timeout=10000)
    page.get_by_role("button", name="Inbox", exact=True).click()
    page.locator(f"#conversations li[data-id='{first.id}'] button").click()
    page.wait_for_function("document.querySelector('#conversation-title').textContent === 'Ann'")

    root = workspace_root(owner.workspace_id)

    def send(topic: str, event: dict) -> None:
        publish.single(
            f"{root}/{topic}", json.dumps(event), qos=1, hostname="127.0.0.1", port=int(realtime.url.rsplit(":", 1)[1])
        )

    def conversation_event(conversation, change: str, event_id: str) -> dict:
        item = selectors.conversation_get(workspace=owner.workspace, conversation_id=conversation.id, inbox_fields=True)
        return {
            "type": "conversation", "version": 1, "event_id": event_id, "conversation_id": conversation.id,
            "change": change, "conversation": json.loads(json.dumps(ConversationOutputSerializer(item).data)),
        }  # fmt: skip

    second = Conversation.objects.create(
        workspace=owner.workspace, intercom_id="502", customer_name="Bob", last_message_text="Where is my order?"
    )
    send("conversations", conversation_event(second, "created", "ev-1"))
    page.wait_for_selector(f"#conversations li[data-id='{second.id}']")
    assert "Where is my order?" in page.inner_text(f"#conversations li[data-id='{second.id}']")

    message = Message.objects.create(
        conversation=first, workspace=owner.workspace, intercom_part_id="p-1", author_type="user",
        author_name="Ann", kind="comment", body_html="<p>Any news?</p>", body_text="Any news?",
    )  # fmt: skip
    event = {
        "type": "message", "version": 1, "event_id": "ev-2", "conversation_id": first.id,
        "message": json.loads(json.dumps(MessageOutputSerializer(message).data)),
    }  # fmt: skip
    send(f"conversations/{first.id}/messages", event)
    send(f"conversations/{first.id}/messages", event)  # delivered twice (QoS 1)
    page.wait_for_selector("#messages li.msg.customer")
    assert page.locator("#messages li.msg").count() == 1
    assert page.evaluate("window.cueConsole.state.seenEvents.has('ev-2')")

    Conversation.objects.filter(pk=second.pk).update(state="closed")
    second.refresh_from_db()
    send("conversations", conversation_event(second, "closed", "ev-3"))
    page.wait_for_selector(f"#conversations li[data-id='{second.id}']", state="detached")
    assert page.locator(f"#conversations li[data-id='{first.id}']").count() == 1
    assert not page.errors, page.errors


def test_sign_in_never_submits_natively(live_server, browser, owner, transactional_db):
    """Without its script the form posts to the page (a 405), never puts the password in a URL."""
    page = open_page(browser)
    page.route("**/console.js", lambda route: route.abort())
    page.goto(f"{live_server.url}/console/")
    form = page.locator("#signin-form")
    assert form.get_attribute("method") == "post"
    assert form.get_attribute("action") is None
    page.fill("#signin-email", owner.user.email)
    page.fill("#signin-password", PASSWORD)
    with page.expect_navigation():
        page.get_by_role("button", name="Sign in", exact=True).click()
    assert PASSWORD not in page.url and "password" not in page.url


def test_knowledge_screen_shows_field_errors_and_saves(live_server, browser, owner, transactional_db):
    from apps.knowledge.models import Entry

    page = open_page(browser)
    sign_in(page, live_server.url, owner)
    page.get_by_role("button", name="Knowledge base", exact=True).click()
    page.wait_for_selector("#knowledge-view:not([hidden])")
    page.get_by_role("button", name="Save", exact=True).click()  # empty title and body
    page.wait_for_function("document.querySelector('.field-error[data-for=title]').textContent.length > 0")
    assert not Entry.objects.exists()
    page.fill("#entry-title", "Shipping times")
    page.fill("#entry-body", "Orders ship within two business days.")
    page.get_by_role("button", name="Save", exact=True).click()
    page.wait_for_selector("#entries li button.entry")
    assert Entry.objects.get(workspace=owner.workspace).title == "Shipping times"
    assert_accessible(page, "knowledge screen")
    assert not page.errors, page.errors
