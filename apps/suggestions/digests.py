"""The daily digest: each workspace's day in figures, stored once and mailed to its owners once."""

import logging
from datetime import UTC, date, datetime, time, timedelta

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone

from apps.accounts.models import Membership, Role, Workspace
from apps.conversations.models import CUSTOMER_AUTHOR_TYPES, Message
from apps.suggestions.models import DailyDigest, KnowledgeGap, Suggestion, SuggestionStatus

logger = logging.getLogger(__name__)
GAPS_IN_DIGEST = 10


def _day_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time.min, tzinfo=UTC)
    return start, start + timedelta(days=1)


def digest_build(*, workspace_id: int, day: date) -> DailyDigest:
    """Compute (or recompute) the workspace's figures for `day` (UTC); one row per workspace and day."""
    start, end = _day_bounds(day)
    messages = Message.objects.filter(
        workspace_id=workspace_id, author_type__in=CUSTOMER_AUTHOR_TYPES, created_at__gte=start, created_at__lt=end
    ).count()
    counts = Suggestion.objects.filter(workspace_id=workspace_id, created_at__gte=start, created_at__lt=end).aggregate(
        shown=Count("id"),
        accepted=Count("id", filter=Q(status=SuggestionStatus.ACCEPTED)),
        dismissed=Count("id", filter=Q(status=SuggestionStatus.DISMISSED)),
    )
    gaps = list(
        KnowledgeGap.objects.filter(workspace_id=workspace_id, created_at__gte=start, created_at__lt=end)
        .order_by("best_score", "id")
        .values("message_id", "text", "best_score")[:GAPS_IN_DIGEST]
    )
    for gap in gaps:
        gap["text"] = gap["text"][:300]
    digest, _ = DailyDigest.objects.update_or_create(
        workspace_id=workspace_id,
        day=day,
        defaults={
            "messages_received": messages,
            "suggestions_shown": counts["shown"],
            "suggestions_accepted": counts["accepted"],
            "suggestions_dismissed": counts["dismissed"],
            "gaps": gaps,
        },
    )
    return digest


def _email_text(workspace: Workspace, digest: DailyDigest) -> str:
    rate = "n/a" if digest.acceptance_rate is None else f"{digest.acceptance_rate:.0%}"
    lines = [
        f"Cue for {workspace.name} on {digest.day.isoformat()} (UTC):",
        f"- customer messages: {digest.messages_received}",
        f"- suggestions shown: {digest.suggestions_shown}",
        f"- acceptance rate: {rate} ({digest.suggestions_accepted} accepted, {digest.suggestions_dismissed} dismissed)",
        f"- questions without a good suggestion: {len(digest.gaps)}",
    ]
    lines += [f"    * {gap['text']}" for gap in digest.gaps]
    return "\n".join(lines) + "\n"


def digest_email(*, digest_id: int) -> bool:
    """Mail a digest to the workspace's owners once; overlapping runs never send it twice."""
    with transaction.atomic():
        digest = (
            DailyDigest.objects.select_for_update(skip_locked=True)
            .filter(pk=digest_id, emailed_at__isnull=True)
            .select_related("workspace")
            .first()
        )
        if digest is None:
            return False  # sent already, or another run is sending it right now
        owners = list(
            Membership.objects.filter(
                workspace_id=digest.workspace_id, role=Role.OWNER, user__is_active=True
            ).values_list("user__email", flat=True)
        )
        if owners:
            send_mail(
                subject=f"Cue daily digest: {digest.workspace.name}, {digest.day.isoformat()}",
                message=_email_text(digest.workspace, digest),
                from_email=settings.DEFAULT_FROM_EMAIL,
                recipient_list=owners,
            )
        digest.emailed_at = timezone.now()
        digest.save(update_fields=["emailed_at"])
    return True


def digests_for_yesterday(*, today: date | None = None) -> dict[str, int | str]:
    """Build yesterday's digest for every workspace and mail the ones not mailed yet."""
    day = (today or timezone.now().date()) - timedelta(days=1)
    built = emailed = 0
    for workspace_id in Workspace.objects.values_list("id", flat=True).iterator():
        digest = digest_build(workspace_id=workspace_id, day=day)
        built += 1
        if digest.emailed_at is None and digest_email(digest_id=digest.id):
            emailed += 1
    logger.info("daily digests", extra={"day": day.isoformat(), "built": built, "emailed": emailed})
    return {"day": day.isoformat(), "built": built, "emailed": emailed}
