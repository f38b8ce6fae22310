"""The Intercom REST client against a real HTTP server on 127.0.0.1: exact requests, errors, retries, timeouts."""

import json
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from werkzeug import Response

from apps.integrations.client import (
    IntercomAuthError,
    IntercomClient,
    IntercomClientError,
    IntercomNotFound,
    IntercomPaced,
    IntercomRateLimited,
    IntercomServerError,
    IntercomTimeout,
    retry_after_seconds,
)
from tests.integrations.conftest import TOKEN

pytestmark = pytest.mark.django_db

ERROR_401 = {
    "type": "error.list",
    "request_id": "req-1",
    "errors": [{"code": "unauthorized", "message": "Access Token Invalid"}],
}
ERROR_404 = {
    "type": "error.list",
    "request_id": "req-2",
    "errors": [{"code": "not_found", "message": "Resource Not Found"}],
}
REPLIED = {
    "type": "conversation",
    "id": "123",
    "conversation_parts": {
        "type": "conversation_part.list",
        "conversation_parts": [
            {"type": "conversation_part", "id": "900", "part_type": "comment", "author": {"type": "admin", "id": "7"}}
        ],
        "total_count": 1,
    },
}


class Sleeps(list):
    """Records how long the client chose to wait, instead of waiting (the server is real; the clock is ours)."""

    def __call__(self, seconds):
        self.append(seconds)


@pytest.fixture
def sleeps():
    return Sleeps()


@pytest.fixture
def client(intercom_api, connection, sleeps):
    return IntercomClient.for_connection(connection, sleep=sleeps)


def requests_made(server):
    return [(r.method, r.path) for r, _ in server.log]


def test_reply_sends_exactly_what_intercom_documents(client, intercom_api):
    intercom_api.expect_request("/conversations/123/reply", method="POST").respond_with_json(REPLIED)
    body = client.reply_to_conversation("123", admin_id="7", body="<p>Hi there</p>", message_type="comment")
    assert body == REPLIED
    [(request, _)] = intercom_api.log
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert request.headers["Intercom-Version"] == "2.11"
    assert request.headers["Accept"] == "application/json"
    assert request.headers["Content-Type"] == "application/json"
    assert json.loads(request.data) == {
        "message_type": "comment",
        "type": "admin",
        "admin_id": "7",
        "body": "<p>Hi there</p>",
    }


def test_note_tag_admins_and_me(client, intercom_api):
    intercom_api.expect_request("/conversations/123/reply", method="POST").respond_with_json(REPLIED)
    intercom_api.expect_request("/conversations/123/tags", method="POST").respond_with_json(
        {"type": "tag", "id": "81", "name": "billing"}
    )
    intercom_api.expect_request("/admins", method="GET").respond_with_json(
        {"type": "admin.list", "admins": [{"type": "admin", "id": "7", "name": "Ann", "email": "ann@example.com"}]}
    )
    intercom_api.expect_request("/me", method="GET").respond_with_json(
        {"type": "admin", "id": "7", "app": {"type": "app", "id_code": "i6wc9ipe"}}
    )
    client.reply_to_conversation("123", admin_id="7", body="internal", message_type="note")
    client.tag_conversation("123", tag_id="81", admin_id="7")
    assert client.list_admins()[0]["email"] == "ann@example.com"
    assert client.me()["app"]["id_code"] == "i6wc9ipe"
    bodies = [json.loads(r.data) if r.data else None for r, _ in intercom_api.log]
    assert bodies[0]["message_type"] == "note"
    assert bodies[1] == {"id": "81", "admin_id": "7"}
    assert requests_made(intercom_api) == [
        ("POST", "/conversations/123/reply"),
        ("POST", "/conversations/123/tags"),
        ("GET", "/admins"),
        ("GET", "/me"),
    ]


def test_region_host_and_pinned_version(intercom_api, owner, connect, sleeps):
    """An EU workspace's calls go to the EU host, with the version pinned on its connection."""
    conn = connect(owner, region="eu")
    conn.api_version = "2.9"
    intercom_api.expect_request("/eu/admins").respond_with_json({"type": "admin.list", "admins": []})
    assert IntercomClient.for_connection(conn, sleep=sleeps).list_admins() == []
    [(request, _)] = intercom_api.log
    assert request.headers["Intercom-Version"] == "2.9"


