"""Drives the real Zappa lambda_handler in-process with the settings module Zappa generates for a stage."""

import os
import subprocess
import sys
import uuid
from pathlib import Path

from django.conf import settings
from django.urls import set_script_prefix

from tests.support.events import LambdaContext, sns_event

ZAPPA = str(Path(sys.executable).parent / "zappa")


def write_stage_settings(stage: str, out_dir: Path, settings_file: Path | None = None) -> Path:
    """Run `zappa save-python-settings-file STAGE` into out_dir; returns the zappa_settings.py path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / "zappa_settings.py"
    cmd = [ZAPPA, "save-python-settings-file", stage, "-o", str(target), "-q"]
    if settings_file:
        cmd += ["-s", str(settings_file)]
    subprocess.run(cmd, check=True, cwd=settings.BASE_DIR, capture_output=True, text=True)
    return target


def stage_settings_values(settings_py: Path) -> dict:
    values: dict = {}
    exec(compile(settings_py.read_text(), str(settings_py), "exec"), values)  # noqa: S102 - Zappa's own output
    return values


class Handler:
    """A fresh Zappa LambdaHandler (the singleton reset) loaded from a stage's generated settings."""

    def __init__(self, settings_dir: Path, function_name: str):
        self.settings_dir = settings_dir
        self.function_name = function_name
        self._saved_env = dict(os.environ)

    def __enter__(self) -> "Handler":
        from zappa.handler import LambdaHandler

        sys.modules.pop("zappa_settings", None)
        sys.path.insert(0, str(self.settings_dir))
        LambdaHandler._LambdaHandler__instance = None
        LambdaHandler.settings = None
        return self

    def __exit__(self, *exc) -> None:
        from zappa.handler import LambdaHandler

        LambdaHandler._LambdaHandler__instance = None
        LambdaHandler.settings = None
        sys.modules.pop("zappa_settings", None)
        # Requests through API Gateway set Django's script prefix to the stage (/dev/): a thread-local
        # that would otherwise leak into later tests (STATIC_URL would read /dev/static/).
        set_script_prefix("/")
        if str(self.settings_dir) in sys.path:
            sys.path.remove(str(self.settings_dir))
        # The handler writes its stage's environment into os.environ; give the rest of the suite its own back.
        os.environ.clear()
        os.environ.update(self._saved_env)

    def context(self, **kwargs) -> LambdaContext:
        return LambdaContext(function_name=self.function_name, **kwargs)

    def __call__(self, event: dict, context: LambdaContext | None = None):
        """Invoke the stage's entry point (zappa_settings.json `lambda_handler`), which wraps Zappa's."""
        from project.lambda_entry import lambda_handler

        return lambda_handler(event, context or self.context())


class SnsCapture:
    """The stage's async SNS topic, with a queue subscribed so the test can read what Cue published.

    `deliver()` hands each message back to the handler as the SNS event Lambda would receive.
    """

    def __init__(self, moto, handler: Handler):
        from zappa.utilities import get_topic_name

        self.handler = handler
        sns, sqs = moto.client("sns"), moto.client("sqs")
        self.topic_arn = sns.create_topic(Name=get_topic_name(handler.function_name))["TopicArn"]
        self._sqs = sqs
        self.queue_url = sqs.create_queue(QueueName=f"capture-{uuid.uuid4().hex[:12]}")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        sns.subscribe(
            TopicArn=self.topic_arn, Protocol="sqs", Endpoint=queue_arn, Attributes={"RawMessageDelivery": "true"}
        )

    def drain(self) -> list[str]:
        """Every message published since the last drain (raw SNS message bodies)."""
        messages: list[str] = []
        while True:
            got = self._sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
            batch = got.get("Messages", [])
            if not batch:
                return messages
            for m in batch:
                messages.append(m["Body"])
                self._sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=m["ReceiptHandle"])

    def event_for(self, message: str) -> dict:
        return sns_event(message, self.topic_arn)

    def deliver(self, message: str, context: LambdaContext | None = None):
        return self.handler(self.event_for(message), context)

    def run_all(self, times: int = 1, max_rounds: int = 20) -> list[str]:
        """Deliver everything published (each message `times` times) until nothing new is published."""
        delivered: list[str] = []
        for _ in range(max_rounds):
            messages = self.drain()
            if not messages:
                return delivered
            for message in messages:
                for _ in range(times):
                    self.deliver(message)
                delivered.append(message)
        raise AssertionError(f"tasks still publishing after {max_rounds} rounds")
