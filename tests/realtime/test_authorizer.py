"""The IoT custom authorizer through Cue's Lambda entry point: valid, expired, tampered, foreign, cross-workspace."""

import base64
import json
import os
import re
import uuid
from datetime import timedelta

import jwt
import pytest
from django.utils import timezone

from apps.accounts import services as accounts
from apps.accounts.api import token_pair_for
from apps.realtime import tokens
from apps.realtime.policies import MAX_POLICY_CHARS
from apps.realtime.tokens import realtime_token_issue
from tests.support import iot_policy
from tests.support.events import ACCOUNT, REGION

WHERE = {"region": REGION, "account": ACCOUNT}


def authorizer_event(password: str | None, client_id: str, *, raw_password: str | None = None) -> dict:
    """The event AWS IoT Core sends for an MQTT-over-WSS CONNECT with username and password."""
    mqtt = {"username": "cue?x-amz-customauthorizer-name=cue-realtime", "clientId": client_id}
    if raw_password is not None:
        mqtt["password"] = raw_password
    elif password is not None:
        mqtt["password"] = base64.b64encode(password.encode()).decode()
    return {
        "signatureVerified": False,
        "protocols": ["tls", "mqtt"],
        "protocolData": {"tls": {"serverName": "abc-ats.iot.us-east-1.amazonaws.com"}, "mqtt": mqtt},
        "connectionMetadata": {"id": str(uuid.uuid4())},
    }


def issue(membership, client_id="cue-browser-1", **kwargs) -> str:
    token, _ = realtime_token_issue(
        user_id=membership.user_id, workspace_id=membership.workspace_id, client_id=client_id, **kwargs
    )
    return token


def assert_denied(result: dict) -> None:
    assert result["isAuthenticated"] is False
    assert result["policyDocuments"] == []


def test_valid_token_gets_a_policy_for_its_workspace(lambda_handler, owner):
    """A cold start routed by Cue's entry point (Zappa's init ran: remote_env loaded) allows the member."""
    result = lambda_handler(authorizer_event(issue(owner), "cue-browser-1"))
    assert os.environ.get("CUE_REMOTE_ENV_LOADED") == "1"
    assert result["isAuthenticated"] is True
    assert re.fullmatch(r"[a-zA-Z0-9]{1,128}", result["principalId"])
    assert result["refreshAfterInSeconds"] == 300
    assert 300 <= result["disconnectAfterInSeconds"] <= 900
    [policy] = result["policyDocuments"]
    assert len(json.dumps(policy)) <= MAX_POLICY_CHARS
    ws, user = owner.workspace_id, owner.user_id
    assert iot_policy.can_connect([policy], client_id="cue-browser-1", **WHERE)
    assert not iot_policy.can_connect([policy], client_id="someone-else", **WHERE)
    assert iot_policy.can_subscribe([policy], topic_filter=f"cue/{ws}/conversations/#", **WHERE)
    assert iot_policy.can_subscribe([policy], topic_filter=f"cue/{ws}/agents/{user}/#", **WHERE)
    assert iot_policy.can_receive([policy], topic=f"cue/{ws}/conversations/42/suggestions", **WHERE)


def test_expired_token_is_refused(lambda_handler, owner, settings):
    long_ago = timezone.now() - timedelta(seconds=settings.REALTIME_TOKEN_SECONDS + 1)
    assert_denied(lambda_handler(authorizer_event(issue(owner, now=long_ago), "cue-browser-1")))


def test_tampered_token_is_refused(lambda_handler, owner, make_workspace):
    """Claims changed after signing (another workspace), or a token signed with another key."""
    other = make_workspace().workspace
    header, body, signature = issue(owner).split(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    claims["ws"] = other.id
    forged_body = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    assert_denied(lambda_handler(authorizer_event(f"{header}.{forged_body}.{signature}", "cue-browser-1")))

    wrong_key = jwt.encode(claims, "not-cues-key-" * 4, algorithm="HS256")
    assert_denied(lambda_handler(authorizer_event(wrong_key, "cue-browser-1")))

    unsigned = jwt.encode(claims, None, algorithm="none")
    assert_denied(lambda_handler(authorizer_event(unsigned, "cue-browser-1")))


def test_a_token_for_a_workspace_the_user_is_not_in_is_refused(lambda_handler, owner, make_workspace):
    """Even correctly signed (a bug, a stale token), membership is checked at connect and every refresh."""
    other = make_workspace().workspace
    token, _ = realtime_token_issue(user_id=owner.user_id, workspace_id=other.id, client_id="cue-browser-1")
    assert_denied(lambda_handler(authorizer_event(token, "cue-browser-1")))


def test_a_removed_member_is_refused(lambda_handler, owner, make_member):
    agent = make_member(owner)
    token = issue(agent)
    accounts.member_remove(actor=owner, membership=agent)
    assert_denied(lambda_handler(authorizer_event(token, "cue-browser-1")))


def test_the_http_access_token_is_not_a_realtime_credential(lambda_handler, owner):
    access = token_pair_for(owner.user)["access"]
    assert_denied(lambda_handler(authorizer_event(access, "cue-browser-1")))


def test_the_realtime_token_is_not_an_http_credential(client, owner):
    response = client.get("/api/me", HTTP_AUTHORIZATION=f"Bearer {issue(owner)}")
    assert response.status_code == 401
    assert response.json()["error"]["code"] in ("token_not_valid", "authentication_failed")


def test_a_token_of_another_kind_or_stage_is_refused(lambda_handler, owner, settings):
    """A realtime-keyed token of another type; a token of another stage's tree (same account, same key)."""
    token = issue(owner)
    claims = jwt.decode(token, options={"verify_signature": False})
    wrong_type = jwt.encode({**claims, "token_type": "access"}, tokens._key(), algorithm="HS256")
    assert_denied(lambda_handler(authorizer_event(wrong_type, "cue-browser-1")))
    settings.REALTIME_TOPIC_ROOT = "cue-staging"
    assert_denied(lambda_handler(authorizer_event(token, "cue-browser-1")))


def test_client_id_must_be_the_one_issued(lambda_handler, owner):
    assert_denied(lambda_handler(authorizer_event(issue(owner, client_id="cue-browser-1"), "cue-browser-2")))


@pytest.mark.parametrize("raw", ["", "%%%not-base64%%%", base64.b64encode(b"\xff\xfe").decode()])
def test_missing_or_garbled_password_is_refused(lambda_handler, raw):
    assert_denied(lambda_handler(authorizer_event(None, "cue-browser-1", raw_password=raw)))


def test_no_account_in_context_is_refused(owner):
    from apps.realtime.authorizer import iot_authorizer_handler

    assert_denied(iot_authorizer_handler(authorizer_event(issue(owner), "cue-browser-1"), context=None))
