"""Webhook to suggestion here: signed Intercom webhook accepted → tasks through the handler → MQTT subscriber.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/cue_suggestions MQTT_URL=mqtt://127.0.0.1:1883 \\
        python bench/webhook_to_suggestion.py [--messages 200] [--entries 300]

Each message: a new Intercom conversation's `conversation.user.created` webhook, signed, goes through
Cue's Lambda entry point (the real Zappa handler, staging's settings); from its 200 ("accepted") the
clock runs while every task it causes is read back from the stage's SNS topic (moto) and delivered
through the handler: process_delivery (mirror the conversation) → suggest_replies (rank the knowledge
base in PostgreSQL, store the suggestions) → publish_event (QoS 1 to Mosquitto, PUBACK awaited), until a
subscriber with its own connection receives the suggestions. process_delivery also dispatches the
publish of the new conversation and its message (a second publish_event, delivered here in turn; in
Lambda it runs beside suggest_replies), so the hop line for publish_event holds both. Baseline in the
same run: the realtime publish service called directly, to the same subscriber.
"""

import argparse
import json
import os
import statistics
import time
import uuid

from _setup import bench_parser, django_behind_moto, latency_line, stage_handler  # noqa: E402


def parse_args() -> argparse.Namespace:
    parser = bench_parser(__doc__, database="cue_suggestions")
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--entries", type=int, default=300)
    return parser.parse_args()


# Parsed before anything is set up (--help touches nothing); the rest of this module needs Django.
ARGS = parse_args()
MOTO = django_behind_moto(ARGS.database_url)

from django.conf import settings  # noqa: E402
from django.test.utils import setup_databases, teardown_databases  # noqa: E402

from apps.accounts.services import workspace_signup  # noqa: E402
from apps.integrations.models import IntercomConnection  # noqa: E402
from apps.knowledge.services import entry_create  # noqa: E402
from apps.realtime import services as realtime  # noqa: E402
from tests.integrations.intercom_payloads import APP_ID, APP_SECRET, Conversation, encode, hub_signature  # noqa: E402
from tests.knowledge.conftest import HELP_CENTRE  # noqa: E402
from tests.support.events import apigw_v1, response_json  # noqa: E402
from tests.support.lambda_harness import SnsCapture  # noqa: E402
from tests.support.mqtt import Subscriber  # noqa: E402

STAGE = "staging"  # production-like: INFO logging, debug off
TOPICS = ["billing", "shipping", "account", "orders", "returns", "privacy", "mobile app", "integrations"]
MESSAGES = [
    "<p>Hello! My <b>invoice</b> is wrong &amp; I was charged twice.</p>",
    "<p>How do I reset my password? The link never arrives.</p>",
    "<p>Where is my refund? It has been two weeks.</p>",
    "<p>How long does express shipping take to Canada?</p>",
    "<p>Can I cancel my order before it ships?</p>",
]


def knowledge_base(workspace_id: int, size: int) -> None:
    for title, body in HELP_CENTRE:
        entry_create(workspace_id=workspace_id, title=title, body=body)
    for n in range(max(0, size - len(HELP_CENTRE))):
        topic = TOPICS[n % len(TOPICS)]
        entry_create(
            workspace_id=workspace_id,
            title=f"{topic.title()} question {n}",
            body=f"<p>Saved reply {n} about {topic}: our team answers {topic} questions within a day. "
            f"See the {topic} page in Settings for details, or reply here.</p>",
        )


def webhook(payload: dict) -> dict:
    body = encode(payload)
    headers = {"Content-Type": "application/json", "X-Hub-Signature": hub_signature(APP_SECRET, body)}
    return apigw_v1("POST", "/webhooks/intercom", headers=headers, body=body.decode())


