"""Help Center sync and history import through the Lambda path, from an Intercom stand-in with a rate limit.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/cue_sync_bench MQTT_URL=mqtt://127.0.0.1:1883 \\
        python bench/intercom_sync.py [--articles 10000] [--conversations 2000] [--limit 100 --window 2]

The stand-in (tests/integrations/intercom_standin.py, a real HTTP server on 127.0.0.1) serves the
articles and closed conversations with Intercom's pagination and X-RateLimit-* headers, and answers
429 past its limit (`--limit` calls per `--window` seconds). A run starts as the API starts it; every
task it dispatches is read back from the stage's SNS topic (moto) and delivered through the real Zappa
handler with a 30-second Lambda context; a run parked for the rate limit is resumed by the
intercom_sync job, fired through the handler as EventBridge would. Printed: wall time, invocations,
tasks, Intercom requests and their rate against the limit, 429s, time paced. Baseline in the same run:
the same import with pacing off (the client only retries 429s after the fact), on a smaller history.
"""

import argparse
import json
import logging
import os
import time
import uuid

from _setup import bench_parser, django_behind_moto, stage_handler  # noqa: E402


def parse_args() -> argparse.Namespace:
    parser = bench_parser(__doc__, database="cue_sync_bench")
    parser.add_argument("--articles", type=int, default=10_000)
    parser.add_argument("--conversations", type=int, default=2_000)
    parser.add_argument("--baseline", type=int, default=500, help="conversations of the pacing-off baseline")
    parser.add_argument("--limit", type=int, default=100, help="stand-in calls per window")
    parser.add_argument("--window", type=int, default=2, help="stand-in window, seconds")
    return parser.parse_args()


# Parsed before anything is set up (--help touches nothing); the rest of this module needs Django.
ARGS = parse_args()
MOTO = django_behind_moto(ARGS.database_url)

from django.conf import settings  # noqa: E402
from django.db import transaction  # noqa: E402
from django.test.utils import setup_databases, teardown_databases  # noqa: E402
from pytest_httpserver import HTTPServer  # noqa: E402

from apps.accounts.services import workspace_signup  # noqa: E402
from apps.integrations.models import IntercomConnection  # noqa: E402
from apps.knowledge import sync  # noqa: E402
from apps.knowledge.models import SyncRun, SyncStatus  # noqa: E402
from apps.knowledge.services import entry_create  # noqa: E402
from apps.tasks.models import TaskRun  # noqa: E402
from tests.integrations.intercom_standin import IntercomStandIn, article, closed_conversation  # noqa: E402
from tests.knowledge.conftest import HELP_CENTRE  # noqa: E402
from tests.support.events import scheduled_event  # noqa: E402
from tests.support.lambda_harness import SnsCapture  # noqa: E402

STAGE = "staging"
TOPICS = ["billing", "shipping", "account", "orders", "returns", "privacy", "mobile app", "integrations"]
QUESTIONS = [
    "I am locked out of my account, the login page says my credentials are wrong ({n})",
    "Where is my refund for order {n}? It has been two weeks.",
    "How long does express shipping take to Canada for parcel {n}?",
    "When will my parcel {n} leave your warehouse?",
    "Can I pay invoice {n} by bank transfer instead?",
]
ANSWERS = [
    "<p>Hi there!</p>" + HELP_CENTRE[0][1] + "<p>Cheers, Cordelia</p>",
    "<p>Hello,</p>" + HELP_CENTRE[1][1],
    "<p>Our warehouse in Leipzig packs orders every weekday before noon, so an order placed in the morning leaves "
    "the same day with tracking by email.</p>",
    "<p>Yes: bank transfers work for every invoice over fifty euros, with the invoice number as the reference "
    "so our accountants can match it.</p>",
    "<p>Let me check that with the team.</p>",
]


def standin_fill(standin: IntercomStandIn, articles: int, conversations: int, *, seed: int) -> None:
    base = 1700000000
    standin.add_articles(
        *[
            article(
                f"{TOPICS[n % len(TOPICS)].title()} guide {seed}-{n}",
                f"<p>How {TOPICS[n % len(TOPICS)]} works, part {n}: see "
                f'<a href="/en/articles/{n}">the details</a> and the steps in your settings.</p>',
                article_id=f"{seed}{n:06d}",
                updated_at=base + n,
            )
            for n in range(articles)
        ]
    )
    recent = int(time.time()) - 3600
    standin.add_conversations(
        *[
            closed_conversation(
                [(f"<p>{QUESTIONS[n % len(QUESTIONS)].format(n=n)}</p>", ANSWERS[n % len(ANSWERS)])],
                updated_at=recent - n,
                conversation_id=f"{seed}{n:07d}",
            )
            for n in range(conversations)
        ]
    )


def workspace(name: str) -> int:
    owner = workspace_signup(
        email=f"{uuid.uuid4().hex[:8]}@example.com", password="correct-horse-battery", workspace_name=name
    )
    IntercomConnection.objects.create(
        workspace_id=owner.workspace_id,
        app_id=uuid.uuid4().hex[:8],
        region="us",
        api_version="2.11",
        access_token="bench",
        token_admin_id="1",
    )
    for title, body in HELP_CENTRE:
        entry_create(workspace_id=owner.workspace_id, title=title, body=body)
    return owner.workspace_id


