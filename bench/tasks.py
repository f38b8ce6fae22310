"""Figures for the task backbone: dispatch overhead, worker throughput through the handler, duplicate-delivery soaks.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/cue_tasks_bench python bench/tasks.py [--samples 300] [--soak 1000]

AWS is moto in-process (mock_aws, started before any boto3 client exists: nothing leaves the
process). The database is real PostgreSQL; the bench creates and migrates its database if needed
and empties the ledger first. Each figure is printed with a baseline measured in the same run.
Exits 1 if either soak (a task in the ledger's transaction, one with `atomic=False`) finds an effect lost or duplicated.
"""

import argparse
import contextlib
import io
import json
import os
import statistics
import sys
import tempfile
import threading
import time
import warnings
from collections import Counter
from pathlib import Path

from _setup import bench_parser, database_ensure, remote_env_on_loopback

ROOT = Path(__file__).resolve().parent.parent


def parse_args() -> argparse.Namespace:
    parser = bench_parser(__doc__, database="cue_tasks_bench")
    parser.add_argument("--samples", type=int, default=300, help="tasks per timing figure")
    parser.add_argument("--soak", type=int, default=1000, help="tasks in the duplicate-delivery soak (>= 1000)")
    return parser.parse_args()


# Parsed before anything is set up (--help touches nothing); the rest of this module needs Django and moto.
OPTIONS = parse_args()
sys.path.insert(0, str(ROOT))

# Fake credentials and no endpoint override: every AWS call is answered by moto inside this process.
for key in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
    os.environ.pop(key, None)
os.environ.update(
    AWS_ACCESS_KEY_ID="testing",
    AWS_SECRET_ACCESS_KEY="testing",  # noqa: S105 - moto's dummy credentials
    AWS_SESSION_TOKEN="testing",
    AWS_DEFAULT_REGION="us-east-1",
    AWS_REGION="us-east-1",
)
os.environ["DATABASE_URL"] = OPTIONS.database_url
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
os.environ.setdefault("LOG_LEVEL", "WARNING")

from moto import mock_aws  # noqa: E402

_MOCK = mock_aws()
_MOCK.start()

import boto3  # noqa: E402
import django  # noqa: E402

database_ensure(os.environ["DATABASE_URL"])
django.setup()

import logging  # noqa: E402

from django.core.management import call_command  # noqa: E402
from django.db import connections  # noqa: E402
from zappa.asynchronous import run as zappa_run  # noqa: E402

from apps.accounts.models import Workspace  # noqa: E402
from apps.tasks import publisher  # noqa: E402
from apps.tasks.models import TaskRun, TaskStatus  # noqa: E402
from apps.tasks.registry import durable_task  # noqa: E402
from tests.support.events import REGION, scheduled_event  # noqa: E402
from tests.support.lambda_harness import Handler, SnsCapture, stage_settings_values, write_stage_settings  # noqa: E402

logging.disable(logging.WARNING)  # the figures, not a log line per task
warnings.filterwarnings("ignore", message="No directory at")  # no collectstatic for a bench


# ------------------------------------------------------------------------------
# What runs: the same effect (one row) with and without the ledger
# ------------------------------------------------------------------------------
@durable_task
def durable_effect(name: str) -> None:
    Workspace.objects.create(name=name)


@durable_task(atomic=False)
def durable_effect_no_transaction(name: str) -> None:
    """The same effect from a body the ledger runs with no transaction open (as the Intercom tasks run)."""
    Workspace.objects.create(name=name)


def plain_effect(name: str) -> None:
    """The baseline: a plain Zappa SNS task, no ledger."""
    Workspace.objects.create(name=name)


class InProcessMoto:
    """What SnsCapture needs of moto: clients, here answered in-process by mock_aws."""

    def client(self, service: str):
        return boto3.client(service, region_name=REGION)


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1000


def summary(label: str, ms: list[float], baseline: list[float] | None = None) -> str:
    med = statistics.median(ms)
    p95 = statistics.quantiles(ms, n=20)[-1]
    line = f"  {label:<46} median {med:7.3f} ms   p95 {p95:7.3f} ms   {1000 / med:8.0f}/s"
    if baseline:
        line += f"   ratio {med / statistics.median(baseline):.2f}x"
    return line


def empty_ledger() -> None:
    TaskRun.objects.all().delete()
    Workspace.objects.filter(name__startswith="bench-").delete()


