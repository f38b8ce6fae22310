"""Replies to Intercom: queued in a row, posted once by the send_reply task, however deliveries and failures repeat."""

import itertools
import json
import time
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone
from werkzeug import Response

from apps.conversations.models import Conversation
from apps.integrations.models import IntercomAdmin, ReplyStatus
from apps.integrations.services import reply_request
from apps.tasks.models import TaskRun, TaskStatus
from apps.tasks.outcomes import Outcome
from apps.tasks.services import task_sweep
from tests.support.locks import while_intercom_is_called

SEND_REPLY = "apps.integrations.tasks.send_reply"

_part_ids = itertools.count(37358121213)


class FakeConversations:
    """Intercom's conversations as its REST API shows them: a reply becomes a part that a later read shows."""

    def __init__(self, server):
        self.server = server
        self.parts: dict[str, list[dict]] = {}

    def conversation(self, conversation_id: str) -> dict:
        parts = self.parts.get(conversation_id, [])
        return {
            "type": "conversation",
            "id": conversation_id,
            "state": "open",
            "conversation_parts": {
                "type": "conversation_part.list",
                "conversation_parts": parts,
                "total_count": len(parts),
            },
        }

    def post(self, conversation_id: str, *, delay: float = 0.0):
        def handler(request):
            data = json.loads(request.data)
            self.parts.setdefault(conversation_id, []).append(
                {
                    "type": "conversation_part",
                    "id": str(next(_part_ids)),
                    "part_type": data["message_type"],
                    "body": f"<p>{data['body']}</p>",
                    "created_at": int(time.time()),
                    "author": {"type": "admin", "id": data["admin_id"], "name": "Cordelia"},
                }
            )
            time.sleep(delay)
            return Response(json.dumps(self.conversation(conversation_id)), content_type="application/json")

        return handler

    def read(self, conversation_id: str):
        return lambda request: Response(json.dumps(self.conversation(conversation_id)), content_type="application/json")

    def calls(self) -> list[tuple[str, str]]:
        return [(r.method, r.path) for r, _ in self.server.log]


@pytest.fixture
def intercom(intercom_api):
    fake = FakeConversations(intercom_api)
    intercom_api.expect_request("/conversations/123", method="GET").respond_with_handler(fake.read("123"))
    return fake


@pytest.fixture
def conversation(connection) -> Conversation:
    return Conversation.objects.create(workspace_id=connection.workspace_id, intercom_id="123", state="open")


def queue(conversation, owner, **kwargs):
    return reply_request(
        workspace=owner.workspace, conversation=conversation, body="Your refund is on its way.", **kwargs
    )


def retry_due_tasks(sns, hours: int = 2):
    """Let time pass: the sweeper sends what is due again, and the messages are delivered through the handler."""
    task_sweep(now=timezone.now() + timedelta(hours=hours))
    return sns.run_all()


def test_reply_is_posted_once_however_often_it_is_delivered(sns, intercom, intercom_api, conversation, owner):
    intercom_api.expect_request("/conversations/123/reply", method="POST").respond_with_handler(intercom.post("123"))
    reply = queue(conversation, owner)
    assert reply.status == ReplyStatus.PENDING
    sns.run_all(times=3)
    reply.refresh_from_db()
    assert reply.status == ReplyStatus.SENT
    [part] = intercom.parts["123"]
    assert reply.intercom_part_id == part["id"]
    assert reply.sent_at is not None
    assert intercom.calls() == [("POST", "/conversations/123/reply")]
    [(request, _)] = intercom_api.log
    assert json.loads(request.data) == {
        "message_type": "comment",
        "type": "admin",
        "admin_id": "1957471",
        "body": "Your refund is on its way.",
    }
    assert TaskRun.objects.get(name="apps.integrations.tasks.send_reply").status == TaskStatus.SUCCEEDED


def test_no_transaction_or_row_lock_is_held_while_intercom_is_called(sns, intercom, intercom_api, conversation, owner):
    reply = queue(conversation, owner)
    post = intercom.post("123")
    seen = []

    def probe_then_post(request):
        # The same message delivered again meanwhile: the live claim keeps it away from Intercom.
        seen.append(while_intercom_is_called(reply, TaskRun(pk=reply.task_id), task_id=reply.task_id))
        return post(request)

    intercom_api.expect_request("/conversations/123/reply", method="POST").respond_with_handler(probe_then_post)
    sns.run_all()
    assert seen == [{"rows_locked": False, "transactions_open": 0, "redelivery": Outcome.BUSY}]
    reply.refresh_from_db()
    assert reply.status == ReplyStatus.SENT
    assert len(intercom.parts["123"]) == 1
    assert TaskRun.objects.get(name=SEND_REPLY).status == TaskStatus.SUCCEEDED


def test_note_as_the_members_own_intercom_teammate(sns, intercom, intercom_api, conversation, owner):
    IntercomAdmin.objects.create(workspace=owner.workspace, intercom_id="5017691", membership=owner)
    intercom_api.expect_request("/conversations/123/reply", method="POST").respond_with_handler(intercom.post("123"))
    queue(conversation, owner, kind="note", requested_by=owner)
    sns.run_all()
    [part] = intercom.parts["123"]
    assert (part["part_type"], part["author"]["id"]) == ("note", "5017691")