def drive(handler, sns: SnsCapture, *, workspace_id: int, articles: bool, history_days: int | None) -> dict:
    """Start the run(s) as the API does and deliver every task through the handler until they end."""
    tasks_before = TaskRun.objects.count()
    t0 = time.monotonic()
    with transaction.atomic():
        runs = sync.sync_start(workspace_id=workspace_id, articles=articles, history_days=history_days)
    ids = [run.id for run in runs]
    invocations = jobs = 0
    job_rule = f"{handler.function_name}-apps.knowledge.jobs.intercom_sync"
    while True:
        found = sns.drain()
        for message in found:
            sns.deliver(message)
            invocations += 1
        if found:
            continue
        active = list(SyncRun.objects.filter(pk__in=ids, status__in=[SyncStatus.RUNNING, SyncStatus.WAITING]))
        if not active:
            break
        waiting = [r for r in active if r.status == SyncStatus.WAITING]
        if waiting:  # EventBridge fires the job; here, as soon as the window has reset
            time.sleep(max(0.0, min(r.resume_at.timestamp() for r in waiting) - time.time()) + 0.01)
            handler(scheduled_event(job_rule))
            jobs += 1
        else:
            time.sleep(0.001)
    wall = time.monotonic() - t0
    done = list(SyncRun.objects.filter(pk__in=ids))
    return {
        "wall": wall,
        "invocations": invocations + jobs,
        "jobs": jobs,
        "tasks": TaskRun.objects.count() - tasks_before,
        "runs": done,
    }


def report(name: str, result: dict, limit: int, window: float, served_429: int) -> None:
    requests = sum(r.requests for r in result["runs"])
    print(
        f"{name}: wall {result['wall']:.1f} s, {result['invocations']} invocations "
        f"({result['jobs']} of the job), {result['tasks']} tasks, {requests} Intercom requests = "
        f"{requests / result['wall']:.1f}/s against a limit of {limit / window:.1f}/s, "
        f"{served_429} x 429 served"
    )
    for run in result["runs"]:
        print(
            f"  {run.kind}: {run.status}, {run.done}/{run.total} in {run.pages} pages, {run.errors} errors, "
            f"{run.rate_limited} x 429 seen, {run.paced_seconds:.1f} s paced, "
            f"{run.done / result['wall']:.1f} items/s; {json.dumps(run.counts, sort_keys=True)}"
        )


def run(articles: int, conversations: int, baseline: int, limit: int, window: int) -> None:
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # the stand-in's access log is not Cue's work
    server = HTTPServer(host="127.0.0.1", port=0)
    server.start()
    try:
        base = server.url_for("").rstrip("/")
        settings.INTERCOM_API_HOSTS = {"us": base, "eu": base, "au": base}
        with stage_handler(MOTO, STAGE) as handler:
            os.environ["AWS_LAMBDA_FUNCTION_NAME"] = handler.function_name  # dispatch publishes to SNS
            sns = SnsCapture(MOTO, handler)

            standin = IntercomStandIn(server=server, rate_limit=limit, window_seconds=window).install()
            standin_fill(standin, articles, conversations, seed=1)
            print(
                f"intercom sync ({STAGE} handler, 30 s Lambda context): {articles} articles, "
                f"{conversations} closed conversations, stand-in limit {limit} calls / {window} s"
            )
            paced = workspace("Paced")
            floor = settings.CUE_SYNC_RATE_FLOOR
            served = standin.served_429
            result = drive(handler, sns, workspace_id=paced, articles=True, history_days=None)
            report(f"HELP CENTER SYNC (pacing on, floor {floor})", result, limit, window, standin.served_429 - served)
            served = standin.served_429
            result = drive(handler, sns, workspace_id=paced, articles=True, history_days=None)
            report("HELP CENTER RE-SYNC, nothing changed", result, limit, window, standin.served_429 - served)
            served = standin.served_429
            result = drive(handler, sns, workspace_id=paced, articles=False, history_days=30)
            report(f"HISTORY IMPORT (pacing on, floor {floor})", result, limit, window, standin.served_429 - served)

            server.clear()
            standin = IntercomStandIn(server=server, rate_limit=limit, window_seconds=window).install()
            standin_fill(standin, 0, baseline, seed=2)
            settings.CUE_SYNC_RATE_FLOOR = 0  # never below the floor: pacing off
            unpaced = drive(handler, sns, workspace_id=workspace("Unpaced"), articles=False, history_days=30)
            report(f"BASELINE pacing off, {baseline} conversations", unpaced, limit, window, standin.served_429)
    finally:
        server.stop()


def main() -> None:
    args = ARGS
    old = setup_databases(verbosity=0, interactive=False, aliases={"default"})
    try:
        run(args.articles, args.conversations, args.baseline, args.limit, args.window)
    finally:
        teardown_databases(old, verbosity=0)
        MOTO.stop()


if __name__ == "__main__":
    main()
