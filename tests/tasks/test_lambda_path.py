"""The task backbone through SNS and the real Zappa handler: once in effect, however it is delivered."""

import json
import threading
import time
from datetime import timedelta

import psycopg2
import pytest
from django.db import connection, connections, transaction
from django.utils import timezone

from apps.accounts.models import Workspace
from apps.tasks import publisher
from apps.tasks.models import TaskRun, TaskStatus
from apps.tasks.services import TaskArgumentsError, task_sweep
from tests.support.events import apigw_v1, apigw_v2, scheduled_event
from tests.tasks import sample_tasks
from tests.tasks.sample_tasks import workspace_names as names

pytestmark = pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks and pg_stat_activity")


def row(run) -> TaskRun:
    return TaskRun.objects.get(pk=run.id)


def run_out_claim(run) -> None:
    """The invocation holding the claim is gone and its time is up."""
    TaskRun.objects.filter(pk=run.id).update(claimed_until=timezone.now() - timedelta(seconds=1))


def in_threads(*targets) -> None:
    """Start every target at the same moment (a barrier), each thread with its own database connection."""
    barrier = threading.Barrier(len(targets))
    errors: list[BaseException] = []

    def wrap(target):
        try:
            barrier.wait(timeout=10)
            target()
        except BaseException as exc:  # noqa: BLE001 - handed back to the test below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=wrap, args=(t,)) for t in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not errors, errors


# ------------------------------------------------------------------------------
# Dispatch
# ------------------------------------------------------------------------------
def test_dispatch_publishes_zappa_message_with_small_envelope(sns):
    """In Lambda, a dispatch publishes Zappa's SNS message naming Cue's runner, carrying only the envelope."""
    run = sample_tasks.make_workspace.delay("ws-1")
    [message] = sns.drain()
    body = json.loads(message)
    assert body["command"] == "zappa.asynchronous.route_sns_task"
    assert body["task_path"] == "apps.tasks.runner.run_task_message"
    [envelope] = body["args"]
    assert envelope == {
        "task_id": str(run.id),
        "task": "tests.tasks.sample_tasks.make_workspace",
        "args": ["ws-1"],
        "kwargs": {},
        "attempt": 1,
        "correlation_id": run.correlation_id,
    }
    assert not names("ws-1"), "nothing runs until the message is delivered"
    assert sns.deliver(message) == "succeeded"
    assert names("ws-1") == ["ws-1"]
    stored = row(run)
    assert stored.status == TaskStatus.SUCCEEDED
    assert stored.attempts == 1
    assert stored.sends == 1
    assert stored.result == Workspace.objects.get(name="ws-1").id
    assert stored.claimed_until is None


def test_rollback_sends_nothing(sns):
    with pytest.raises(RuntimeError), transaction.atomic():
        sample_tasks.make_workspace.delay("never")
        raise RuntimeError("abort")
    assert sns.drain() == []
    assert not TaskRun.objects.exists()


def test_dispatch_inside_a_transaction_is_sent_on_commit(sns):
    with transaction.atomic():
        run = sample_tasks.make_workspace.delay("on-commit")
        assert sns.drain() == [], "nothing leaves before the commit"
    [message] = sns.drain()
    assert json.loads(message)["args"][0]["task_id"] == str(run.id)


def test_over_limit_arguments_are_refused_at_the_caller(sns, settings):
    """Arguments over the limit raise at .delay(): no ledger row, nothing published."""
    assert settings.CUE_TASK_MAX_ARGUMENT_BYTES <= 256 * 1024 // 4, "a safe fraction of SNS's 256 KB"
    with pytest.raises(TaskArgumentsError, match=r"over the \d+-byte limit; pass ids"):
        sample_tasks.measures.delay("x" * settings.CUE_TASK_MAX_ARGUMENT_BYTES)
    with pytest.raises(TaskArgumentsError, match="must be JSON values"):
        sample_tasks.measures.delay(object())
    with pytest.raises(TaskArgumentsError, match="must be JSON values"):
        sample_tasks.measures.delay(float("nan"))
    assert not TaskRun.objects.exists()
    assert sns.drain() == []


def test_arguments_just_under_the_limit_travel_through_sns(sns, settings):
    """The limit leaves room for Zappa's wrapping: the largest allowed arguments still arrive."""
    blob = "x" * (settings.CUE_TASK_MAX_ARGUMENT_BYTES - 100)
    run = sample_tasks.measures.delay(blob)
    [message] = sns.drain()
    assert sns.deliver(message) == "succeeded"
    assert row(run).result == len(blob)


