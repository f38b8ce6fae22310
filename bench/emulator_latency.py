"""End-to-end latency through the local Lambda emulator (HTTP -> handler -> SNS -> handler), beside in-process.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/cue_bench_emulator python bench/emulator_latency.py [--samples 100]

One sample: an operator's `POST /<stage>/api/tasks/<id>/retry` dispatches a task; it ends when the
task has run (its ledger row's finished_at). Baseline, in the same run: the same request as an API
Gateway event handed to the stage's handler in-process and the published SNS message delivered
back at once (what tests/tasks/test_lambda_path.py does). Emulator: real HTTP to the emulator,
moto's server pushing the SNS message to the deliverer, delay 0. AWS is moto's server on loopback;
the database is real PostgreSQL (created and migrated if missing). Logging is off in both paths.
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC
from pathlib import Path

from _setup import bench_parser, database_ensure, p95

ROOT = Path(__file__).resolve().parent.parent


def parse_args() -> argparse.Namespace:
    parser = bench_parser(__doc__, database="cue_bench_emulator")
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=5)
    return parser.parse_args()


# Parsed before anything is set up (--help touches nothing); the rest of this module needs Django and moto.
ARGS = parse_args()
sys.path.insert(0, str(ROOT))

from tools.local_aws import LocalAws, clean_aws_environment  # noqa: E402

AWS = LocalAws().start()
_clean = clean_aws_environment(dict(os.environ))
os.environ.clear()
os.environ.update({**_clean, **AWS.env()})  # before any boto3 client exists (zappa.asynchronous makes some)
os.environ["DATABASE_URL"] = ARGS.database_url
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
os.environ.setdefault("LOG_LEVEL", "WARNING")

import django  # noqa: E402

STAGE = "staging"  # INFO logging, no debug event dumps: the closest to production


database_ensure(os.environ["DATABASE_URL"])
django.setup()

import logging  # noqa: E402

import requests  # noqa: E402
from django.core.management import call_command  # noqa: E402

from apps.accounts.api import token_pair_for  # noqa: E402
from apps.accounts.models import Membership  # noqa: E402
from apps.accounts.services import workspace_signup  # noqa: E402
from apps.tasks.models import TaskRun, TaskStatus  # noqa: E402
from tests.support.lambda_harness import Handler, SnsCapture  # noqa: E402
from tools.emulator.apigateway import ApiGateway, HttpRequest  # noqa: E402
from tools.emulator.sns import lambda_sns_event  # noqa: E402
from tools.emulator.stage import StageEmulator, stage_config, write_settings_module  # noqa: E402
from tools.stages import function_name as function_name_of  # noqa: E402

TASK = "tests.tasks.sample_tasks.make_workspace"


def quiet(_line: str) -> None:
    pass


def dead_task(owner: Membership, n: int) -> TaskRun:
    return TaskRun.objects.create(
        name=TASK, args=[f"bench-{n}"], status=TaskStatus.DEAD, attempts=5, workspace=owner.workspace
    )


def finished_at(run: TaskRun, timeout: float = 30.0) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = TaskRun.objects.filter(pk=run.pk, status=TaskStatus.SUCCEEDED).values_list("finished_at", flat=True)
        if done:
            return done[0].astimezone(UTC).timestamp()
        time.sleep(0.001)
    raise RuntimeError(f"task {run.id} did not finish in {timeout} s")


def in_process(owner: Membership, token: str, samples: int, warmup: int, settings_dir: Path) -> list[float]:
    """The handler called in this thread with the event; the SNS message drained and delivered at once."""
    function_name = function_name_of(stage_config(STAGE), STAGE)
    gateway = ApiGateway(stage=STAGE)
    latencies = []
    saved = os.environ.get("AWS_LAMBDA_FUNCTION_NAME")
    AWS.put_remote_env(stage_config(STAGE)["remote_env"], {"CUE_BENCH": "1"})
    with Handler(settings_dir, function_name=function_name) as handler:
        os.environ["AWS_LAMBDA_FUNCTION_NAME"] = function_name  # tasks publish to SNS, as in Lambda
        sns = SnsCapture(AWS, handler)
        for n in range(warmup + samples):
            run = dead_task(owner, n)
            request = HttpRequest(
                method="POST",
                target=f"/{STAGE}/api/tasks/{run.id}/retry",
                headers=[("Authorization", f"Bearer {token}")],
                body=b"",
            )
            started = time.time()
            answer = handler(gateway.event_for(request))
            assert answer["statusCode"] == 202, answer
            for message in sns.drain():
                handler(lambda_sns_event(_notification(message, sns.topic_arn), "arn:aws:sns:bench"))
            if n >= warmup:
                latencies.append(finished_at(run) - started)
    if saved is None:
        os.environ.pop("AWS_LAMBDA_FUNCTION_NAME", None)
    return latencies


def _notification(message: str, topic_arn: str) -> dict:
    return {"Type": "Notification", "MessageId": "bench", "TopicArn": topic_arn, "Message": message}


def through_emulator(owner: Membership, token: str, samples: int, warmup: int, settings_dir: Path):
    latencies, answers = [], []
    emulator = StageEmulator(
        STAGE, aws=AWS, settings_dir=settings_dir, schedules=False, remote_env={"CUE_BENCH": "1"}, log=quiet
    )
    with emulator:
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {token}"
        for n in range(warmup + samples):
            run = dead_task(owner, 10_000 + n)
            started = time.time()
            answer = session.post(f"{emulator.url}/api/tasks/{run.id}/retry", timeout=30)
            answered = time.time()
            assert answer.status_code == 202, answer.text
            done = finished_at(run)
            if n >= warmup:
                latencies.append(done - started)
                answers.append(answered - started)
            emulator.wait_idle(timeout=30)
    return latencies, answers


def figures(values: list[float]) -> tuple[float, float]:
    return statistics.median(values) * 1000, p95(values) * 1000


def main() -> int:
    args = ARGS
    call_command("migrate", verbosity=0)
    TaskRun.objects.all().delete()
    email = f"bench-{time.time_ns()}@example.com"
    owner = workspace_signup(email=email, password="correct-horse-battery-staple", workspace_name="Bench")
    token = token_pair_for(owner.user)["access"]
    logging.disable(logging.CRITICAL)  # the figures, not a log line per request and task
    with tempfile.TemporaryDirectory() as tmp:
        settings_dir = write_settings_module(STAGE, Path(tmp)).parent
        baseline = in_process(owner, token, args.samples, args.warmup, settings_dir)
        AWS.reset()
        emulated, answers = through_emulator(owner, token, args.samples, args.warmup, settings_dir)
    rows = [
        ("in-process: handler(event), then the SNS message delivered", baseline),
        ("emulator: HTTP -> handler -> SNS (moto) -> deliverer -> handler", emulated),
        ("emulator: the HTTP answer (202) alone", answers),
    ]
    print(f"Task retry, request sent -> task finished; stage {STAGE}, {args.samples} samples each")
    print(f"{'path':<66} {'median':>9} {'p95':>9}")
    for label, values in rows:
        median, p95 = figures(values)
        print(f"{label:<66} {median:7.1f} ms {p95:7.1f} ms")
    print(f"emulator / in-process (median): {statistics.median(emulated) / statistics.median(baseline):.2f}x")
    # Over 100 %: the task ran in another container while the answer was on its way (in-process runs them in turn).
    share = statistics.median(answers) / statistics.median(emulated)
    print(f"emulator answer / emulator end to end (median): {share:.0%}")
    TaskRun.objects.filter(name=TASK).delete()
    AWS.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
