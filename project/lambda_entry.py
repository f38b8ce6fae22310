"""Cue's Lambda entry point: Zappa's handler, with the invocation's deadline known and connections closed.

zappa_settings.json names this as `lambda_handler`. Zappa does not pass the Lambda context on to
async tasks, so the deadline travels in a context variable; a frozen container must not keep a
database connection into its next invocation, so every invocation starts and ends without one.
AWS IoT Core's custom-authorizer events, which Zappa's handler does not route, go to apps.realtime.

Cold start: the stage's remote_env is read with one signed GET (project.remote_env), not through an
S3 client, and the cyclic garbage collector is paused from this import until the container has loaded
its settings, remote_env and Django, then everything alive is frozen out of its generations
(`gc.freeze`). Otherwise every collection during start-up walks all the objects the imports and
botocore's service models have made so far, none of them garbage, again and again.
"""

import gc
import os

# Only in a Lambda container: not when the tests or the local emulator import this module.
_PAUSE_GC = bool(os.environ.get("AWS_LAMBDA_FUNCTION_NAME")) and gc.isenabled()
if _PAUSE_GC:
    gc.disable()

from django.conf import settings  # noqa: E402
from django.db import close_old_connections, connections  # noqa: E402
from django_guid.context import guid  # noqa: E402
from zappa.handler import LambdaHandler  # noqa: E402
from zappa.handler import lambda_handler as zappa_lambda_handler  # noqa: E402

from apps.realtime.authorizer import iot_authorizer_handler, is_iot_authorizer_event  # noqa: E402
from apps.tasks.invocation import invocation  # noqa: E402
from project.remote_env import load_remote_settings  # noqa: E402
from project.source_address import event_source_ip, source_ip_of  # noqa: E402

LambdaHandler.load_remote_settings = load_remote_settings


def _start_container() -> None:
    """The stage's settings, remote_env and Django (Zappa's singleton), then the collector back on, once."""
    global _PAUSE_GC
    try:
        LambdaHandler()
    finally:
        _PAUSE_GC = False
        gc.freeze()
        gc.enable()


def _iot_authorizer(event, context):
    LambdaHandler()  # on a cold start: the stage's settings, remote_env and Django, as for any other event
    return iot_authorizer_handler(event, context)


def lambda_handler(event, context):
    # A warm container reuses this process: no correlation id may leak from the previous invocation.
    guid_token = guid.set(None)
    source_ip_token = event_source_ip.set(source_ip_of(event))
    with invocation(context):
        if _PAUSE_GC:
            _start_container()
        if settings.configured:  # not when the container could not start
            close_old_connections()
        try:
            if is_iot_authorizer_event(event):
                return _iot_authorizer(event, context)
            return zappa_lambda_handler(event, context)
        finally:
            if settings.configured:
                connections.close_all()
            guid.reset(guid_token)
            event_source_ip.reset(source_ip_token)