# ------------------------------------------------------------------------------
# Once in effect
# ------------------------------------------------------------------------------
def test_duplicate_delivery_in_a_row_has_one_effect(sns):
    run = sample_tasks.make_workspace.delay("dup")
    [message] = sns.drain()
    assert [sns.deliver(message) for _ in range(3)] == ["succeeded", "done", "done"]
    assert names("dup") == ["dup"]
    assert sample_tasks.calls["dup"] == 1
    assert row(run).attempts == 1


def test_duplicate_deliveries_at_the_same_moment_have_one_effect(sns, lambda_handler):
    """Each message delivered by two threads at once (own connections): every effect happens once."""
    runs = [sample_tasks.make_workspace.delay(f"pair-{i:02}") for i in range(12)]
    messages = sns.drain()
    lambda_handler(apigw_v1("GET", "/healthz"))  # Zappa's handler is set up once, before the threads
    outcomes: dict[str, list[str]] = {m: [] for m in messages}
    for message in messages:
        in_threads(*[lambda m=message: outcomes[m].append(sns.deliver(m))] * 2)
    assert names("pair-") == sorted(f"pair-{i:02}" for i in range(12))
    for message, pair in outcomes.items():
        assert sorted(pair)[-1] == "succeeded" and sorted(pair)[0] in {"busy", "done"}, (message, pair)
    assert all(sample_tasks.calls[f"pair-{i:02}"] == 1 for i in range(12))
    assert {r.status for r in TaskRun.objects.filter(pk__in=[r.id for r in runs])} == {TaskStatus.SUCCEEDED}


def test_delivery_while_another_holds_the_claim_is_skipped(sns, lambda_handler):
    """While one invocation runs the task, a second delivery of it is skipped, not run alongside."""
    run = sample_tasks.holds_until_released.delay("held")
    [message] = sns.drain()
    lambda_handler(apigw_v1("GET", "/healthz"))
    first: list[str] = []
    worker = threading.Thread(target=lambda: (first.append(sns.deliver(message)), connections.close_all()))
    worker.start()
    try:
        assert sample_tasks.started.wait(timeout=20)
        assert sns.deliver(message) == "busy"
        held = row(run)
        assert held.status == TaskStatus.RUNNING
        assert held.claimed_until > timezone.now()
    finally:
        sample_tasks.release.set()
        worker.join(timeout=20)
    assert first == ["succeeded"]
    assert names("held") == ["held"]
    assert sample_tasks.calls["held"] == 1


def test_killed_midway_leaves_no_partial_write_and_completes_on_redelivery(sns):
    """A process death mid-task rolls back its writes; once the claim runs out, a redelivery takes over."""
    sample_tasks.kill_next.add("killed")
    run = sample_tasks.dies_midway.delay("killed")
    [message] = sns.drain()
    with pytest.raises(sample_tasks.Killed):
        sns.deliver(message)
    assert names("killed") == [], "the half-done write was rolled back"
    stuck = row(run)
    assert stuck.status == TaskStatus.RUNNING and stuck.attempts == 1
    # The claim lasts the invocation's remaining time (30 s here) plus a little, not the long default.
    assert timedelta(seconds=20) < stuck.claimed_until - stuck.started_at <= timedelta(seconds=35)
    assert sns.deliver(message) == "busy", "the claim has not run out yet"
    run_out_claim(run)
    assert sns.deliver(message) == "succeeded"
    assert sns.deliver(message) == "done"
    assert names("killed") == ["killed"]
    done = row(run)
    assert done.status == TaskStatus.SUCCEEDED and done.attempts == 2
    assert "claim expired" in done.last_error


def test_killed_midway_is_sent_again_by_the_sweeper(sns, later):
    """No redelivery comes: the sweeper finds the expired claim and sends the task again."""
    sample_tasks.kill_next.add("swept")
    run = sample_tasks.dies_midway.delay("swept")
    [message] = sns.drain()
    with pytest.raises(sample_tasks.Killed):
        sns.deliver(message)
    assert task_sweep()["expired"] == 0, "the claim still runs"
    assert task_sweep(now=later(120))["expired"] == 1
    sns.run_all()
    assert names("swept") == ["swept"]
    assert row(run).status == TaskStatus.SUCCEEDED


