"""The ledger's rules without Lambda: inline runs (as on a laptop), claims, backoff, registry, retry by hand."""

import uuid
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django_guid.context import guid

from apps.accounts.models import Workspace
from apps.tasks import registry, services
from apps.tasks.models import TaskRun, TaskStatus
from apps.tasks.registry import UnknownTask, durable_task, task_get
from apps.tasks.services import task_execute, task_retry
from tests.tasks import sample_tasks
from tests.tasks.sample_tasks import workspace_names as names

pytestmark = pytest.mark.django_db(transaction=True)

MAKE = "tests.tasks.sample_tasks.make_workspace"


def stored(name: str = MAKE, **fields) -> TaskRun:
    """A ledger row in a given state, as an earlier delivery or the sweeper left it."""
    return TaskRun.objects.create(name=name, args=fields.pop("args", ["row"]), **fields)


# ------------------------------------------------------------------------------
# Outside Lambda: inline, through the same ledger
# ------------------------------------------------------------------------------
def test_delay_outside_lambda_runs_inline_through_the_ledger():
    run = sample_tasks.make_workspace.delay("inline")
    assert names("inline") == ["inline"]
    run.refresh_from_db()
    assert run.status == TaskStatus.SUCCEEDED
    assert (run.attempts, run.sends) == (1, 1)
    assert run.result == Workspace.objects.get(name="inline").id


def test_inline_dispatch_waits_for_commit_and_vanishes_on_rollback():
    with transaction.atomic():
        sample_tasks.make_workspace.delay("after-commit")
        assert names("after-commit") == [], "not before the commit"
    assert names("after-commit") == ["after-commit"]
    with pytest.raises(RuntimeError), transaction.atomic():
        sample_tasks.make_workspace.delay("rolled-back")
        raise RuntimeError
    assert names("rolled-back") == []
    assert not TaskRun.objects.filter(args=["rolled-back"]).exists()


def test_inline_chain_passes_the_result_to_the_callback():
    sample_tasks.double.dispatch(args=[5], callback=sample_tasks.record_result)
    assert names("callback:") == ["callback:10"]


def test_correlation_id_comes_from_the_request_and_passes_to_children():
    token = guid.set("req-123")
    try:
        run = sample_tasks.double.dispatch(args=[1], callback=sample_tasks.record_result)
    finally:
        guid.reset(token)
    child = TaskRun.objects.get(parent=run)
    assert run.correlation_id == child.correlation_id == "req-123"


def test_unknown_callback_is_refused_at_the_caller():
    with pytest.raises(UnknownTask):
        sample_tasks.double.dispatch(args=[1], callback="tests.tasks.sample_tasks.no_such_task")
    assert not TaskRun.objects.exists()


# ------------------------------------------------------------------------------
# One delivery against each state of the row
# ------------------------------------------------------------------------------
def test_delivery_of_a_finished_task_is_a_no_op():
    for status in (TaskStatus.SUCCEEDED, TaskStatus.DEAD):
        assert task_execute(task_id=str(stored(status=status).id)) == "done"
    assert names("row") == []


def test_delivery_during_an_unexpired_claim_is_skipped():
    run = stored(status=TaskStatus.RUNNING, attempts=1, claimed_until=timezone.now() + timedelta(minutes=1))
    assert task_execute(task_id=str(run.id)) == "busy"
    run.refresh_from_db()
    assert (run.status, run.attempts) == (TaskStatus.RUNNING, 1)
    assert names("row") == []


def test_delivery_of_a_failure_before_its_time_waits_for_the_sweeper():
    run = stored(status=TaskStatus.FAILED, attempts=1, next_attempt_at=timezone.now() + timedelta(minutes=1))
    assert task_execute(task_id=str(run.id)) == "not_due"
    assert names("row") == []


def test_delivery_takes_over_an_expired_claim():
    run = stored(status=TaskStatus.RUNNING, attempts=1, claimed_until=timezone.now() - timedelta(seconds=1))
    assert task_execute(task_id=str(run.id)) == "succeeded"
    run.refresh_from_db()
    assert (run.status, run.attempts) == (TaskStatus.SUCCEEDED, 2)
    assert run.last_error.startswith("claim expired")
    assert names("row") == ["row"]


