"""Async entry points of the Intercom integration: thin, they take ids and call a service."""

from apps.integrations import services
from apps.tasks.registry import durable_task


@durable_task
def process_delivery(delivery_id: int) -> dict:
    """Mirror a stored webhook delivery (dispatched by the webhook endpoint after commit)."""
    return services.delivery_process(delivery_id=delivery_id)


@durable_task(max_attempts=6, backoff_seconds=20, backoff_max_seconds=900)
def send_reply(reply_id: int) -> dict:
    """Post a queued reply or note to Intercom, once (see services.reply_send for the at-least-once window)."""
    return services.reply_send(reply_id=reply_id)


@durable_task
def reply_failed(info: dict) -> int:
    """Error callback of send_reply: called with {"task_id", "task", "error"} when it is dead."""
    return services.reply_mark_failed(task_id=info["task_id"], error=info.get("error", ""))


@durable_task
def sync_admins(workspace_id: int) -> dict:
    """Fetch the Intercom teammates of a workspace and map them to members (after connecting)."""
    return services.admins_sync(workspace_id=workspace_id)
