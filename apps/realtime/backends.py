"""Publish backends chosen by REALTIME_BACKEND: AWS IoT Core (iot), any MQTT broker (mqtt), or the log.

Each backend is made once per process and settings (a warm Lambda or server reuses its connection);
`publish(topic, payload)` returns when the broker has the message (QoS 1) or raises PublishFailed.
"""

import logging
import os
import threading
import uuid
from collections import deque
from urllib.parse import unquote, urlsplit

from django.conf import settings

logger = logging.getLogger(__name__)


class RealtimeUnavailable(Exception):
    """The broker or AWS IoT cannot be reached or refuses Cue (network, credentials, permissions)."""


class PublishFailed(RealtimeUnavailable):
    """The broker did not take the message. Raised out of the publish task so the backbone retries it."""


# ------------------------------------------------------------------------------
# log: the embedded default, no broker needed
# ------------------------------------------------------------------------------
class LogBackend:
    """Writes each event to the log; keeps the last ones in memory for a shell (or a test) to read."""

    name = "log"

    def __init__(self, keep: int = 100):
        self.sent: deque[tuple[str, bytes]] = deque(maxlen=keep)

    def publish(self, topic: str, payload: bytes) -> None:
        self.sent.append((topic, payload))
        logger.info("realtime event (log backend)", extra={"topic": topic, "bytes": len(payload)})
        logger.debug("realtime payload", extra={"topic": topic, "payload": payload.decode()[:2000]})

    def close(self) -> None:
        pass


# ------------------------------------------------------------------------------
# mqtt: any broker through paho-mqtt (Mosquitto locally)
# ------------------------------------------------------------------------------
class _Connection:
    """One paho client and the outcome of its CONNECT."""

    def __init__(self, client):
        self.client = client
        self.connack = threading.Event()
        self.refused: str | None = None


class MqttBackend:
    """One paho client per process, connected on first use and shared by every thread.

    A publish is QoS 1 and waits for its PUBACK. If the connection is gone or the PUBACK does not come
    (a broker restart, a socket that died while the process was frozen), the client is dropped, a new
    one connects and the publish is tried once more; if that fails too, PublishFailed.
    """

    name = "mqtt"

    def __init__(self, url: str, *, timeout: float):
        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
            raise ValueError(f"MQTT_URL must look like mqtt://host:1883 or mqtts://host:8883, not {url!r}")
        self.host = parts.hostname
        self.tls = parts.scheme == "mqtts"
        self.port = parts.port or (8883 if self.tls else 1883)
        self.username = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else None
        self.timeout = timeout
        self._lock = threading.Lock()
        self._connection: _Connection | None = None

    def _connect(self) -> _Connection:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"cue-pub-{os.getpid()}-{uuid.uuid4().hex[:10]}",  # unique: a broker drops duplicate ids
            protocol=mqtt.MQTTv311,
            clean_session=True,
        )
        connection = _Connection(client)

        def on_connect(client, userdata, flags, reason_code, properties):
            if reason_code.is_failure:
                connection.refused = str(reason_code)
            connection.connack.set()

        client.on_connect = on_connect
        client.connect_timeout = self.timeout
        if self.username:
            client.username_pw_set(self.username, self.password)
        if self.tls:
            client.tls_set()
        try:
            client.connect(self.host, self.port, keepalive=60)
        except OSError as exc:
            raise PublishFailed(f"cannot connect to MQTT broker {self.host}:{self.port}: {exc}") from exc
        client.loop_start()
        if not connection.connack.wait(self.timeout) or connection.refused:
            self._close(connection)
            why = connection.refused or f"no CONNACK within {self.timeout}s"
            raise PublishFailed(f"MQTT broker {self.host}:{self.port} did not accept the connection: {why}")
        logger.info("mqtt connected", extra={"host": self.host, "port": self.port})
        return connection

    def _current(self) -> _Connection:
        with self._lock:
            if self._connection is None or not self._connection.client.is_connected():
                if self._connection is not None:
                    self._close(self._connection)
                self._connection = None
                self._connection = self._connect()
            return self._connection

    def _drop(self, connection: _Connection) -> None:
        """Forget a broken connection, unless another thread has already replaced it."""
        with self._lock:
            if self._connection is connection:
                self._connection = None
        self._close(connection)

    @staticmethod
    def _close(connection: _Connection) -> None:
        # disconnect() first: it stops paho's own reconnect loop, so loop_stop() returns at once.
        connection.client.disconnect()
        connection.client.loop_stop()

    def _publish_once(self, topic: str, payload: bytes) -> None:
        connection = self._current()
        try:
            info = connection.client.publish(topic, payload, qos=1)
            info.wait_for_publish(self.timeout)
            if not info.is_published():
                raise PublishFailed(f"no PUBACK for {topic} within {self.timeout}s")
        except (RuntimeError, ValueError, PublishFailed) as exc:
            self._drop(connection)
            raise PublishFailed(f"MQTT publish to {topic} failed: {exc}") from exc

    def publish(self, topic: str, payload: bytes) -> None:
        try:
            self._publish_once(topic, payload)
        except PublishFailed as first:
            logger.warning("mqtt publish failed; reconnecting once", extra={"topic": topic, "error": str(first)})
            self._publish_once(topic, payload)

    def close(self) -> None:
        with self._lock:
            connection, self._connection = self._connection, None
        if connection is not None:
            self._close(connection)


