"""Publishing through the task backbone: SNS captured by moto, delivered back through the Zappa handler."""

import json
import time
from datetime import timedelta

from django.db import transaction

from apps.realtime.events import event_ref
from apps.realtime.tasks import publish_event
from apps.tasks.models import TaskRun, TaskStatus
from apps.tasks.services import task_sweep
from tests.realtime import sources

SILENCE_SECONDS = 0.5


def ref_for(workspace_id: int, message_id: int = 9) -> dict:
    return event_ref("test.suggestions", workspace_id=workspace_id, conversation_id=42, message_id=message_id)


def test_publish_task_through_the_handler_reaches_the_workspace_topic_only(
    sns, mqtt_backend, topic_root, subscribe, make_workspace
):
    """The task carries ids only; delivered through the handler it loads, publishes, and B hears nothing."""
    a, b = make_workspace("Acme").workspace, make_workspace("Bolt").workspace
    watcher_a = subscribe(mqtt_backend, [f"{topic_root}/{a.id}/#"])
    watcher_b = subscribe(mqtt_backend, [f"{topic_root}/{b.id}/#"])

    with transaction.atomic():
        run = publish_event.dispatch(args=[ref_for(a.id)], workspace_id=a.id)
        assert sns.drain() == [], "nothing is sent before the transaction commits"
    [message] = sns.drain()
    envelope = json.loads(message)["args"][0]
    assert envelope["task"] == "apps.realtime.tasks.publish_event"
    assert envelope["args"] == [
        {"source": "test.suggestions", "workspace_id": a.id, "conversation_id": 42, "message_id": 9}
    ]

    sns.deliver(message)

    got = watcher_a.wait_for(lambda m: True)
    assert got.topic == f"{topic_root}/{a.id}/conversations/42/suggestions"
    assert got.payload["suggestions"] == sources.sample_suggestions("Acme")
    assert got.payload["message_id"] == 9
    run.refresh_from_db()
    assert run.status == TaskStatus.SUCCEEDED
    assert run.result == {
        "topic": got.topic,
        "event_id": got.payload["event_id"],
        "bytes": run.result["bytes"],
        "backend": "mqtt",
    }
    time.sleep(SILENCE_SECONDS)
    assert watcher_b.received == []


def test_publish_as_the_callback_of_a_worker(sns, mqtt_backend, topic_root, subscribe, owner):
    """worker → callback: the worker returns the ref, the backbone hands it to publish_event."""
    workspace = owner.workspace
    watcher = subscribe(mqtt_backend, [f"{topic_root}/{workspace.id}/#"])
    sources.rank_message.dispatch(args=[workspace.id, 42, 77], workspace_id=workspace.id, callback=publish_event)
    sns.run_all()
    got = watcher.wait_for(lambda m: True)
    assert got.payload["message_id"] == 77
    assert got.payload["suggestions"][0]["body"] == "Hi from ranked 77!", "the callback loaded what the worker stored"
    callback = TaskRun.objects.get(name="apps.realtime.tasks.publish_event")
    assert callback.parent.name == "tests.realtime.sources.rank_message"
    assert callback.status == TaskStatus.SUCCEEDED


def test_duplicate_deliveries_publish_once(sns, mqtt_backend, topic_root, subscribe, owner):
    workspace = owner.workspace
    watcher = subscribe(mqtt_backend, [f"{topic_root}/{workspace.id}/#"])
    publish_event.dispatch(args=[ref_for(workspace.id)], workspace_id=workspace.id)
    sns.run_all(times=3)
    watcher.wait_for(lambda m: True)
    time.sleep(SILENCE_SECONDS)
    assert len(watcher.received) == 1


def test_nothing_to_publish_succeeds_quietly(sns, mqtt_backend, topic_root, subscribe, owner):
    """A source that finds nothing any more (the workspace is gone) ends the task without a message."""
    workspace_id = owner.workspace.id
    watcher = subscribe(mqtt_backend, [f"{topic_root}/{workspace_id}/#"])
    run = publish_event.dispatch(args=[ref_for(workspace_id)])
    owner.workspace.delete()
    sns.run_all()
    time.sleep(SILENCE_SECONDS)
    assert watcher.received == []
    assert TaskRun.objects.get(pk=run.pk).status == TaskStatus.SUCCEEDED


def test_a_broker_outage_shorter_than_the_retry_window_does_not_lose_the_event(
    sns, private_backend, topic_root, subscribe, owner
):
    """Broker down: the attempt fails and is scheduled again (not dead); broker back: the sweeper's retry delivers."""
    workspace = owner.workspace
    private_backend.stop()
    run = publish_event.dispatch(args=[ref_for(workspace.id)], workspace_id=workspace.id)
    sns.run_all()
    run.refresh_from_db()
    assert run.status == TaskStatus.FAILED
    assert run.attempts == 1 < run.max_attempts
    assert "PublishFailed" in run.last_error
    assert run.next_attempt_at is not None

    private_backend.start()
    watcher = subscribe(private_backend.url, [f"{topic_root}/{workspace.id}/#"])
    assert task_sweep(now=run.next_attempt_at + timedelta(seconds=1))["retried"] == 1
    sns.run_all()
    got = watcher.wait_for(lambda m: True)
    assert got.payload["message_id"] == 9
    run.refresh_from_db()
    assert (run.status, run.attempts) == (TaskStatus.SUCCEEDED, 2)


def test_retry_window_outlasts_a_short_outage():
    """Eight attempts with backoff from 5 s to 2 min: at least ~3 minutes of retries even with low jitter."""
    backoffs = [min(publish_event.backoff_max_seconds, publish_event.backoff_seconds * 2**n) for n in range(7)]
    assert publish_event.max_attempts == 8
    assert sum(backoffs) * 0.5 >= 180