@pytest.mark.parametrize(("status", "error"), [(401, "refused the access token"), (404, "Not found")])
def test_permanent_errors_fail_the_reply_and_reject_the_task(sns, intercom_api, conversation, owner, status, error):
    intercom_api.expect_request("/conversations/123/reply", method="POST").respond_with_json(
        {"type": "error.list", "errors": [{"code": "x", "message": "nope"}]}, status=status
    )
    reply = queue(conversation, owner)
    sns.run_all()
    retry_due_tasks(sns)
    reply.refresh_from_db()
    assert reply.status == ReplyStatus.FAILED
    assert error in reply.error
    assert len(intercom_api.log) == 1
    run = TaskRun.objects.get(name=SEND_REPLY)
    assert (run.status, run.attempts, run.next_attempt_at) == (TaskStatus.REJECTED, 1, None)
    assert run.last_error.startswith("permanent error, not retried: Intercom")
    assert f"({status})" in run.last_error.splitlines()[0]


@pytest.mark.parametrize(
    ("status", "headers", "error"),
    [
        # Intercom asks for an hour's pause: the client does not sleep that long; the task backs off.
        (429, {"Retry-After": "3600"}, "IntercomRateLimited"),
        (500, {}, "IntercomServerError"),
    ],
)
def test_after_a_429_or_a_500_the_task_retries_looks_first_then_posts(
    sns, intercom, intercom_api, conversation, owner, status, headers, error
):
    intercom_api.expect_oneshot_request("/conversations/123/reply", method="POST").respond_with_json(
        {"type": "error.list", "errors": [{"code": "x", "message": "not now"}]}, status=status, headers=headers
    )
    intercom_api.expect_request("/conversations/123/reply", method="POST").respond_with_handler(intercom.post("123"))
    reply = queue(conversation, owner)
    sns.run_all()
    reply.refresh_from_db()
    assert reply.status == ReplyStatus.PENDING
    run = TaskRun.objects.get(name=SEND_REPLY)
    assert run.status == TaskStatus.FAILED
    assert error in run.last_error
    retry_due_tasks(sns)
    reply.refresh_from_db()
    assert reply.status == ReplyStatus.SENT
    assert TaskRun.objects.get(name=SEND_REPLY).status == TaskStatus.SUCCEEDED
    assert intercom.calls() == [
        ("POST", "/conversations/123/reply"),
        ("GET", "/conversations/123"),
        ("POST", "/conversations/123/reply"),
    ]
    assert len(intercom.parts["123"]) == 1


def test_a_reply_intercom_posted_before_the_attempt_died_is_not_posted_again(
    sns, intercom, intercom_api, conversation, owner
):
    """Intercom stores the reply but answers too late: the retry finds the part and records it instead of posting."""
    intercom_api.expect_oneshot_request("/conversations/123/reply", method="POST").respond_with_handler(
        intercom.post("123", delay=0.6)
    )
    reply = queue(conversation, owner)
    sns.run_all()
    reply.refresh_from_db()
    assert reply.status == ReplyStatus.PENDING
    retry_due_tasks(sns)
    reply.refresh_from_db()
    assert reply.status == ReplyStatus.SENT
    [part] = intercom.parts["123"]
    assert reply.intercom_part_id == part["id"]
    assert intercom.calls() == [("POST", "/conversations/123/reply"), ("GET", "/conversations/123")]


def test_a_reply_whose_task_dies_is_marked_failed(sns, intercom, intercom_api, conversation, owner):
    intercom_api.expect_request("/conversations/123/reply", method="POST").respond_with_json({}, status=503)
    reply = queue(conversation, owner)
    sns.run_all()
    for day in range(1, 8):
        retry_due_tasks(sns, hours=24 * day)
    assert TaskRun.objects.get(name="apps.integrations.tasks.send_reply").status == TaskStatus.DEAD
    reply.refresh_from_db()
    assert reply.status == ReplyStatus.FAILED
    assert "503" in reply.error


def test_disconnected_before_sending(sns, intercom_api, conversation, owner, connection):
    reply = queue(conversation, owner)
    connection.delete()
    sns.run_all()
    reply.refresh_from_db()
    assert reply.status == ReplyStatus.FAILED
    assert intercom_api.log == []
    run = TaskRun.objects.get(name=SEND_REPLY)
    assert run.status == TaskStatus.REJECTED
    assert run.last_error.startswith("permanent error, not retried: ReplyNotSendable: Intercom was disconnected")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"body": "   "}, "body"), ({"body": "x" * 20_001}, "body"), ({"kind": "shout"}, "kind")],
)
def test_bad_replies_are_refused_and_nothing_is_queued(connection, owner, kwargs, field):
    conversation = Conversation.objects.create(workspace=owner.workspace, intercom_id="9")
    with pytest.raises(ValidationError) as raised:
        reply_request(workspace=owner.workspace, conversation=conversation, **({"body": "ok"} | kwargs))
    assert field in raised.value.message_dict
    assert not TaskRun.objects.exists()


@pytest.mark.django_db
def test_no_reply_without_a_connection_or_a_teammate(owner, connect):
    conversation = Conversation.objects.create(workspace=owner.workspace, intercom_id="9")
    with pytest.raises(ValidationError, match="not connected"):
        reply_request(workspace=owner.workspace, conversation=conversation, body="hi")
    connect(owner, token_admin_id="")
    with pytest.raises(ValidationError, match="teammate"):
        reply_request(workspace=owner.workspace, conversation=conversation, body="hi")
    assert not TaskRun.objects.exists()


@pytest.mark.django_db
def test_no_reply_to_another_workspaces_conversation(owner, make_workspace, connect):
    connect(owner)
    other = make_workspace("Other")
    theirs = Conversation.objects.create(workspace=other.workspace, intercom_id="9")
    with pytest.raises(ValidationError, match="Not a conversation of this workspace"):
        reply_request(workspace=owner.workspace, conversation=theirs, body="hi")
