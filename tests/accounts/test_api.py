"""Sign-up, tokens, me and team management through the HTTP API."""

import base64
import json
from datetime import timedelta

import jwt
import pytest
from django.conf import settings
from django.utils import timezone
from rest_framework_simplejwt.tokens import AccessToken

from apps.accounts.models import Membership, Role, User, Workspace
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


def assert_error(response, status: int, code: str | None = None, field: str | None = None):
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error"}, body
    assert body["error"]["message"]
    if code:
        assert body["error"]["code"] == code, body
    if field:
        assert field in body["error"]["fields"], body


def signup(client, **overrides):
    data = {"email": "ada@example.com", "password": PASSWORD, "workspace_name": "Acme"} | overrides
    return client.post("/api/auth/signup", data, format="json")


def test_signup_creates_workspace_owner_and_token_pair(api_client):
    """Sign-up makes a workspace, its owner, and returns a usable token pair."""
    response = signup(api_client)
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["workspace"]["name"] == "Acme"
    assert body["role"] == "owner"
    assert {"access", "refresh"} <= set(body)
    me = api_client.get("/api/me", HTTP_AUTHORIZATION=f"Bearer {body['access']}")
    assert me.status_code == 200
    assert me.json()["workspace"]["id"] == body["workspace"]["id"]
    assert me.json()["role"] == "owner"


def test_signup_duplicate_email_is_400_and_creates_nothing(api_client):
    """A second sign-up with the same email (any case) is refused and stores nothing."""
    assert signup(api_client).status_code == 201
    response = signup(api_client, email="ADA@example.com", workspace_name="Other")
    assert_error(response, 400, "invalid", "email")
    assert Workspace.objects.count() == 1
    assert User.objects.count() == 1


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"email": "not-an-email"}, "email"),
        ({"password": "short"}, "password"),
        ({"password": "12345678901"}, "password"),
        ({"workspace_name": ""}, "workspace_name"),
        ({"email": 42}, "email"),
    ],
)
def test_signup_bad_fields_are_400_and_change_nothing(api_client, payload, field):
    """Each invalid sign-up field is named in the error and nothing is stored."""
    assert_error(signup(api_client, **payload), 400, "invalid", field)
    assert not Workspace.objects.exists()
    assert not User.objects.exists()


def test_signup_missing_fields_named(api_client):
    response = api_client.post("/api/auth/signup", {}, format="json")
    assert_error(response, 400, "invalid")
    assert {"email", "password", "workspace_name"} <= set(response.json()["error"]["fields"])


def test_malformed_json_is_400_in_error_shape(api_client):
    """A body that is not JSON gets the common error shape."""
    response = api_client.post("/api/auth/signup", data="{not json", content_type="application/json")
    assert_error(response, 400, "parse_error")
    assert not User.objects.exists()


def test_token_obtain_and_wrong_password(api_client, owner):
    ok = api_client.post("/api/auth/token", {"email": owner.user.email, "password": PASSWORD}, format="json")
    assert ok.status_code == 200
    assert set(ok.json()) == {"access", "refresh"}
    bad = api_client.post("/api/auth/token", {"email": owner.user.email, "password": "wrong-password"}, format="json")
    assert_error(bad, 401, "no_active_account")


def test_refresh_rotates_and_blacklists_the_old_refresh(api_client, owner):
    """A refresh token works once: the rotated-out token is refused afterwards."""
    pair = api_client.post("/api/auth/token", {"email": owner.user.email, "password": PASSWORD}, format="json").json()
    first = api_client.post("/api/auth/token/refresh", {"refresh": pair["refresh"]}, format="json")
    assert first.status_code == 200
    assert set(first.json()) == {"access", "refresh"}
    assert first.json()["refresh"] != pair["refresh"]
    again = api_client.post("/api/auth/token/refresh", {"refresh": pair["refresh"]}, format="json")
    assert_error(again, 401, "token_not_valid")


def test_verify_token(api_client, owner):
    pair = api_client.post("/api/auth/token", {"email": owner.user.email, "password": PASSWORD}, format="json").json()
    assert api_client.post("/api/auth/token/verify", {"token": pair["access"]}, format="json").status_code == 200
    assert_error(api_client.post("/api/auth/token/verify", {"token": "x.y.z"}, format="json"), 401)


