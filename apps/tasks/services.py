"""The task backbone: dispatch after commit, claim, run once, retry with backoff, sweep, dead letters."""

import contextvars
import json
import logging
import os
import random
import traceback
import uuid
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import DatabaseError, OperationalError, transaction
from django.db.models import F
from django.utils import timezone
from django_guid import get_guid, set_guid

from apps.tasks.invocation import DeadlineNear, remaining_seconds
from apps.tasks.models import TaskRun, TaskStatus
from apps.tasks.registry import DurableTask, UnknownTask, task_get, task_name_of

logger = logging.getLogger(__name__)

# The ledger row of the task running in this context: children inherit its workspace and correlation id.
_current_run: contextvars.ContextVar[TaskRun | None] = contextvars.ContextVar("cue_current_task_run", default=None)


class TaskArgumentsError(ValueError):
    """Task arguments that cannot travel: not JSON, or too large for a message."""


# ------------------------------------------------------------------------------
# Dispatch (the invoker side)
# ------------------------------------------------------------------------------
def _check_arguments(name: str, args: list, kwargs: dict) -> None:
    try:
        encoded = json.dumps({"args": args, "kwargs": kwargs})
    except (TypeError, ValueError) as exc:
        raise TaskArgumentsError(f"{name}: arguments must be JSON values (ids, not objects): {exc}") from exc
    limit = settings.CUE_TASK_MAX_ARGUMENT_BYTES
    if len(encoded.encode()) > limit:
        raise TaskArgumentsError(
            f"{name}: arguments are {len(encoded.encode())} bytes, over the {limit}-byte limit; pass ids, not payloads"
        )


def task_dispatch(
    *,
    task: DurableTask | str,
    args=(),
    kwargs: dict | None = None,
    workspace_id: int | None = None,
    callback: DurableTask | str | None = None,
    error_callback: DurableTask | str | None = None,
) -> TaskRun:
    """Record a task in the ledger and send it when the current transaction commits (never if it rolls back)."""
    if isinstance(task, str):
        task = task_get(task)
    for cb in (callback, error_callback):
        if cb:
            task_get(task_name_of(cb))  # fail at the caller, not in a worker
    args, kwargs = list(args), dict(kwargs or {})
    _check_arguments(task.name, args, kwargs)
    parent = _current_run.get()
    if workspace_id is None and parent is not None:
        workspace_id = parent.workspace_id
    run = TaskRun.objects.create(
        name=task.name,
        args=args,
        kwargs=kwargs,
        max_attempts=task.max_attempts,
        workspace_id=workspace_id,
        correlation_id=(parent.correlation_id if parent else None) or get_guid() or uuid.uuid4().hex,
        parent_id=parent.id if parent else None,
        callback=task_name_of(callback),
        error_callback=task_name_of(error_callback),
    )
    logger.info("task dispatched", extra={"task_id": str(run.id), "task": run.name, "workspace_id": workspace_id})
    transaction.on_commit(lambda: task_send(run=run), robust=True)
    return run


def in_lambda() -> bool:
    return bool(os.environ.get("AWS_LAMBDA_FUNCTION_NAME"))


def envelope_for(run: TaskRun) -> dict:
    """The message body: ids and small values only; the ledger row is the source of truth."""
    return {
        "task_id": str(run.id),
        "task": run.name,
        "args": run.args,
        "kwargs": run.kwargs,
        "attempt": run.attempts + 1,
        "correlation_id": run.correlation_id,
    }


def task_send(*, run: TaskRun) -> bool:
    """Send one ledger row: to SNS in Lambda, inline elsewhere (as zappa.asynchronous does)."""
    # Marked sent before publishing so the sweeper leaves it alone; a failed publish clears the mark.
    TaskRun.objects.filter(pk=run.pk).update(sent_at=timezone.now(), sends=F("sends") + 1)
    envelope = envelope_for(run)
    if not in_lambda():
        from apps.tasks.runner import run_task_message

        run_task_message(envelope)
        return True
    try:
        from apps.tasks.publisher import publish

        publish(envelope)
    except Exception:
        logger.exception("task send failed; the sweeper will send it", extra={"task_id": str(run.id)})
        TaskRun.objects.filter(pk=run.pk, status=TaskStatus.PENDING).update(sent_at=None)
        return False
    return True


# ------------------------------------------------------------------------------
# Execution (the worker side)
# ------------------------------------------------------------------------------
class _LostClaim(Exception):
    pass


def _backoff(run: TaskRun, task: DurableTask | None) -> timedelta:
    base = task.backoff_seconds if task else 30
    cap = task.backoff_max_seconds if task else 3600
    delay = min(cap, base * (2 ** max(0, run.attempts - 1)))
    return timedelta(seconds=delay * random.uniform(0.5, 1.5))  # noqa: S311 - jitter, not crypto


