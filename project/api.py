"""API conventions shared by every app: the error shape, pagination, and small view helpers."""

import logging
from typing import Any

from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, JsonResponse
from drf_spectacular.utils import OpenApiResponse, extend_schema_serializer
from rest_framework import exceptions, pagination, serializers, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

logger = logging.getLogger(__name__)


class Pagination(pagination.PageNumberPagination):
    page_size_query_param = "page_size"
    max_page_size = 200


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "The request conflicts with the current state."
    default_code = "conflict"


def _first_message(detail) -> str:
    if isinstance(detail, list) and detail:
        return _first_message(detail[0])
    if isinstance(detail, dict) and detail:
        key, value = next(iter(detail.items()))
        inner = _first_message(value)
        return inner if key in ("non_field_errors", "detail") else f"{key}: {inner}"
    return str(detail)


def _code_of(exc: exceptions.APIException) -> str:
    codes = exc.get_codes()
    if isinstance(codes, str):
        return codes
    return getattr(exc, "default_code", "error")


@extend_schema_serializer(component_name="ErrorDetail")
class ErrorDetailOutputSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="Stable, machine-readable: invalid, not_found, conflict, ...")
    message = serializers.CharField(help_text="For people: the first problem, in a sentence.")
    # DRF's metaclass pops declared fields from the class, so this does not shadow Serializer.fields at run time.
    fields = serializers.DictField(  # type: ignore[assignment]
        help_text="For 400 `invalid`: each field (or `non_field_errors`) with its problems; otherwise empty."
    )


@extend_schema_serializer(component_name="Error")
class ErrorOutputSerializer(serializers.Serializer):
    """Every 4xx and 5xx body (the schema's one `Error` component)."""

    error = ErrorDetailOutputSerializer()


def error_response(description: str) -> OpenApiResponse:
    """An operation's documented error status: the one error body, with what the status means there."""
    return OpenApiResponse(response=ErrorOutputSerializer, description=description)


def error_body(code: str, message: str, fields: dict | None = None) -> dict:
    return {"error": {"code": code, "message": message, "fields": fields or {}}}


def exception_handler(exc, context):
    """Every DRF error leaves as {"error": {"code", "message", "fields"}}."""
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(exc.message_dict if hasattr(exc, "error_dict") else exc.messages)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()

    response = drf_exception_handler(exc, context)
    if response is None:
        return None  # a real 500: Django's handler500 answers in the same shape

    if isinstance(exc, exceptions.ValidationError):
        detail = exc.detail
        fields = detail if isinstance(detail, dict) else {"non_field_errors": detail}
        body = error_body("invalid", _first_message(detail), fields)
    else:
        body = error_body(_code_of(exc), _first_message(exc.detail))
    response.data = body
    return response


def json_error(request, status_code: int, code: str, message: str) -> JsonResponse:
    return JsonResponse(error_body(code, message), status=status_code)


def handler400(request, exception=None):
    return json_error(request, 400, "bad_request", "Bad request.")


def handler403(request, exception=None):
    return json_error(request, 403, "permission_denied", "You do not have permission to perform this action.")


def handler404(request, exception=None):
    return json_error(request, 404, "not_found", "Not found.")


def handler500(request):
    return json_error(request, 500, "server_error", "Internal server error; the request id is in X-Request-ID.")


def created(data) -> Response:
    return Response(data, status=status.HTTP_201_CREATED)


def paginated(request, view, items, serializer_class) -> Response:
    """A list view's answer: one page of items, serialized, with the count and the next/previous links.

    DRF's DEFAULT_PAGINATION_CLASS is this Pagination, so the schema (project.openapi) documents a list
    response as this page."""
    paginator = Pagination()
    page: list[Any] | None = paginator.paginate_queryset(items, request, view=view)
    return paginator.get_paginated_response(serializer_class(page, many=True).data)
