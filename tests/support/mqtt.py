"""Real MQTT clients for tests: a subscriber that records what arrives, and a private Mosquitto to stop and start."""

import json
import shutil
import socket
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion


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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Mosquitto:
    """A private broker (TCP and WebSockets listeners) this test can stop and start again on the same ports."""

    def __init__(self, workdir: Path):
        binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        assert Path(binary).exists(), "the mosquitto binary is needed for broker-outage tests"
        self.binary = binary
        self.config = workdir / "mosquitto.conf"
        self._choose_ports()
        self._process: subprocess.Popen | None = None
        self._started_once = False

    def _choose_ports(self) -> None:
        self.port, self.ws_port = free_port(), free_port()
        self.config.write_text(
            f"persistence false\nlog_dest none\n"
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\n"
            f"listener {self.ws_port} 127.0.0.1\nprotocol websockets\n"
        )

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.ws_port}"

    def start(self) -> "Mosquitto":
        """Start and wait until both listeners accept; a first start whose free port was taken meanwhile retries."""
        for _ in range(1 if self._started_once else 3):
            if self._start_once():
                self._started_once = True
                return self
            if not self._started_once:
                self._choose_ports()
        raise AssertionError(f"private mosquitto did not start on {self.port} and {self.ws_port}")

    def _start_once(self) -> bool:
        self._process = subprocess.Popen([self.binary, "-c", str(self.config)])
        deadline = time.monotonic() + 5
        waiting = [self.port, self.ws_port]
        while waiting and time.monotonic() < deadline:
            if self._process.poll() is not None:  # exited: most likely a port someone else bound first
                self._process = None
                return False
            try:
                with socket.create_connection(("127.0.0.1", waiting[0]), timeout=0.2):
                    waiting.pop(0)
            except OSError:
                time.sleep(0.02)
        if waiting:
            self.stop()
            return False
        return True

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(5)
            self._process = None
