"""Async entry points of the Intercom integration: thin, they take ids and call a service.

Each says what its errors mean (docs/tasks.md): Intercom's errors carry `retryable` (429, 5xx,
timeouts, connection errors: retried with backoff, then dead; 401, 404, other 4xx: permanent,
recorded rejected with the reason), and the services' own permanent errors say so too. None runs
in the backbone's transaction (`atomic=False`): no transaction or row lock is held while Intercom
is called; each service commits its writes in short transactions and makes its effect once itself.
"""

from apps.integrations import services
from apps.tasks.registry import durable_task


@durable_task(atomic=False, permanent=(services.DeliveryUnreadable,))
def process_delivery(delivery_id: int) -> dict:
    """Mirror a stored webhook delivery (dispatched by the webhook endpoint after commit)."""
    return services.delivery_process(delivery_id=delivery_id)


@durable_task(
    max_attempts=6,
    backoff_seconds=20,
    backoff_max_seconds=900,
    atomic=False,
    permanent=(services.ReplyNotSendable,),
)
def send_reply(reply_id: int) -> dict:
    """Post a queued reply or note to Intercom, once (see services.reply_send for the one window left)."""
    return services.reply_send(reply_id=reply_id)


@durable_task
def reply_failed(info: dict) -> int:
    """Error callback of send_reply: called with {"task_id", "task", "status", "error"} when dead or rejected."""
    return services.reply_mark_failed(task_id=info["task_id"], error=info.get("error", ""))


@durable_task(atomic=False)
def sync_admins(workspace_id: int) -> dict:
    """Fetch the Intercom teammates of a workspace and map them to members (after connecting)."""
    return services.admins_sync(workspace_id=workspace_id)
