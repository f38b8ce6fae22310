"""Cue's Lambda entry point: Zappa's handler, with the invocation's deadline known and connections closed.

zappa_settings.json names this as `lambda_handler`. Zappa does not pass the Lambda context on to
async tasks, so the deadline travels in a context variable; a frozen container must not keep a
database connection into its next invocation, so every invocation starts and ends without one.
AWS IoT Core's custom-authorizer events, which Zappa's handler does not route, go to apps.realtime.
"""

from django.conf import settings
from django.db import close_old_connections, connections
from django_guid.context import guid
from zappa.handler import LambdaHandler
from zappa.handler import lambda_handler as zappa_lambda_handler

from apps.realtime.authorizer import iot_authorizer_handler, is_iot_authorizer_event
from apps.tasks.invocation import invocation


def _iot_authorizer(event, context):
    LambdaHandler()  # on a cold start: the stage's settings, remote_env and Django, as for any other event
    return iot_authorizer_handler(event, context)


def lambda_handler(event, context):
    # A warm container reuses this process: no correlation id may leak from the previous invocation.
    guid_token = guid.set(None)
    with invocation(context):
        if settings.configured:  # not before the first invocation has set Django up
            close_old_connections()
        try:
            if is_iot_authorizer_event(event):
                return _iot_authorizer(event, context)
            return zappa_lambda_handler(event, context)
        finally:
            if settings.configured:
                connections.close_all()
            guid.reset(guid_token)
