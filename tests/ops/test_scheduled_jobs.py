"""Scheduled jobs through EventBridge events fed to the handler, and locally through `manage.py run_job`."""

import json
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from apps.tasks.models import TaskRun, TaskStatus
from tests.support.events import scheduled_event
from tests.tasks import sample_tasks


def rule_name(function_name: str, job: str) -> str:
    """Zappa names a scheduled rule `<function>-<module.function>`; the handler reads the job from it."""
    return f"{function_name}-{job}"


def test_sweep_job_through_the_handler_sends_an_unsent_task(sns, lambda_handler):
    """apps.tasks.jobs.sweep, fired by EventBridge, publishes a task whose first send was lost."""
    run = TaskRun.objects.create(name="tests.tasks.sample_tasks.make_workspace", args=["swept"])
    TaskRun.objects.filter(pk=run.pk).update(created_at=timezone.now() - timedelta(minutes=5))
    result = lambda_handler(scheduled_event(rule_name(lambda_handler.function_name, "apps.tasks.jobs.sweep")))
    assert result["unsent"] == 1
    sns.run_all()
    run.refresh_from_db()
    assert run.status == TaskStatus.SUCCEEDED
    # A second sweep right after finds nothing left to do.
    again = lambda_handler(scheduled_event(rule_name(lambda_handler.function_name, "apps.tasks.jobs.sweep")))
    assert not any(again.values())
    assert sample_tasks.make_workspace.name == run.name


@pytest.mark.django_db(transaction=True)
def test_run_job_runs_a_declared_job_by_short_or_dotted_name():
    out = StringIO()
    call_command("run_job", "sweep", stdout=out)
    assert json.loads(out.getvalue())["job"] == "apps.tasks.jobs.sweep"
    out = StringIO()
    call_command("run_job", "apps.tasks.jobs.sweep", stdout=out)
    assert json.loads(out.getvalue())["result"]["dead"] == 0


@pytest.mark.django_db
def test_run_job_unknown_name_is_a_clear_error():
    with pytest.raises(CommandError, match="Unknown job 'nope'. Declared jobs: .*sweep"):
        call_command("run_job", "nope")
