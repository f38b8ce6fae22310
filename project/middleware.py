"""Middleware of Cue's own: the caller's true address, request ids kept sane, static files indexed on their first
request, an unreachable database a 503 (not a 500), and requests marked for the task publisher."""

import logging
import re
import threading

from django.db import InterfaceError, OperationalError
from whitenoise.middleware import WhiteNoiseMiddleware

from apps.tasks.invocation import answering_request
from project.api import json_error
from project.source_address import event_source_ip

logger = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 30

REQUEST_ID_HEADER = "HTTP_X_REQUEST_ID"
# Letters, digits and - _ . : (UUIDs, API Gateway's and most tracers' ids); nothing that could split a header
# or a log line. The length limit is the ledger's correlation_id column (apps.tasks.models.TaskRun).
_REQUEST_ID_CHARS = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]*")


class RequestIdMiddleware:
    """An X-Request-ID that is not a sane id is dropped before django-guid reads it, so django-guid makes a
    fresh one and returns it in the response's X-Request-ID.

    django-guid stores whatever a client sends (VALIDATE_GUID would accept UUIDs only): an id of 65
    characters then failed the ledger's insert (a 500 after the webhook's delivery was stored), and one
    with a line break failed the response's header.
    """

    def __init__(self, get_response):
        from apps.tasks.models import TaskRun

        self.get_response = get_response
        self.max_chars = TaskRun._meta.get_field("correlation_id").max_length

    def __call__(self, request):
        given = request.META.get(REQUEST_ID_HEADER)
        if given is not None and not self.acceptable(given):
            del request.META[REQUEST_ID_HEADER]
            request.__dict__.pop("headers", None)  # in case something read request.headers already
            logger.warning(
                "X-Request-ID refused; a fresh one is used",
                extra={"path": request.path, "given_chars": len(given)},
            )
        return self.get_response(request)

    def acceptable(self, value: str) -> bool:
        return len(value) <= self.max_chars and _REQUEST_ID_CHARS.fullmatch(value) is not None


class SourceAddressMiddleware:
    """REMOTE_ADDR is the address API Gateway saw, never one a client wrote into a header.

    Zappa builds REMOTE_ADDR from X-Forwarded-For, which API Gateway passes on from the client after
    prepending to it nothing it vouches for; a client that sends its own header chooses its address,
    and with it every per-address limit (the auth throttle). The event's sourceIp is API Gateway's own.
    Outside Lambda REMOTE_ADDR is the socket's peer and is left alone.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        source_ip = event_source_ip.get()
        if source_ip is not None:
            request.META["REMOTE_ADDR"] = source_ip
        return self.get_response(request)


class StaticFilesMiddleware(WhiteNoiseMiddleware):
    """WhiteNoise serving the apps' static files (WHITENOISE_USE_FINDERS), indexed on the first request for one.

    WhiteNoise otherwise walks and stats every app's static files (the admin's, the console's,
    the API docs') when the middleware is built, in every Lambda cold start: nearly all of them
    answer an API call or a task and serve no static file. Only the index waits; once built, it is
    WhiteNoise's own (same files, headers and caching).
    """

    def __init__(self, *args, **kwargs):
        self._index_pending = False
        self._index_lock = threading.Lock()
        super().__init__(*args, **kwargs)

    def add_files_from_finders(self):
        self._index_pending = True  # WhiteNoise's __init__ asks for the index: build it when a static URL comes

    def __call__(self, request):
        if self._index_pending and request.path_info.startswith(self.static_prefix):
            with self._index_lock:
                if self._index_pending:
                    super().add_files_from_finders()
                    self._index_pending = False
        return super().__call__(request)


class DatabaseUnavailableMiddleware:
    """OperationalError/InterfaceError from a view: 503 {"error": {"code": "database_unavailable"}} with Retry-After.

    Intercom retries a webhook that was not answered 2xx, so a 503 while PostgreSQL is down (a
    failover, too many connections) loses nothing: the delivery is stored when it comes again.
    Nothing is half-written: the request's statements either never ran or were rolled back.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if not isinstance(exception, OperationalError | InterfaceError):
            return None
        logger.error("database unavailable", extra={"path": request.path, "error": str(exception)[:300]})
        response = json_error(
            request, 503, "database_unavailable", "The database cannot be reached; retry after a short wait."
        )
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response


class AnsweringRequestMiddleware:
    """Everything a view (and its on_commit callbacks) does runs marked as answering a request.

    A task dispatched here is published with one quick try (apps.tasks.publisher): a slow SNS
    leaves the row to the sweeper instead of holding the answer Intercom or a browser waits for.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        with answering_request():
            return self.get_response(request)