def test_connection_lost_midway_rolls_back_and_is_retried(sns):
    """The task's connection dies mid-way: nothing partial is kept, the failure is recorded, a retry completes."""
    sample_tasks.drop_connection_next.add("dropped")
    run = sample_tasks.dies_midway.delay("dropped")
    [message] = sns.drain()
    assert sns.deliver(message) == "failed"
    assert names("dropped") == []
    failed = row(run)
    assert failed.status == TaskStatus.FAILED
    assert "server closed the connection" in failed.last_error
    assert task_sweep(now=failed.next_attempt_at)["retried"] == 1
    sns.run_all()
    assert names("dropped") == ["dropped"]
    assert row(run).status == TaskStatus.SUCCEEDED


# ------------------------------------------------------------------------------
# Nothing lost
# ------------------------------------------------------------------------------
def test_failed_publish_loses_nothing(sns, monkeypatch, later):
    """SNS refuses the publish: the row stays unsent and the sweeper sends it after the grace period."""
    with monkeypatch.context() as m:
        m.setattr(publisher, "topic_arn", lambda: "arn:aws:sns:us-east-1:123456789012:no-such-topic")
        run = sample_tasks.make_workspace.delay("publish-failed")
    assert sns.drain() == []
    unsent = row(run)
    assert unsent.status == TaskStatus.PENDING and unsent.sent_at is None
    assert task_sweep()["unsent"] == 0, "within the grace period the dispatcher's own send may be under way"
    assert task_sweep(now=later(60))["unsent"] == 1
    sns.run_all(times=2)
    assert names("publish-failed") == ["publish-failed"]
    assert row(run).sends == 2


def test_process_dying_between_mark_and_publish_loses_nothing(sns, monkeypatch, later, settings):
    """Marked sent, never published (the process died): the sweeper sends it once the mark is stale."""

    def die(envelope):
        raise sample_tasks.Killed("died while publishing")

    with monkeypatch.context() as m, pytest.raises(sample_tasks.Killed):
        m.setattr(publisher, "publish", die)
        sample_tasks.make_workspace.delay("died-publishing")
    assert sns.drain() == []
    assert TaskRun.objects.get().sent_at is not None
    assert task_sweep(now=later(60))["unsent"] == 0, "a recent send may still be on its way"
    assert task_sweep(now=later(settings.CUE_TASK_RESEND_SECONDS + 1))["unsent"] == 1
    sns.run_all()
    assert names("died-publishing") == ["died-publishing"]


# ------------------------------------------------------------------------------
# Chains, retries, dead letters
# ------------------------------------------------------------------------------
def test_chain_invoker_worker_callback(sns, owner):
    """double(21) succeeds, then its callback receives the result 42, in the same workspace and correlation."""
    run = sample_tasks.double.dispatch(args=[21], callback=sample_tasks.record_result, workspace_id=owner.workspace_id)
    sns.run_all()
    assert names("double:") == ["double:21"]
    assert names("callback:") == ["callback:42"]
    callback_run = TaskRun.objects.get(name="tests.tasks.sample_tasks.record_result")
    assert callback_run.args == [42]
    assert callback_run.parent_id == run.id
    assert callback_run.correlation_id == row(run).correlation_id
    assert callback_run.workspace_id == owner.workspace_id
    assert callback_run.status == TaskStatus.SUCCEEDED


def test_retries_back_off_then_dead_with_error_callback(sns):
    """always_fails (3 attempts, 10 s base): waits grow with jitter, then dead, then the error callback runs."""
    run = sample_tasks.always_fails.dispatch(args=["f"], error_callback=sample_tasks.record_dead)
    sns.run_all()
    waits = []
    for attempt in (1, 2):
        failed = row(run)
        assert failed.status == TaskStatus.FAILED and failed.attempts == attempt
        waits.append((failed.next_attempt_at - failed.updated_at).total_seconds())
        assert task_sweep(now=failed.next_attempt_at - timedelta(seconds=1))["retried"] == 0, "not due yet"
        assert sns.drain() == []
        assert task_sweep(now=failed.next_attempt_at)["retried"] == 1
        sns.run_all()
    assert 5 <= waits[0] <= 15 and 10 <= waits[1] <= 30, waits
    dead = row(run)
    assert dead.status == TaskStatus.DEAD and dead.attempts == 3
    assert "boom f" in dead.last_error
    assert sample_tasks.calls["f"] == 3
    assert names("partial:") == [], "no failed attempt kept a write"
    assert names("dead:") == ["dead:tests.tasks.sample_tasks.always_fails"]
    assert task_sweep(now=timezone.now() + timedelta(days=1))["retried"] == 0, "dead stays dead"