def test_401_is_an_auth_error_and_not_retried(client, intercom_api):
    intercom_api.expect_request("/admins").respond_with_json(ERROR_401, status=401)
    with pytest.raises(IntercomAuthError) as raised:
        client.list_admins()
    assert raised.value.status == 401
    assert raised.value.request_id == "req-1"
    assert "Access Token Invalid" in str(raised.value)
    assert len(intercom_api.log) == 1


def test_404_is_not_found_and_not_retried(client, intercom_api):
    intercom_api.expect_request("/conversations/404404").respond_with_json(ERROR_404, status=404)
    with pytest.raises(IntercomNotFound):
        client.get_conversation("404404")
    assert len(intercom_api.log) == 1


def test_other_4xx_is_a_client_error(client, intercom_api):
    intercom_api.expect_request("/conversations/1/reply", method="POST").respond_with_json(
        {"type": "error.list", "errors": [{"code": "parameter_invalid", "message": "Body is too long"}]}, status=422
    )
    with pytest.raises(IntercomClientError, match="Body is too long"):
        client.reply_to_conversation("1", admin_id="7", body="x", message_type="comment")
    assert len(intercom_api.log) == 1


def test_429_waits_as_long_as_retry_after_says(client, intercom_api, sleeps):
    intercom_api.expect_ordered_request("/admins").respond_with_json({}, status=429, headers={"Retry-After": "2"})
    intercom_api.expect_ordered_request("/admins").respond_with_json({"type": "admin.list", "admins": []})
    assert client.list_admins() == []
    assert sleeps == [2.0]
    assert len(intercom_api.log) == 2


def test_429_on_a_reply_is_retried_too(client, intercom_api, sleeps):
    """A 429 means Intercom did nothing: even a reply is safe to send again."""
    intercom_api.expect_ordered_request("/conversations/1/reply", method="POST").respond_with_json(
        {}, status=429, headers={"Retry-After": "1"}
    )
    intercom_api.expect_ordered_request("/conversations/1/reply", method="POST").respond_with_json(REPLIED)
    client.reply_to_conversation("1", admin_id="7", body="x", message_type="comment")
    assert sleeps == [1.0]


def test_429_with_a_long_retry_after_gives_up_at_once(client, intercom_api, sleeps, settings):
    """Waiting minutes inside an invocation is pointless: the task backs off instead."""
    intercom_api.expect_request("/admins").respond_with_json({}, status=429, headers={"Retry-After": "3600"})
    with pytest.raises(IntercomRateLimited) as raised:
        client.list_admins()
    assert raised.value.retry_after == 3600
    assert sleeps == []
    assert len(intercom_api.log) == 1


def test_429_retries_run_out(client, intercom_api, sleeps):
    intercom_api.expect_request("/admins").respond_with_json({}, status=429, headers={"Retry-After": "1"})
    with pytest.raises(IntercomRateLimited):
        client.list_admins()
    assert len(intercom_api.log) == client.max_retries + 1
    assert sleeps == [1.0] * client.max_retries


def test_500_on_a_read_is_retried_with_backoff(client, intercom_api, sleeps):
    intercom_api.expect_ordered_request("/admins").respond_with_json({}, status=500)
    intercom_api.expect_ordered_request("/admins").respond_with_json({}, status=503)
    intercom_api.expect_ordered_request("/admins").respond_with_json({"type": "admin.list", "admins": []})
    assert client.list_admins() == []
    assert len(sleeps) == 2
    assert all(0 <= s <= 8 for s in sleeps)


def test_500_on_a_reply_is_not_repeated(client, intercom_api, sleeps):
    """Intercom may have posted it: the reply is not sent twice by the client (the task looks first, later)."""
    intercom_api.expect_request("/conversations/1/reply", method="POST").respond_with_json({}, status=500)
    with pytest.raises(IntercomServerError) as raised:
        client.reply_to_conversation("1", admin_id="7", body="x", message_type="comment")
    assert raised.value.retryable
    assert len(intercom_api.log) == 1
    assert sleeps == []


