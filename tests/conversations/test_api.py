"""GET /api/conversations and /api/conversations/<id>: filters, search, order, pages, only the caller's workspace."""

from datetime import UTC, datetime, timedelta

import pytest

from apps.conversations.models import Conversation, Message
from apps.integrations.models import IntercomAdmin

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def make_conversation(membership, intercom_id, *, minutes=0, messages=(), **fields):
    conversation = Conversation.objects.create(
        workspace=membership.workspace,
        intercom_id=intercom_id,
        updated_at_intercom=T0 + timedelta(minutes=minutes),
        **fields,
    )
    for i, (author_type, text) in enumerate(messages):
        Message.objects.create(
            conversation=conversation,
            workspace=membership.workspace,
            intercom_part_id=f"{intercom_id}-{i}",
            author_type=author_type,
            kind="comment",
            body_html=f"<p>{text}</p>",
            body_text=text,
            created_at_intercom=T0 + timedelta(minutes=minutes, seconds=i),
        )
    return conversation


@pytest.fixture
def inbox(owner):
    return {
        "refund": make_conversation(
            owner,
            "101",
            minutes=30,
            state="open",
            assignee_id="7",
            customer_name="Rose",
            customer_email="rose@example.com",
            tags=[{"id": "1", "name": "billing"}],
            messages=[("user", "I want a refund for the double charge"), ("admin", "On it")],
        ),
        "login": make_conversation(owner, "102", minutes=20, state="closed", messages=[("user", "Cannot log in")]),
        "snoozed": make_conversation(owner, "103", minutes=10, state="snoozed", assignee_id="8"),
    }


def ids(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [c["intercom_id"] for c in response.json()["results"]]


def test_list_newest_first_with_the_documented_fields(agent_client, inbox):
    response = agent_client.get("/api/conversations")
    assert ids(response) == ["101", "102", "103"]
    first = response.json()["results"][0]
    assert first["id"] == inbox["refund"].id
    assert first["customer"] == {"id": "", "name": "Rose", "email": "rose@example.com"}
    assert first["tags"] == [{"id": "1", "name": "billing"}]
    assert first["assignee_id"] == "7"


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"state": "open"}, ["101"]),
        ({"state": "closed"}, ["102"]),
        ({"assignee": "8"}, ["103"]),
        ({"assignee": "none"}, ["102"]),
        ({"updated_since": "2026-03-01T12:15:00Z"}, ["101", "102"]),
        ({"q": "REFUND"}, ["101"]),
        ({"q": "log in", "state": "closed"}, ["102"]),
        ({"q": "nothing like this"}, []),
        ({"q": "rose@EXAMPLE"}, ["101"]),
        ({"q": "ros", "state": "closed"}, []),
        ({"q": "  "}, ["101", "102", "103"]),  # a blank search box searches nothing out
    ],
)
def test_filters(agent_client, inbox, query, expected):
    assert ids(agent_client.get("/api/conversations", query)) == expected


def test_list_rows_carry_what_an_inbox_shows(agent_client, owner, inbox):
    """Preview and time come stored; the assignee's name, and whether the customer awaits a reply, per row."""
    IntercomAdmin.objects.create(workspace=owner.workspace, intercom_id="7", name="Ada Agent")
    make_conversation(owner, "104", minutes=40, messages=[("admin", "Hello"), ("user", "Still broken")])
    rows = {row["intercom_id"]: row for row in agent_client.get("/api/conversations").json()["results"]}
    assert rows["101"]["assignee_name"] == "Ada Agent"
    assert rows["103"]["assignee_name"] is None  # teammate 8 never synced
    assert rows["101"]["awaiting_reply"] is False  # the agent answered last
    assert rows["102"]["awaiting_reply"] is True
    assert rows["104"]["awaiting_reply"] is True  # the customer wrote after the reply
    assert rows["103"]["awaiting_reply"] is False  # no message at all
    assert rows["104"]["last_customer_message_at"] == "2026-03-01T12:40:01Z"
    assert rows["104"]["last_agent_reply_at"] == "2026-03-01T12:40:00Z"
    detail = agent_client.get(f"/api/conversations/{inbox['refund'].id}").json()
    assert (detail["assignee_name"], detail["awaiting_reply"]) == ("Ada Agent", False)


