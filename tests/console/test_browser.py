"""The console end to end in headless Chromium: sign in, open a conversation, a suggestion arrives live, accept it.

Django runs as pytest-django's live server (tasks inline, as on a laptop), Mosquitto with a
WebSockets listener is started by the test on free ports, and the browser is Debian's chromium.
"""

import shutil
import threading
import time
from pathlib import Path

import pytest
from django.db.backends.signals import connection_created

from apps.conversations.models import Conversation
from tests.conftest import PASSWORD
from tests.integrations.intercom_payloads import APP_SECRET, encode, hub_signature
from tests.integrations.intercom_payloads import Conversation as IntercomConversation
from tests.support.mqtt import Mosquitto

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
OUTPUT = Path(__file__).resolve().parents[2] / "test-output" / "console"
SIZES = {"desktop": {"width": 1280, "height": 800}, "phone": {"width": 390, "height": 844}}

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed (apt-get install chromium)"
    ),
]


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
    settings.INTERCOM_CLIENT_ID = "cue-client-id"
    settings.INTERCOM_CLIENT_SECRET = APP_SECRET
    yield broker
    reset_backends()


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


def _workspace_with_knowledge(owner):
    from apps.integrations.models import ConnectionMethod, IntercomConnection
    from apps.knowledge.services import entry_create

    IntercomConnection.objects.create(
        workspace=owner.workspace,
        app_id="i6wc9ipe",
        region="us",
        api_version="2.11",
        method=ConnectionMethod.OAUTH,
        access_token="dG9rOmZha2U=",
        client_secret="",
        token_admin_id="1957471",
        connected_by=owner,
    )
    entry_create(
        workspace_id=owner.workspace_id,
        title="Reset your password",
        body="<p>Open Settings, choose Security and click Reset password; a link arrives by email.</p>",
    )
    entry_create(
        workspace_id=owner.workspace_id,
        title="Refund policy",
        body="<p>Refunds are issued within 14 days of purchase to the original card.</p>",
    )


def _post_signed(live_server, payload: dict):
    import requests

    body = encode(payload)
    response = requests.post(
        f"{live_server.url}/webhooks/intercom",
        data=body,
        headers={"Content-Type": "application/json", "X-Hub-Signature": hub_signature(APP_SECRET, body)},
        timeout=30,
    )
    assert response.status_code == 200, response.text


def test_suggestion_arrives_live_and_is_accepted(live_server, realtime, browser, owner, transactional_db):
    """Sign in, open the conversation, post a webhook: the suggestion appears without reload; accept it."""
    from apps.suggestions.models import Suggestion

    _workspace_with_knowledge(owner)
    intercom = IntercomConversation(2)
    _post_signed(live_server, intercom.user_created())
    conversation = Conversation.objects.get(workspace=owner.workspace, intercom_id=intercom.id)

    OUTPUT.mkdir(parents=True, exist_ok=True)
    errors: list[str] = []
    page = browser.new_page(viewport=SIZES["desktop"])
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{live_server.url}/console/")
    page.fill("input[name=email]", owner.user.email)
    page.fill("input[name=password]", PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_selector("#conversations li[data-id]")
    page.wait_for_function("document.querySelector('#connection').textContent === 'connected'", timeout=10000)

    # Keyboard: the conversation opens with Enter.
    page.focus(f"#conversations li[data-id='{conversation.id}']")
    page.keyboard.press("Enter")
    page.wait_for_selector("#messages li")
    assert page.locator("#suggestions li").count() == 0

    _post_signed(live_server, intercom.user_replied(body="<p>How do I reset my password? I forgot it.</p>"))
    page.wait_for_selector("#suggestions li", timeout=10000)  # arrived over MQTT, no reload
    first = page.locator("#suggestions li").first
    assert "Reset your password" in first.inner_text()
    assert "<p>" not in first.inner_text(), "entry HTML is shown as text, not markup"
    page.wait_for_function("document.querySelectorAll('#messages li').length === 2")  # the new message too
    page.screenshot(path=str(OUTPUT / "desktop.png"), full_page=True)

    first.get_by_role("button", name="Accept").click()
    page.wait_for_selector("#suggestions li.accepted")
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not Suggestion.objects.filter(status="accepted").exists():
        time.sleep(0.1)
    accepted = Suggestion.objects.get(status="accepted")
    assert accepted.conversation_id == conversation.id

    page.set_viewport_size(SIZES["phone"])
    page.screenshot(path=str(OUTPUT / "phone.png"), full_page=True)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= SIZES["phone"]["width"], f"horizontal scroll at 390 px: {width}"
    assert not errors, errors


def test_knowledge_screen_shows_field_errors_and_saves(live_server, browser, owner, transactional_db):
    from apps.knowledge.models import Entry

    page = browser.new_page(viewport=SIZES["desktop"])
    page.goto(f"{live_server.url}/console/")
    page.fill("input[name=email]", owner.user.email)
    page.fill("input[name=password]", PASSWORD)
    page.click("#signin-form button[type=submit]")
    page.wait_for_selector("#inbox-view:not([hidden])")
    page.click("#nav button[data-view=knowledge]")
    page.wait_for_selector("#knowledge-view:not([hidden])")
    page.click("#entry-form button[type=submit]")  # empty title and body
    page.wait_for_function("document.querySelector('.field-error[data-for=title]').textContent.length > 0")
    assert not Entry.objects.exists()
    page.fill("#entry-form input[name=title]", "Shipping times")
    page.fill("#entry-form textarea[name=body]", "Orders ship within two business days.")
    page.click("#entry-form button[type=submit]")
    page.wait_for_selector("#entries li")
    assert Entry.objects.get(workspace=owner.workspace).title == "Shipping times"