def test_logout_blacklists_refresh(owner_client, owner):
    from apps.accounts.api import token_pair_for

    pair = token_pair_for(owner.user)
    assert owner_client.post("/api/auth/logout", {"refresh": pair["refresh"]}, format="json").status_code == 204
    response = owner_client.post("/api/auth/token/refresh", {"refresh": pair["refresh"]}, format="json")
    assert_error(response, 401, "token_not_valid")


def test_logout_refuses_someone_elses_refresh(owner_client, make_workspace):
    from apps.accounts.api import token_pair_for

    stranger = make_workspace()
    pair = token_pair_for(stranger.user)
    assert_error(owner_client.post("/api/auth/logout", {"refresh": pair["refresh"]}, format="json"), 400, "invalid")
    ok = owner_client.post("/api/auth/token/refresh", {"refresh": pair["refresh"]}, format="json")
    assert ok.status_code == 200


def _me(api_client, token):
    return api_client.get("/api/me", HTTP_AUTHORIZATION=f"Bearer {token}")


def test_expired_access_token_is_401(api_client, owner):
    token = AccessToken.for_user(owner.user)
    token.set_exp(from_time=timezone.now() - timedelta(hours=1))
    assert_error(_me(api_client, str(token)), 401, "token_not_valid")


def test_tampered_token_is_401(api_client, owner, make_workspace):
    """Changing the payload (to another user) without re-signing is refused."""
    other = make_workspace()
    header, payload, signature = str(AccessToken.for_user(owner.user)).split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["user_id"] = str(other.user.id)
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    assert_error(_me(api_client, f"{header}.{forged}.{signature}"), 401, "token_not_valid")


def test_alg_none_and_wrong_key_tokens_are_401(api_client, owner):
    claims = dict(AccessToken.for_user(owner.user).payload)
    unsigned = jwt.encode(claims, key=None, algorithm="none")
    assert_error(_me(api_client, unsigned), 401, "token_not_valid")
    wrong_key = jwt.encode(claims, key="not-the-signing-key-" * 3, algorithm="HS256")
    assert_error(_me(api_client, wrong_key), 401, "token_not_valid")
    assert settings.SIMPLE_JWT["ALGORITHM"] == "HS256"


def test_me_requires_auth(api_client):
    assert_error(api_client.get("/api/me"), 401, "not_authenticated")


def test_members_list_paginated_and_scoped(agent_client, owner, other_owner_client, django_assert_max_num_queries):
    """Any member lists their own team, paginated; another workspace's members never appear."""
    with django_assert_max_num_queries(4):
        response = agent_client.get("/api/members")
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 2
    emails = {m["user"]["email"] for m in body["results"]}
    assert owner.user.email in emails
    assert other_owner_client.membership.user.email not in emails


def test_owner_adds_member_and_agent_cannot(owner_client, agent_client):
    response = owner_client.post(
        "/api/members", {"email": "new@example.com", "password": PASSWORD, "role": "admin"}, format="json"
    )
    assert response.status_code == 201, response.content
    assert response.json()["role"] == "admin"
    denied = agent_client.post("/api/members", {"email": "x@example.com", "password": PASSWORD}, format="json")
    assert_error(denied, 403, "permission_denied")
    assert not User.objects.filter(email="x@example.com").exists()


def test_adding_a_member_of_another_workspace_is_400(owner_client, other_owner_client):
    """An email that already belongs to another workspace cannot be pulled in."""
    email = other_owner_client.membership.user.email
    response = owner_client.post("/api/members", {"email": email, "password": PASSWORD}, format="json")
    assert_error(response, 400, "invalid", "email")
    assert Membership.objects.get(user__email=email).workspace_id == other_owner_client.membership.workspace_id


def test_admin_cannot_create_owner(owner, make_member, client_for):
    admin = client_for(make_member(owner, Role.ADMIN))
    response = admin.post(
        "/api/members", {"email": "o@example.com", "password": PASSWORD, "role": "owner"}, format="json"
    )
    assert_error(response, 400, "invalid", "role")
    assert not User.objects.filter(email="o@example.com").exists()


def test_change_role_and_last_owner_protected(owner_client, owner, make_member):
    agent = make_member(owner)
    response = owner_client.patch(f"/api/members/{agent.id}", {"role": "admin"}, format="json")
    assert response.status_code == 200
    assert response.json()["role"] == "admin"
    demote_self = owner_client.patch(f"/api/members/{owner.id}", {"role": "agent"}, format="json")
    assert_error(demote_self, 400, "invalid", "role")
    owner.refresh_from_db()
    assert owner.role == Role.OWNER
    bad_role = owner_client.patch(f"/api/members/{agent.id}", {"role": "emperor"}, format="json")
    assert_error(bad_role, 400, "invalid", "role")


