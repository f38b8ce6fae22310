"""X-Request-ID from a client: a sane id is kept; an over-long or malformed one is replaced, never a 500."""

import re

import pytest

from apps.integrations.models import WebhookDelivery
from apps.tasks.models import TaskRun
from tests.integrations.conftest import connect, connection, intercom_settings, post_webhook  # noqa: F401
from tests.integrations.intercom_payloads import Conversation

FRESH = re.compile(r"[0-9a-f]{32}")  # django-guid's own: a UUID4 as hex

HOSTILE = {
    "over_long": "r" * 65,
    "far_over_long": "req-" + "0123456789" * 100,
    "line_break": "abc\r\nSet-Cookie: session=stolen",
    "space": "two words",
    "non_ascii": "идентификатор",
    "control": "id\x00zero",
    "empty_start": "-starts-with-dash",
}


def hdr(value: str) -> dict:
    return {"HTTP_X_REQUEST_ID": value}


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_webhook_with_a_bad_request_id_is_stored_with_a_fresh_one(connection, post_webhook, name):  # noqa: F811
    given = HOSTILE[name]
    response = post_webhook(Conversation(1).user_created(), headers=hdr(given))
    assert response.status_code == 200, response.content
    assert response.json() == {"status": "accepted"}
    used = response["X-Request-ID"]
    assert used != given
    assert FRESH.fullmatch(used)
    # The delivery and its task were stored, under the id the response names.
    assert WebhookDelivery.objects.count() == 1
    run = TaskRun.objects.get(name="apps.integrations.tasks.process_delivery")
    assert run.correlation_id == used


@pytest.mark.parametrize("given", ["3f2c8a9e-6b1d-4c6e-9a51-0b7d4f2e8c11", "Root-1.abc:def_2", "r" * 64])
def test_a_sane_request_id_is_kept(connection, post_webhook, given):  # noqa: F811
    response = post_webhook(Conversation(1).user_created(), headers=hdr(given))
    assert response.status_code == 200, response.content
    assert response["X-Request-ID"] == given
    assert TaskRun.objects.get().correlation_id == given


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_api_with_a_bad_request_id_answers_with_a_fresh_one(owner_client, name):
    response = owner_client.get("/api/tasks", **hdr(HOSTILE[name]))
    assert response.status_code == 200, response.content
    assert FRESH.fullmatch(response["X-Request-ID"])


def test_api_error_names_the_fresh_request_id(owner_client):
    response = owner_client.get("/api/tasks?status=nonsense", **hdr("x" * 200))
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid"
    assert FRESH.fullmatch(response["X-Request-ID"])


def test_a_missing_request_id_gets_a_fresh_one(owner_client):
    response = owner_client.get("/api/tasks")
    assert FRESH.fullmatch(response["X-Request-ID"])