def _claim(task_id: str, claim_id: uuid.UUID) -> tuple[str, TaskRun | None]:
    """Take the row for this attempt, or say why not: done, busy, not_due, missing, dead."""
    now = timezone.now()
    remaining = remaining_seconds()
    lease = remaining + 5 if remaining is not None else settings.CUE_TASK_CLAIM_SECONDS
    try:
        with transaction.atomic():
            run = TaskRun.objects.select_for_update(nowait=True).filter(pk=task_id).first()
            if run is None:
                return "missing", None
            if run.status in (TaskStatus.SUCCEEDED, TaskStatus.DEAD):
                return "done", run
            if run.status == TaskStatus.RUNNING and run.claimed_until and run.claimed_until > now:
                return "busy", run
            if run.status == TaskStatus.FAILED and run.next_attempt_at and run.next_attempt_at > now:
                return "not_due", run
            if run.status == TaskStatus.RUNNING:
                run.last_error = f"claim expired at {run.claimed_until.isoformat()}: the invocation died or timed out"
                if run.attempts >= run.max_attempts:
                    _mark_dead(run, now)
                    return "dead", run
            run.status = TaskStatus.RUNNING
            run.attempts += 1
            run.claim_id = claim_id
            run.claimed_until = now + timedelta(seconds=lease)
            run.started_at = now
            run.save(update_fields=["status", "attempts", "claim_id", "claimed_until", "started_at", "last_error"])
            return "claimed", run
    except OperationalError as exc:
        if getattr(exc.__cause__, "pgcode", None) == "55P03":  # lock_not_available: another attempt holds it
            return "busy", None
        raise


def _mark_dead(run: TaskRun, now) -> None:
    run.status = TaskStatus.DEAD
    run.finished_at = now
    run.claimed_until = None
    run.save(update_fields=["status", "finished_at", "claimed_until", "last_error", "attempts"])
    logger.error("task dead", extra={"task_id": str(run.id), "task": run.name, "error": run.last_error[:500]})
    if run.error_callback:
        task_dispatch(
            task=run.error_callback,
            args=[{"task_id": str(run.id), "task": run.name, "error": run.last_error[:2000]}],
            workspace_id=run.workspace_id,
        )


def _record_failure(run: TaskRun, claim_id: uuid.UUID, task: DurableTask | None, error: str) -> str:
    now = timezone.now()
    with transaction.atomic():
        locked = TaskRun.objects.select_for_update().get(pk=run.pk)
        if locked.claim_id != claim_id or locked.status != TaskStatus.RUNNING:
            return "lost"
        locked.last_error = error[-8000:]
        locked.claimed_until = None
        if locked.attempts >= locked.max_attempts:
            _mark_dead(locked, now)
            return "dead"
        locked.status = TaskStatus.FAILED
        locked.next_attempt_at = now + _backoff(locked, task)
        locked.sent_at = None
        locked.save(update_fields=["status", "last_error", "claimed_until", "next_attempt_at", "sent_at"])
    logger.warning(
        "task failed; will retry",
        extra={"task_id": str(run.id), "task": run.name, "attempt": locked.attempts, "error": error[:500]},
    )
    return "failed"


def task_execute(*, task_id: str) -> str:
    """Run one delivery of a task. Returns what happened; never raises for the task's own errors.

    The task's writes and its `succeeded` mark commit in one transaction that holds the row lock,
    so a duplicate delivery sees either nothing done (and waits its turn) or everything done.
    """
    claim_id = uuid.uuid4()
    outcome, run = _claim(task_id, claim_id)
    if outcome != "claimed":
        logger.info("task delivery skipped", extra={"task_id": task_id, "reason": outcome})
        return outcome
    try:
        task = task_get(run.name)
    except UnknownTask:
        return _record_failure(run, claim_id, None, f"unknown task {run.name!r}")

    token = _current_run.set(run)
    set_guid(run.correlation_id or uuid.uuid4().hex)
    try:
        with transaction.atomic():
            locked = TaskRun.objects.select_for_update().get(pk=run.pk)
            if locked.claim_id != claim_id:
                raise _LostClaim
            result = task.func(*locked.args, **locked.kwargs)
            json.dumps(result)  # a result must travel to its callback
            locked.status = TaskStatus.SUCCEEDED
            locked.result = result
            locked.finished_at = timezone.now()
            locked.claimed_until = None
            locked.save(update_fields=["status", "result", "finished_at", "claimed_until"])
            if locked.callback:
                task_dispatch(task=locked.callback, args=[result], workspace_id=locked.workspace_id)
    except _LostClaim:
        logger.warning("task claim lost to a later attempt", extra={"task_id": task_id})
        return "lost"
    except DeadlineNear as exc:
        return _record_failure(run, claim_id, task, f"stopped before the invocation deadline: {exc}")
    except DatabaseError as exc:
        # The connection may be unusable; the claim expires and the sweeper retries.
        logger.exception("task database error", extra={"task_id": task_id})
        try:
            return _record_failure(run, claim_id, task, "".join(traceback.format_exception(exc)))
        except DatabaseError:
            return "failed"
    except Exception as exc:  # noqa: BLE001 - every error is recorded; TypeError must not reach Zappa's retry
        return _record_failure(run, claim_id, task, "".join(traceback.format_exception(exc)))
    finally:
        _current_run.reset(token)
    logger.info("task succeeded", extra={"task_id": task_id, "task": run.name, "attempt": run.attempts})
    return "succeeded"


