"""Task outcomes as metrics (project/metrics.py): succeeded, retried and dead, by task, through the real handler."""

import json

import pytest

from apps.tasks.services import task_sweep
from tests.tasks import sample_tasks


@pytest.fixture(autouse=True)
def _metrics_on(monkeypatch):
    monkeypatch.setenv("CUE_METRICS", "1")


def outcomes(capsys) -> list[tuple[str, str]]:
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"_aws"')]
    names = ("TaskSucceeded", "TaskRetried", "TaskDead")
    return [(name, line["Task"]) for line in lines for name in names if name in line]


def test_a_task_that_fails_twice_then_dies_counts_two_retries_and_one_death(sns, capsys):
    run = sample_tasks.always_fails.dispatch(args=["m"])
    capsys.readouterr()
    sns.run_all()
    for _ in (1, 2):
        run.refresh_from_db()
        task_sweep(now=run.next_attempt_at)
        sns.run_all()
    task = "tests.tasks.sample_tasks.always_fails"
    assert outcomes(capsys) == [("TaskRetried", task), ("TaskRetried", task), ("TaskDead", task)]


def test_a_succeeding_task_counts_once_even_when_delivered_twice(sns, capsys):
    sample_tasks.record_dead.delay({"task_id": "x", "task": "t", "error": "e"})
    [message] = sns.drain()
    capsys.readouterr()
    assert sns.deliver(message) == "succeeded"
    sns.deliver(message)  # a redelivery: the ledger skips it, and no second success is counted
    assert outcomes(capsys) == [("TaskSucceeded", "tests.tasks.sample_tasks.record_dead")]
