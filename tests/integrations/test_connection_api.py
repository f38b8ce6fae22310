"""GET/PUT/DELETE /api/integrations/intercom and the OAuth install flow; secrets stored encrypted, never returned."""

import json
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core import signing
from django.db import connection as db_connection

from apps.accounts.models import Role
from apps.integrations import services
from apps.integrations.models import ConnectionMethod, IntercomAdmin, IntercomConnection
from apps.tasks.models import TaskRun
from tests.integrations.conftest import TOKEN

URL = "/api/integrations/intercom"
PUT = {"access_token": TOKEN, "client_secret": "own-app-client-secret", "app_id": "ownapp01", "region": "eu"}


def assert_error(response, status: int, code: str | None = None, field: str | None = None):
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error"}
    if code:
        assert body["error"]["code"] == code, body
    if field:
        assert field in body["error"]["fields"], body


def raw_columns(app_id: str) -> tuple[str, str]:
    with db_connection.cursor() as cursor:
        cursor.execute(
            "SELECT access_token, client_secret FROM integrations_intercomconnection WHERE app_id = %s", [app_id]
        )
        return cursor.fetchone()


@pytest.mark.django_db
class TestConnectionApi:
    @pytest.fixture(autouse=True)
    def _intercom_knows_the_tokens(self, serve_me):
        """Intercom's GET /me: the token belongs to ownapp01 on the EU host, to ownapp02 on the US host."""
        serve_me("ownapp01", region="eu")
        serve_me("ownapp02", region="us")

    def test_not_connected(self, owner_client):
        body = owner_client.get(URL).json()
        assert body["connected"] is False
        assert body["status"] == "not_connected"
        assert body["webhook_url"] == "http://testserver/webhooks/intercom"
        assert body["canvas_initialize_url"] == "http://testserver/intercom/canvas/initialize"

    def test_put_connects_and_never_returns_secrets(self, owner_client, owner, intercom_api):
        response = owner_client.put(URL, PUT, format="json")
        assert response.status_code == 201, response.content
        body = response.json()
        assert body["connected"] is True
        assert body["status"] == "active"
        assert body["token_admin_id"] == "991", "the token's admin, from GET /me"
        assert body["verified_at"] is not None
        [(me_request, _)] = intercom_api.log
        assert (me_request.path, me_request.headers["Authorization"]) == ("/eu/me", f"Bearer {TOKEN}")
        assert (body["app_id"], body["region"], body["method"]) == ("ownapp01", "eu", "token")
        assert body["api_version"] == "2.11"
        assert body["has_access_token"] is True
        assert body["signature_secret"] == "workspace"
        text = response.content.decode() + owner_client.get(URL).content.decode()
        assert TOKEN not in text
        assert PUT["client_secret"] not in text
        assert not {"access_token", "client_secret"} & set(body)
        # Sync of teammates and the first Help Center sync are queued (outbound calls: never in the request).
        assert sorted(TaskRun.objects.values_list("name", flat=True)) == [
            "apps.integrations.tasks.sync_admins",
            "apps.knowledge.tasks.sync_help_center",
        ]

    def test_secrets_are_encrypted_at_rest(self, owner_client):
        owner_client.put(URL, PUT, format="json")
        token_column, secret_column = raw_columns("ownapp01")
        assert TOKEN not in token_column
        assert PUT["client_secret"] not in secret_column
        conn = IntercomConnection.objects.get()
        assert (conn.access_token, conn.client_secret) == (TOKEN, PUT["client_secret"])

    def test_put_again_replaces_and_answers_200(self, owner_client):
        owner_client.put(URL, PUT, format="json")
        response = owner_client.put(URL, PUT | {"app_id": "ownapp02", "region": "us"}, format="json")
        assert response.status_code == 200
        assert IntercomConnection.objects.get().app_id == "ownapp02"
        # Only the first install starts a Help Center sync; a reconnection leaves it to the daily job.
        assert TaskRun.objects.filter(name="apps.knowledge.tasks.sync_help_center").count() == 1

    @pytest.mark.parametrize(
        ("change", "field"),
        [
            ({"access_token": ""}, "access_token"),
            ({"client_secret": ""}, "client_secret"),
            ({"app_id": "has space"}, "app_id"),
            ({"app_id": "x" * 65}, "app_id"),
            ({"region": "mars"}, "region"),
            ({"access_token": "t" * 501}, "access_token"),
            # What cannot travel in an Authorization header is refused before Intercom is asked.
            ({"access_token": "tok\u0100en"}, "access_token"),
            ({"access_token": "tok\r\nX-Injected: 1"}, "access_token"),
            ({"access_token": "two words"}, "access_token"),
        ],
    )
    def test_bad_input_is_400_and_stores_nothing(self, owner_client, change, field, intercom_api):
        assert_error(owner_client.put(URL, PUT | change, format="json"), 400, "invalid", field)
        assert not IntercomConnection.objects.exists()
        assert not TaskRun.objects.exists()
        assert intercom_api.log == [], "Intercom is not asked about a request that is refused anyway"

    def test_missing_fields_are_named(self, owner_client):
        response = owner_client.put(URL, {}, format="json")
        assert_error(response, 400, "invalid")
        fields = set(response.json()["error"]["fields"])
        assert {"access_token", "client_secret"} <= fields
        assert "app_id" not in fields, "Intercom says which app the token belongs to"

    def test_delete_removes_the_token_and_secret(self, owner_client, owner):
        owner_client.put(URL, PUT, format="json")
        IntercomAdmin.objects.create(workspace=owner.workspace, intercom_id="1")
        assert owner_client.delete(URL).status_code == 204
        assert not IntercomConnection.objects.exists()
        assert not IntercomAdmin.objects.exists()
        assert_error(owner_client.delete(URL), 404, "not_found")

    def test_agents_cannot(self, agent_client):
        for response in (agent_client.get(URL), agent_client.put(URL, PUT, format="json"), agent_client.delete(URL)):
            assert_error(response, 403, "permission_denied")
        assert not IntercomConnection.objects.exists()

    def test_anonymous_cannot(self, api_client):
        assert api_client.get(URL).status_code == 401

    def test_another_workspace_sees_only_its_own(self, owner_client, other_owner_client):
        owner_client.put(URL, PUT, format="json")
        assert other_owner_client.get(URL).json()["connected"] is False
        assert_error(other_owner_client.delete(URL), 404)
        assert IntercomConnection.objects.count() == 1

    def test_an_admin_can(self, owner, make_member, client_for):
        admin = client_for(make_member(owner, Role.ADMIN))
        assert admin.put(URL, PUT, format="json").status_code == 201


