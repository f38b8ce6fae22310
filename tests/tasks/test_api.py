"""The operator API over a workspace's ledger: owners and admins only, scoped to their workspace."""

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from apps.accounts.models import Role
from apps.tasks.models import TaskRun, TaskStatus

MAKE = "tests.tasks.sample_tasks.make_workspace"


def task_in(membership, status=TaskStatus.DEAD, **fields) -> TaskRun:
    return TaskRun.objects.create(
        name=MAKE,
        args=[fields.pop("arg", "api")],
        workspace=membership.workspace,
        status=status,
        attempts=fields.pop("attempts", 5 if status == TaskStatus.DEAD else 1),
        last_error="RuntimeError: boom" if status in (TaskStatus.DEAD, TaskStatus.FAILED) else "",
        **fields,
    )


@pytest.mark.django_db
def test_list_dead_tasks_is_paginated_scoped_and_counted(
    owner_client, owner, make_workspace, django_assert_max_num_queries
):
    dead = [task_in(owner, arg=f"dead-{i}") for i in range(5)]
    for i, run in enumerate(dead):  # distinct creation times: the list is newest first
        TaskRun.objects.filter(pk=run.pk).update(created_at=timezone.now() - timedelta(minutes=10 - i))
    task_in(owner, TaskStatus.SUCCEEDED)
    task_in(make_workspace(), arg="elsewhere")  # another workspace's dead task
    with django_assert_max_num_queries(3):
        response = owner_client.get("/api/tasks", {"status": "dead", "page_size": 2})
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 5
    assert [t["id"] for t in body["results"]] == [str(r.id) for r in reversed(dead)][:2]
    assert body["next"].endswith("/api/tasks?page=2&page_size=2&status=dead")
    assert {"id", "name", "status", "attempts", "last_error", "next_attempt_at"} <= set(body["results"][0])
    everything = owner_client.get("/api/tasks").json()
    assert everything["count"] == 6


@pytest.mark.django_db
def test_bad_status_filter_is_400(owner_client):
    response = owner_client.get("/api/tasks", {"status": "zombie"})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid"
    assert "status" in error["fields"]


@pytest.mark.django_db
def test_detail_shows_what_ran_and_what_came_of_it(owner_client, owner):
    run = task_in(owner, arg="look")
    response = owner_client.get(f"/api/tasks/{run.id}")
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == str(run.id)
    assert body["args"] == ["look"]
    assert body["status"] == "dead"
    assert body["last_error"] == "RuntimeError: boom"


@pytest.mark.django_db
def test_agents_cannot_see_or_retry_tasks(agent_client):
    run = task_in(agent_client.membership)
    for response in (
        agent_client.get("/api/tasks"),
        agent_client.get(f"/api/tasks/{run.id}"),
        agent_client.post(f"/api/tasks/{run.id}/retry"),
    ):
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "permission_denied"
    assert TaskRun.objects.get(pk=run.id).status == TaskStatus.DEAD


@pytest.mark.django_db
def test_admins_can_and_anonymous_cannot(owner, make_member, client_for, api_client):
    run = task_in(owner)
    admin = client_for(make_member(owner, Role.ADMIN))
    assert admin.get(f"/api/tasks/{run.id}").status_code == 200
    assert api_client.get("/api/tasks").status_code == 401


@pytest.mark.django_db
def test_another_workspaces_task_is_404(owner_client, other_owner_client):
    theirs = task_in(other_owner_client.membership)
    assert owner_client.get(f"/api/tasks/{theirs.id}").status_code == 404
    assert owner_client.post(f"/api/tasks/{theirs.id}/retry").status_code == 404
    assert owner_client.get("/api/tasks/not-a-uuid").status_code == 404
    assert TaskRun.objects.get(pk=theirs.id).status == TaskStatus.DEAD


def test_retry_sends_a_dead_task_again(sns, owner, client_for):
    run = task_in(owner, arg="retried")
    response = client_for(owner).post(f"/api/tasks/{run.id}/retry")
    assert response.status_code == 202
    assert response.json()["status"] == "pending"
    assert response.json()["attempts"] == 0
    [message] = sns.drain()
    assert json.loads(message)["args"][0]["task_id"] == str(run.id)
    assert sns.deliver(message) == "succeeded"


@pytest.mark.parametrize("status", [TaskStatus.SUCCEEDED, TaskStatus.RUNNING, TaskStatus.PENDING])
def test_retrying_a_task_that_is_not_dead_or_failed_is_400_and_sends_nothing(sns, owner, client_for, status):
    run = task_in(owner, status)
    response = client_for(owner).post(f"/api/tasks/{run.id}/retry")
    assert response.status_code == 400
    assert response.json()["error"]["fields"]["status"] == [
        f"Only dead, rejected or failed tasks can be retried; this one is {status}."
    ]
    assert sns.drain() == []
    stored = TaskRun.objects.get(pk=run.id)
    assert (stored.status, stored.sends) == (status, 0)