# ------------------------------------------------------------------------------
# iot: AWS IoT Core through the iot-data HTTPS publish API
# ------------------------------------------------------------------------------
def boto3_endpoint_configured() -> bool:
    """True when boto3 itself is told where iot-data lives (AWS_ENDPOINT_URL[_IOT_DATA]: an emulator)."""
    return bool(os.environ.get("AWS_ENDPOINT_URL_IOT_DATA") or os.environ.get("AWS_ENDPOINT_URL"))


class IotBackend:
    """iot-data Publish (QoS 1) at the account's ATS data endpoint.

    The endpoint is REALTIME_IOT_ENDPOINT, or asked for once per cold start with
    iot:DescribeEndpoint(endpointType="iot:Data-ATS"); the client is made once and reused.
    """

    name = "iot"

    def __init__(self, *, endpoint: str, region: str, timeout: float):
        self._endpoint = endpoint.removeprefix("https://").rstrip("/")
        self.region = region
        self.timeout = timeout
        self._lock = threading.Lock()
        self._client = None

    def _boto_config(self):
        from botocore.config import Config

        # A hung call must fail well inside the invocation so the task is retried, not killed.
        return Config(
            connect_timeout=self.timeout, read_timeout=self.timeout, retries={"mode": "standard", "max_attempts": 3}
        )

    def data_endpoint(self) -> str:
        """The ATS data endpoint host (configured, or discovered once and remembered)."""
        with self._lock:
            if not self._endpoint:
                import boto3
                from botocore.exceptions import BotoCoreError, ClientError

                iot = boto3.client("iot", region_name=self.region, config=self._boto_config())
                try:
                    self._endpoint = iot.describe_endpoint(endpointType="iot:Data-ATS")["endpointAddress"]
                except (BotoCoreError, ClientError) as exc:
                    raise RealtimeUnavailable(f"cannot discover the AWS IoT data endpoint: {exc}") from exc
                logger.info("iot data endpoint discovered", extra={"endpoint": self._endpoint})
            return self._endpoint

    def data_client(self):
        if self._client is None:
            import boto3

            endpoint = self.data_endpoint()
            endpoint_url = None if boto3_endpoint_configured() else f"https://{endpoint}"
            with self._lock:
                if self._client is None:
                    self._client = boto3.client(
                        "iot-data", region_name=self.region, endpoint_url=endpoint_url, config=self._boto_config()
                    )
        return self._client

    def publish(self, topic: str, payload: bytes) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.data_client().publish(topic=topic, qos=1, payload=payload)
        except (BotoCoreError, ClientError, RealtimeUnavailable) as exc:
            raise PublishFailed(f"AWS IoT publish to {topic} failed: {exc}") from exc

    def close(self) -> None:
        self._client = None


# ------------------------------------------------------------------------------
# The process's backend
# ------------------------------------------------------------------------------
_backends: dict[tuple, LogBackend | MqttBackend | IotBackend] = {}
_backends_lock = threading.Lock()


def _config_key() -> tuple:
    return (
        settings.REALTIME_BACKEND,
        settings.MQTT_URL,
        settings.REALTIME_IOT_ENDPOINT,
        settings.REALTIME_PUBLISH_TIMEOUT_SECONDS,
        os.environ.get("AWS_REGION", "us-east-1"),
    )


def _make(key: tuple):
    kind, mqtt_url, iot_endpoint, timeout, region = key
    if kind == "mqtt":
        if not mqtt_url:
            raise PublishFailed("REALTIME_BACKEND=mqtt but MQTT_URL is not set")
        return MqttBackend(mqtt_url, timeout=timeout)
    if kind == "iot":
        return IotBackend(endpoint=iot_endpoint, region=region, timeout=timeout)
    return LogBackend()


def get_backend():
    """This process's backend for the current settings, made on first use and then reused."""
    key = _config_key()
    backend = _backends.get(key)
    if backend is None:
        with _backends_lock:
            backend = _backends.get(key)
            if backend is None:
                backend = _backends[key] = _make(key)
    return backend


def reset_backends() -> None:
    """Close and forget every backend (tests; a process that changes its settings)."""
    with _backends_lock:
        backends = list(_backends.values())
        _backends.clear()
    for backend in backends:
        backend.close()