# ------------------------------------------------------------------------------
# Figures
# ------------------------------------------------------------------------------
def dispatch_overhead(sns: SnsCapture, samples: int) -> None:
    arn = publisher.topic_arn()
    zappa_alone = [
        timed(lambda i=i: zappa_run(plain_effect, args=[f"bench-z{i}"], service="sns", arn=arn)) for i in range(samples)
    ]
    durable = [timed(lambda i=i: durable_effect.delay(f"bench-d{i}")) for i in range(samples)]
    sns.drain()
    print(f"dispatch overhead per task (n={samples}, moto in-process, PostgreSQL ledger):")
    print(summary("zappa.asynchronous.run publish (baseline)", zappa_alone))
    print(summary("durable .delay(): ledger row + publish", durable, zappa_alone))


def worker_path(sns: SnsCapture, samples: int) -> None:
    arn = publisher.topic_arn()
    for i in range(samples):
        zappa_run(plain_effect, args=[f"bench-wp{i}"], service="sns", arn=arn)
    plain_messages = sns.drain()
    for i in range(samples):
        durable_effect.delay(f"bench-wd{i}")
    durable_messages = sns.drain()
    plain = [timed(lambda m=m: sns.deliver(m)) for m in plain_messages]
    durable = [timed(lambda m=m: sns.deliver(m)) for m in durable_messages]
    done = TaskRun.objects.filter(name=durable_effect.name, status=TaskStatus.SUCCEEDED).count()
    print(f"worker path: SNS event -> lambda_handler -> task, one insert each (n={samples}):")
    print(summary("plain Zappa SNS task, no ledger (baseline)", plain))
    print(summary("durable task: claim + run + succeeded mark", durable, plain))
    print(f"  durable tasks succeeded: {done}/{samples}")


def soak(sns: SnsCapture, n: int, task=durable_effect) -> int:
    empty_ledger()
    for i in range(n):
        task.delay(f"bench-soak-{i:05}")
    messages = sns.drain()
    assert len(messages) == n, (len(messages), n)
    outcomes: Counter = Counter()
    lock = threading.Lock()
    half = n // 2

    for message in messages[:half]:
        outcomes.update([sns.deliver(message), sns.deliver(message)])

    def concurrently(message: str, barrier: threading.Barrier) -> None:
        try:
            barrier.wait(timeout=10)
            outcome = sns.deliver(message)
            with lock:
                outcomes[outcome] += 1
        finally:
            connections.close_all()

    start = time.perf_counter()
    for message in messages[half:]:
        barrier = threading.Barrier(2)
        pair = [threading.Thread(target=concurrently, args=(message, barrier)) for _ in range(2)]
        for t in pair:
            t.start()
        for t in pair:
            t.join()
    concurrent_s = time.perf_counter() - start

    names = Counter(Workspace.objects.filter(name__startswith="bench-soak-").values_list("name", flat=True))
    duplicated = sum(count - 1 for count in names.values())
    missing = n - len(names)
    not_succeeded = TaskRun.objects.exclude(status=TaskStatus.SUCCEEDED).count()
    how = "in the ledger's transaction" if task.atomic else "no transaction open (atomic=False)"
    print(f"duplicate-delivery soak, {how}: {n} tasks x 2 deliveries", end=" ")
    print(f"({half} in a row, {n - half} from two threads at once):")
    print(f"  delivery outcomes: {json.dumps(dict(sorted(outcomes.items())))}")
    print(f"  concurrent pairs took {concurrent_s:.1f} s")
    print(f"  effects: {len(names)} distinct, missing {missing}, ledger rows not succeeded {not_succeeded}")
    print(f"  duplicated effects: {duplicated}")
    return duplicated + missing + not_succeeded


def main() -> int:
    options = OPTIONS

    call_command("migrate", verbosity=0)
    empty_ledger()
    scratch = tempfile.TemporaryDirectory(prefix="cue-bench-")
    settings_py = write_stage_settings("dev", Path(scratch.name))
    values = stage_settings_values(settings_py)
    remote_env_server = remote_env_on_loopback(values["REMOTE_ENV"], {})
    function_name = f"{values['PROJECT_NAME']}-{values['API_STAGE']}"
    with scratch, Handler(settings_py.parent, function_name=function_name) as handler:
        os.environ["AWS_LAMBDA_FUNCTION_NAME"] = function_name  # as in Lambda: tasks publish
        sns = SnsCapture(InProcessMoto(), handler)
        # A cold start (Zappa's "Instancing..", Django's set-up) is not what the figures measure: warm up first.
        with contextlib.redirect_stdout(io.StringIO()):
            handler(scheduled_event(f"{function_name}-handler.keep_warm_callback"))
        print(f"PostgreSQL {connections['default'].settings_dict['NAME']}, Zappa stage dev, moto in-process\n")
        dispatch_overhead(sns, options.samples)
        print()
        worker_path(sns, options.samples)
        print()
        failures = soak(sns, options.soak)
        print()
        failures += soak(sns, options.soak, task=durable_effect_no_transaction)
    empty_ledger()
    remote_env_server.stop()
    return 1 if failures else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    finally:
        _MOCK.stop()
