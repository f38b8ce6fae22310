"""Real MQTT clients for tests: a subscriber that records what arrives, and a private Mosquitto to stop and start.

The private broker is `bin/dev`'s own (tools.dev_broker.Mosquitto): TCP and WebSockets on free loopback
ports, stopped and started again on the same ports for outage tests.
"""

import json
import threading
import time
import uuid
from dataclasses import dataclass
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from tools.dev_broker import Mosquitto, free_port  # noqa: F401 - the tests' private broker


@dataclass
class Received:
    topic: str
    payload: dict
    at: float  # time.monotonic() on arrival


class Subscriber:
    """A paho client with a unique id, subscribed (QoS 1, SUBACK awaited) before the test publishes."""

    def __init__(self, url: str, filters: list[str], *, transport: str = "tcp", client_id: str | None = None):
        parts = urlsplit(url)
        self.host, self.port = parts.hostname, parts.port
        self.path = parts.path or "/"
        self.filters = filters
        self.received: list[Received] = []
        self._arrived = threading.Condition()
        self._subscribed = threading.Event()
        self._connected = threading.Event()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id or f"test-sub-{uuid.uuid4().hex[:12]}",
            transport=transport,
        )
        if transport == "websockets":
            self.client.ws_set_options(path=self.path)
        self.client.on_connect = lambda *a: self._connected.set()
        self.client.on_subscribe = lambda *a: self._subscribed.set()
        self.client.on_message = self._on_message

    def _on_message(self, client, userdata, message):
        item = Received(message.topic, json.loads(message.payload), time.monotonic())
        with self._arrived:
            self.received.append(item)
            self._arrived.notify_all()

    def __enter__(self) -> "Subscriber":
        self.client.connect(self.host, self.port, keepalive=30)
        self.client.loop_start()
        assert self._connected.wait(5), f"no CONNACK from {self.host}:{self.port}"
        self.client.subscribe([(f, 1) for f in self.filters])
        assert self._subscribed.wait(5), "no SUBACK"
        return self

    def __exit__(self, *exc) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def wait_for(self, predicate, timeout: float = 5.0) -> Received:
        """The first message matching predicate(Received), waiting up to timeout seconds."""
        deadline = time.monotonic() + timeout
        with self._arrived:
            while True:
                for item in self.received:
                    if predicate(item):
                        return item
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"nothing matching arrived in {timeout}s; got {self.received!r}")
                self._arrived.wait(left)

    def wait_count(self, count: int, timeout: float = 5.0) -> list[Received]:
        """Wait until at least `count` messages have arrived; returns them."""
        self.wait_for(lambda item: len(self.received) >= count, timeout)
        return list(self.received)
