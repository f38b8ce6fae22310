"""Reads for Intercom integration: connections by workspace or by Intercom app id, teammates, replies."""

from django.db.models import QuerySet

from apps.accounts.models import Membership, Workspace
from apps.integrations.models import IntercomAdmin, IntercomConnection, OutboundReply


def connection_for_workspace(
    *, workspace: Workspace | int, include_disabled: bool = False
) -> IntercomConnection | None:
    """The workspace's active connection; a disabled one too with `include_disabled` (to show or explain it)."""
    workspace_id = workspace if isinstance(workspace, int) else workspace.id
    found = IntercomConnection.objects.filter(workspace_id=workspace_id)
    if not include_disabled:
        found = found.filter(disabled_at__isnull=True)
    return found.first()


def connected_workspace_ids() -> QuerySet:
    """The ids of every workspace actively connected to Intercom (for scheduled work across workspaces)."""
    return IntercomConnection.objects.filter(disabled_at__isnull=True).values_list("workspace_id", flat=True)


def connections_for_app_ids(*, app_ids: list[str]) -> dict[str, IntercomConnection]:
    """One query: the active connections of these Intercom workspaces, by app id (at most one each).

    Only active ones: a disabled connection (taken over, or its token no longer proves the app) routes nothing.
    """
    if not app_ids:
        return {}
    return {c.app_id: c for c in IntercomConnection.objects.filter(app_id__in=app_ids, disabled_at__isnull=True)}


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
