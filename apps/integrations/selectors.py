"""Reads for Intercom integration: connections by workspace or by Intercom app id, teammates, replies."""

from django.db.models import QuerySet

from apps.accounts.models import Membership, Workspace
from apps.integrations.models import IntercomAdmin, IntercomConnection, OutboundReply


def connection_for_workspace(*, workspace: Workspace | int) -> IntercomConnection | None:
    workspace_id = workspace if isinstance(workspace, int) else workspace.id
    return IntercomConnection.objects.filter(workspace_id=workspace_id).first()


def connections_for_app_ids(*, app_ids: list[str]) -> dict[str, IntercomConnection]:
    """One query: the connections of these Intercom workspaces, by app id."""
    if not app_ids:
        return {}
    return {c.app_id: c for c in IntercomConnection.objects.filter(app_id__in=app_ids)}


def admin_ids_of_member(*, membership: Membership) -> list[str]:
    """The Intercom teammate ids mapped to a Cue member (by email, when teammates were synced)."""
    return list(
        IntercomAdmin.objects.filter(workspace_id=membership.workspace_id, membership=membership).values_list(
            "intercom_id", flat=True
        )
    )


def member_user_of_admin(*, workspace_id: int, admin_id: str) -> int | None:
    """The user id of the Cue member an Intercom teammate is mapped to (teammates synced), or None."""
    if not admin_id:
        return None
    return (
        IntercomAdmin.objects.filter(workspace_id=workspace_id, intercom_id=admin_id, membership__isnull=False)
        .values_list("membership__user_id", flat=True)
        .first()
    )


def admin_list(*, workspace: Workspace) -> QuerySet[IntercomAdmin]:
    return IntercomAdmin.objects.filter(workspace=workspace).order_by("name", "intercom_id")


def reply_get(*, workspace: Workspace, reply_id: int) -> OutboundReply:
    return OutboundReply.objects.get(workspace=workspace, pk=reply_id)
