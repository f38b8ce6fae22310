"""Hostile bytes are 4xx, never 500: lone surrogate escapes in any JSON body, hostile import files, a huge CSV."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.accounts.models import User
from apps.knowledge import services as knowledge
from apps.knowledge.models import Entry
from tests.accounts.test_api import assert_error
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db

ENTRIES = "/api/knowledge/entries"

# Raw bodies: `\udc00` is valid JSON (an escape), but the str it parses into has no UTF-8 form, so
# PostgreSQL refused it at insert time (a 500). Each endpoint reads its body through one parser.
SURROGATE_BODIES = [
    ("owner", "POST", ENTRIES, r'{"title": "t", "body": "b", "tags": ["a\udc00"]}', "tags[0]"),
    ("owner", "POST", ENTRIES, r'{"title": "\ud800", "body": "b"}', "title"),
    ("owner", "POST", ENTRIES, r'{"title": "t", "body": "b", "ex\udfffternal_id": "x"}', "ex\ufffdternal_id"),
    ("owner", "PATCH", "ENTRY", r'{"body": "<p>x \ud83d y</p>"}', "body"),
    ("owner", "POST", "/api/knowledge/import", r'[{"title": "t", "body": "b\udc00"}]', "[0].body"),
    ("owner", "POST", "/api/knowledge/rank", r'{"text": "refund \udead"}', "text"),
    (
        "owner",
        "POST",
        "/api/members",
        r'{"email": "m@example.com", "password": "P", "full_name": "\udc00"}',
        "full_name",
    ),
    (
        "anonymous",
        "POST",
        "/api/auth/signup",
        r'{"email": "s@example.com", "password": "P", "workspace_name": "\udc00"}',
        "workspace_name",
    ),
    ("anonymous", "POST", "/api/auth/token", r'{"email": "s\udc00@example.com", "password": "x"}', "email"),
]


@pytest.mark.parametrize(("who", "method", "url", "body", "where"), SURROGATE_BODIES)
def test_a_lone_surrogate_in_any_json_body_is_400_naming_where(
    owner, client_for, api_client, who, method, url, body, where
):
    entry = knowledge.entry_create(workspace_id=owner.workspace_id, title="Refunds", body="<p>old</p>")
    client = client_for(owner) if who == "owner" else api_client
    client.raise_request_exception = False
    url = f"{ENTRIES}/{entry.id}" if url == "ENTRY" else url
    body = body.replace('"P"', f'"{PASSWORD}"')
    response = client.generic(method, url, body.encode(), content_type="application/json")
    assert_error(response, 400, "parse_error")
    message = response.json()["error"]["message"]
    assert "lone surrogate" in message and where in message, message
    assert list(Entry.objects.values_list("body_html", flat=True)) == ["<p>old</p>"]
    assert not User.objects.filter(email__in=["m@example.com", "s@example.com"]).exists()


def test_an_escaped_surrogate_pair_is_one_character_and_kept(owner_client):
    response = owner_client.generic(
        "POST", ENTRIES, rb'{"title": "Party \ud83c\udf89", "body": "b", "tags": ["\ud83d\ude00"]}', "application/json"
    )
    assert response.status_code == 201, response.content
    entry = Entry.objects.get()
    assert (entry.title, entry.tags) == ("Party \U0001f389", ["\U0001f600"])


def _upload(client, content: bytes, name: str):
    return client.post("/api/knowledge/import", {"file": SimpleUploadedFile(name, content)}, format="multipart")


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"[" * 100_000, "nested too deeply"),
        (b'[{"title": "t", "body": "\\udc00"}]', "lone surrogate"),
        (b'[{"title": "t", "body": NaN}]', "NaN"),
    ],
)
def test_a_hostile_json_import_file_is_400_and_imports_nothing(owner_client, content, reason):
    response = _upload(owner_client, content, "kb.json")
    assert_error(response, 400, "invalid", "file")
    assert reason in response.json()["error"]["fields"]["file"][0]
    assert not Entry.objects.exists()


def test_a_huge_csv_stops_being_read_at_the_row_limit(owner_client, settings, monkeypatch):
    """A 21 MB CSV over the row limit: 400 after reading one row past the limit, not after parsing it all."""
    from apps.knowledge import api

    settings.CUE_KNOWLEDGE_IMPORT_MAX_ROWS = 1000
    row = "Refund policy {n},<p>" + "We refund any order within thirty days of purchase. " * 3 + "</p>,billing,e{n}\n"
    lines = ["title,body,tags,external_id\n"] + [row.format(n=n) for n in range(110_000)]
    content = "".join(lines).encode()
    assert len(content) > 21_000_000

    seen = {"rows": 0, "bytes": None}
    real_rows_from_file = api.rows_from_file

    def counted(stream, fmt):
        try:
            for item in real_rows_from_file(stream, fmt):
                seen["rows"] += 1
                yield item
        finally:
            seen["bytes"] = stream.tell()

    monkeypatch.setattr(api, "rows_from_file", counted)
    response = _upload(owner_client, content, "kb.csv")
    assert_error(response, 400, "invalid", "file")
    assert "At most 1000 rows" in response.json()["error"]["fields"]["file"][0]
    assert seen["rows"] == 1001
    assert seen["bytes"] < len(content) // 20, seen
    assert not Entry.objects.exists()
