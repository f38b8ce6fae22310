"""Staff operators in the Django admin: every workspace's dead tasks, and the retry action."""

import json

import pytest

from apps.tasks.models import TaskRun, TaskStatus

MAKE = "tests.tasks.sample_tasks.make_workspace"


def dead(arg: str, **fields) -> TaskRun:
    return TaskRun.objects.create(name=MAKE, args=[arg], status=TaskStatus.DEAD, attempts=5, **fields)


@pytest.mark.django_db
def test_admin_lists_dead_tasks_across_workspaces(admin_client, owner, make_workspace, django_assert_max_num_queries):
    ours, theirs = dead("a", workspace=owner.workspace), dead("b", workspace=make_workspace().workspace)
    TaskRun.objects.create(name=MAKE, args=["ok"], status=TaskStatus.SUCCEEDED)
    with django_assert_max_num_queries(8):
        response = admin_client.get("/admin/tasks/taskrun/", {"status__exact": "dead"})
    assert response.status_code == 200
    listed = {str(r.pk) for r in response.context["cl"].result_list}
    assert listed == {str(ours.id), str(theirs.id)}


@pytest.mark.django_db
def test_admin_offers_no_hand_made_rows(admin_client):
    assert admin_client.get("/admin/tasks/taskrun/add/").status_code == 403


def test_admin_retry_action_sends_dead_tasks_and_skips_others(sns, admin_user, client):
    client.force_login(admin_user)
    revived = dead("revived")
    finished = TaskRun.objects.create(name=MAKE, args=["done"], status=TaskStatus.SUCCEEDED, attempts=1)
    response = client.post(
        "/admin/tasks/taskrun/",
        {"action": "retry", "_selected_action": [str(revived.id), str(finished.id)]},
        follow=True,
    )
    assert response.status_code == 200
    notes = [str(m) for m in response.context["messages"]]
    assert "1 task(s) sent again." in notes
    assert any(n.startswith(f"{finished.id}: Only dead, rejected or failed tasks") for n in notes)
    [message] = sns.drain()
    assert json.loads(message)["args"][0]["task_id"] == str(revived.id)
    assert sns.deliver(message) == "succeeded"
    assert TaskRun.objects.get(pk=finished.id).sends == 0


@pytest.mark.django_db
def test_admin_is_for_staff_only(client, owner):
    client.force_login(owner.user)
    response = client.get("/admin/tasks/taskrun/")
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]
