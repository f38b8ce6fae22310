"""What a task says about itself: which errors are permanent (rejected at once, with the reason) and which are
retried, whether its body runs in the ledger's transaction, and what each delivery reports (an enum)."""

import json
import threading

import pytest
from django.db import transaction

from apps.tasks.models import TaskRun, TaskStatus
from apps.tasks.outcomes import Outcome
from apps.tasks.runner import run_task_message
from apps.tasks.services import task_execute, task_retry, task_sweep
from tests.tasks import sample_tasks
from tests.tasks.sample_tasks import workspace_names as names

pytestmark = pytest.mark.django_db(transaction=True)

RECORD_DEAD = "tests.tasks.sample_tasks.record_dead"


def stored(task, *args) -> TaskRun:
    """A ledger row as dispatch leaves it, delivered by the test (not inline)."""
    return TaskRun.objects.create(name=task.name, args=list(args), max_attempts=task.max_attempts)


def test_a_permanent_error_is_rejected_at_once_with_its_reason_and_never_retried(later):
    sample_tasks.raises.dispatch(args=["perm", "refused"], error_callback=sample_tasks.record_dead)
    run = TaskRun.objects.get(name=sample_tasks.raises.name)
    assert run.status == TaskStatus.REJECTED
    assert (run.attempts, run.next_attempt_at) == (1, None)
    assert run.finished_at is not None
    assert run.last_error.startswith("permanent error, not retried: Refused: perm\n")
    assert names("partial:perm") == [], "an atomic task's writes roll back with its error"
    # The error callback hears of it, and of why it stopped.
    [info] = TaskRun.objects.get(name=RECORD_DEAD).args
    assert (info["task_id"], info["status"]) == (str(run.id), "rejected")
    assert names("dead:") == [f"dead:{sample_tasks.raises.name}"]
    # Never retried: not by the sweeper, not by a duplicate delivery.
    assert task_sweep(now=later(10**6))["retried"] == 0
    assert task_execute(task_id=str(run.id)) is Outcome.DONE
    assert sample_tasks.calls["perm"] == 1
    run.refresh_from_db()
    assert run.status == TaskStatus.REJECTED


@pytest.mark.parametrize("kind", ["passing", "runtime"])
def test_a_retryable_error_is_retried_with_backoff_then_dead(kind, later):
    run = stored(sample_tasks.raises, "again", kind)
    assert task_execute(task_id=str(run.id)) is Outcome.FAILED
    run.refresh_from_db()
    assert run.status == TaskStatus.FAILED
    assert run.next_attempt_at is not None
    for status in (TaskStatus.FAILED, TaskStatus.DEAD):
        task_sweep(now=later(10**6))  # inline: the sweeper's send runs the delivery
        run.refresh_from_db()
        assert run.status == status
    assert sample_tasks.calls["again"] == 3


@pytest.mark.parametrize(
    ("kind", "outcome", "status"),
    [("declared", Outcome.REJECTED, TaskStatus.REJECTED), ("refused", Outcome.FAILED, TaskStatus.FAILED)],
)
def test_what_the_task_declares_wins_over_what_the_error_says(kind, outcome, status):
    run = stored(sample_tasks.declares, "declared", kind)
    assert task_execute(task_id=str(run.id)) is outcome
    run.refresh_from_db()
    assert run.status == status


def test_a_rejected_task_can_be_retried_by_hand():
    sample_tasks.raises.delay("by-hand", "refused")
    run = TaskRun.objects.get(name=sample_tasks.raises.name)
    assert run.status == TaskStatus.REJECTED
    task_retry(run=run)  # inline: sent again at once, and rejected again
    run.refresh_from_db()
    assert (run.status, run.attempts) == (TaskStatus.REJECTED, 1)
    assert sample_tasks.calls["by-hand"] == 2


def test_a_non_atomic_task_runs_with_no_transaction_open_and_a_duplicate_delivery_is_skipped():
    run = stored(sample_tasks.calls_out, "out")
    outcomes = []
    worker = threading.Thread(target=lambda: outcomes.append(task_execute(task_id=str(run.id))))
    worker.start()
    try:
        assert sample_tasks.started.wait(timeout=20)
        # From another connection, mid-run: the ledger row is claimed but not locked, the body's write committed.
        with transaction.atomic():
            seen = TaskRun.objects.select_for_update(nowait=True).get(pk=run.pk)
        assert seen.status == TaskStatus.RUNNING
        assert names("out") == ["out"]
        assert task_execute(task_id=str(run.id)) is Outcome.BUSY
    finally:
        sample_tasks.release.set()
        worker.join(timeout=20)
    assert outcomes == [Outcome.SUCCEEDED]
    assert sample_tasks.in_transaction == {"out": False}
    run.refresh_from_db()
    assert (run.status, run.result) == (TaskStatus.SUCCEEDED, "out")
    assert sample_tasks.calls["out"] == 1


@pytest.mark.parametrize(("kind", "status"), [("refused", TaskStatus.REJECTED), ("passing", TaskStatus.FAILED)])
def test_a_non_atomic_task_keeps_its_committed_writes_when_it_fails(kind, status):
    run = stored(sample_tasks.calls_out_and_fails, "own", kind)
    task_execute(task_id=str(run.id))
    run.refresh_from_db()
    assert run.status == status
    assert names("kept:own") == ["kept:own:1"]


def test_every_delivery_reports_an_enum_member_with_the_old_string_value():
    run = stored(sample_tasks.make_workspace, "enum")
    outcomes = [
        task_execute(task_id=str(run.id)),
        task_execute(task_id=str(run.id)),
        task_execute(task_id="00000000-0000-0000-0000-000000000000"),
        run_task_message({"task_id": "not-a-uuid"}),
    ]
    assert outcomes == [Outcome.SUCCEEDED, Outcome.DONE, Outcome.MISSING, Outcome.INVALID]
    assert all(type(outcome) is Outcome for outcome in outcomes)
    # Logs, JSON and callers comparing strings see the same values as before.
    assert json.dumps(outcomes) == '["succeeded", "done", "missing", "invalid"]'
    assert outcomes[0] == "succeeded"
