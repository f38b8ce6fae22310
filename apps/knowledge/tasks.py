"""Async entry points of the knowledge base: the Help Center sync and history import chains (apps/knowledge/sync.py).

The page and finishing tasks call Intercom, so they run with no transaction open (`atomic=False`,
docs/tasks.md): each fetches, then applies under the run's lock what no other delivery applied.
Intercom's errors say what they mean: 429, 5xx, timeouts retry with backoff (then dead: the run
fails through sync_failed); 401, 404 of a page fail the run with the reason and reject the task.
"""

from apps.knowledge import sync
from apps.tasks.models import TaskRun
from apps.tasks.registry import durable_task


@durable_task(max_attempts=6, backoff_seconds=20, backoff_max_seconds=900, atomic=False)
def sync_page(run_id: int) -> dict:
    """The worker: one page of a run (from its cursor); dispatches the next page, or the finishing callback."""
    return sync.sync_page(run_id=run_id)


@durable_task(max_attempts=6, backoff_seconds=20, backoff_max_seconds=900, atomic=False)
def sync_finish(run_id: int) -> dict:
    """The chain's callback: retire what the Help Center no longer has, and mark the run done."""
    return sync.sync_finish(run_id=run_id)


@durable_task
def sync_failed(info: dict) -> None:
    """The chain's error callback: the run of a dead page task fails, with the task's error."""
    failed = TaskRun.objects.filter(pk=info["task_id"]).values_list("args", flat=True).first()
    run_id = failed[0] if failed else None
    sync.sync_mark_failed(task_id=info["task_id"], run_id=run_id, error=info.get("error", ""))


@durable_task
def sync_help_center(workspace_id: int) -> int | None:
    """A first install's Help Center sync (apps.integrations dispatches it by name)."""
    return sync.sync_start_help_center(workspace_id=workspace_id)
