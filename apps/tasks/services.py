"""The task backbone: dispatch after commit, claim, run once, retry with backoff, sweep, dead letters."""

import contextvars
import json
import logging
import os
import random
import traceback
import uuid
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import DatabaseError, OperationalError, transaction
from django.db.models import F, Q
from django.utils import timezone
from django_guid import get_guid
from django_guid.context import guid as guid_var

from apps.tasks.invocation import DeadlineNear, remaining_seconds
from apps.tasks.models import FINISHED_STATUSES, TaskRun, TaskStatus
from apps.tasks.outcomes import Outcome
from apps.tasks.registry import DurableTask, UnknownTask, task_get, task_name_of
from project.metrics import metric_emit

logger = logging.getLogger(__name__)

# The ledger row of the task running in this context: children inherit its workspace and correlation id.
_current_run: contextvars.ContextVar[TaskRun | None] = contextvars.ContextVar("cue_current_task_run", default=None)

# PostgreSQL's lock_not_available: another attempt holds the row (SELECT ... FOR UPDATE NOWAIT).
_LOCK_NOT_AVAILABLE = "55P03"


class TaskArgumentsError(ValueError):
    """Task arguments that cannot travel: not JSON, or too large for a message."""


# ------------------------------------------------------------------------------
# Dispatch (the invoker side)
# ------------------------------------------------------------------------------
def _json_size(name: str, what: str, value: Any) -> int:
    # allow_nan=False: PostgreSQL's jsonb refuses NaN/Infinity, so refuse them here, at the caller.
    try:
        return len(json.dumps(value, allow_nan=False).encode())
    except (TypeError, ValueError) as exc:
        raise TaskArgumentsError(f"{name}: {what} must be JSON values (ids, not objects): {exc}") from exc


def _check_arguments(name: str, args: list, kwargs: dict) -> None:
    size = _json_size(name, "arguments", {"args": args, "kwargs": kwargs})
    limit = settings.CUE_TASK_MAX_ARGUMENT_BYTES
    if size > limit:
        raise TaskArgumentsError(
            f"{name}: arguments are {size} bytes, over the {limit}-byte limit; pass ids, not payloads"
        )


def task_dispatch(
    *,
    task: DurableTask | str,
    args=(),
    kwargs: dict | None = None,
    workspace_id: int | None = None,
    callback: DurableTask | str | None = None,
    error_callback: DurableTask | str | None = None,
    parent: TaskRun | None = None,
) -> TaskRun:
    """Record a task in the ledger and send it when the current transaction commits (never if it rolls back).

    `parent` defaults to the task running in this context (if any): the child inherits its
    workspace and correlation id. Bad arguments or unknown callbacks raise here, at the caller,
    before anything is stored.
    """
    if isinstance(task, str):
        task = task_get(task)
    for cb in (callback, error_callback):
        if cb:
            task_get(task_name_of(cb))  # fail at the caller, not in a worker
    args, kwargs = list(args), dict(kwargs or {})
    _check_arguments(task.name, args, kwargs)
    parent = parent or _current_run.get()
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
        # Marked sent in the caller's own commit (no extra write on the hot path): a failed publish
        # clears the mark, and a process that dies before publishing leaves a mark the sweeper finds stale.
        sent_at=timezone.now(),
        sends=1,
    )
    logger.info("task dispatched", extra={"task_id": str(run.id), "task": run.name, "workspace_id": workspace_id})
    transaction.on_commit(lambda: _publish(run), robust=True)
    return run


def in_lambda() -> bool:
    """Zappa's own test: publish when running in Lambda, run inline elsewhere."""
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
    """Send one ledger row again (the sweeper, a retry by hand): mark it sent, then publish.

    The mark comes first so a concurrent sweeper leaves the row alone; a failed publish clears it
    (the sweeper sends it again), and a process that dies between the mark and the publish leaves
    a stale mark that the sweeper also sends again.
    """
    TaskRun.objects.filter(pk=run.pk).update(sent_at=timezone.now(), sends=F("sends") + 1)
    return _publish(run)


