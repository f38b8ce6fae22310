"""Tenancy, generated from the URL conf: another workspace's object is a 404 on every endpoint, lists never show it.

Every URL pattern under /api/ that takes an object id must have a case here; a new endpoint without
one fails `test_every_object_endpoint_has_a_tenancy_case`, so no endpoint can escape the check.
"""

from collections.abc import Callable
from urllib.parse import parse_qs, urlsplit

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from apps.accounts.models import Membership
from apps.conversations.models import Conversation, Message
from apps.integrations.models import ConnectionMethod, IntercomConnection, WebhookDelivery
from apps.suggestions.models import KnowledgeGap, Suggestion
from apps.tasks.models import TaskRun, TaskStatus
from tests.integrations.conftest import connect, intercom_api, intercom_settings, serve_me  # noqa: F401 - fixtures
from tests.integrations.intercom_payloads import Conversation as Thread
from tests.integrations.test_webhook_lambda import webhook_event
from tests.support.events import apigw_v1, response_json, scheduled_event

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


def _proposal(other: Membership) -> dict:
    from apps.knowledge.models import EntryProposal

    proposal = EntryProposal.objects.create(
        workspace=other.workspace, text_key="b" * 64, title="secret-b proposal", body_html="<p>b</p>", body_text="b"
    )
    return {"proposal_id": proposal.id}


def _sync_run(other: Membership) -> str:
    from apps.knowledge.models import SyncRun

    SyncRun.objects.create(workspace=other.workspace, kind="history", last_error="secret-b sync error")
    return "secret-b sync error"


# url name -> (make an object in the other workspace and return the url kwargs, methods to try)
OBJECT_CASES: dict[str, tuple[Callable[[Membership], dict], list[str]]] = {
    "member-detail": (_member, ["patch", "delete"]),
    "task-detail": (_task, ["get"]),
    "task-retry": (_task, ["post"]),
    "conversation-detail": (_conversation, ["get"]),
    "conversation-suggestions": (_conversation, ["get"]),
    "suggestion-feedback": (_suggestion, ["post"]),
    "knowledge-entry-detail": (_entry, ["get", "patch", "delete"]),
    "knowledge-proposal-accept": (_proposal, ["post"]),
    "knowledge-proposal-dismiss": (_proposal, ["post"]),
}

# list url name -> (make an object in the other workspace, return a value that must not appear in the body)
LIST_CASES: dict[str, Callable[[Membership], str]] = {
    "member-list": lambda other: other.user.email,
    "task-list": lambda other: str(_task(other)["task_id"]),
    "conversation-list": lambda other: _conversation(other) and "secret-b@example.com",
    "knowledge-gap-list": _gap,
    "knowledge-entry-list": lambda other: _entry(other) and "secret-b entry",
    "digest-list": lambda other: _digest(other),
    "knowledge-proposal-list": lambda other: _proposal(other) and "secret-b proposal",
    "intercom-sync": _sync_run,
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


# ------------------------------------------------------------------------------
# Intercom app squatting (issue 14): an app id is public, so claiming one must take proof
# ------------------------------------------------------------------------------
SQUATTER_TOKEN, VICTIM_TOKEN, VICTIM_APP = "squatter-own-token", "victim-oauth-token", "victimco1"


@pytest.mark.parametrize("order", ["verified_then_installed", "installed_before_verification"])
def test_a_squatter_never_receives_another_companys_intercom(
    order, request, sns, lambda_handler, make_workspace, client_for, api_client
):
    """Replays the attack end to end, through the Zappa handler: the squatter's workspace receives nothing.

    The squatter pastes their own token with the victim's (public) app id: refused. A squatter row
    stored before the fix is disabled by the verification job, or taken over by the victim's OAuth
    install; then a webhook Intercom signs for the victim's app lands in the victim's workspace only.
    """
    # The Intercom fixtures of tests/integrations (imported above), asked for by name.
    connect, serve_me, intercom_api = map(request.getfixturevalue, ["connect", "serve_me", "intercom_api"])  # noqa: F811
    squatter, victim = make_workspace("Squatter"), make_workspace("Victim")
    serve_me("squattersown", token=SQUATTER_TOKEN)
    serve_me(VICTIM_APP, token=VICTIM_TOKEN, admin_id="31337")
    intercom_api.expect_request("/admins").respond_with_json({"type": "admin.list", "admins": []})
    intercom_api.expect_request("/auth/eagle/token", method="POST").respond_with_json({"access_token": VICTIM_TOKEN})

    # 1. Today's attack: the squatter's own token, the victim's app id. Refused, nothing stored or sent.
    claim = {"access_token": SQUATTER_TOKEN, "client_secret": "squatter-secret", "app_id": VICTIM_APP}
    response = client_for(squatter).put("/api/integrations/intercom", claim, format="json")
    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"] == "app_mismatch"
    assert not IntercomConnection.objects.exists()
    assert sns.drain() == []

    # 2. A squatter row stored before the fix, with their own token and their own app's secret.
    legacy = connect(squatter, app_id=VICTIM_APP, method=ConnectionMethod.TOKEN, client_secret="squatter-secret")
    IntercomConnection.objects.filter(pk=legacy.pk).update(access_token=SQUATTER_TOKEN)
    verify = scheduled_event(f"{lambda_handler.function_name}-apps.integrations.jobs.verify_connections")

    def victim_installs():
        start = client_for(victim).get("/api/integrations/intercom/oauth/start").json()["authorize_url"]
        state = parse_qs(urlsplit(start).query)["state"][0]
        done = api_client.get("/api/integrations/intercom/oauth/callback", {"code": "c", "state": state})
        assert "intercom=connected" in done["Location"], done["Location"]

    if order == "verified_then_installed":
        assert lambda_handler(verify)["disabled"] == 1
        legacy.refresh_from_db()
        assert legacy.disabled_code == "app_mismatch"
        victim_installs()
    else:
        victim_installs()
        legacy.refresh_from_db()
        assert legacy.disabled_code == "app_claimed"
        assert lambda_handler(verify)["disabled"] == 0, "nothing left to disable"
    sns.run_all()  # the victim's teammates sync

    # Both sides can see why.
    theirs = client_for(squatter).get("/api/integrations/intercom").json()
    assert theirs["status"] == "disabled" and VICTIM_APP in theirs["disabled_reason"]
    mine = client_for(victim).get("/api/integrations/intercom").json()
    assert (mine["status"], mine["app_id"], mine["token_admin_id"]) == ("active", VICTIM_APP, "31337")

    # 3. Intercom signs a conversation of the victim's app with Cue's app secret: the victim's, only.
    thread = Thread(2, app_id=VICTIM_APP)
    result = lambda_handler(webhook_event(apigw_v1, thread.user_created()))
    assert response_json(result) == {"status": "accepted"}, result
    sns.run_all()
    # The squatter signs one with their own app's secret, naming the victim's app: refused.
    forged = lambda_handler(webhook_event(apigw_v1, thread.user_replied(), secret="squatter-secret"))
    assert forged["statusCode"] == 401
    sns.run_all()

    assert [d.workspace_id for d in WebhookDelivery.objects.all()] == [victim.workspace_id]
    assert Conversation.objects.get().workspace_id == victim.workspace_id
    assert not WebhookDelivery.objects.filter(workspace=squatter.workspace).exists()
    assert not Conversation.objects.filter(workspace=squatter.workspace).exists()
