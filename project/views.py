"""Process-level views: the health check, and views imported on their first request."""

import logging
from collections.abc import Callable

from django.db import connection
from django.http import HttpResponseBase, JsonResponse
from django.utils.module_loading import import_string

from project.api import error_body

logger = logging.getLogger(__name__)


def healthz(request):
    """200 when the process can reach its database, 503 otherwise."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception:
        logger.exception("health check: database unreachable")
        return JsonResponse(error_body("database_unavailable", "The database is unreachable."), status=503)
    return JsonResponse({"status": "ok", "database": connection.vendor})


def lazy_view(dotted_path: str, **initkwargs):
    """`<dotted_path>.as_view(**initkwargs)`, imported on the first request for it, not on every cold start.

    For views few requests reach whose modules are heavy (drf-spectacular's schema generator):
    a Lambda cold start serving anything else never pays for importing them.
    """
    built: list[Callable[..., HttpResponseBase]] = []

    def view(request, *args, **kwargs):
        if not built:
            built.append(import_string(dotted_path).as_view(**initkwargs))
        return built[0](request, *args, **kwargs)

    view.csrf_exempt = True  # type: ignore[attr-defined]  # as APIView.as_view marks its views
    view.__name__ = dotted_path.rpartition(".")[2]
    return view
