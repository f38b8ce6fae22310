"""The retention purge: per-workspace retention, pending work kept, safe to run twice."""

from datetime import timedelta

from django.utils import timezone

from apps.accounts.models import Workspace
from apps.integrations.models import DeliveryStatus, WebhookDelivery
from apps.tasks.models import TaskRun, TaskStatus
from tests.support.events import scheduled_event


def _delivery(workspace, age_days: int, status: str, n: int) -> WebhookDelivery:
    return WebhookDelivery.objects.create(
        workspace=workspace,
        notification_id=f"notif-{workspace.id}-{n}",
        topic="conversation.user.created",
        body="{}",
        status=status,
        received_at=timezone.now() - timedelta(days=age_days),
    )


def _task(workspace, age_days: int, status: str) -> TaskRun:
    finished = timezone.now() - timedelta(days=age_days)
    return TaskRun.objects.create(
        name="apps.tasks.jobs.sweep", workspace=workspace, status=status, finished_at=finished
    )


def test_purge_expired_through_the_handler(lambda_handler, make_workspace):
    """apps.accounts.jobs.purge_expired removes only what each workspace's retention no longer keeps."""
    short = make_workspace("Short").workspace
    Workspace.objects.filter(pk=short.pk).update(retention_days=7)
    long = make_workspace("Long").workspace  # default 30 days

    old_short = _delivery(short, 10, DeliveryStatus.PROCESSED, 1)
    kept_pending = _delivery(short, 10, DeliveryStatus.RECEIVED, 2)
    kept_long = _delivery(long, 10, DeliveryStatus.PROCESSED, 3)
    old_long = _delivery(long, 40, DeliveryStatus.SKIPPED, 4)
    old_task = _task(short, 10, TaskStatus.SUCCEEDED)
    old_dead = _task(short, 10, TaskStatus.DEAD)
    running = _task(short, 10, TaskStatus.RUNNING)
    recent_task = _task(long, 10, TaskStatus.SUCCEEDED)
    orphan_old = _task(None, 40, TaskStatus.SUCCEEDED)

    rule = f"{lambda_handler.function_name}-apps.accounts.jobs.purge_expired"
    result = lambda_handler(scheduled_event(rule))
    assert result == {"deliveries": 2, "tasks": 3, "workspaces": 2}
    assert set(WebhookDelivery.objects.values_list("pk", flat=True)) == {kept_pending.pk, kept_long.pk}
    assert set(TaskRun.objects.values_list("pk", flat=True)) == {running.pk, recent_task.pk}
    assert not WebhookDelivery.objects.filter(pk__in=[old_short.pk, old_long.pk]).exists()
    assert not TaskRun.objects.filter(pk__in=[old_task.pk, old_dead.pk, orphan_old.pk]).exists()

    again = lambda_handler(scheduled_event(rule))
    assert again == {"deliveries": 0, "tasks": 0, "workspaces": 2}


def test_purge_works_in_bounded_batches(transactional_db, make_workspace):
    from apps.accounts.services import retention_purge

    workspace = make_workspace().workspace
    for n in range(5):
        _delivery(workspace, 60, DeliveryStatus.PROCESSED, n)
    assert retention_purge(batch=2)["deliveries"] == 2
    assert retention_purge(batch=2)["deliveries"] == 2
    assert retention_purge(batch=2)["deliveries"] == 1
    assert not WebhookDelivery.objects.exists()


def test_retention_days_is_bounded(db, make_workspace):
    import pytest
    from django.core.exceptions import ValidationError

    workspace = make_workspace().workspace
    workspace.retention_days = 1
    with pytest.raises(ValidationError):
        workspace.full_clean()
