"""Bulk import (CSV, JSON) through the API and the command: per-row errors, all-or-nothing on fatal ones."""

import io
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command

from apps.knowledge.models import Entry, IndexTotals
from apps.knowledge.selectors import entries_rank
from tests.accounts.test_api import assert_error

pytestmark = pytest.mark.django_db

CSV = (
    "title,body,kind,tags,enabled,external_id\n"
    "Reset your password,<p>Click Forgot password.</p>,saved_reply,account;login,true,r1\n"
    ",Body without a title,,,,r2\n"
    "Refunds,We refund orders within 30 days.,article,billing,,r3\n"
    "Bad kind,Some body,poem,,,r4\n"
)


def upload(client, content: bytes, name="kb.csv", **extra):
    return client.post(
        "/api/knowledge/import", {"file": SimpleUploadedFile(name, content), **extra}, format="multipart"
    )


def test_csv_upload_keeps_valid_rows_and_reports_the_rest(owner_client):
    response = upload(owner_client, CSV.encode())
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["created"], body["updated"], body["failed"]) == (2, 0, 2)
    by_row = {r["row"]: r for r in body["rows"]}
    assert by_row[1]["status"] == "created" and by_row[1]["entry_id"]
    assert by_row[2]["status"] == "error" and "title" in by_row[2]["errors"]
    assert by_row[4]["status"] == "error" and "kind" in by_row[4]["errors"]
    refunds = Entry.objects.get(title="Refunds")
    assert (refunds.kind, refunds.tags, refunds.source, refunds.external_id) == ("article", ["billing"], "csv", "r3")
    assert Entry.objects.get(external_id="r1").tags == ["account", "login"]
    # Imported rows are ranked like any other entry.
    ranked = entries_rank(workspace_id=owner_client.membership.workspace_id, text="refund please", threshold=0)
    assert ranked[0].title == "Refunds"


def test_reimport_updates_by_external_id(owner_client):
    upload(owner_client, CSV.encode())
    changed = CSV.replace("We refund orders within 30 days.", "Refunds take 60 days now.")
    body = upload(owner_client, changed.encode()).json()
    assert (body["created"], body["updated"]) == (0, 2)
    assert Entry.objects.get(external_id="r3").body_text == "Refunds take 60 days now."
    assert Entry.objects.count() == 2
    assert IndexTotals.objects.get().entries == 2


def test_json_body_and_json_file(owner_client):
    rows = [{"title": "A", "body": "alpha", "tags": ["x"], "external_id": 7}, {"title": "B"}]
    response = owner_client.post("/api/knowledge/import", rows, format="json")
    assert response.status_code == 200, response.content
    assert (response.json()["created"], response.json()["failed"]) == (1, 1)
    assert Entry.objects.get(title="A").external_id == "7"
    as_file = upload(owner_client, json.dumps({"entries": [{"title": "C", "body": "gamma"}]}).encode(), name="kb.json")
    assert as_file.json()["created"] == 1


def test_repeated_external_id_in_one_file_is_a_row_error(owner_client):
    content = "title,body,external_id\nA,alpha,same\nB,beta,same\n"
    body = upload(owner_client, content.encode()).json()
    assert (body["created"], body["failed"]) == (1, 1)
    assert body["rows"][1]["errors"] == {"external_id": ["Repeated in this file."]}


@pytest.mark.parametrize(
    ("content", "name"),
    [
        (b"title,text\nA,B\n", "kb.csv"),  # no body column
        (b"{not json", "kb.json"),
        (b'{"rows": []}', "kb.json"),
        (b"title,body\nA,\xff\xfe broken\n", "kb.csv"),
        (b"title,body\nA,B\n", "kb.txt"),
        (b"title,body\n", "kb.csv"),
    ],
)
def test_unreadable_files_are_400_and_import_nothing(owner_client, content, name):
    assert_error(upload(owner_client, content, name=name), 400, "invalid", "file")
    assert not Entry.objects.exists()


def test_a_file_with_no_valid_row_is_400(owner_client):
    response = upload(owner_client, b"title,body\n,missing title\nB,\n")
    assert_error(response, 400, "invalid", "rows")
    assert len(response.json()["error"]["fields"]["rows"]) == 2
    assert not Entry.objects.exists()


def test_too_many_rows_is_400(owner_client, settings):
    settings.CUE_KNOWLEDGE_IMPORT_MAX_ROWS = 2
    assert_error(upload(owner_client, b"title,body\nA,a\nB,b\nC,c\n"), 400, "invalid", "file")
    assert not Entry.objects.exists()


def test_agents_cannot_import(agent_client):
    assert_error(upload(agent_client, CSV.encode()), 403, "permission_denied")
    assert not Entry.objects.exists()


def test_import_only_touches_the_callers_workspace(owner_client, other_owner_client):
    """The same external id in another workspace is a different entry, never updated from here."""
    upload(other_owner_client, CSV.encode())
    body = upload(owner_client, CSV.encode()).json()
    assert body["created"] == 2 and body["updated"] == 0
    assert Entry.objects.filter(workspace_id=other_owner_client.membership.workspace_id).count() == 2


# ------------------------------------------------------------------------------
# The management command
# ------------------------------------------------------------------------------


def test_command_imports_a_large_csv_with_row_errors(owner, tmp_path):
    path = tmp_path / "kb.csv"
    lines = ["title,body,external_id"] + [f"Entry {n},Body number {n} about topic{n},e{n}" for n in range(1200)]
    lines[501] = ",no title,bad"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out, err = io.StringIO(), io.StringIO()
    call_command("import_knowledge", owner.workspace_id, str(path), "--no-progress", stdout=out, stderr=err)
    assert "created 1199, updated 0, failed 1" in out.getvalue()
    assert "row 501" in err.getvalue()
    assert Entry.objects.filter(workspace_id=owner.workspace_id).count() == 1199
    assert IndexTotals.objects.get(workspace_id=owner.workspace_id).entries == 1199


def test_command_fatal_error_mid_file_imports_nothing(owner, tmp_path):
    """A broken byte after the first batches were written rolls the whole import back."""
    path = tmp_path / "kb.csv"
    good = "".join(f"Entry {n},Body {n}\n" for n in range(1500))
    path.write_bytes(b"title,body\n" + good.encode() + b"Broken,\xff\xfe\n")
    with pytest.raises(CommandError, match="Nothing was imported"):
        call_command("import_knowledge", owner.workspace_id, str(path), "--no-progress", stdout=io.StringIO())
    assert not Entry.objects.exists()
    assert not IndexTotals.objects.filter(entries__gt=0).exists()


def test_command_refuses_unknown_workspace_and_format(owner, tmp_path):
    path = tmp_path / "kb.txt"
    path.write_text("title,body\nA,B\n")
    with pytest.raises(CommandError, match="No workspace"):
        call_command("import_knowledge", 999_999, str(path))
    with pytest.raises(CommandError, match="format"):
        call_command("import_knowledge", owner.workspace_id, str(path))
    call_command(
        "import_knowledge", owner.workspace_id, str(path), "--format", "csv", "--no-progress", stdout=io.StringIO()
    )
    assert Entry.objects.count() == 1