def test_another_workspaces_teammate_names_no_assignee(agent_client, make_workspace, inbox):
    other = make_workspace("Other company")
    IntercomAdmin.objects.create(workspace=other.workspace, intercom_id="7", name="Not ours")
    rows = agent_client.get("/api/conversations").json()["results"]
    assert [row["assignee_name"] for row in rows] == [None, None, None]


def test_assignee_me_is_the_members_intercom_teammate(client_for, owner, make_member, inbox):
    member = make_member(owner)
    IntercomAdmin.objects.create(workspace=owner.workspace, intercom_id="8", membership=member)
    assert ids(client_for(member).get("/api/conversations", {"assignee": "me"})) == ["103"]
    assert ids(client_for(owner).get("/api/conversations", {"assignee": "me"})) == []


@pytest.mark.parametrize(
    "query",
    [{"state": "pending"}, {"updated_since": "yesterday"}, {"assignee": "a b"}, {"q": "x" * 201}],
)
def test_bad_filters_are_400(agent_client, inbox, query):
    response = agent_client.get("/api/conversations", query)
    assert response.status_code == 400
    assert set(query) <= set(response.json()["error"]["fields"])


def test_paginated_with_bounded_queries(agent_client, owner, django_assert_max_num_queries):
    for i in range(30):
        make_conversation(owner, f"c{i}", minutes=i, assignee_id="7", messages=[("user", f"message {i}")])
    IntercomAdmin.objects.create(workspace=owner.workspace, intercom_id="7", name="Ada Agent")
    with django_assert_max_num_queries(4):
        response = agent_client.get("/api/conversations", {"page_size": 10, "q": "message"})
    body = response.json()
    assert body["count"] == 30
    assert len(body["results"]) == 10
    assert body["next"].endswith("page=2&page_size=10&q=message")


def test_list_shows_only_the_callers_workspace(other_owner_client, inbox):
    assert ids(other_owner_client.get("/api/conversations")) == []


def test_detail_with_messages_oldest_first(agent_client, inbox, django_assert_max_num_queries):
    with django_assert_max_num_queries(5):
        response = agent_client.get(f"/api/conversations/{inbox['refund'].id}")
    assert response.status_code == 200
    body = response.json()
    assert (body["id"], body["intercom_id"], body["state"]) == (inbox["refund"].id, "101", "open")
    messages = body["messages"]
    assert messages["count"] == 2
    assert [m["body_text"] for m in messages["results"]] == ["I want a refund for the double charge", "On it"]
    assert [m["is_from_customer"] for m in messages["results"]] == [True, False]
    assert messages["results"][0]["body_html"] == "<p>I want a refund for the double charge</p>"


def test_detail_messages_are_paginated(agent_client, owner):
    conversation = make_conversation(owner, "200", messages=[("user", f"m{i}") for i in range(5)])
    body = agent_client.get(f"/api/conversations/{conversation.id}", {"page_size": 2, "page": 3}).json()
    assert [m["body_text"] for m in body["messages"]["results"]] == ["m4"]
    assert body["messages"]["previous"]


def test_another_workspaces_conversation_is_404(other_owner_client, inbox):
    response = other_owner_client.get(f"/api/conversations/{inbox['refund'].id}")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_missing_conversation_is_404(agent_client):
    assert agent_client.get("/api/conversations/987654").status_code == 404


def test_anonymous_is_401(api_client, inbox):
    assert api_client.get("/api/conversations").status_code == 401
    assert api_client.get(f"/api/conversations/{inbox['refund'].id}").status_code == 401