def _publish(run: TaskRun) -> bool:
    """To SNS in Lambda, inline elsewhere (as zappa.asynchronous does). False if SNS refused it."""
    envelope = envelope_for(run)
    if not in_lambda():
        from apps.tasks.runner import run_task_message

        try:
            run_task_message(envelope)
        except Exception:
            # The ledger holds what happened; an error outside the task (say, the database) is swept later.
            logger.exception("inline task run failed", extra={"task_id": str(run.id)})
        return True
    try:
        from apps.tasks.publisher import publish

        publish(envelope)
    except Exception as exc:
        logger.exception("task send failed; the sweeper will send it", extra={"task_id": str(run.id)})
        metric_emit(name="TaskPublishFailed", dimensions={"Task": run.name})
        # Unsent, and why: an operator looking at a pending task sees the send that failed.
        error = f"send failed: {type(exc).__name__}: {exc}"[:2000]
        TaskRun.objects.filter(pk=run.pk, status=TaskStatus.PENDING).update(sent_at=None, last_error=error)
        return False
    return True


# ------------------------------------------------------------------------------
# Execution (the worker side)
# ------------------------------------------------------------------------------
class _LostClaim(Exception):
    pass


def _backoff(run: TaskRun, task: DurableTask | None) -> timedelta:
    """Exponential in the attempts made, with ±50% jitter so failures of one cause do not retry in step."""
    base = task.backoff_seconds if task else 30
    cap = task.backoff_max_seconds if task else 3600
    delay = base * (2 ** max(0, run.attempts - 1)) * random.uniform(0.5, 1.5)  # noqa: S311 - jitter, not crypto
    return timedelta(seconds=min(cap, delay))


def _expired_message(run: TaskRun) -> str:
    return f"claim expired at {run.claimed_until.isoformat()}: the invocation died or timed out"


def _claim(task_id: str, claim_id: uuid.UUID) -> tuple[Outcome | None, TaskRun | None]:
    """Take the row for this attempt (None, run), or say why not: done, busy, not_due, missing, dead.

    A short transaction of its own: the claim (status running, claim id, lease) is committed
    before the task runs, so a duplicate delivery sees it without waiting on a lock.
    """
    now = timezone.now()
    remaining = remaining_seconds()
    # The claim lasts the invocation's remaining time (plus a little): after that the invocation is gone.
    lease = remaining + 5 if remaining is not None else settings.CUE_TASK_CLAIM_SECONDS
    try:
        with transaction.atomic():
            run = TaskRun.objects.select_for_update(nowait=True).filter(pk=task_id).first()
            if run is None:
                return Outcome.MISSING, None
            if run.status in FINISHED_STATUSES:
                return Outcome.DONE, run
            if run.status == TaskStatus.RUNNING and run.claimed_until and run.claimed_until > now:
                return Outcome.BUSY, run
            if run.status == TaskStatus.FAILED and run.next_attempt_at and run.next_attempt_at > now:
                return Outcome.NOT_DUE, run
            if run.status == TaskStatus.RUNNING:
                run.last_error = _expired_message(run)
                if run.attempts >= run.max_attempts:
                    _mark_finished(run, now, TaskStatus.DEAD)
                    return Outcome.DEAD, run
            run.status = TaskStatus.RUNNING
            run.attempts += 1
            run.claim_id = claim_id
            run.claimed_until = now + timedelta(seconds=lease)
            run.started_at = now
            run.next_attempt_at = None
            run.save(
                update_fields=[
                    "status",
                    "attempts",
                    "claim_id",
                    "claimed_until",
                    "started_at",
                    "next_attempt_at",
                    "last_error",
                    "updated_at",
                ]
            )
            return None, run
    except OperationalError as exc:
        if getattr(exc.__cause__, "pgcode", None) == _LOCK_NOT_AVAILABLE:
            return Outcome.BUSY, None
        raise


