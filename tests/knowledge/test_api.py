"""The knowledge-base HTTP API: entries, search, settings, ranking; permissions and tenancy."""

import pytest

from apps.knowledge.models import Entry, KnowledgeSettings
from tests.accounts.test_api import assert_error

pytestmark = pytest.mark.django_db

ENTRY = {"title": "Reset your password", "body": "<p>Open <b>Settings</b> and click Forgot password.</p>"}


def create(client, **overrides):
    return client.post("/api/knowledge/entries", ENTRY | overrides, format="json")


def test_owner_creates_an_entry_with_clean_text(owner_client):
    response = create(owner_client, tags=["account", "login"], kind="article")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["title"] == "Reset your password"
    assert body["body"] == ENTRY["body"]
    assert body["body_text"] == "Open Settings and click Forgot password."
    assert body["kind"] == "article"
    assert body["tags"] == ["account", "login"]
    assert body["enabled"] is True
    assert Entry.objects.get(pk=body["id"]).workspace_id == owner_client.membership.workspace_id


def test_stored_html_is_sanitised(owner_client):
    response = create(owner_client, body='<p onclick="x()">Hi<script>alert(1)</script></p>')
    assert response.status_code == 201
    assert "script" not in response.json()["body"]
    assert "onclick" not in response.json()["body"]


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"title": ""}, "title"),
        ({"body": ""}, "body"),
        ({"body": "<p> </p>"}, "body"),
        ({"kind": "poem"}, "kind"),
        ({"tags": "not-a-list-but-ok,fine", "title": "x" * 301}, "title"),
        ({"tags": [1, 2]}, "tags"),
        ({"body": "x" * 100_001}, "body"),
    ],
)
def test_bad_entries_are_400_and_store_nothing(owner_client, payload, field):
    assert_error(create(owner_client, **payload), 400, "invalid", field)
    assert not Entry.objects.exists()


def test_duplicate_external_id_is_400(owner_client):
    assert create(owner_client, external_id="a1").status_code == 201
    assert_error(create(owner_client, external_id="a1"), 400, "invalid", "external_id")
    assert Entry.objects.count() == 1


def test_agents_read_but_cannot_write(owner_client, agent_client):
    entry_id = create(owner_client).json()["id"]
    assert agent_client.get("/api/knowledge/entries").status_code == 200
    assert agent_client.get(f"/api/knowledge/entries/{entry_id}").status_code == 200
    assert_error(create(agent_client, title="Agent's"), 403, "permission_denied")
    assert_error(agent_client.patch(f"/api/knowledge/entries/{entry_id}", {"title": "x"}, format="json"), 403)
    assert_error(agent_client.delete(f"/api/knowledge/entries/{entry_id}"), 403)
    assert list(Entry.objects.values_list("title", flat=True)) == ["Reset your password"]


def test_anonymous_is_401(api_client):
    assert_error(api_client.get("/api/knowledge/entries"), 401)


def test_list_is_paginated_scoped_and_counted(owner_client, other_owner_client, django_assert_max_num_queries):
    for n in range(3):
        create(owner_client, title=f"Entry {n}")
    create(other_owner_client, title="Foreign")
    with django_assert_max_num_queries(4):
        response = owner_client.get("/api/knowledge/entries?page_size=2")
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 3
    assert len(body["results"]) == 2
    assert "Foreign" not in {e["title"] for e in body["results"]}


def test_list_searches_with_q(owner_client, django_assert_max_num_queries):
    create(owner_client)
    create(owner_client, title="Refunds", body="We refund orders within 30 days.")
    with django_assert_max_num_queries(4):
        response = owner_client.get("/api/knowledge/entries", {"q": "refunded orders"})
    assert [e["title"] for e in response.json()["results"]] == ["Refunds"]
    assert owner_client.get("/api/knowledge/entries", {"q": "zebra"}).json()["count"] == 0


def test_list_filters(owner_client):
    create(owner_client, kind="article", tags=["billing"])
    create(owner_client, title="Off", enabled=False)
    assert owner_client.get("/api/knowledge/entries", {"kind": "article"}).json()["count"] == 1
    assert owner_client.get("/api/knowledge/entries", {"enabled": "false"}).json()["count"] == 1
    assert owner_client.get("/api/knowledge/entries", {"tag": "billing"}).json()["count"] == 1
    assert owner_client.get("/api/knowledge/entries", {"tag": " "}).json()["count"] == 2  # blank: any tag
    assert_error(owner_client.get("/api/knowledge/entries", {"kind": "poem"}), 400, "invalid", "kind")


def test_patch_and_delete(owner_client):
    entry_id = create(owner_client).json()["id"]
    response = owner_client.patch(
        f"/api/knowledge/entries/{entry_id}", {"body": "<p>New <i>text</i></p>", "enabled": False}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["body_text"] == "New text"
    assert response.json()["enabled"] is False
    assert_error(owner_client.patch(f"/api/knowledge/entries/{entry_id}", {"title": ""}, format="json"), 400)
    assert Entry.objects.get(pk=entry_id).title == ENTRY["title"]
    assert owner_client.delete(f"/api/knowledge/entries/{entry_id}").status_code == 204
    assert not Entry.objects.exists()


def test_another_workspaces_entry_is_404(owner_client, other_owner_client):
    foreign = create(other_owner_client).json()["id"]
    assert_error(owner_client.get(f"/api/knowledge/entries/{foreign}"), 404, "not_found")
    assert_error(owner_client.patch(f"/api/knowledge/entries/{foreign}", {"title": "x"}, format="json"), 404)
    assert_error(owner_client.delete(f"/api/knowledge/entries/{foreign}"), 404)
    assert Entry.objects.get(pk=foreign).title == ENTRY["title"]


def test_settings_defaults_update_and_permissions(owner_client, agent_client, other_owner_client):
    assert agent_client.get("/api/knowledge/settings").json() == {
        "suggestion_threshold": 0.05,
        "top_k": 3,
        "article_locales": [],
    }
    response = owner_client.patch("/api/knowledge/settings", {"suggestion_threshold": 0.3, "top_k": 5}, format="json")
    assert response.json() == {"suggestion_threshold": 0.3, "top_k": 5, "article_locales": []}
    assert agent_client.get("/api/knowledge/settings").json()["top_k"] == 5
    assert other_owner_client.get("/api/knowledge/settings").json()["top_k"] == 3
    assert_error(agent_client.patch("/api/knowledge/settings", {"top_k": 1}, format="json"), 403)
    assert_error(owner_client.patch("/api/knowledge/settings", {"top_k": 0}, format="json"), 400, "invalid", "top_k")
    bad = owner_client.patch("/api/knowledge/settings", {"suggestion_threshold": 1.5}, format="json")
    assert_error(bad, 400, "invalid", "suggestion_threshold")
    assert KnowledgeSettings.objects.get().top_k == 5


def test_rank_endpoint_ranks_the_callers_knowledge_base(owner_client, agent_client, other_owner_client):
    create(owner_client)
    create(owner_client, title="Refunds", body="We refund orders within 30 days.")
    create(other_owner_client, title="Foreign refunds", body="refund refund refund")
    response = agent_client.post("/api/knowledge/rank", {"text": "<p>I want a refund</p>"}, format="json")
    assert response.status_code == 200
    results = response.json()["results"]
    assert [r["title"] for r in results] == ["Refunds"]
    assert 0 < results[0]["score"] <= 1
    assert_error(agent_client.post("/api/knowledge/rank", {}, format="json"), 400, "invalid", "text")