# ------------------------------------------------------------------------------
# OAuth
# ------------------------------------------------------------------------------
def start(api_client, region="us") -> str:
    response = api_client.get(f"{URL}/oauth/start", {"region": region})
    assert response.status_code == 200, response.content
    return response.json()["authorize_url"]


def state_of(authorize_url: str) -> str:
    return parse_qs(urlsplit(authorize_url).query)["state"][0]


def reason_of(response) -> dict:
    assert response.status_code == 302, response.content
    return {k: v[0] for k, v in parse_qs(urlsplit(response["Location"]).query).items()}


ME = {
    "type": "admin",
    "id": "991",
    "name": "Olive Owner",
    "email": "olive@example.com",
    "app": {"type": "app", "id_code": "oauthapp1", "name": "Acme", "region": "US"},
}


@pytest.fixture
def intercom_oauth(intercom_api):
    intercom_api.expect_request("/auth/eagle/token", method="POST").respond_with_json(
        {"token_type": "Bearer", "token": "oauth-token-1", "access_token": "oauth-token-1"}
    )
    intercom_api.expect_request("/me", method="GET").respond_with_json(ME)
    return intercom_api


@pytest.mark.django_db
class TestOAuth:
    def test_start_gives_the_authorize_url_with_a_signed_state(self, owner_client, owner):
        url = start(owner_client, "eu")
        parts = urlsplit(url)
        assert f"{parts.scheme}://{parts.netloc}{parts.path}" == "https://app.intercom.com/oauth"
        assert parse_qs(parts.query)["client_id"] == ["cue-client-id"]
        claims = signing.loads(state_of(url), salt=services.OAUTH_STATE_SALT)
        assert (claims["w"], claims["m"], claims["r"]) == (owner.workspace_id, owner.id, "eu")

    def test_start_refused_to_agents_and_when_not_configured(self, owner_client, agent_client, settings):
        assert agent_client.get(f"{URL}/oauth/start").status_code == 403
        assert_error(owner_client.get(f"{URL}/oauth/start", {"region": "mars"}), 400, "invalid", "region")
        settings.INTERCOM_CLIENT_ID = ""
        assert_error(owner_client.get(f"{URL}/oauth/start"), 400, "invalid", "oauth")

    def test_callback_trades_the_code_and_connects(self, owner_client, api_client, intercom_oauth, owner):
        state = state_of(start(owner_client))
        response = api_client.get(f"{URL}/oauth/callback", {"code": "the-code", "state": state})
        assert reason_of(response) == {"intercom": "connected"}
        assert response["Location"].startswith("/console/?")
        conn = IntercomConnection.objects.get()
        assert (conn.workspace_id, conn.app_id, conn.method) == (
            owner.workspace_id,
            "oauthapp1",
            ConnectionMethod.OAUTH,
        )
        assert (conn.access_token, conn.client_secret, conn.token_admin_id) == ("oauth-token-1", "", "991")
        assert "oauth-token-1" not in raw_columns("oauthapp1")[0]
        token_request, me_request = (r for r, _ in intercom_oauth.log)
        assert parse_qs(token_request.get_data(as_text=True)) == {
            "code": ["the-code"],
            "client_id": ["cue-client-id"],
            "client_secret": ["cue-public-app-client-secret"],
        }
        assert me_request.headers["Authorization"] == "Bearer oauth-token-1"
        assert me_request.headers["Intercom-Version"] == "2.11"
        assert owner_client.get(URL).json()["signature_secret"] == "app"

    def test_callback_for_an_eu_workspace_asks_the_eu_host(self, owner_client, api_client, intercom_api):
        intercom_api.expect_request("/auth/eagle/token", method="POST").respond_with_json({"access_token": "t-eu"})
        intercom_api.expect_request("/eu/me").respond_with_json(ME)
        response = api_client.get(f"{URL}/oauth/callback", {"code": "c", "state": state_of(start(owner_client, "eu"))})
        assert reason_of(response) == {"intercom": "connected"}
        assert IntercomConnection.objects.get().region == "eu"

    @pytest.mark.parametrize(
        "state",
        ["", "garbage", signing.dumps({"w": 1, "m": 1, "r": "us"}, salt="another-salt")],
        ids=["empty", "garbage", "other-salt"],  # the signed value carries a timestamp: ids stable across workers
    )
    def test_a_bad_state_is_refused_before_calling_intercom(self, api_client, intercom_oauth, state):
        response = api_client.get(f"{URL}/oauth/callback", {"code": "c", "state": state})
        assert reason_of(response) == {"intercom": "error", "reason": "state_invalid"}
        assert intercom_oauth.log == []
        assert not IntercomConnection.objects.exists()

    def test_an_expired_state_is_refused(self, owner_client, api_client, intercom_oauth, monkeypatch):
        state = state_of(start(owner_client))
        monkeypatch.setattr(services, "OAUTH_STATE_MAX_AGE_SECONDS", -1)
        response = api_client.get(f"{URL}/oauth/callback", {"code": "c", "state": state})
        assert reason_of(response)["reason"] == "state_expired"
        assert not IntercomConnection.objects.exists()

    def test_a_state_of_a_member_who_is_no_longer_a_manager(self, owner, make_member, client_for, api_client):
        admin = make_member(owner, Role.ADMIN)
        state = state_of(start(client_for(admin)))
        admin.role = Role.AGENT
        admin.save()
        response = api_client.get(f"{URL}/oauth/callback", {"code": "c", "state": state})
        assert reason_of(response)["reason"] == "not_allowed"

    def test_a_refused_code(self, owner_client, api_client, intercom_api):
        intercom_api.expect_request("/auth/eagle/token", method="POST").respond_with_json(
            {"type": "error.list", "errors": [{"code": "invalid_grant", "message": "Unauthorized Code"}]}, status=400
        )
        response = api_client.get(f"{URL}/oauth/callback", {"code": "used", "state": state_of(start(owner_client))})
        assert reason_of(response)["reason"] == "exchange_failed"
        assert not IntercomConnection.objects.exists()

    def test_a_token_from_another_region(self, owner_client, api_client, intercom_api):
        intercom_api.expect_request("/auth/eagle/token", method="POST").respond_with_json({"access_token": "t"})
        intercom_api.expect_request("/au/me").respond_with_json({"type": "error.list", "errors": []}, status=401)
        response = api_client.get(f"{URL}/oauth/callback", {"code": "c", "state": state_of(start(owner_client, "au"))})
        assert reason_of(response)["reason"] == "wrong_region"
        assert not IntercomConnection.objects.exists()

    def test_an_intercom_workspace_already_connected_elsewhere_is_taken_over(
        self, owner_client, api_client, intercom_oauth, make_workspace, connect, owner
    ):
        """Installing proves ownership (Intercom's /me names the app): the other workspace's connection is disabled."""
        first = connect(make_workspace("First"), app_id="oauthapp1")
        response = api_client.get(f"{URL}/oauth/callback", {"code": "c", "state": state_of(start(owner_client))})
        assert reason_of(response) == {"intercom": "connected"}
        first.refresh_from_db()
        assert (first.is_active, first.disabled_code) == (False, "app_claimed")
        assert IntercomConnection.objects.get(disabled_at=None).workspace_id == owner.workspace_id

    def test_no_code(self, owner_client, api_client, intercom_oauth):
        response = api_client.get(f"{URL}/oauth/callback", {"state": state_of(start(owner_client))})
        assert reason_of(response)["reason"] == "code_missing"
        assert intercom_oauth.log == []