def _mark_finished(run: TaskRun, now: datetime, status: TaskStatus) -> None:
    """Dead (out of attempts) or rejected (a permanent error): stop, tell the error callback (caller's transaction)."""
    run.status = status
    run.finished_at = now
    run.claimed_until = None
    run.next_attempt_at = None
    run.save(update_fields=["status", "finished_at", "claimed_until", "next_attempt_at", "last_error", "updated_at"])
    logger.error(
        f"task {status.value}",  # "task dead", "task rejected": the messages operators search for
        extra={"task_id": str(run.id), "task": run.name, "status": status, "error": run.last_error[:500]},
    )
    metric_emit(name="TaskDead" if status == TaskStatus.DEAD else "TaskRejected", dimensions={"Task": run.name})
    if run.error_callback:
        info = {"task_id": str(run.id), "task": run.name, "status": status, "error": run.last_error[-2000:]}
        task_dispatch(task=run.error_callback, args=[info], workspace_id=run.workspace_id, parent=run)


def _record_failure(
    run: TaskRun, claim_id: uuid.UUID, task: DurableTask | None, error: str, *, permanent: bool = False
) -> Outcome:
    """Record an attempt's error: rejected when permanent, else failed (retried after a backoff) or dead."""
    now = timezone.now()
    with transaction.atomic():
        locked = TaskRun.objects.select_for_update().get(pk=run.pk)
        if locked.claim_id != claim_id or locked.status != TaskStatus.RUNNING:
            return Outcome.LOST
        locked.last_error = error[-8000:]
        locked.claimed_until = None
        if permanent:
            _mark_finished(locked, now, TaskStatus.REJECTED)
            return Outcome.REJECTED
        if locked.attempts >= locked.max_attempts:
            _mark_finished(locked, now, TaskStatus.DEAD)
            return Outcome.DEAD
        locked.status = TaskStatus.FAILED
        locked.next_attempt_at = now + _backoff(locked, task)
        locked.sent_at = None
        locked.save(update_fields=["status", "last_error", "claimed_until", "next_attempt_at", "sent_at", "updated_at"])
    logger.warning(
        "task failed; will retry",
        extra={"task_id": str(run.id), "task": run.name, "attempt": locked.attempts, "error": error[:500]},
    )
    metric_emit(name="TaskRetried", dimensions={"Task": run.name})
    return Outcome.FAILED


def _succeed(locked: TaskRun, result: Any) -> None:
    """The success mark, and the callback dispatched with the result (in the caller's transaction)."""
    _json_size(locked.name, "a task's result", result)  # it is stored, and travels to the callback
    locked.status = TaskStatus.SUCCEEDED
    locked.result = result
    locked.finished_at = timezone.now()
    locked.claimed_until = None
    locked.save(update_fields=["status", "result", "finished_at", "claimed_until", "updated_at"])
    if locked.callback:
        task_dispatch(task=locked.callback, args=[result], workspace_id=locked.workspace_id, parent=locked)


def _locked_if_ours(run: TaskRun, claim_id: uuid.UUID) -> TaskRun:
    locked = TaskRun.objects.select_for_update().get(pk=run.pk)
    if locked.claim_id != claim_id:
        raise _LostClaim
    return locked


def _run_body(task: DurableTask, run: TaskRun, claim_id: uuid.UUID) -> None:
    """Run the task and record its success, atomically with its writes or after them (`task.atomic`)."""
    if task.atomic:
        # Database work only: its writes and the success mark commit together, under the row lock.
        with transaction.atomic():
            locked = _locked_if_ours(run, claim_id)
            _succeed(locked, task.func(*locked.args, **locked.kwargs))
        return
    # A body that calls another service: no transaction is open and no row is locked while it
    # runs. The committed claim keeps duplicate deliveries away; the body's own short
    # transactions make its effect once (a retry after a crash here finds its work done).
    result = task.func(*run.args, **run.kwargs)
    with transaction.atomic():
        _succeed(_locked_if_ours(run, claim_id), result)


