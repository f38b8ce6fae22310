"""Concurrent requests on one object, on real PostgreSQL with real threads: the losers get a 4xx, never a 500.

Each thread has its own database connection (Django's are per thread) and its own API client; a barrier
releases them together so the requests truly overlap. The tests commit (transactional_db), as the
requests of a real server would.
"""

import threading
from collections import Counter
from functools import partial

import pytest
from django.db import connection, connections
from rest_framework.test import APIClient

from apps.accounts.models import User, Workspace
from apps.knowledge import services as knowledge
from apps.knowledge.models import Entry
from tests.conftest import PASSWORD, _auth_client

pytestmark = pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks need PostgreSQL")

ROUNDS = 8


def race(requests) -> list:
    """Run each zero-argument callable in its own thread, all released at once; their responses, in order."""
    barrier = threading.Barrier(len(requests))
    responses: list = [None] * len(requests)

    def run(index, request):
        try:
            barrier.wait(timeout=30)
            responses[index] = request()
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i, r)) for i, r in enumerate(requests)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert all(r is not None for r in responses), "a request did not finish"
    return responses


def _client(owner=None) -> APIClient:
    """A client that answers a server error as the 500 a caller would see (the test client re-raises by default)."""
    client = _auth_client(owner) if owner else APIClient()
    client.raise_request_exception = False
    return client


def _entry(owner, n: int) -> Entry:
    return knowledge.entry_create(workspace_id=owner.workspace_id, title=f"Refunds {n}", body="How refunds work.")


def test_two_deletes_of_one_entry_one_204_one_404(transactional_db, make_workspace):
    owner = make_workspace()
    statuses = Counter()
    for n in range(ROUNDS):
        entry = _entry(owner, n)
        clients = [_client(owner), _client(owner)]
        responses = race([partial(c.delete, f"/api/knowledge/entries/{entry.id}") for c in clients])
        codes = sorted(r.status_code for r in responses)
        statuses.update(codes)
        assert codes == [204, 404], [r.content for r in responses]
        loser = next(r for r in responses if r.status_code == 404)
        assert loser.json()["error"]["code"] == "not_found"
        assert not Entry.objects.filter(pk=entry.id).exists()
    assert statuses == {204: ROUNDS, 404: ROUNDS}


def test_patch_racing_delete_is_200_or_404_never_500(transactional_db, make_workspace):
    owner = make_workspace()
    statuses = Counter()
    for n in range(ROUNDS):
        entry = _entry(owner, n)
        patcher, deleter = _client(owner), _client(owner)
        url = f"/api/knowledge/entries/{entry.id}"
        patched, deleted = race(
            [
                partial(patcher.patch, url, {"title": "Refunds, updated", "body": "New text."}, format="json"),
                partial(deleter.delete, url),
            ]
        )
        statuses.update([f"patch {patched.status_code}", f"delete {deleted.status_code}"])
        assert deleted.status_code == 204, deleted.content
        assert patched.status_code in (200, 404), patched.content
        assert not Entry.objects.filter(pk=entry.id).exists()
    assert statuses[f"delete {204}"] == ROUNDS
    assert statuses["patch 200"] + statuses["patch 404"] == ROUNDS


def test_concurrent_signups_with_one_email_one_201_rest_400_naming_the_email(transactional_db):
    for n in range(ROUNDS):
        email = f"race{n}@example.com"
        clients = [_client() for _ in range(5)]
        body = {"email": email, "password": PASSWORD, "workspace_name": "Acme"}
        responses = race(
            [
                partial(c.post, "/api/auth/signup", body | {"workspace_name": f"Acme {i}"}, format="json")
                for i, c in enumerate(clients)
            ]
        )
        codes = Counter(r.status_code for r in responses)
        assert codes == {201: 1, 400: 4}, [r.content for r in responses]
        for response in responses:
            if response.status_code == 400:
                error = response.json()["error"]
                assert error["code"] == "invalid" and "email" in error["fields"], error
        assert User.objects.filter(email=email).count() == 1
        # The losers' workspaces were rolled back with their user.
        assert Workspace.objects.filter(name__startswith="Acme ").count() == n + 1
