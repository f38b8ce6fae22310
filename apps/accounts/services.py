"""Writes for accounts: sign-up, team management, token revocation."""

import logging

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken

from apps.accounts.models import Membership, Role, User, Workspace

logger = logging.getLogger(__name__)

EMAIL_TAKEN_AT_SIGNUP = "An account with this email already exists."
EMAIL_TAKEN_BY_MEMBER = "This email already belongs to a Cue account."


def _check_password(password: str, email: str) -> None:
    try:
        validate_password(password, user=User(email=email))
    except ValidationError as exc:
        raise ValidationError({"password": exc.messages}) from exc


def _email_taken(email: str) -> bool:
    return User.objects.filter(email__iexact=email).exists()


def _user_create(*, email: str, password: str, full_name: str, taken_message: str) -> User:
    """A new user; the email committed meanwhile by a concurrent request (the unique index) is a ValidationError."""
    try:
        with transaction.atomic():
            return User.objects.create_user(email, password, full_name=full_name)
    except IntegrityError as exc:
        if _email_taken(email):
            raise ValidationError({"email": [taken_message]}) from exc
        raise


@transaction.atomic
def workspace_signup(*, email: str, password: str, workspace_name: str, full_name: str = "") -> Membership:
    """Create a workspace and its owner."""
    email = email.strip().lower()
    if _email_taken(email):
        raise ValidationError({"email": [EMAIL_TAKEN_AT_SIGNUP]})
    _check_password(password, email)
    workspace = Workspace.objects.create(name=workspace_name.strip())
    user = _user_create(email=email, password=password, full_name=full_name, taken_message=EMAIL_TAKEN_AT_SIGNUP)
    membership = Membership.objects.create(user=user, workspace=workspace, role=Role.OWNER)
    logger.info("workspace signed up", extra={"workspace_id": workspace.id, "user_id": user.id})
    return membership


@transaction.atomic
def member_add(*, actor: Membership, email: str, password: str, role: str, full_name: str = "") -> Membership:
    """Add a new user to the actor's workspace. Only an owner can make owners."""
    email = email.strip().lower()
    if role == Role.OWNER and actor.role != Role.OWNER:
        raise ValidationError({"role": ["Only an owner can add an owner."]})
    if _email_taken(email):
        raise ValidationError({"email": [EMAIL_TAKEN_BY_MEMBER]})
    _check_password(password, email)
    user = _user_create(email=email, password=password, full_name=full_name, taken_message=EMAIL_TAKEN_BY_MEMBER)
    membership = Membership.objects.create(user=user, workspace=actor.workspace, role=role)
    logger.info("member added", extra={"workspace_id": actor.workspace_id, "user_id": user.id, "role": role})
    return membership


def _ensure_an_owner_remains(membership: Membership) -> None:
    if membership.role != Role.OWNER:
        return
    others = Membership.objects.filter(workspace_id=membership.workspace_id, role=Role.OWNER).exclude(pk=membership.pk)
    if not others.exists():
        raise ValidationError({"role": ["A workspace must keep at least one owner."]})


@transaction.atomic
def member_change_role(*, actor: Membership, membership: Membership, role: str) -> Membership:
    if actor.role != Role.OWNER and Role.OWNER in (role, membership.role):
        raise ValidationError({"role": ["Only an owner can grant or take away the owner role."]})
    if role != Role.OWNER:
        _ensure_an_owner_remains(membership)
    membership.role = role
    membership.save(update_fields=["role"])
    logger.info("member role changed", extra={"workspace_id": membership.workspace_id, "membership_id": membership.id})
    return membership


def user_tokens_revoke(*, user: User) -> int:
    """Blacklist every outstanding refresh token of the user."""
    outstanding = OutstandingToken.objects.filter(user=user).exclude(blacklistedtoken__isnull=False)
    BlacklistedToken.objects.bulk_create([BlacklistedToken(token=t) for t in outstanding], ignore_conflicts=True)
    return len(outstanding)


@transaction.atomic
def member_remove(*, actor: Membership, membership: Membership) -> None:
    """Remove a member: their account is deactivated and every token they hold stops working."""
    if actor.role != Role.OWNER and membership.role == Role.OWNER:
        raise ValidationError({"role": ["Only an owner can remove an owner."]})
    _ensure_an_owner_remains(membership)
    user = membership.user
    membership.delete()
    user.is_active = False
    user.save(update_fields=["is_active"])
    user_tokens_revoke(user=user)
    logger.info("member removed", extra={"workspace_id": actor.workspace_id, "user_id": user.id})


def retention_purge(*, now=None, batch: int = 5000) -> dict[str, int]:
    """Delete processed webhook deliveries and finished task rows older than each workspace keeps them.

    Works in bounded batches so one run fits in an invocation; a second run, or two at once, only
    deletes what is left. Pending work (unprocessed deliveries, tasks not finished) is never purged.
    """
    from datetime import timedelta

    from django.conf import settings
    from django.utils import timezone

    from apps.integrations.services import deliveries_purge
    from apps.tasks.services import task_runs_purge

    now = now or timezone.now()
    counts = {"deliveries": 0, "tasks": 0, "workspaces": 0}
    for workspace_id, days in Workspace.objects.values_list("id", "retention_days").iterator():
        cutoff = now - timedelta(days=days)
        counts["deliveries"] += deliveries_purge(workspace_id=workspace_id, before=cutoff, limit=batch)
        counts["tasks"] += task_runs_purge(workspace_id=workspace_id, before=cutoff, limit=batch)
        counts["workspaces"] += 1
    # Task rows of no workspace (system jobs) follow the project-wide setting.
    cutoff = now - timedelta(days=settings.CUE_TASK_RETENTION_DAYS)
    counts["tasks"] += task_runs_purge(workspace_id=None, before=cutoff, limit=batch)
    logger.info("retention purge", extra=counts)
    return counts
