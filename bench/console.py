"""The agent console's figures: page weight, time to interactive on a cold load, webhook -> card visible.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/cue_bench_console \\
        python bench/console.py [--loads 10] [--messages 50]

- Page weight: the bytes of script the console page loads, before compression (and gzipped), the vendored
  MQTT client apart; against the 150 KB target.
- Time to interactive, cold: a fresh browser context (empty cache) loads /console/ from Django (live
  server thread, WhiteNoise for the static files) until the script has attached every handler
  (`body.ready`); baseline in the same run: Django admin's login page until its `load` event.
- Webhook -> card visible: a signed Intercom webhook with a new customer message is posted; tasks run
  in-process as on a laptop, the suggestion goes out over a private Mosquitto's WebSockets listener, and
  the browser (already on the conversation) records when the new message's suggestion card is in the
  page (a MutationObserver, Date.now() on the same clock). Measured from the POST being sent: run
  in-process, the tasks finish before the webhook's answer, so "from accepted" would hide the work.
"""

import argparse
import gzip
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

from _setup import ROOT, bench_parser, django_behind_moto, latency_line


def parse_args() -> argparse.Namespace:
    parser = bench_parser(__doc__, database="cue_bench_console")
    parser.add_argument("--loads", type=int, default=10)
    parser.add_argument("--messages", type=int, default=50)
    return parser.parse_args()


# Parsed before anything is set up (--help touches nothing); the rest of this module needs Django.
ARGS = parse_args()
MOTO = django_behind_moto(ARGS.database_url)
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"  # Playwright's sync API keeps an event loop on this thread

import requests  # noqa: E402
from django.conf import settings  # noqa: E402
from django.contrib.staticfiles.handlers import StaticFilesHandler  # noqa: E402
from django.test.testcases import LiveServerThread  # noqa: E402
from django.test.utils import setup_databases, teardown_databases  # noqa: E402

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
STATIC = ROOT / "apps" / "console" / "static"
TARGET_KB = 150


def page_weight() -> None:
    template = (ROOT / "apps/console/templates/console/index.html").read_text()
    scripts = re.findall(r"<script src=\"\{% static '([^']+)' %\}\"", template)
    own = [s for s in scripts if "/vendor/mqtt/" not in s]
    mqtt = [s for s in scripts if "/vendor/mqtt/" in s]
    raw = sum((STATIC / s).stat().st_size for s in own)
    zipped = sum(len(gzip.compress((STATIC / s).read_bytes(), 9)) for s in own)
    mqtt_raw = sum((STATIC / s).stat().st_size for s in mqtt)
    css = (STATIC / "console/console.css").stat().st_size
    print(f"page weight: script {raw / 1024:.1f} KB before compression ({zipped / 1024:.1f} KB gzipped) in {own}")
    print(
        f"             {raw / 1024 / TARGET_KB:.2f} of the {TARGET_KB} KB target; MQTT client apart: "
        f"{mqtt_raw / 1024:.1f} KB; stylesheet {css / 1024:.1f} KB"
    )


def launch(p):
    return p.chromium.launch(
        executable_path=CHROMIUM,
        args=["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-sync"],
    )


def cold_loads(browser, base: str, loads: int) -> None:
    def timed(path: str, ready: str) -> float:
        context = browser.new_context()  # an empty cache: a cold load
        page = context.new_page()
        started = time.perf_counter()
        page.goto(base + path, wait_until="commit")
        page.wait_for_function(ready, polling=5)
        elapsed = (time.perf_counter() - started) * 1000
        context.close()
        return elapsed

    timed("/console/", "document.body.classList.contains('ready')")  # the server's first static request indexes
    console, admin = [], []
    for _ in range(loads):
        console.append(timed("/console/", "document.body.classList.contains('ready')"))
        admin.append(timed("/admin/login/", "document.readyState === 'complete'"))
    print(latency_line(f"time to interactive, cold ({loads} loads)", console))
    print(latency_line("baseline: admin login page loaded", admin))
    print(f"ratio console / baseline (medians): {statistics.median(console) / statistics.median(admin):.2f}")


