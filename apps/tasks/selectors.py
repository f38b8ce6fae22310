"""Reads of the task ledger for operators."""

from django.db.models import QuerySet

from apps.accounts.models import Workspace
from apps.tasks.models import TaskRun


def task_run_list(*, workspace: Workspace, status: str | None = None) -> QuerySet[TaskRun]:
    runs = TaskRun.objects.filter(workspace=workspace).order_by("-created_at", "-id")
    return runs.filter(status=status) if status else runs


def task_run_get(*, workspace: Workspace, task_id) -> TaskRun:
    return TaskRun.objects.get(workspace=workspace, pk=task_id)