def _slow(request):
    time.sleep(0.6)
    return Response(json.dumps(REPLIED), status=200, content_type="application/json")


def test_a_reply_that_times_out_is_not_repeated(client, intercom_api):
    intercom_api.expect_request("/conversations/1/reply", method="POST").respond_with_handler(_slow)
    with pytest.raises(IntercomTimeout):
        client.reply_to_conversation("1", admin_id="7", body="x", message_type="comment")
    assert len(intercom_api.log) <= 1


def test_a_read_that_times_out_is_retried_then_fails(intercom_api, connection, sleeps):
    client = IntercomClient.for_connection(connection, sleep=sleeps, max_retries=1)
    intercom_api.expect_request("/admins").respond_with_handler(_slow)
    with pytest.raises(IntercomTimeout):
        client.list_admins()
    assert len(sleeps) == 1


def test_retry_after_as_an_http_date_and_as_a_reset_time():
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    response = Response()
    response.headers["Retry-After"] = format_datetime(now + timedelta(seconds=7), usegmt=True)

    class Wrapped:
        headers = response.headers

    assert retry_after_seconds(Wrapped, now=now.timestamp()) == pytest.approx(7)
    Wrapped.headers = {"X-RateLimit-Reset": str(int(now.timestamp()) + 12)}
    assert retry_after_seconds(Wrapped, now=now.timestamp()) == pytest.approx(12)
    Wrapped.headers = {}
    assert retry_after_seconds(Wrapped, now=now.timestamp()) is None


def _window(remaining: int, reset_in: int, limit: int = 1000) -> dict:
    reset = str(int(time.time()) + reset_in)
    return {"X-RateLimit-Limit": str(limit), "X-RateLimit-Remaining": str(remaining), "X-RateLimit-Reset": reset}


def test_pacing_waits_for_the_window_before_running_dry(intercom_api, connection, sleeps):
    """With fewer calls left than the floor, the next call first waits for the window's reset: no 429."""
    paced = IntercomClient.for_connection(connection, sleep=sleeps, pace_floor=20, max_pace_wait=10)
    intercom_api.expect_ordered_request("/admins").respond_with_json({"admins": []}, headers=_window(5, 3))
    intercom_api.expect_ordered_request("/admins").respond_with_json({"admins": []}, headers=_window(999, 10))
    paced.list_admins()
    assert sleeps == []
    paced.list_admins()
    assert len(sleeps) == 1 and 1.5 < sleeps[0] <= 3.0
    assert (paced.requests, paced.rate_limited, paced.paced_seconds) == (2, 0, sleeps[0])


def test_pacing_refuses_a_wait_longer_than_allowed(intercom_api, connection, sleeps):
    """A reset further away than the caller may wait raises IntercomPaced before any call is made."""
    paced = IntercomClient.for_connection(connection, sleep=sleeps, pace_floor=20, max_pace_wait=2)
    intercom_api.expect_request("/admins").respond_with_json({"admins": []}, headers=_window(5, 30))
    paced.list_admins()
    with pytest.raises(IntercomPaced) as raised:
        paced.list_admins()
    assert raised.value.resume_at == paced.rate_reset
    assert len(intercom_api.log) == 1 and sleeps == []


def test_pacing_floor_is_at_most_a_fifth_of_a_small_window(intercom_api, connection, sleeps):
    """A window of 10 calls is not paced at 5 left (its floor is 2), only below 2."""
    paced = IntercomClient.for_connection(connection, sleep=sleeps, pace_floor=20, max_pace_wait=10)
    intercom_api.expect_ordered_request("/admins").respond_with_json({"admins": []}, headers=_window(5, 3, limit=10))
    intercom_api.expect_ordered_request("/admins").respond_with_json({"admins": []}, headers=_window(1, 3, limit=10))
    intercom_api.expect_ordered_request("/admins").respond_with_json({"admins": []}, headers=_window(9, 3, limit=10))
    paced.list_admins()
    paced.list_admins()
    assert sleeps == []
    paced.list_admins()
    assert len(sleeps) == 1