def run(messages: int, warmup: int, entries: int) -> None:
    settings.REALTIME_BACKEND = "mqtt"
    settings.MQTT_URL = os.environ["MQTT_URL"]
    settings.REALTIME_TOPIC_ROOT = f"bench{uuid.uuid4().hex[:8]}"
    settings.INTERCOM_CLIENT_SECRET = APP_SECRET
    owner = workspace_signup(email="bench@example.com", password="correct-horse-battery", workspace_name="Bench")
    workspace_id = owner.workspace_id
    IntercomConnection.objects.create(
        workspace_id=workspace_id, app_id=APP_ID, region="us", access_token="bench", token_admin_id="1"
    )
    knowledge_base(workspace_id, entries)
    topic = f"{settings.REALTIME_TOPIC_ROOT}/{workspace_id}/conversations/+/suggestions"

    with (
        stage_handler(MOTO, STAGE) as handler,
        Subscriber(settings.MQTT_URL, [topic]) as subscriber,
    ):
        os.environ["AWS_LAMBDA_FUNCTION_NAME"] = handler.function_name  # dispatch publishes to SNS, as in Lambda
        sns = SnsCapture(MOTO, handler)
        requests_ms: list[float] = []
        totals: list[float] = []
        hops: dict[str, list[float]] = {}
        for i in range(warmup + messages):
            conversation = Conversation(2, conversation_id=f"bench{i}")
            conversation.opening_body = MESSAGES[i % len(MESSAGES)]
            event = webhook(conversation.user_created())
            t_request = time.monotonic()
            result = handler(event)
            accepted = time.monotonic()
            assert response_json(result) == {"status": "accepted"}, result
            step_times: list[tuple[str, float]] = []
            # Two publishes per webhook: the new conversation with its message, then the suggestions.
            published = 0
            while published < 2:
                found = sns.drain()
                if not found:
                    time.sleep(0.0002)
                for message in found:
                    task = json.loads(message)["args"][0]["task"].rsplit(".", 1)[-1]
                    start = time.monotonic()
                    sns.deliver(message)
                    step_times.append((task, (time.monotonic() - start) * 1000))
                    published += task == "publish_event"
            subscriber.wait_count(i + 1)
            arrived = subscriber.received[i]
            assert arrived.payload["suggestions"], arrived.payload
            if i < warmup:
                continue
            requests_ms.append((accepted - t_request) * 1000)
            totals.append((arrived.at - accepted) * 1000)
            for task, ms in step_times:
                hops.setdefault(f"  handler invocation: {task}", []).append(ms)

        baseline: list[float] = []
        for i in range(messages):
            t0 = time.monotonic()
            realtime.suggestions_publish(
                workspace_id=workspace_id,
                conversation_id=2,
                message_id=-1 - i,
                suggestions=[{"id": 1, "entry_id": 1, "title": "t", "body": "b", "score": 1.0, "rank": 1}],
            )
            baseline.append((subscriber.wait_for(lambda m, i=i: m.payload["message_id"] == -1 - i).at - t0) * 1000)

    print(f"webhook → suggestion ({STAGE} handler): {messages} messages (+{warmup} warm-up), {entries} entries")
    print(latency_line("TOTAL webhook accepted → suggestion received", totals, 48))
    print(latency_line("  webhook request (verify, store, dispatch)", requests_ms, 48))
    for name, values_ms in hops.items():
        print(latency_line(name, values_ms, 48))
    print(latency_line("BASELINE service publish → received", baseline, 48))
    median_total, median_base = statistics.median(totals), statistics.median(baseline)
    print(
        f"ratio total/baseline (medians): {median_total / median_base:.1f}x; target median ≤ 150 ms: "
        f"{'met' if median_total <= 150 else 'NOT met'} ({median_total:.1f} ms)"
    )


def main() -> None:
    args = ARGS
    old = setup_databases(verbosity=0, interactive=False, aliases={"default"})
    try:
        run(args.messages, args.warmup, args.entries)
    finally:
        teardown_databases(old, verbosity=0)
        MOTO.stop()


if __name__ == "__main__":
    main()
