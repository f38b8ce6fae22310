"""The task backbone through SNS and the real Zappa handler."""

import json

import pytest

from apps.accounts.models import Workspace
from apps.tasks.models import TaskRun, TaskStatus
from tests.tasks import sample_tasks


def names(prefix: str) -> list[str]:
    return sorted(Workspace.objects.filter(name__startswith=prefix).values_list("name", flat=True))


def test_dispatch_publishes_zappa_message_with_small_envelope(sns):
    """In Lambda, a dispatch publishes Zappa's SNS message naming Cue's runner, carrying only the envelope."""
    run = sample_tasks.make_workspace.delay("ws-1")
    [message] = sns.drain()
    body = json.loads(message)
    assert body["command"] == "zappa.asynchronous.route_sns_task"
    assert body["task_path"] == "apps.tasks.runner.run_task_message"
    [envelope] = body["args"]
    assert envelope["task_id"] == str(run.id)
    assert envelope["task"] == "tests.tasks.sample_tasks.make_workspace"
    assert envelope["args"] == ["ws-1"]
    assert not names("ws-1"), "nothing runs until the message is delivered"
    sns.deliver(message)
    assert names("ws-1") == ["ws-1"]
    assert TaskRun.objects.get(pk=run.id).status == TaskStatus.SUCCEEDED


def test_duplicate_delivery_has_one_effect(sns):
    sample_tasks.make_workspace.delay("dup")
    sns.run_all(times=3)
    assert names("dup") == ["dup"]


def test_chain_invoker_worker_callback(sns):
    """double(21) succeeds, then its callback receives the result 42."""
    sample_tasks.double.dispatch(args=[21], callback=sample_tasks.record_result)
    sns.run_all()
    assert names("callback:") == ["callback:42"]
    callback_run = TaskRun.objects.get(name="tests.tasks.sample_tasks.record_result")
    assert callback_run.parent.name == "tests.tasks.sample_tasks.double"
    assert callback_run.correlation_id == callback_run.parent.correlation_id


def test_type_error_runs_once(sns):
    """Zappa's run_function retries on TypeError; the task still runs exactly once per delivery."""
    run = sample_tasks.raises_type_error.delay("t")
    sns.run_all()
    run.refresh_from_db()
    assert run.attempts == 1
    assert run.status == TaskStatus.FAILED
    assert "a bug inside the task" in run.last_error
    assert not names("typeerror:"), "the failed attempt's writes were rolled back"


@pytest.mark.django_db(transaction=True)
def test_rollback_sends_nothing(sns):
    from django.db import transaction

    with pytest.raises(RuntimeError), transaction.atomic():
        sample_tasks.make_workspace.delay("never")
        raise RuntimeError("abort")
    assert sns.drain() == []
    assert not TaskRun.objects.exists()
