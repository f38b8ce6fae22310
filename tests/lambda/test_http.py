"""The HTTP API answers the same through Zappa's handler (API Gateway v1 and v2) as through Django's client."""

import json
import os

import pytest

from apps.accounts.models import User, Workspace
from tests.conftest import PASSWORD
from tests.support.events import apigw_v1, apigw_v2, response_json

EVENTS = {"v1": apigw_v1, "v2": apigw_v2}


def headers_of(result: dict) -> dict:
    if "multiValueHeaders" in result:
        return {k.lower(): v[-1] for k, v in result["multiValueHeaders"].items()}
    return {k.lower(): v for k, v in result["headers"].items()}


def cookies_of(result: dict) -> list[str]:
    if "cookies" in result:
        return [c.strip() for c in result["cookies"]]
    headers = result.get("multiValueHeaders", {})
    return [v.strip() for k, vs in headers.items() if k.lower() == "set-cookie" for v in vs]


@pytest.mark.parametrize("version", ["v1", "v2"])
@pytest.mark.parametrize("base64_body", [False, True])
def test_signup_login_and_me_match_the_test_client(lambda_handler, client, version, base64_body):
    """Sign-up, login and an authenticated request: same status, body and content type both ways."""
    make = EVENTS[version]
    payload = {"email": "via-lambda@example.com", "password": PASSWORD, "workspace_name": "Lambda Co"}

    result = lambda_handler(make("POST", "/api/auth/signup", body=payload, base64_body=base64_body))
    assert result["statusCode"] == 201, result
    signed_up = response_json(result)
    assert signed_up["workspace"]["name"] == "Lambda Co"
    assert headers_of(result)["content-type"] == "application/json"
    assert os.environ.get("CUE_REMOTE_ENV_LOADED") == "1", "the stage's remote_env was not loaded"

    # The same sign-up again, through Django's client: the same refusal body.
    direct = client.post("/api/auth/signup", payload, content_type="application/json")
    again = lambda_handler(make("POST", "/api/auth/signup", body=payload))
    assert direct.status_code == again["statusCode"] == 400
    assert direct.json() == response_json(again)

    login = lambda_handler(make("POST", "/api/auth/token", body={"email": payload["email"], "password": PASSWORD}))
    assert login["statusCode"] == 200
    tokens = response_json(login)
    assert set(tokens) == {"access", "refresh"}

    auth = {"Authorization": f"Bearer {tokens['access']}"}
    me = lambda_handler(make("GET", "/api/me", headers=auth))
    direct_me = client.get("/api/me", HTTP_AUTHORIZATION=auth["Authorization"])
    assert me["statusCode"] == direct_me.status_code == 200
    assert response_json(me) == direct_me.json()
    assert headers_of(me)["x-request-id"]


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_query_string_and_stage_prefix_in_links(lambda_handler, client, owner, make_member, version):
    """Pagination links built behind API Gateway carry the https scheme, host and stage prefix."""
    make_member(owner)
    login = lambda_handler(
        EVENTS[version]("POST", "/api/auth/token", body={"email": owner.user.email, "password": PASSWORD})
    )
    auth = {"Authorization": f"Bearer {response_json(login)['access']}"}
    result = lambda_handler(EVENTS[version]("GET", "/api/members", headers=auth, query={"page_size": "1"}))
    assert result["statusCode"] == 200
    body = response_json(result)
    assert body["count"] == 2
    assert len(body["results"]) == 1
    assert body["next"] == "https://abc123.execute-api.us-east-1.amazonaws.com/dev/api/members?page=2&page_size=1"
    direct = client.get("/api/members", {"page_size": "1"}, HTTP_AUTHORIZATION=auth["Authorization"]).json()
    assert direct["results"] == body["results"]


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_cookies_travel_both_ways(lambda_handler, version):
    """The admin login's CSRF cookie is set through the handler and accepted when sent back."""
    make = EVENTS[version]
    page = lambda_handler(make("GET", "/admin/login/"))
    assert page["statusCode"] == 200
    csrf_cookie = next(c for c in cookies_of(page) if c.startswith("csrftoken="))
    token = csrf_cookie.split(";")[0].split("=", 1)[1]
    form = f"csrfmiddlewaretoken={token}&username=nobody%40example.com&password=wrong"
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "Referer": "https://abc123.execute-api.us-east-1.amazonaws.com/dev/admin/login/",
        "Origin": "https://abc123.execute-api.us-east-1.amazonaws.com",
    }
    if version == "v2":
        event = make("POST", "/admin/login/", headers=headers, body=form, cookies=[f"csrftoken={token}"])
    else:
        event = make("POST", "/admin/login/", headers=headers | {"Cookie": f"csrftoken={token}"}, body=form)
    result = lambda_handler(event)
    # 200 = the form re-rendered for wrong credentials; a lost cookie would be 403 (CSRF failure).
    assert result["statusCode"] == 200, result.get("body", "")[:500]


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_bad_input_through_the_handler_changes_nothing(lambda_handler, version):
    result = lambda_handler(
        EVENTS[version]("POST", "/api/auth/signup", body="{broken", headers={"Content-Type": "application/json"})
    )
    assert result["statusCode"] == 400
    assert response_json(result)["error"]["code"] == "parse_error"
    assert not User.objects.exists()
    assert not Workspace.objects.exists()


def test_healthz_through_the_handler(lambda_handler):
    result = lambda_handler(apigw_v2("GET", "/healthz"))
    assert result["statusCode"] == 200
    assert json.loads(result["body"])["status"] == "ok"