# ------------------------------------------------------------------------------
# After connecting: teammates synced in a task, mapped to members by email
# ------------------------------------------------------------------------------
def test_teammates_are_synced_by_the_task_and_mapped_to_members(sns, owner_client, owner, make_member, intercom_api):
    agent = make_member(owner)
    intercom_api.expect_request("/eu/me").respond_with_json(ME)
    intercom_api.expect_request("/eu/admins").respond_with_json(
        {
            "type": "admin.list",
            "admins": [
                {"type": "admin", "id": "991", "name": "Olive", "email": owner.user.email.upper()},
                {"type": "admin", "id": "992", "name": "Agent", "email": agent.user.email},
                {"type": "admin", "id": "993", "name": "Not in Cue", "email": "stranger@example.com"},
            ],
        }
    )
    empty_help_center = {"type": "list", "pages": {"type": "pages", "page": 1, "total_pages": 1}, "data": []}
    intercom_api.expect_request("/eu/articles").respond_with_json(empty_help_center | {"total_count": 0})
    hint_left_out = {k: v for k, v in PUT.items() if k != "app_id"}
    assert owner_client.put(URL, hint_left_out, format="json").json()["app_id"] == "oauthapp1"
    assert [r.path for r, _ in intercom_api.log] == ["/eu/me"], "only GET /me is called in the request"
    sent = [json.loads(message)["args"][0]["task"] for message in sns.run_all()]
    # The teammates' sync, and the first Help Center sync (its chain: page, finish).
    assert sent[:2] == ["apps.integrations.tasks.sync_admins", "apps.knowledge.tasks.sync_help_center"]
    admins = {a.intercom_id: a.membership_id for a in IntercomAdmin.objects.all()}
    assert admins == {"991": owner.id, "992": agent.id, "993": None}
    conn = IntercomConnection.objects.get()
    assert conn.token_admin_id == "991"
    assert conn.admins_synced_at is not None
