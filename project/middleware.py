"""Middleware of Cue's own: static files indexed on their first request; an unreachable database is a 503, not a 500."""

import logging
import threading

from django.db import InterfaceError, OperationalError
from whitenoise.middleware import WhiteNoiseMiddleware

from project.api import json_error

logger = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 30


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
