"""Realtime end to end on this machine: publish task dispatched → SNS (moto) → Zappa handler → Mosquitto → subscriber.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/cue_realtime MQTT_URL=mqtt://127.0.0.1:1883 \\
        python bench/realtime_e2e.py [--messages 300]

Each message: a transaction dispatches apps.realtime.tasks.publish_event (ids only) and commits, which
publishes the task to the stage's SNS topic; the message is read back from the topic's queue and
delivered through Cue's Lambda entry point (the real Zappa handler); the task loads the workspace,
publishes QoS 1 to Mosquitto and waits for the PUBACK; a subscriber with its own connection records
the arrival. Baseline in the same run: the publish service called directly (no task), to the same
subscriber. Later this starts from a signed Intercom webhook instead of the dispatch.
"""

import argparse
import os
import statistics
import time
import uuid

from _setup import bench_parser, django_behind_moto, latency_line, stage_handler  # noqa: E402


def parse_args() -> argparse.Namespace:
    parser = bench_parser(__doc__, database="cue_realtime")
    parser.add_argument("--messages", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=10)
    return parser.parse_args()


# Parsed before anything is set up (--help touches nothing); the rest of this module needs Django.
ARGS = parse_args()
MOTO = django_behind_moto(ARGS.database_url)

from django.conf import settings  # noqa: E402
from django.db import transaction  # noqa: E402
from django.test.utils import setup_databases, teardown_databases  # noqa: E402

from apps.accounts.models import Workspace  # noqa: E402
from apps.realtime import services  # noqa: E402
from apps.realtime.events import Event, event_ref, event_source  # noqa: E402
from apps.realtime.tasks import publish_event  # noqa: E402
from tests.support.lambda_harness import SnsCapture  # noqa: E402
from tests.support.mqtt import Subscriber  # noqa: E402

# Staging's generated settings: production-like (INFO logging, debug off), unlike dev's DEBUG logs.
STAGE = "staging"
SUGGESTIONS = [
    {"id": i, "entry_id": 100 + i, "title": f"Saved reply {i}", "body": "Thanks for reaching out! " * 8}
    | {"score": round(1 / i, 3), "rank": i}
    for i in range(1, 4)
]


@event_source("bench.suggestions")
def bench_suggestions(*, workspace_id: int, conversation_id: int, message_id: int) -> Event | None:
    workspace = Workspace.objects.filter(pk=workspace_id).first()  # a source loads what it publishes
    if workspace is None:
        return None
    return services.suggestions_event(
        workspace_id=workspace.id, conversation_id=conversation_id, message_id=message_id, suggestions=SUGGESTIONS
    )


def run(messages: int, warmup: int) -> None:
    settings.REALTIME_BACKEND = "mqtt"
    settings.MQTT_URL = os.environ["MQTT_URL"]
    settings.REALTIME_TOPIC_ROOT = f"bench{uuid.uuid4().hex[:8]}"
    workspace = Workspace.objects.create(name="Bench")
    topic = f"{settings.REALTIME_TOPIC_ROOT}/{workspace.id}/#"

    with (
        stage_handler(MOTO, STAGE) as handler,
        Subscriber(settings.MQTT_URL, [topic]) as subscriber,
    ):
        os.environ["AWS_LAMBDA_FUNCTION_NAME"] = handler.function_name  # dispatch publishes to SNS, as in Lambda
        sns = SnsCapture(MOTO, handler)
        stages: dict[str, list[float]] = {
            "dispatch + commit + SNS publish": [],
            "SNS message read back from the queue": [],
            "handler invoked → received by subscriber": [],
            "handler invocation (task, PUBACK, ledger)": [],
        }
        totals: list[float] = []
        for i in range(warmup + messages):
            ref = event_ref("bench.suggestions", workspace_id=workspace.id, conversation_id=1, message_id=i)
            t0 = time.monotonic()
            with transaction.atomic():
                publish_event.dispatch(args=[ref], workspace_id=workspace.id)
            t1 = time.monotonic()
            found: list[str] = []
            while not found:
                found = sns.drain()
            t2 = time.monotonic()
            [message] = found
            sns.deliver(message)
            t3 = time.monotonic()
            arrived = subscriber.wait_for(lambda m, i=i: m.payload["message_id"] == i).at
            if i < warmup:
                continue
            for name, (start, end) in zip(stages, [(t0, t1), (t1, t2), (t2, arrived), (t2, t3)], strict=True):
                stages[name].append((end - start) * 1000)
            totals.append((arrived - t0) * 1000)

        baseline: list[float] = []
        for i in range(messages):
            t0 = time.monotonic()
            services.suggestions_publish(
                workspace_id=workspace.id, conversation_id=2, message_id=-1 - i, suggestions=SUGGESTIONS
            )
            arrived = subscriber.wait_for(lambda m, i=i: m.payload["message_id"] == -1 - i).at
            baseline.append((arrived - t0) * 1000)

    size = len(bench_suggestions(workspace_id=workspace.id, conversation_id=1, message_id=1).encode())
    print(f"realtime e2e ({STAGE} handler): {messages} messages (+{warmup} warm-up), {size}-byte payload")
    print(latency_line("TOTAL dispatch → received by subscriber", totals))
    for name, values_ms in stages.items():
        print(latency_line(f"  {name}", values_ms))
    print(latency_line("BASELINE service publish → received", baseline))
    median_total, median_base = statistics.median(totals), statistics.median(baseline)
    print(
        f"ratio total/baseline (medians): {median_total / median_base:.1f}x; target median ≤ 150 ms: "
        f"{'met' if median_total <= 150 else 'NOT met'} ({median_total:.1f} ms)"
    )


def main() -> None:
    args = ARGS
    old = setup_databases(verbosity=0, interactive=False, aliases={"default"})
    try:
        run(args.messages, args.warmup)
    finally:
        teardown_databases(old, verbosity=0)
        MOTO.stop()


if __name__ == "__main__":
    main()