def test_remove_member_revokes_tokens(owner_client, owner, make_member, client_for, api_client):
    """A removed member's access and refresh tokens stop working."""
    from apps.accounts.api import token_pair_for

    agent = make_member(owner)
    agent_client = client_for(agent)
    pair = token_pair_for(agent.user)
    assert owner_client.delete(f"/api/members/{agent.id}").status_code == 204
    assert_error(agent_client.get("/api/me"), 401)
    assert_error(api_client.post("/api/auth/token/refresh", {"refresh": pair["refresh"]}, format="json"), 401)
    login = api_client.post("/api/auth/token", {"email": agent.user.email, "password": PASSWORD}, format="json")
    assert_error(login, 401)


def test_member_endpoints_are_404_across_workspaces(owner_client, other_owner_client):
    """Another workspace's membership id is unknown here."""
    foreign = other_owner_client.membership
    assert_error(owner_client.patch(f"/api/members/{foreign.id}", {"role": "agent"}, format="json"), 404, "not_found")
    assert_error(owner_client.delete(f"/api/members/{foreign.id}"), 404, "not_found")
    foreign.refresh_from_db()
    assert foreign.role == Role.OWNER


def test_auth_endpoints_are_throttled(api_client, monkeypatch):
    """Past the auth rate, login attempts get 429 in the common shape."""
    from rest_framework.throttling import SimpleRateThrottle

    monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", {"auth": "3/min", "auth_account": "100/hour"})
    attempt = {"email": "a@example.com", "password": "x"}
    statuses = [api_client.post("/api/auth/token", attempt, format="json").status_code for _ in range(3)]
    assert statuses == [401, 401, 401]
    assert_error(api_client.post("/api/auth/token", attempt, format="json"), 429, "throttled")


def _guesses(client, n: int, *, email="a@example.com", forwarded=True, addresses=False) -> list[int]:
    """n wrong passwords; each with a new X-Forwarded-For (and, with addresses, a new client address)."""
    statuses = []
    for i in range(n):
        extra = {"HTTP_X_FORWARDED_FOR": f"198.51.100.{i % 250}, 10.0.{i // 250}.1"} if forwarded else {}
        if addresses:
            extra["REMOTE_ADDR"] = f"192.0.2.{i % 250}"
        attempt = {"email": email, "password": f"guess-{i}"}
        statuses.append(client.post("/api/auth/token", attempt, format="json", **extra).status_code)
    return statuses


def test_a_changing_x_forwarded_for_does_not_escape_the_address_throttle(api_client, owner, monkeypatch):
    """The throttle keys on the address the server saw (REMOTE_ADDR), never on a header the client writes."""
    from rest_framework.throttling import SimpleRateThrottle

    monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", {"auth": "5/min", "auth_account": "1000/hour"})
    statuses = _guesses(api_client, 60, email=owner.user.email)
    assert statuses[:5] == [401] * 5
    assert statuses[5:] == [429] * 55
    for url in ("/api/auth/signup", "/api/auth/token/refresh"):
        response = api_client.post(url, {}, format="json", HTTP_X_FORWARDED_FOR="203.0.113.77")
        assert_error(response, 429, "throttled")


def test_a_fleet_of_addresses_shares_one_accounts_login_budget(api_client, owner, monkeypatch):
    """Each guess from a new address still counts against the account; another account is not locked out."""
    from rest_framework.throttling import SimpleRateThrottle

    monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", {"auth": "1000/min", "auth_account": "10/hour"})
    statuses = _guesses(api_client, 30, email=owner.user.email.upper(), addresses=True)
    assert statuses[:10] == [401] * 10
    assert statuses[10:] == [429] * 20
    # The right password is refused too while the account is throttled (a guess that hits stays a guess).
    right = {"email": owner.user.email, "password": PASSWORD}
    assert_error(api_client.post("/api/auth/token", right, format="json", REMOTE_ADDR="192.0.2.251"), 429)
    assert _guesses(api_client, 1, email="someone-else@example.com", addresses=True) == [401]
