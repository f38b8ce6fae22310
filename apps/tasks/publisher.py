"""Publishes task messages to the stage's async SNS topic through zappa.asynchronous."""

import os

from apps.tasks.runner import run_task_message

_topic_arns: dict[tuple[str, str], str] = {}


def topic_arn() -> str:
    """`<function>-zappa-async` in this account and region; looked up once per cold start, not per message."""
    from zappa.asynchronous import STS_CLIENT
    from zappa.utilities import get_topic_name

    function = os.environ["AWS_LAMBDA_FUNCTION_NAME"]
    region = os.environ.get("AWS_REGION", "us-east-1")
    key = (function, region)
    if key not in _topic_arns:
        account = STS_CLIENT.get_caller_identity()["Account"]
        _topic_arns[key] = f"arn:aws:sns:{region}:{account}:{get_topic_name(function)}"
    return _topic_arns[key]


def publish(envelope: dict) -> str:
    """Publish one envelope; Zappa wraps it as {"task_path", "args", "kwargs", "command", ...}."""
    from zappa.asynchronous import run

    response = run(run_task_message, args=[envelope], service="sns", arn=topic_arn())
    if not response.sent:
        raise RuntimeError(f"SNS returned no MessageId for task {envelope.get('task_id')}")
    return response.sent
