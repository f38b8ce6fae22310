"""Middleware of Cue's own: a database that cannot be reached is a 503 (retry later), never a 500."""

import logging

from django.db import InterfaceError, OperationalError

from project.api import json_error

logger = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 30


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
