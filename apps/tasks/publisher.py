"""Publishes task messages to the stage's async SNS topic through zappa.asynchronous, with bounded waits.

Zappa's own clients (made when zappa.asynchronous is imported) keep boto3's defaults: 60 s to
connect, 60 s per read, and retries, so an SNS that accepts connections and never answers held one
webhook's answer for three minutes. Cue hands Zappa clients of its own (`run(..., boto_session=...)`):

- while a request is answered (`apps.tasks.invocation.answering_request`), one try with tight
  timeouts (`CUE_SNS_PUBLISH_*`): if SNS is slow the row stays unsent, the answer goes out, and the
  sweeper sends the row a little later;
- anywhere else (a task's children, the sweeper, a command), bounded timeouts and a retry
  (`CUE_SNS_BACKGROUND_*`), small enough that a sweep stops before its invocation's deadline.
"""

import os
from functools import cache

from botocore.config import Config
from django.conf import settings

from apps.tasks.invocation import answering_request_now
from apps.tasks.runner import run_task_message

_topic_arns: dict[tuple[str, str], str] = {}

REQUEST, BACKGROUND = "request", "background"


def client_config(profile: str) -> Config:
    """The botocore Config of a profile: `request` tries once, quickly; `background` waits longer and retries."""
    if profile == REQUEST:
        connect, read, attempts = (
            settings.CUE_SNS_PUBLISH_CONNECT_TIMEOUT_SECONDS,
            settings.CUE_SNS_PUBLISH_READ_TIMEOUT_SECONDS,
            1,
        )
    else:
        connect, read, attempts = (
            settings.CUE_SNS_BACKGROUND_CONNECT_TIMEOUT_SECONDS,
            settings.CUE_SNS_BACKGROUND_READ_TIMEOUT_SECONDS,
            settings.CUE_SNS_BACKGROUND_MAX_ATTEMPTS,
        )
    return Config(
        connect_timeout=connect,
        read_timeout=read,
        retries={"mode": "standard", "total_max_attempts": attempts},
    )


def publish_budget_seconds(profile: str = BACKGROUND) -> float:
    """The longest one publish can take with a profile (every attempt connecting and reading to its timeout)."""
    config = client_config(profile)
    return (config.connect_timeout + config.read_timeout) * config.retries["total_max_attempts"]


@cache
def _client(service: str, profile: str):
    # Zappa's session: its credentials and loaded service models are reused, only the config is ours.
    from zappa.asynchronous import aws_session

    return aws_session.client(service, config=client_config(profile))


def clients_reset() -> None:
    """Forget the clients made so far (tests and the fault bench point SNS elsewhere, then back)."""
    _client.cache_clear()


class _Clients:
    """What zappa.asynchronous asks of its `boto_session`: a client by service name; ours, made once per profile."""

    def __init__(self, profile: str):
        self.profile = profile

    def client(self, service: str):
        return _client(service, self.profile)


def current_profile() -> str:
    return REQUEST if answering_request_now() else BACKGROUND


def topic_arn() -> str:
    """`<function>-zappa-async` in this account and region; looked up once per cold start, not per message."""
    from zappa.utilities import get_topic_name

    function = os.environ["AWS_LAMBDA_FUNCTION_NAME"]
    region = os.environ.get("AWS_REGION", "us-east-1")
    key = (function, region)
    if key not in _topic_arns:
        account = _client("sts", current_profile()).get_caller_identity()["Account"]
        _topic_arns[key] = f"arn:aws:sns:{region}:{account}:{get_topic_name(function)}"
    return _topic_arns[key]


def publish(envelope: dict) -> str:
    """Publish one envelope; Zappa wraps it as {"task_path", "args", "kwargs", "command", ...}."""
    from zappa.asynchronous import run

    clients = _Clients(current_profile())
    response = run(run_task_message, args=[envelope], service="sns", arn=topic_arn(), boto_session=clients)
    if not response.sent:
        raise RuntimeError(f"SNS returned no MessageId for task {envelope.get('task_id')}")
    return response.sent
