"""Process-level views: the health check."""

import logging

from django.db import connection
from django.http import JsonResponse

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