# ------------------------------------------------------------------------------
# Sweeper and operator actions
# ------------------------------------------------------------------------------
def task_sweep(*, now=None, limit: int = 500) -> dict[str, int]:
    """Send what was never sent, retry due failures, fail expired claims. Safe to run twice at once."""
    now = now or timezone.now()
    grace = timedelta(seconds=settings.CUE_TASK_UNSENT_GRACE_SECONDS)
    counts = {"expired": 0, "dead": 0, "retried": 0, "unsent": 0, "send_failed": 0}
    to_send: list[TaskRun] = []
    with transaction.atomic():
        expired = list(
            TaskRun.objects.select_for_update(skip_locked=True).filter(
                status=TaskStatus.RUNNING, claimed_until__lt=now
            )[:limit]
        )
        for run in expired:
            run.last_error = f"claim expired at {run.claimed_until.isoformat()}: the invocation died or timed out"
            run.claimed_until = None
            if run.attempts >= run.max_attempts:
                _mark_dead(run, now)
                counts["dead"] += 1
                continue
            run.status = TaskStatus.PENDING
            run.sent_at = now
            run.sends += 1
            run.save(update_fields=["status", "last_error", "claimed_until", "sent_at", "sends"])
            counts["expired"] += 1
            to_send.append(run)
        due = TaskRun.objects.select_for_update(skip_locked=True).filter(
            status=TaskStatus.FAILED, next_attempt_at__lte=now
        )[:limit]
        for run in due:
            run.status = TaskStatus.PENDING
            run.sent_at = now
            run.sends += 1
            run.save(update_fields=["status", "sent_at", "sends"])
            counts["retried"] += 1
            to_send.append(run)
        unsent = TaskRun.objects.select_for_update(skip_locked=True).filter(
            status=TaskStatus.PENDING, sent_at__isnull=True, created_at__lt=now - grace
        )[:limit]
        for run in unsent:
            run.sent_at = now
            run.sends += 1
            run.save(update_fields=["sent_at", "sends"])
            counts["unsent"] += 1
            to_send.append(run)
    for run in to_send:
        if not task_send(run=run):
            counts["send_failed"] += 1
    if any(counts.values()):
        logger.info("task sweep", extra=counts)
    return counts


@transaction.atomic
def task_retry(*, run: TaskRun) -> TaskRun:
    """An operator sends a dead (or failed) task again with a fresh set of attempts."""
    locked = TaskRun.objects.select_for_update().get(pk=run.pk)
    if locked.status not in (TaskStatus.DEAD, TaskStatus.FAILED):
        from django.core.exceptions import ValidationError

        raise ValidationError({"status": [f"Only dead or failed tasks can be retried; this one is {locked.status}."]})
    locked.status = TaskStatus.PENDING
    locked.attempts = 0
    locked.next_attempt_at = None
    locked.finished_at = None
    locked.sent_at = None
    locked.save(update_fields=["status", "attempts", "next_attempt_at", "finished_at", "sent_at"])
    logger.info("task retried by hand", extra={"task_id": str(locked.id), "task": locked.name})
    transaction.on_commit(lambda: task_send(run=locked), robust=True)
    return locked


def task_result(*, task_id: str) -> Any:
    return TaskRun.objects.values_list("result", flat=True).get(pk=task_id)


def task_runs_purge(*, workspace_id: int | None, before, limit: int) -> int:
    """Delete up to `limit` finished rows (succeeded or dead) of a workspace that finished before `before`."""
    finished = TaskRun.objects.filter(
        workspace_id=workspace_id, status__in=[TaskStatus.SUCCEEDED, TaskStatus.DEAD], finished_at__lt=before
    )
    ids = list(finished.order_by("finished_at").values_list("id", flat=True)[:limit])
    # Children point at their parent with SET NULL: deleting a parent never cascades into live work.
    deleted, _ = TaskRun.objects.filter(pk__in=ids).delete()
    return deleted
