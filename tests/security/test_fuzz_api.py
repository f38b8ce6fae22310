"""Schemathesis over Cue's own OpenAPI schema, as a workspace owner: no 5xx, every 4xx in the common error shape."""

import pytest
import schemathesis
from django.core import signals
from django.db import close_old_connections
from hypothesis import HealthCheck, settings

from project.wsgi import application

# The schema view needs no database: loaded once, at collection.
schema = schemathesis.openapi.from_wsgi("/api/schema/", application)


@pytest.fixture
def keep_test_connection(db):
    """As Django's test client does: the WSGI handler must not close the test's connection (its transaction)."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def intercom_refuses_fuzzed_tokens(httpserver, settings):
    """Intercom's stand-in for the token a PUT must prove (GET /me): no fuzzed token is a real one (401)."""
    base = httpserver.url_for("").rstrip("/")
    settings.INTERCOM_API_HOSTS = {"us": base, "eu": base, "au": base}
    httpserver.expect_request("/me").respond_with_json({"type": "error.list", "errors": []}, status=401)
    return httpserver


def assert_error_shape(response) -> None:
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert isinstance(error.get("code"), str) and error["code"], body
    assert isinstance(error.get("message"), str), body
    assert isinstance(error.get("fields"), dict), body


@pytest.mark.slow
@schema.parametrize()
@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
)
def test_no_5xx_and_every_4xx_in_the_error_shape(
    case, owner_client, keep_test_connection, intercom_refuses_fuzzed_tokens
):
    token = owner_client._credentials["HTTP_AUTHORIZATION"]
    response = case.call(headers={"Authorization": token})
    assert response.status_code < 500, (case.as_curl_command(), response.text[:500])
    if 400 <= response.status_code < 500:
        assert_error_shape(response)