def task_execute(*, task_id: str) -> Outcome:
    """Run one delivery of a task. Returns what happened; never raises for the task's own errors.

    Claim (a short transaction, committed), run, record. An atomic task's writes and its
    `succeeded` mark commit in one transaction that holds the row lock, so a duplicate delivery
    sees either nothing done (and is skipped) or everything done. A task's error is recorded as
    the task declares it: permanent ones `rejected` at once, the rest retried with backoff, then dead.
    """
    claim_id = uuid.uuid4()
    skipped, run = _claim(task_id, claim_id)
    if skipped is not None:
        logger.info("task delivery skipped", extra={"task_id": task_id, "reason": skipped})
        return skipped
    try:
        task = task_get(run.name)
    except UnknownTask:
        return _record_failure(run, claim_id, None, f"unknown task {run.name!r}")
    except Exception as exc:  # noqa: BLE001 - its module fails to import: recorded, retried, then dead
        return _record_failure(run, claim_id, None, "".join(traceback.format_exception(exc)))

    run_token = _current_run.set(run)
    guid_token = guid_var.set(run.correlation_id or uuid.uuid4().hex)
    try:
        _run_body(task, run, claim_id)
    except _LostClaim:
        logger.warning("task claim lost to a later attempt", extra={"task_id": task_id})
        return Outcome.LOST
    except DeadlineNear as exc:
        return _record_failure(run, claim_id, task, f"stopped before the invocation deadline: {exc}")
    except DatabaseError as exc:
        # The connection may be gone; if recording fails too, the claim expires and the sweeper retries.
        logger.exception("task database error", extra={"task_id": task_id})
        try:
            return _record_failure(run, claim_id, task, "".join(traceback.format_exception(exc)))
        except DatabaseError:
            return Outcome.FAILED
    except Exception as exc:  # noqa: BLE001 - every error is recorded; TypeError must not reach Zappa's retry
        if task.is_permanent(exc):
            # The reason first (what an operator reads in a list), then where it came from.
            reason = f"permanent error, not retried: {type(exc).__name__}: {exc}"
            error = reason + "\n\n" + "".join(traceback.format_exception(exc))
            return _record_failure(run, claim_id, task, error, permanent=True)
        return _record_failure(run, claim_id, task, "".join(traceback.format_exception(exc)))
    finally:
        guid_var.reset(guid_token)
        _current_run.reset(run_token)
    logger.info("task succeeded", extra={"task_id": task_id, "task": run.name, "attempt": run.attempts})
    metric_emit(name="TaskSucceeded", dimensions={"Task": run.name})
    return Outcome.SUCCEEDED


# ------------------------------------------------------------------------------
# Sweeper and operator actions
# ------------------------------------------------------------------------------
def _near_deadline() -> bool:
    """Too little time left for one more publish at its slowest (a blackholed SNS) and the margin."""
    from apps.tasks.publisher import publish_budget_seconds

    remaining = remaining_seconds()
    return remaining is not None and remaining < settings.CUE_TASK_DEADLINE_MARGIN_SECONDS + publish_budget_seconds()


