"""The operators' admin screens for Intercom data open, and never show a token or a secret."""

import pytest

from apps.accounts.models import User
from apps.conversations.models import Conversation, Message
from apps.integrations.models import CanvasAction, IntercomAdmin, OutboundReply, WebhookDelivery
from tests.integrations.conftest import OWN_SECRET, TOKEN

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client):
    client.force_login(User.objects.create_superuser("ops@example.com", "x" * 20))
    return client


def test_every_screen_opens_and_no_secret_shows(staff_client, owner, connect):
    conn = connect(owner, method="token", client_secret=OWN_SECRET)
    conversation = Conversation.objects.create(workspace=owner.workspace, intercom_id="1")
    message = Message.objects.create(conversation=conversation, workspace=owner.workspace, intercom_part_id="p1")
    delivery = WebhookDelivery.objects.create(
        workspace=owner.workspace, notification_id="n1", topic="t", body="{}", received_at="2026-01-01T00:00Z"
    )
    reply = OutboundReply.objects.create(workspace=owner.workspace, conversation=conversation, body="b", admin_id="1")
    admin = IntercomAdmin.objects.create(workspace=owner.workspace, intercom_id="1")
    action = CanvasAction.objects.create(workspace=owner.workspace, action="dismiss")
    pages = {
        "integrations/intercomconnection": conn.pk,
        "integrations/intercomadmin": admin.pk,
        "integrations/webhookdelivery": delivery.pk,
        "integrations/outboundreply": reply.pk,
        "integrations/canvasaction": action.pk,
        "conversations/conversation": conversation.pk,
        "conversations/message": message.pk,
    }
    for model, pk in pages.items():
        for url in (f"/admin/{model}/", f"/admin/{model}/{pk}/change/"):
            response = staff_client.get(url)
            assert response.status_code == 200, url
            assert TOKEN not in response.content.decode()
            assert OWN_SECRET not in response.content.decode()


def test_process_again_action_dispatches_the_delivery(staff_client, owner, connection):
    delivery = WebhookDelivery.objects.create(
        workspace=owner.workspace,
        notification_id="n1",
        topic="t",
        body="{}",
        received_at="2026-01-01T00:00Z",
        status="skipped",
    )
    response = staff_client.post(
        "/admin/integrations/webhookdelivery/", {"action": "process_again", "_selected_action": [delivery.pk]}
    )
    assert response.status_code == 302
    delivery.refresh_from_db()
    assert delivery.status == "received"
    from apps.tasks.models import TaskRun

    assert TaskRun.objects.get().args == [delivery.pk]


def test_connections_show_their_status_and_the_verify_action_asks_intercom(staff_client, owner, connect, serve_me):
    """Operators filter connections by status, read why one is disabled, and can have Intercom asked again."""
    conn = connect(owner, app_id="squatted")
    serve_me("anotherapp")  # the stored token belongs to another app
    response = staff_client.post(
        "/admin/integrations/intercomconnection/", {"action": "verify_with_intercom", "_selected_action": [conn.pk]}
    )
    assert response.status_code == 302
    conn.refresh_from_db()
    assert conn.disabled_code == "app_mismatch"
    page = staff_client.get(f"/admin/integrations/intercomconnection/{conn.pk}/change/").content.decode()
    assert "anotherapp" in page, "the reason is shown"
    listing = staff_client.get("/admin/integrations/intercomconnection/?status=disabled").content.decode()
    assert "squatted" in listing
    assert "squatted" not in staff_client.get("/admin/integrations/intercomconnection/?status=active").content.decode()