def test_expired_claim_out_of_attempts_goes_dead_and_calls_the_error_callback():
    run = stored(
        status=TaskStatus.RUNNING,
        attempts=5,
        max_attempts=5,
        claimed_until=timezone.now() - timedelta(seconds=1),
        error_callback="tests.tasks.sample_tasks.record_dead",
    )
    assert task_execute(task_id=str(run.id)) == "dead"
    run.refresh_from_db()
    assert run.status == TaskStatus.DEAD
    assert names("row") == []
    assert names("dead:") == [f"dead:{MAKE}"]
    assert TaskRun.objects.get(parent=run).name == "tests.tasks.sample_tasks.record_dead"


def test_delivery_of_an_unknown_id_is_dropped():
    assert task_execute(task_id=str(uuid.uuid4())) == "missing"


def test_unknown_task_name_is_recorded_as_a_failure():
    run = stored(name="apps.nowhere.tasks.gone", max_attempts=2)
    assert task_execute(task_id=str(run.id)) == "failed"
    run.refresh_from_db()
    assert run.status == TaskStatus.FAILED
    assert "unknown task 'apps.nowhere.tasks.gone'" in run.last_error


def test_a_result_that_cannot_be_stored_fails_the_task_and_rolls_back():
    run = sample_tasks.returns_a_set.delay("set-result")
    run.refresh_from_db()
    assert run.status == TaskStatus.FAILED
    assert "a task's result must be JSON values" in run.last_error
    assert names("set-result") == []


def test_backoff_is_exponential_with_bounded_jitter(monkeypatch):
    """base 10 s, cap 60 s: attempt n waits 10·2^(n-1) s times a jitter in [0.5, 1.5], never over the cap."""
    task = sample_tasks.always_fails
    for jitter in (0.5, 1.5):
        monkeypatch.setattr(services.random, "uniform", lambda a, b, j=jitter: j)
        waits = [services._backoff(TaskRun(attempts=n), task).total_seconds() for n in (1, 2, 3, 4)]
        assert waits == [min(60, 10 * 2 ** (n - 1) * jitter) for n in (1, 2, 3, 4)]
    monkeypatch.undo()
    spread = {services._backoff(TaskRun(attempts=1), task).total_seconds() for _ in range(20)}
    assert len(spread) > 1 and all(5 <= s <= 15 for s in spread), "jitter spreads retries of one cause"


# ------------------------------------------------------------------------------
# Retry by hand
# ------------------------------------------------------------------------------
def test_retry_by_hand_sends_a_dead_task_again_with_fresh_attempts():
    run = stored(status=TaskStatus.DEAD, attempts=5, last_error="boom", args=["revived"])
    task_retry(run=run)
    run.refresh_from_db()
    assert run.status == TaskStatus.SUCCEEDED
    assert run.attempts == 1
    assert names("revived") == ["revived"]


@pytest.mark.parametrize("status", [TaskStatus.PENDING, TaskStatus.RUNNING, TaskStatus.SUCCEEDED])
def test_only_dead_or_failed_tasks_can_be_retried(status):
    run = stored(status=status, attempts=1)
    with pytest.raises(ValidationError, match="Only dead, rejected or failed tasks"):
        task_retry(run=run)
    run.refresh_from_db()
    assert (run.status, run.sends) == (status, 0)


# ------------------------------------------------------------------------------
# Registry
# ------------------------------------------------------------------------------
def test_tasks_must_be_module_level_functions_with_attempts():
    def outer():
        @durable_task
        def inner():
            pass

    with pytest.raises(TypeError, match="module-level function"):
        outer()
    with pytest.raises(ValueError, match="max_attempts"):
        durable_task(max_attempts=0)


def test_task_with_a_custom_name_is_found_through_the_apps_tasks_modules(monkeypatch):
    """A cold worker has not imported the module: a custom name is found by importing every app's tasks."""
    task = registry._TASKS["samples.renamed"]
    monkeypatch.delitem(registry._TASKS, "samples.renamed")
    discovered = []

    def autodiscover(module_name):
        discovered.append(module_name)
        registry._TASKS[task.name] = task  # what importing the module that declares it does

    monkeypatch.setattr(registry, "autodiscover_modules", autodiscover)
    assert task_get("samples.renamed") is task
    assert discovered == ["tasks"]
    with pytest.raises(UnknownTask):
        task_get("apps.nowhere.tasks.gone")
