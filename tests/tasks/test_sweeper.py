"""The sweeper: what it sends again, what it leaves alone, two at once, its deadline, its schedule."""

import json
import threading
from datetime import timedelta
from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import connections
from django.utils import timezone

from apps.tasks.invocation import invocation
from apps.tasks.models import TaskRun, TaskStatus
from apps.tasks.services import task_sweep
from tests.support.events import LambdaContext

MAKE = "tests.tasks.sample_tasks.make_workspace"


def stored(*, age_seconds: float = 0, **fields) -> TaskRun:
    run = TaskRun.objects.create(name=MAKE, args=[f"swept-{TaskRun.objects.count()}"], **fields)
    if age_seconds:
        TaskRun.objects.filter(pk=run.pk).update(created_at=timezone.now() - timedelta(seconds=age_seconds))
    return run


def ids_of(messages: list[str]) -> list[str]:
    return sorted(json.loads(m)["args"][0]["task_id"] for m in messages)


def sent_ids(sns) -> list[str]:
    return ids_of(sns.drain())


def test_sweep_sends_each_kind_of_stranded_row_and_leaves_the_rest(sns):
    """Unsent past the grace, stale sends, due failures and expired claims go out; nothing else does."""
    now = timezone.now()
    grace, resend = settings.CUE_TASK_UNSENT_GRACE_SECONDS, settings.CUE_TASK_RESEND_SECONDS
    due = {
        "unsent": stored(age_seconds=grace + 5),
        "stale": stored(age_seconds=resend + 5, sent_at=now - timedelta(seconds=resend + 1)),
        "failed": stored(status=TaskStatus.FAILED, attempts=1, next_attempt_at=now - timedelta(seconds=1)),
        "expired": stored(status=TaskStatus.RUNNING, attempts=1, claimed_until=now - timedelta(seconds=1)),
    }
    left = [
        stored(),  # just dispatched: its own send is under way
        stored(age_seconds=resend + 5, sent_at=now - timedelta(seconds=5)),  # sent recently
        stored(status=TaskStatus.FAILED, attempts=1, next_attempt_at=now + timedelta(minutes=1)),
        stored(status=TaskStatus.RUNNING, attempts=1, claimed_until=now + timedelta(minutes=1)),
        stored(status=TaskStatus.SUCCEEDED, attempts=1, age_seconds=resend + 5),
        stored(status=TaskStatus.DEAD, attempts=5, age_seconds=resend + 5),
    ]
    counts = task_sweep()
    assert counts == {"expired": 1, "dead": 0, "retried": 1, "unsent": 2, "send_failed": 0, "deferred": 0}
    messages = sns.drain()
    assert ids_of(messages) == sorted(str(r.id) for r in due.values())
    for run in due.values():
        run.refresh_from_db()
        assert run.status == TaskStatus.PENDING and run.sends == 1
    assert TaskRun.objects.get(pk=due["expired"].pk).last_error.startswith("claim expired")
    assert all(TaskRun.objects.get(pk=r.pk).sends == 0 for r in left)
    assert sorted(sns.deliver(m) for m in messages) == ["succeeded"] * 4


def test_expired_claim_out_of_attempts_goes_dead_with_its_error_callback(sns):
    run = stored(
        status=TaskStatus.RUNNING,
        attempts=5,
        claimed_until=timezone.now() - timedelta(seconds=1),
        error_callback="tests.tasks.sample_tasks.record_dead",
    )
    assert task_sweep()["dead"] == 1
    run.refresh_from_db()
    assert run.status == TaskStatus.DEAD
    callback = TaskRun.objects.get(parent=run)
    assert sent_ids(sns) == [str(callback.id)]
    assert callback.args == [{"task_id": str(run.id), "task": MAKE, "status": "dead", "error": run.last_error}]


def test_two_sweepers_at_once_send_each_row_once(sns):
    """Run twice at the same moment (own connections): every stranded row goes out exactly once."""
    rows = [stored(age_seconds=120) for _ in range(40)]
    barrier = threading.Barrier(2)
    results: list[dict] = []

    def sweep():
        try:
            barrier.wait(timeout=10)
            results.append(task_sweep())
        finally:
            connections.close_all()

    threads = [threading.Thread(target=sweep) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(results) == 2
    assert sum(r["unsent"] for r in results) == 40
    assert sent_ids(sns) == sorted(str(r.id) for r in rows)
    assert set(TaskRun.objects.values_list("sends", flat=True)) == {1}


def test_sweep_near_its_deadline_hands_the_rest_to_the_next_sweep(sns):
    rows = [stored(age_seconds=120) for _ in range(3)]
    with invocation(LambdaContext(timeout_ms=1000)):
        counts = task_sweep()
    assert (counts["unsent"], counts["deferred"]) == (3, 3)
    assert sns.drain() == []
    assert not TaskRun.objects.filter(sent_at__isnull=False).exists()
    assert task_sweep()["unsent"] == 3
    assert sent_ids(sns) == sorted(str(r.id) for r in rows)


def test_sweep_stops_while_one_slow_publish_could_still_outlast_the_invocation(sns):
    """More time left than the deadline margin, but less than the margin plus one publish at its slowest
    (SNS blackholed: every attempt to its timeouts): nothing is marked sent that could not go out."""
    from apps.tasks.publisher import publish_budget_seconds

    rows = [stored(age_seconds=120) for _ in range(2)]
    left = settings.CUE_TASK_DEADLINE_MARGIN_SECONDS + publish_budget_seconds() - 1
    assert left > settings.CUE_TASK_DEADLINE_MARGIN_SECONDS
    with invocation(LambdaContext(timeout_ms=int(left * 1000))):
        counts = task_sweep()
    assert (counts["unsent"], counts["deferred"]) == (2, 2)
    assert sns.drain() == []
    assert task_sweep()["unsent"] == 2
    assert sent_ids(sns) == sorted(str(r.id) for r in rows)


def test_sweeper_is_scheduled_every_minute_in_every_stage():
    stages = json.loads((Path(settings.BASE_DIR) / "zappa_settings.json").read_text())
    assert {"function": "apps.tasks.jobs.sweep", "expression": "rate(1 minute)"} in stages["base"]["events"]
    for name, stage in stages.items():
        if name != "base":
            assert stage.get("extends") == "base" and "events" not in stage, f"{name} must keep the base's events"


def test_run_job_runs_the_sweeper_locally(sns):
    stored(age_seconds=120)
    out = StringIO()
    call_command("run_job", "sweep", stdout=out)
    report = json.loads(out.getvalue())
    assert report["job"] == "apps.tasks.jobs.sweep"
    assert report["result"]["unsent"] == 1
    assert len(sns.drain()) == 1


@pytest.mark.django_db
def test_run_job_refuses_an_undeclared_job():
    with pytest.raises(CommandError, match="Declared jobs: .*sweep"):
        call_command("run_job", "os.system")
