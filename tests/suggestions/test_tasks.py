"""The suggestion hook: until the suggestions issue fills it in, a durable no-op that answers with its message id."""

import json

from apps.conversations.services import SUGGEST_REPLIES_TASK
from apps.suggestions.tasks import suggest_replies
from apps.tasks.models import TaskRun, TaskStatus
from apps.tasks.registry import task_get


def test_the_task_name_is_the_contract():
    assert suggest_replies.name == SUGGEST_REPLIES_TASK == "apps.suggestions.tasks.suggest_replies"
    assert task_get(SUGGEST_REPLIES_TASK) is suggest_replies


def test_it_runs_through_sns_and_returns_the_message_id(sns):
    run = suggest_replies.dispatch(args=[42], workspace_id=None)
    [message] = sns.drain()
    assert json.loads(message)["args"][0]["args"] == [42]
    sns.deliver(message)
    run.refresh_from_db()
    assert run.status == TaskStatus.SUCCEEDED
    assert run.result == 42
    assert TaskRun.objects.count() == 1