def test_type_error_in_a_task_runs_once(sns):
    """Zappa's run_function calls again with fewer arguments on TypeError; the task body still runs once."""
    run = sample_tasks.raises_type_error.delay("t")
    [message] = sns.drain()
    assert sns.deliver(message) == "failed"
    assert sample_tasks.calls["t"] == 1
    failed = row(run)
    assert failed.attempts == 1
    assert failed.status == TaskStatus.FAILED
    assert "a bug inside the task" in failed.last_error
    assert not names("typeerror:"), "the failed attempt's writes were rolled back"


# ------------------------------------------------------------------------------
# Lambda hygiene: deadline, connections, schedule
# ------------------------------------------------------------------------------
def test_task_stops_before_the_invocation_deadline(sns, settings):
    """With less time left than the margin, check_deadline() stops the task; its row says why."""
    run = sample_tasks.watches_deadline.delay("late")
    [message] = sns.drain()
    short = sns.handler.context(timeout_ms=int(settings.CUE_TASK_DEADLINE_MARGIN_SECONDS * 1000) - 500)
    assert sns.deliver(message, short) == "failed"
    stopped = row(run)
    assert stopped.status == TaskStatus.FAILED
    assert stopped.last_error.startswith("stopped before the invocation deadline")
    assert names("before-check:") == [], "work before the check is rolled back with it"


def test_task_with_time_left_passes_its_deadline_check(sns):
    run = sample_tasks.watches_deadline.delay("early")
    [message] = sns.drain()
    assert sns.deliver(message, sns.handler.context(timeout_ms=30_000)) == "succeeded"
    assert names("after-check:") == ["after-check:early"]
    assert row(run).status == TaskStatus.SUCCEEDED


def test_scheduled_event_runs_the_sweeper(sns, lambda_handler):
    """The rule Zappa creates for zappa_settings.json's event reaches apps.tasks.jobs.sweep."""
    run = TaskRun.objects.create(name="tests.tasks.sample_tasks.make_workspace", args=["scheduled"])
    TaskRun.objects.filter(pk=run.id).update(created_at=timezone.now() - timedelta(minutes=5))
    result = lambda_handler(scheduled_event(f"{lambda_handler.function_name}-apps.tasks.jobs.sweep"))
    assert result["unsent"] == 1
    sns.run_all()
    assert names("scheduled") == ["scheduled"]


def _backends(checker, dbname: str) -> set[int]:
    with checker.cursor() as cursor:
        cursor.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", [dbname])
        return {row[0] for row in cursor.fetchall()}


def _connections_to(checker, dbname: str, ignore: set[int]) -> int:
    """Backends of this test's invocations: a backend whose client just closed can linger in
    pg_stat_activity for a moment while it exits, so a reading above one is taken again; a
    connection really kept open stays in every reading."""
    count = len(_backends(checker, dbname) - ignore)
    for _ in range(5):
        if count <= 1:
            break
        time.sleep(0.05)
        count = min(count, len(_backends(checker, dbname) - ignore))
    return count


@pytest.mark.slow
def test_500_invocations_hold_at_most_one_connection(sns, lambda_handler):
    """HTTP (v1, v2) and SNS invocations alike: no connection is kept between them, never more than one."""
    for i in range(200):
        sample_tasks.make_workspace.delay(f"conn-{i:03}")
    messages = sns.drain()
    db = connection.settings_dict
    checker = psycopg2.connect(
        dbname="postgres", host=db["HOST"], port=db["PORT"] or 5432, user=db["USER"], password=db["PASSWORD"]
    )
    checker.autocommit = True
    # Connections of other threads of this run (a live server, say) are not this test's invocations.
    before = _backends(checker, db["NAME"])
    try:
        peak = 0
        for i in range(500):
            if i < len(messages) * 2 and i % 2 == 0:
                assert sns.deliver(messages[i // 2]) == "succeeded"
            else:
                event = (apigw_v1 if i % 3 else apigw_v2)("GET", "/healthz")
                assert lambda_handler(event)["statusCode"] == 200
            assert all(c.connection is None for c in connections.all(initialized_only=True)), i
            peak = max(peak, _connections_to(checker, db["NAME"], before))
    finally:
        checker.close()
    assert peak <= 1
    assert len(names("conn-")) == 200


def test_a_message_without_a_valid_task_id_is_dropped(sns):
    """Only Cue publishes here, but a malformed message must not crash the invocation into Lambda's retries."""
    for envelope in ({}, {"task_id": "not-a-uuid"}, ["a", "list"]):
        message = json.dumps(
            {
                "task_path": "apps.tasks.runner.run_task_message",
                "capture_response": False,
                "response_id": None,
                "args": [envelope],
                "kwargs": {},
                "command": "zappa.asynchronous.route_sns_task",
            }
        )
        assert sns.deliver(message) == "invalid"
