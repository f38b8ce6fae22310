"""Tenancy, generated from the URL conf: another workspace's object is a 404 on every endpoint, lists never show it.

Every URL pattern under /api/ that takes an object id must have a case here; a new endpoint without
one fails `test_every_object_endpoint_has_a_tenancy_case`, so no endpoint can escape the check.
"""

from collections.abc import Callable

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from apps.accounts.models import Membership
from apps.conversations.models import Conversation, Message
from apps.suggestions.models import KnowledgeGap, Suggestion
from apps.tasks.models import TaskRun, TaskStatus

pytestmark = pytest.mark.django_db


def _member(other: Membership) -> dict:
    return {"membership_id": other.id}


def _task(other: Membership) -> dict:
    run = TaskRun.objects.create(name="tests.tasks.sample_tasks.make_workspace", workspace=other.workspace)
    TaskRun.objects.filter(pk=run.pk).update(status=TaskStatus.DEAD)
    return {"task_id": run.id}


def _conversation(other: Membership) -> dict:
    conversation = Conversation.objects.create(
        workspace=other.workspace, intercom_id="tenant-b-conv", customer_email="secret-b@example.com"
    )
    return {"conversation_id": conversation.id}


def _suggestion(other: Membership) -> dict:
    conversation = Conversation.objects.get(pk=_conversation(other)["conversation_id"])
    message = Message.objects.create(
        conversation=conversation, workspace=other.workspace, intercom_part_id="b1", author_type="user", kind="comment"
    )
    suggestion = Suggestion.objects.create(
        workspace=other.workspace,
        conversation=conversation,
        message=message,
        title="secret-b suggestion",
        body="secret-b body",
        score=0.9,
        rank=1,
    )
    return {"suggestion_id": suggestion.id}


def _entry(other: Membership) -> dict:
    from apps.knowledge.services import entry_create

    entry = entry_create(workspace_id=other.workspace_id, title="secret-b entry", body="<p>secret-b body</p>")
    return {"entry_id": entry.id}


def _gap(other: Membership) -> str:
    conversation = Conversation.objects.get(pk=_conversation(other)["conversation_id"])
    message = Message.objects.create(
        conversation=conversation, workspace=other.workspace, intercom_part_id="b2", author_type="user", kind="comment"
    )
    KnowledgeGap.objects.create(
        workspace=other.workspace, conversation=conversation, message=message, text="secret-b gap question"
    )
    return "secret-b gap question"


def _digest(other: Membership) -> str:
    from datetime import date

    from apps.suggestions.digests import digest_build

    digest_build(workspace_id=other.workspace_id, day=date(2001, 2, 3))
    return "2001-02-03"


# url name -> (make an object in the other workspace and return the url kwargs, methods to try)
OBJECT_CASES: dict[str, tuple[Callable[[Membership], dict], list[str]]] = {
    "member-detail": (_member, ["patch", "delete"]),
    "task-detail": (_task, ["get"]),
    "task-retry": (_task, ["post"]),
    "conversation-detail": (_conversation, ["get"]),
    "conversation-suggestions": (_conversation, ["get"]),
    "suggestion-feedback": (_suggestion, ["post"]),
    "knowledge-entry-detail": (_entry, ["get", "patch", "delete"]),
}

# list url name -> (make an object in the other workspace, return a value that must not appear in the body)
LIST_CASES: dict[str, Callable[[Membership], str]] = {
    "member-list": lambda other: other.user.email,
    "task-list": lambda other: str(_task(other)["task_id"]),
    "conversation-list": lambda other: _conversation(other) and "secret-b@example.com",
    "knowledge-gap-list": _gap,
    "knowledge-entry-list": lambda other: _entry(other) and "secret-b entry",
    "digest-list": lambda other: _digest(other),
}

# Paths with parameters that are not workspace objects (documented here so the check stays exhaustive).
NOT_WORKSPACE_OBJECTS: set[str] = set()


def _api_patterns(resolver=None, prefix="") -> list[tuple[str, URLPattern]]:
    found = []
    for entry in (resolver or get_resolver()).url_patterns:
        route = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            found += _api_patterns(entry, route)
        elif route.startswith("api/") and entry.name:
            found.append((route, entry))
    return found


def test_every_object_endpoint_has_a_tenancy_case():
    with_params = {p.name for route, p in _api_patterns() if "<" in route}
    missing = with_params - set(OBJECT_CASES) - NOT_WORKSPACE_OBJECTS
    assert not missing, f"endpoints without a tenancy case in tests/test_tenancy.py: {sorted(missing)}"


def test_every_list_endpoint_has_a_tenancy_case():
    lists = {p.name for route, p in _api_patterns() if "<" not in route and p.name.endswith("-list")}
    missing = lists - set(LIST_CASES)
    assert not missing, f"list endpoints without a tenancy case in tests/test_tenancy.py: {sorted(missing)}"


@pytest.mark.parametrize("name", sorted(OBJECT_CASES))
def test_other_workspace_object_is_404(name, owner_client, make_workspace):
    make_kwargs, methods = OBJECT_CASES[name]
    other = make_workspace("Tenant B")
    url = reverse(name, kwargs=make_kwargs(other))
    for method in methods:
        response = getattr(owner_client, method)(url, {}, format="json")
        assert response.status_code == 404, (method, url, response.content)
        assert response.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize("name", sorted(LIST_CASES))
def test_lists_never_show_another_workspace(name, owner_client, make_workspace):
    other = make_workspace("Tenant B")
    marker = LIST_CASES[name](other)
    response = owner_client.get(reverse(name))
    assert response.status_code == 200, response.content
    assert "results" in response.json()
    assert marker not in response.content.decode()
