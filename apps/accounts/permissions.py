"""Permissions and the one way every app learns the caller's workspace."""

from rest_framework.permissions import SAFE_METHODS, BasePermission

from apps.accounts.models import Membership, Workspace


def membership_of(request) -> Membership | None:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return None
    try:
        return user.membership
    except Membership.DoesNotExist:
        return None


def membership_required(request) -> Membership:
    """The caller's membership; views behind IsMember can rely on it."""
    membership = membership_of(request)
    assert membership is not None, "membership_required() needs IsMember on the view"
    return membership


def workspace_of(request) -> Workspace:
    """The caller's workspace; views behind IsMember can rely on it."""
    return membership_required(request).workspace


class IsMember(BasePermission):
    """Any member of a workspace."""

    message = "You must be a member of a workspace."

    def has_permission(self, request, view) -> bool:
        return membership_of(request) is not None


class IsManager(BasePermission):
    """An owner or admin of the caller's workspace."""

    message = "Only an owner or admin can do this."

    def has_permission(self, request, view) -> bool:
        membership = membership_of(request)
        return membership is not None and membership.is_manager


class IsManagerOrReadOnly(BasePermission):
    """Members read; owners and admins write."""

    message = "Only an owner or admin can change this."

    def has_permission(self, request, view) -> bool:
        membership = membership_of(request)
        if membership is None:
            return False
        return request.method in SAFE_METHODS or membership.is_manager
