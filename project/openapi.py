"""Cue's OpenAPI generation (drf-spectacular's AutoSchema, SPECTACULAR_SETTINGS' schema class): lists are
documented as the pages they are, and every operation documents the errors it can answer.

Loaded with the API views, as drf-spectacular's AutoSchema was (each `@extend_schema` subclasses it); it imports
nothing they do not.

What each operation can answer follows from the view, so a new endpoint is documented without anyone
remembering to (tests/security/test_fuzz_api.py holds the schema to what the API does):

| status | when | why |
|---|---|---|
| 400 | a body, or query parameters besides the page's (unless it only redirects) | validation, unreadable JSON |
| 401 | the view authenticates, or is a token view | no, expired or bad access token; bad credentials or refresh token |
| 403 | a permission other than AllowAny | not a member of a workspace, or not an owner/admin where it needs one |
| 404 | a path parameter, or a paged list | no such object in the caller's workspace; a page past the last |
| 415 | a request body | a Content-Type the operation does not read |
| 429 | the view is throttled | too many tries; Retry-After says when to try again |
| 503 | always | the database cannot be reached (project.middleware); Retry-After |

A view adds what only it knows (409 on a conflicting decision, 503 when realtime is down, a 400 for a
business rule on an operation without a body...) with `extend_schema(responses={..., 409:
error_response("...")})`; what the view says wins over these defaults.
"""

from drf_spectacular.openapi import AutoSchema
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.settings import api_settings
from rest_framework_simplejwt.views import TokenViewBase

from project.api import error_response

PAGE_PARAMETERS = {"page", "page_size"}
RETRY_AFTER = {
    "Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait before trying again (when known)."}
}


class CueAutoSchema(AutoSchema):
    def _get_serializer_field_meta(self, field, direction):
        """A text input that must not be blank is trimmed first (DRF's trim_whitespace): "  " is blank too,
        so the schema asks for a character that is not a space, not only for a length of 1."""
        meta = super()._get_serializer_field_meta(field, direction)
        if (
            direction == "request"
            and type(field) is serializers.CharField
            and field.trim_whitespace
            and not field.allow_blank
        ):
            meta["pattern"] = r"\S"
        return meta

    def _get_paginator(self):
        """Plain APIViews answer their lists through project.api.paginated, DRF's default pagination class:
        document the page they answer, not a bare array. A view answering a bare list sets pagination_class = None."""
        pagination_class = getattr(self.view, "pagination_class", api_settings.DEFAULT_PAGINATION_CLASS)
        return pagination_class() if pagination_class else None

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        for status_code, description in self._error_statuses(answers_2xx=any(c < "300" for c in responses)).items():
            if status_code in responses:
                continue  # the view's own word for this status wins
            responses[status_code] = self._get_response_for_code(
                error_response(description), status_code, direction=direction
            )
        for status_code, response in responses.items():
            if status_code >= "400" and "content" not in response:
                # A view that names an error only by its description (OpenApiResponse(description=...)) still
                # answers the one error body: say so.
                body = self._get_response_for_code(error_response(""), status_code, direction=direction)
                response["content"] = body["content"]
        for status_code in ("429", "503"):
            if status_code in responses:
                responses[status_code]["headers"] = {**responses[status_code].get("headers", {}), **RETRY_AFTER}
        return dict(sorted(responses.items()))

    def _error_statuses(self, *, answers_2xx: bool) -> dict[str, str]:
        view = self.view
        statuses: dict[str, str] = {}
        has_body = self.method in ("POST", "PUT", "PATCH") and self.get_request_serializer() is not None
        query = {p["name"] for p in self._get_parameters() if p.get("in") == "query"}
        paged = self.method == "GET" and self._is_list_view() and self._get_paginator() is not None
        # An operation that only redirects (the OAuth callback) tells problems in its redirect, not with a 400.
        if has_body or (answers_2xx and query - PAGE_PARAMETERS):
            statuses["400"] = (
                "Invalid input: `error.code` is `invalid` and `error.fields` names each field's problems "
                "(or `parse_error`: the body is not readable JSON)."
            )
        if isinstance(view, TokenViewBase):
            statuses["401"] = "The credentials or the token are not valid (`no_active_account`, `token_not_valid`)."
        elif getattr(view, "authentication_classes", None):
            statuses["401"] = "No access token, or one that is expired or not valid (`not_authenticated`, ...)."
        denials = [p.message for p in self._permissions() if not isinstance(p, AllowAny)]
        if denials:
            statuses["403"] = " / ".join(dict.fromkeys(str(message) for message in denials))
        not_found = []
        if "{" in self.path:
            not_found.append("No such object in your workspace (another workspace's is not found either).")
        if paged:
            not_found.append("No such page (`?page=` past the last one).")
        if not_found:
            statuses["404"] = " ".join(not_found)
        if has_body:
            statuses["415"] = "The body's Content-Type is not one this operation reads."
        if getattr(view, "throttle_classes", None):
            statuses["429"] = "Too many attempts (`throttled`): wait Retry-After seconds."
        statuses["503"] = "The database cannot be reached (`database_unavailable`): retry after Retry-After seconds."
        return statuses

    def _permissions(self) -> list:
        try:
            return list(self.view.get_permissions())
        except AttributeError:  # a view that picks its permissions from something the mock request lacks
            return [permission() for permission in getattr(self.view, "permission_classes", [])]
