"""Reads for accounts: members of a workspace."""

from django.db.models import QuerySet

from apps.accounts.models import Membership, Workspace


def membership_list(*, workspace: Workspace) -> QuerySet[Membership]:
    return Membership.objects.filter(workspace=workspace).select_related("user").order_by("created_at", "id")


def membership_get(*, workspace: Workspace, membership_id: int) -> Membership:
    """The workspace's membership, or Membership.DoesNotExist (a 404: another workspace's id is unknown here)."""
    return membership_list(workspace=workspace).get(pk=membership_id)


def membership_is_active(*, user_id: int, workspace_id: int) -> bool:
    """Whether the user is an active member of that workspace now (a removed member is deactivated)."""
    return Membership.objects.filter(user_id=user_id, workspace_id=workspace_id, user__is_active=True).exists()