def webhook_to_card(browser, base: str, messages: int) -> None:
    from apps.accounts.services import workspace_signup
    from apps.integrations.models import ConnectionMethod, IntercomConnection
    from apps.knowledge.services import entry_create
    from apps.realtime.backends import reset_backends
    from tests.integrations.intercom_payloads import APP_ID, APP_SECRET, encode, hub_signature
    from tests.integrations.intercom_payloads import Conversation as IntercomConversation
    from tests.support.mqtt import Mosquitto

    broker = Mosquitto(Path(tempfile.mkdtemp(prefix="cue-bench-broker-"))).start()
    try:
        reset_backends()
        settings.REALTIME_BACKEND = "mqtt"
        settings.MQTT_URL = broker.url
        settings.REALTIME_WS_URL = broker.ws_url
        settings.REALTIME_TOPIC_ROOT = f"bench{uuid.uuid4().hex[:8]}"
        settings.INTERCOM_CLIENT_SECRET = APP_SECRET
        email = f"bench-{uuid.uuid4().hex[:8]}@example.com"
        membership = workspace_signup(email=email, password="correct-horse-battery-staple", workspace_name="Bench")
        IntercomConnection.objects.create(
            workspace=membership.workspace, app_id=APP_ID, region="us", api_version="2.11",
            method=ConnectionMethod.OAUTH, access_token="dG9rOmZha2U=", client_secret="", connected_by=membership,
        )  # fmt: skip
        entry_create(
            workspace_id=membership.workspace_id,
            title="Reset your password",
            body="<p>Open Settings, choose Security and click Reset password.</p>",
        )

        def post(payload):
            body = encode(payload)
            return requests.post(
                f"{base}/webhooks/intercom",
                data=body,
                headers={"Content-Type": "application/json", "X-Hub-Signature": hub_signature(APP_SECRET, body)},
                timeout=30,
            )

        customer = IntercomConversation(2, start=int(time.time()) - 3600)
        customer.opening_body = "<p>Hello</p>"
        assert post(customer.user_created()).status_code == 200
        page = browser.new_page()
        page.goto(f"{base}/console/")
        page.fill("#signin-email", email)
        page.fill("#signin-password", "correct-horse-battery-staple")
        page.keyboard.press("Enter")
        page.wait_for_function("document.querySelector('#connection').dataset.state === 'connected'", timeout=15000)
        page.get_by_role("button", name="Inbox", exact=True).click()
        page.locator("#conversations li[data-id] button").first.click()
        page.wait_for_selector("#messages li.msg")
        page.evaluate("""() => {
            window.cardsSeenAt = [];
            let groups = document.querySelectorAll('#suggestions section.group').length;
            new MutationObserver(() => {
                const now = document.querySelectorAll('#suggestions section.group').length;
                if (now > groups) { window.cardsSeenAt.push(Date.now()); groups = now; }
            }).observe(document.querySelector('#suggestions'), {childList: true, subtree: true});
        }""")
        from_post = []
        for i in range(messages):
            sent = time.time() * 1000
            response = post(customer.user_replied(body=f"<p>How do I reset my password? (try {i})</p>"))
            assert response.status_code == 200, response.text
            page.wait_for_function(f"window.cardsSeenAt.length > {i}", timeout=30000, polling=5)
            from_post.append(page.evaluate(f"window.cardsSeenAt[{i}]") - sent)
        print(latency_line(f"webhook sent -> card visible ({messages} msgs)", from_post))
        page.close()
    finally:
        broker.stop()
        reset_backends()


def _close_connections_to(name: str) -> None:
    """The server's request threads leave sessions on the bench's own test database: end them, then drop it."""
    from django.db import connection, connections

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            [name],
        )
    connections.close_all()


def main() -> None:
    args = ARGS
    page_weight()
    if not Path(CHROMIUM).exists():
        sys.exit("Debian's chromium is not installed: the browser figures need it.")
    from playwright.sync_api import sync_playwright

    old = setup_databases(verbosity=0, interactive=False, aliases={"default"})
    server = LiveServerThread("127.0.0.1", StaticFilesHandler, port=0)
    server.daemon = True
    server.start()
    server.is_ready.wait()
    if server.error:
        raise server.error
    base = f"http://127.0.0.1:{server.port}"
    try:
        with sync_playwright() as p:
            browser = launch(p)
            cold_loads(browser, base, args.loads)
            if args.messages:
                webhook_to_card(browser, base, args.messages)
            browser.close()
    finally:
        server.terminate()
        _close_connections_to(settings.DATABASES["default"]["NAME"])
        teardown_databases(old, verbosity=0)
        MOTO.stop()


if __name__ == "__main__":
    main()
