"""Scheduled entry points for the task backbone (declared in zappa_settings.json `events`)."""

from apps.tasks.services import task_sweep


def sweep(event, context):
    """Every minute: send unsent tasks, retry due failures, fail expired claims."""
    return task_sweep()
