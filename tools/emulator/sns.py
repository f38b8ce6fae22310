"""SNS to Lambda on this machine: the stage's async topic in moto, and a deliverer that invokes the function.

On AWS the function is subscribed to `<function>-zappa-async`; SNS pushes each message to Lambda,
which invokes the function asynchronously. moto would run a subscribed function in Docker, so here
the topic pushes to an HTTP subscription on loopback instead: moto's SNS posts each notification
while it is published (polling a subscribed queue would work too, but would fill a DEBUG stage's
logs with the emulator's own SQS calls every second). After `delay` seconds the deliverer hands
the message to the function as the SNS event Lambda delivers. With `duplicate_rate`, that share
of messages is delivered twice (on AWS, SNS's at-least-once delivery and Lambda's async retries
do it), to exercise idempotency on purpose; a failed invocation is retried as Lambda retries one.
"""

import json
import random
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tools.emulator.function import Invocation, StageFunction
from tools.emulator.scheduler import Timeline

ASYNC_RETRY_DELAYS = (60.0, 120.0)  # Lambda retries a failed async invocation twice: after 1, then 2 more minutes


@dataclass
class Delivery:
    message_id: str
    copy: int  # 0 for the delivery SNS makes, 1 for the duplicate
    invocations: list[Invocation] = field(default_factory=list)
    received_at: float = 0.0
    delivered_at: list[float] = field(default_factory=list)


def lambda_sns_event(notification: dict, subscription_arn: str) -> dict:
    """The event Lambda receives for one SNS notification (given as SNS's JSON envelope)."""
    return {
        "Records": [
            {
                "EventSource": "aws:sns",
                "EventVersion": "1.0",
                "EventSubscriptionArn": subscription_arn,
                "Sns": {
                    "Type": notification.get("Type", "Notification"),
                    "MessageId": notification["MessageId"],
                    "TopicArn": notification["TopicArn"],
                    "Subject": notification.get("Subject"),
                    "Message": notification["Message"],
                    "Timestamp": notification.get("Timestamp"),
                    "SignatureVersion": notification.get("SignatureVersion", "1"),
                    "Signature": notification.get("Signature", ""),
                    "SigningCertUrl": notification.get("SigningCertURL", ""),
                    "UnsubscribeUrl": notification.get("UnsubscribeURL", ""),
                    "MessageAttributes": notification.get("MessageAttributes", {}),
                },
            }
        ]
    }


class SnsDeliverer:
    def __init__(
        self,
        *,
        aws,
        function: StageFunction,
        timeline: Timeline,
        delay: float = 0.0,
        duplicate_rate: float = 0.0,
        retry_delays: tuple[float, ...] = ASYNC_RETRY_DELAYS,
        seed: int | None = None,
    ):
        if not 0.0 <= duplicate_rate <= 1.0:
            raise ValueError("duplicate_rate is a share between 0 and 1")
        self.aws = aws
        self.function = function
        self.timeline = timeline
        self.delay = delay
        self.duplicate_rate = duplicate_rate
        self.retry_delays = retry_delays
        self.deliveries: list[Delivery] = []
        self._random = random.Random(seed)  # noqa: S311 - which messages to duplicate, not a secret
        self._lock = threading.Lock()
        self._busy = 0  # deliveries waiting for their time or running
        self._paused = False
        self._held: list[tuple[Delivery, dict]] = []
        self._stopped = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self.topic_arn = ""
        self.subscription_arn = ""

    def setup(self) -> "SnsDeliverer":
        """The topic (as `zappa deploy` creates it), subscribed to this deliverer in place of the function."""
        from zappa.utilities import get_topic_name

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _endpoint_class(self._receive))
        self._server.daemon_threads = True
        sns = self.aws.client("sns")
        self.topic_arn = sns.create_topic(Name=get_topic_name(self.function.name))["TopicArn"]
        endpoint = f"http://127.0.0.1:{self._server.server_address[1]}/"
        subscription = sns.subscribe(TopicArn=self.topic_arn, Protocol="http", Endpoint=endpoint)
        self.subscription_arn = subscription["SubscriptionArn"]
        return self

    def start(self) -> "SnsDeliverer":
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="sns-deliverer", daemon=True
        ).start()
        return self

    def stop(self) -> None:
        self._stopped.set()
        self.aws.client("sns").unsubscribe(SubscriptionArn=self.subscription_arn)
        self._server.shutdown()
        self._server.server_close()

    # Holding deliveries back lets a test (or a demo) look at the state between the answer and the task.
    def pause(self) -> None:
        with self._lock:
            self._paused = True

    def resume(self) -> None:
        with self._lock:
            self._paused = False
            held, self._held = self._held, []
        for delivery, event in held:
            self._schedule(delivery, event, self.delay)

    def is_idle(self) -> bool:
        """Every message published so far delivered and its retries run, none held back.

        moto's SNS posts a message here before the publish call returns: none is in flight in between.
        """
        with self._lock:
            return self._busy == 0 and not self._held

    def _receive(self, notification: dict) -> None:
        if self._stopped.is_set() or notification.get("Type") != "Notification":
            return
        event = lambda_sns_event(notification, self.subscription_arn)
        copies = 2 if self._random.random() < self.duplicate_rate else 1
        for copy in range(copies):
            delivery = Delivery(message_id=notification["MessageId"], copy=copy, received_at=self.timeline.monotonic())
            with self._lock:
                self.deliveries.append(delivery)
                if self._paused:
                    self._held.append((delivery, event))
                    continue
            self._schedule(delivery, event, self.delay)

    def _schedule(self, delivery: Delivery, event: dict, after: float) -> None:
        with self._lock:
            self._busy += 1
        self.timeline.after(after, lambda: self._deliver(delivery, event))

    def _deliver(self, delivery: Delivery, event: dict) -> None:
        delivery.delivered_at.append(self.timeline.monotonic())
        attempt = len(delivery.invocations)
        trigger = f"sns {delivery.message_id[:8]}" + (" duplicate" if delivery.copy else "")
        if attempt:
            trigger += f" retry {attempt}"
        future = self.function.submit(event, trigger)
        future.add_done_callback(lambda f: self._done(delivery, event, f.result()))

    def _done(self, delivery: Delivery, event: dict, invocation: Invocation) -> None:
        delivery.invocations.append(invocation)
        retries_left = len(delivery.invocations) <= len(self.retry_delays)
        if invocation.failed and retries_left:
            self._schedule(delivery, event, self.retry_delays[len(delivery.invocations) - 1])
        with self._lock:
            self._busy -= 1


def _endpoint_class(receive):
    class Endpoint(BaseHTTPRequestHandler):
        """Where moto's SNS posts each notification of the topic."""

        def do_POST(self):  # noqa: N802 - http.server's naming
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            receive(json.loads(body))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format, *args):  # noqa: A002 - BaseHTTPRequestHandler's signature
            pass

    return Endpoint
