"""The mqtt backend against real Mosquitto: delivery, isolation, one reused connection, broker outages."""

import os
import signal
import threading
import time

import pytest

from apps.realtime import services
from apps.realtime.backends import MqttBackend, PublishFailed, get_backend
from tests.realtime import sources

SILENCE_SECONDS = 0.5  # how long "nothing arrived" is watched for, after the expected message did


def publish_suggestions(workspace_id: int, conversation_id: int = 42, message_id: int = 9) -> dict:
    return services.suggestions_publish(
        workspace_id=workspace_id,
        conversation_id=conversation_id,
        message_id=message_id,
        suggestions=sources.sample_suggestions(f"ws{workspace_id}"),
    )


def test_subscriber_receives_on_its_workspace_topic_and_nothing_elsewhere(mqtt_backend, topic_root, subscribe):
    """Workspace A's subscriber gets the suggestions with the right content; B's tree stays silent."""
    watcher_a = subscribe(mqtt_backend, [f"{topic_root}/1/#"])
    watcher_b = subscribe(mqtt_backend, [f"{topic_root}/2/#", f"{topic_root}/12/#"])

    receipt = publish_suggestions(1)

    got = watcher_a.wait_for(lambda m: m.payload["event_id"] == receipt["event_id"])
    assert got.topic == f"{topic_root}/1/conversations/42/suggestions"
    assert got.payload == {
        "type": "suggestions",
        "version": 1,
        "event_id": receipt["event_id"],
        "conversation_id": 42,
        "message_id": 9,
        "suggestions": sources.sample_suggestions("ws1"),
    }
    time.sleep(SILENCE_SECONDS)
    assert watcher_b.received == []
    assert len(watcher_a.received) == 1


def test_one_connection_is_reused_across_publishes_and_threads(mqtt_backend, topic_root, subscribe):
    """A warm process keeps one paho client: sequential and concurrent publishes all go through it."""
    watcher = subscribe(mqtt_backend, [f"{topic_root}/5/#"])
    publish_suggestions(5, message_id=1)
    backend = get_backend()
    assert isinstance(backend, MqttBackend)
    client = backend._connection.client

    threads = [threading.Thread(target=publish_suggestions, args=(5, 100 + i, 100 + i)) for i in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert backend._connection.client is client
    received = watcher.wait_count(21)
    assert sorted(m.payload["message_id"] for m in received) == [1, *range(100, 120)]


def test_a_broker_restart_between_publishes_is_invisible(private_backend, topic_root, subscribe):
    """The client sees its connection gone, connects again and publishes once more: no error."""
    publish_suggestions(1, message_id=1)
    first_client = get_backend()._connection.client

    private_backend.stop()
    private_backend.start()
    watcher = subscribe(private_backend.url, [f"{topic_root}/1/#"])
    receipt = publish_suggestions(1, message_id=2)

    assert watcher.wait_for(lambda m: m.payload["event_id"] == receipt["event_id"]).payload["message_id"] == 2
    assert get_backend()._connection.client is not first_client


def test_a_broker_that_is_down_fails_the_publish(private_backend, topic_root):
    """Down broker: one reconnect is tried, then PublishFailed (the task fails and is retried later)."""
    publish_suggestions(1)
    private_backend.stop()
    started = time.monotonic()
    with pytest.raises(PublishFailed, match=f"127.0.0.1:{private_backend.port}"):
        publish_suggestions(1, message_id=2)
    assert time.monotonic() - started < 10, "a dead broker must fail fast, not hang the task"

    private_backend.start()
    assert publish_suggestions(1, message_id=3)["topic"].startswith(f"{topic_root}/1/")


def test_a_broker_that_stops_answering_fails_after_the_puback_timeout(private_backend, topic_root, subscribe):
    """A connection that is open but silent (a frozen peer) is not trusted: no PUBACK, PublishFailed."""
    publish_suggestions(1, message_id=1)
    os.kill(private_backend._process.pid, signal.SIGSTOP)
    try:
        with pytest.raises(PublishFailed):
            publish_suggestions(1, message_id=2)
    finally:
        os.kill(private_backend._process.pid, signal.SIGCONT)
    watcher = subscribe(private_backend.url, [f"{topic_root}/1/#"])
    receipt = publish_suggestions(1, message_id=3)
    watcher.wait_for(lambda m: m.payload["event_id"] == receipt["event_id"])


def test_mqtt_url_must_be_an_mqtt_url():
    with pytest.raises(ValueError, match="MQTT_URL must look like"):
        MqttBackend("http://127.0.0.1:1883", timeout=1)