def task_sweep(*, now: datetime | None = None, limit: int = 500) -> dict[str, int]:
    """Reclaim expired claims, retry due failures, send what was never sent. Safe to run twice at once.

    Rows are chosen with SKIP LOCKED and marked sent inside one transaction, so a second sweeper
    running at the same moment takes other rows or none; the messages go out after the commit.
    """
    now = now or timezone.now()
    unsent_before = now - timedelta(seconds=settings.CUE_TASK_UNSENT_GRACE_SECONDS)
    stale_before = now - timedelta(seconds=settings.CUE_TASK_RESEND_SECONDS)
    counts = {"expired": 0, "dead": 0, "retried": 0, "unsent": 0, "send_failed": 0, "deferred": 0}
    to_send: list[TaskRun] = []
    locked = TaskRun.objects.select_for_update(skip_locked=True)
    with transaction.atomic():
        for run in locked.filter(status=TaskStatus.RUNNING, claimed_until__lt=now)[:limit]:
            run.last_error = _expired_message(run)
            run.claimed_until = None
            if run.attempts >= run.max_attempts:
                _mark_finished(run, now, TaskStatus.DEAD)
                counts["dead"] += 1
                continue
            run.status = TaskStatus.PENDING
            run.sent_at = now
            run.save(update_fields=["status", "last_error", "claimed_until", "sent_at", "updated_at"])
            counts["expired"] += 1
            to_send.append(run)
        for run in locked.filter(status=TaskStatus.FAILED, next_attempt_at__lte=now)[:limit]:
            run.status = TaskStatus.PENDING
            run.sent_at = now
            run.save(update_fields=["status", "sent_at", "updated_at"])
            counts["retried"] += 1
            to_send.append(run)
        # Never sent (the publish failed, or the process died before it), or sent long ago and still
        # not claimed (the process died between marking and publishing, or the delivery was lost).
        unsent = Q(sent_at__isnull=True, created_at__lt=unsent_before) | Q(sent_at__lt=stale_before)
        for run in locked.filter(unsent, status=TaskStatus.PENDING)[:limit]:
            run.sent_at = now
            run.save(update_fields=["sent_at", "updated_at"])
            counts["unsent"] += 1
            to_send.append(run)
    for i, run in enumerate(to_send):
        if _near_deadline():
            # Hand the rest to the next sweep rather than be killed with rows marked sent but not sent.
            rest = [r.pk for r in to_send[i:]]
            TaskRun.objects.filter(pk__in=rest, status=TaskStatus.PENDING).update(sent_at=None)
            counts["deferred"] = len(rest)
            break
        if not task_send(run=run):
            counts["send_failed"] += 1
    if any(counts.values()):
        logger.info("task sweep", extra=counts)
    return counts


@transaction.atomic
def task_retry(*, run: TaskRun) -> TaskRun:
    """An operator sends a dead, rejected (say, once Intercom is reconnected) or failed task again, attempts reset."""
    locked = TaskRun.objects.select_for_update().get(pk=run.pk)
    if locked.status not in (TaskStatus.DEAD, TaskStatus.REJECTED, TaskStatus.FAILED):
        raise ValidationError(
            {"status": [f"Only dead, rejected or failed tasks can be retried; this one is {locked.status}."]}
        )
    locked.status = TaskStatus.PENDING
    locked.attempts = 0
    locked.next_attempt_at = None
    locked.finished_at = None
    locked.claimed_until = None
    locked.sent_at = None
    locked.save(
        update_fields=["status", "attempts", "next_attempt_at", "finished_at", "claimed_until", "sent_at", "updated_at"]
    )
    logger.info("task retried by hand", extra={"task_id": str(locked.id), "task": locked.name})
    transaction.on_commit(lambda: task_send(run=locked), robust=True)
    return locked


def task_runs_purge(*, workspace_id: int | None, before, limit: int) -> int:
    """Delete up to `limit` finished rows (succeeded, dead or rejected) of a workspace that finished before `before`."""
    finished = TaskRun.objects.filter(workspace_id=workspace_id, status__in=FINISHED_STATUSES, finished_at__lt=before)
    ids = list(finished.order_by("finished_at").values_list("id", flat=True)[:limit])
    # Children point at their parent with SET NULL: deleting a parent never cascades into live work.
    deleted, _ = TaskRun.objects.filter(pk__in=ids).delete()
    return deleted
