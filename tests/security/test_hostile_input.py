"""Hostile input to the agent API: odd tokens, huge, deep or broken bodies, and SQL/HTML stored verbatim and inert."""

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from apps.knowledge.models import Entry
from tests.accounts.test_api import assert_error

ENTRIES = "/api/knowledge/entries"


def _me(api_client, token):
    return api_client.get("/api/me", HTTP_AUTHORIZATION=f"Bearer {token}")


# ------------------------------------------------------------------------------
# Tokens (the cases tests/accounts/test_api.py does not already cover)
# ------------------------------------------------------------------------------
def test_token_not_yet_valid_is_401(api_client, owner):
    """A token whose nbf is in the future (minted ahead, or by a clock running fast) is refused."""
    token = AccessToken.for_user(owner.user)
    token["nbf"] = int((timezone.now() + timedelta(minutes=5)).timestamp())
    assert_error(_me(api_client, str(token)), 401, "token_not_valid")
    assert _me(api_client, str(AccessToken.for_user(owner.user))).status_code == 200


def test_token_issued_in_the_future_is_401(api_client, owner):
    token = AccessToken.for_user(owner.user)
    token.set_iat(at_time=timezone.now() + timedelta(minutes=5))
    assert_error(_me(api_client, str(token)), 401, "token_not_valid")


def test_refresh_token_is_not_an_access_token(api_client, owner):
    refresh = RefreshToken.for_user(owner.user)
    assert_error(_me(api_client, str(refresh)), 401, "token_not_valid")


def test_token_of_a_deactivated_user_is_401(api_client, owner):
    token = str(AccessToken.for_user(owner.user))
    owner.user.is_active = False
    owner.user.save(update_fields=["is_active"])
    assert_error(_me(api_client, token), 401)


@pytest.mark.parametrize(
    "header", ["Bearer", "Bearer a b", "Token abc", "Bearer " + "A" * 10_000, "Bearer \u00e9.\u00e9.\u00e9"]
)
def test_malformed_authorization_headers_are_401(api_client, header):
    assert_error(api_client.get("/api/me", HTTP_AUTHORIZATION=header), 401)


# ------------------------------------------------------------------------------
# Bodies
# ------------------------------------------------------------------------------
def test_oversized_body_is_refused_in_the_error_shape_and_nothing_stored(owner_client, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    response = owner_client.post(ENTRIES, {"title": "big", "body": "x" * 20_000}, format="json")
    assert response.status_code in (400, 413)
    assert_error(response, response.status_code)
    assert not Entry.objects.exists()


@pytest.mark.parametrize("depth", [50, 100_000])
def test_deeply_nested_json_is_400(owner_client, depth):
    body = '{"title": "t", "body": ' + "[" * depth + "]" * depth + "}"
    response = owner_client.generic("POST", ENTRIES, body, content_type="application/json")
    assert_error(response, 400)
    assert not Entry.objects.exists()


def test_deeply_nested_json_to_the_import_is_400(owner_client):
    body = "[" * 100_000 + "]" * 100_000
    response = owner_client.generic("POST", "/api/knowledge/import", body, content_type="application/json")
    assert_error(response, 400)
    assert not Entry.objects.exists()


@pytest.mark.parametrize(
    "body", [b'{"title": "\xff\xfe", "body": "b"}', b"\xc3\x28", b'{"title": "a\xed\xa0\x80", "body": "b"}']
)
def test_invalid_utf8_is_400(owner_client, body):
    response = owner_client.generic("POST", ENTRIES, body, content_type="application/json")
    assert_error(response, 400)
    assert not Entry.objects.exists()


@pytest.mark.parametrize("field", ["title", "body"])
def test_nul_characters_are_400_not_500(owner_client, field):
    payload = {"title": "t", "body": "b"} | {field: "a\x00b"}
    assert_error(owner_client.post(ENTRIES, payload, format="json"), 400, field=field)
    assert not Entry.objects.exists()


def test_nul_in_tags_is_400_not_500(owner_client):
    """Found by the schemathesis run: a NUL in a tag reached PostgreSQL's JSON column and was a 500."""
    response = owner_client.post(ENTRIES, {"title": "t", "body": "b", "tags": ["ok", "x\x00"]}, format="json")
    assert_error(response, 400, field="tags")
    rows = [{"title": "t", "body": "b", "tags": ["x\x00"]}]
    response = owner_client.post("/api/knowledge/import", rows, format="json")
    assert_error(response, 400)
    assert not Entry.objects.exists()


HOSTILE = "'); DROP TABLE knowledge_entry; -- <script>alert(1)</script><img src=x onerror=alert(2)> \" OR 1=1 --"


def test_sql_and_html_are_stored_verbatim_and_returned_inert(owner_client):
    created = owner_client.post(
        ENTRIES, {"title": HOSTILE[:300], "body": HOSTILE, "tags": ["<b>x</b>", "' OR ''='"]}, format="json"
    )
    assert created.status_code == 201, created.content
    entry = Entry.objects.get()
    assert entry.title == HOSTILE[:300]
    assert entry.tags == ["<b>x</b>", "' OR ''='"]
    listed = owner_client.get(ENTRIES, {"q": HOSTILE[:400]})
    assert listed.status_code == 200
    detail = owner_client.get(f"{ENTRIES}/{entry.id}")
    # Inert: JSON (never HTML) that a browser will not sniff into HTML; the console renders text via textContent.
    assert detail["Content-Type"].startswith("application/json")
    assert detail["X-Content-Type-Options"] == "nosniff"
    assert detail.json()["title"] == HOSTILE[:300]


def test_the_console_never_renders_server_text_as_html():
    from pathlib import Path

    import apps.console

    script = (Path(apps.console.__file__).parent / "static" / "console" / "console.js").read_text()
    assert "textContent" in script
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write"):
        assert sink not in script, sink
