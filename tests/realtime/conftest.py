"""Fixtures for realtime tests: a fresh backend per test, a topic root of its own, real MQTT clients."""

import os
import uuid

import pytest

from apps.realtime.backends import reset_backends
from tests.support.mqtt import Mosquitto, Subscriber


@pytest.fixture(autouse=True)
def _fresh_backends():
    """No connection or discovered endpoint leaks from one test into the next."""
    reset_backends()
    yield
    reset_backends()


@pytest.fixture
def topic_root(settings) -> str:
    """A root of this test's own: other runs publish on the same shared broker at the same time."""
    settings.REALTIME_TOPIC_ROOT = f"t{uuid.uuid4().hex[:12]}"
    return settings.REALTIME_TOPIC_ROOT


@pytest.fixture
def mqtt_url() -> str:
    return os.environ.get("MQTT_URL", "mqtt://127.0.0.1:1883")


@pytest.fixture
def mqtt_backend(settings, mqtt_url, topic_root) -> str:
    """REALTIME_BACKEND=mqtt against the shared Mosquitto."""
    settings.REALTIME_BACKEND = "mqtt"
    settings.MQTT_URL = mqtt_url
    return mqtt_url


@pytest.fixture
def subscribe():
    """subscribe(url, filters, transport=...) -> a connected Subscriber, closed after the test."""
    opened: list[Subscriber] = []

    def make(url: str, filters: list[str], **kwargs) -> Subscriber:
        subscriber = Subscriber(url, filters, **kwargs).__enter__()
        opened.append(subscriber)
        return subscriber

    yield make
    for subscriber in opened:
        subscriber.__exit__(None, None, None)


@pytest.fixture
def private_broker(tmp_path):
    """A Mosquitto of this test's own, to stop and start; REALTIME_BACKEND=mqtt points at it."""
    broker = Mosquitto(tmp_path).start()
    yield broker
    broker.stop()


@pytest.fixture
def private_backend(settings, private_broker, topic_root) -> Mosquitto:
    settings.REALTIME_BACKEND = "mqtt"
    settings.MQTT_URL = private_broker.url
    settings.REALTIME_PUBLISH_TIMEOUT_SECONDS = 1
    return private_broker
