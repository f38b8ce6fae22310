"""Reads for suggestions: per conversation and message, the inbox app's view, knowledge gaps, acceptance stats."""

from datetime import datetime

from django.db.models import Count, F, Max, Q, QuerySet

from apps.conversations.models import Conversation, Message
from apps.suggestions.models import DailyDigest, KnowledgeGap, Suggestion, SuggestionStatus

# Newest customer message first (Intercom's time, then arrival), best suggestion first within it.
_NEWEST_MESSAGE_FIRST = (
    F("message__created_at_intercom").desc(nulls_last=True),
    F("message_id").desc(),
    "rank",
)


def suggestion_list(
    *, conversation: Conversation, since: datetime | None = None, message_id: int | None = None
) -> QuerySet[Suggestion]:
    """The conversation's suggestions, newest message first; `since` (created after) is a reconnecting client's gap."""
    suggestions = Suggestion.objects.filter(workspace_id=conversation.workspace_id, conversation=conversation)
    if since is not None:
        suggestions = suggestions.filter(created_at__gt=since)
    if message_id is not None:
        suggestions = suggestions.filter(message_id=message_id)
    return suggestions.select_related("message", "reply").order_by(*_NEWEST_MESSAGE_FIRST)


def suggestion_exists(*, workspace_id: int, suggestion_id: int) -> bool:
    return Suggestion.objects.filter(workspace_id=workspace_id, pk=suggestion_id).exists()


def suggestions_of_message(*, message_id: int) -> tuple[Message | None, list[Suggestion]]:
    """A message and its suggestions, best first (the realtime event's content)."""
    message = Message.objects.filter(pk=message_id).first()
    if message is None:
        return None, []
    return message, list(Suggestion.objects.filter(message=message).order_by("rank", "id"))


def knowledge_gap_list(*, workspace_id: int) -> QuerySet[KnowledgeGap]:
    return KnowledgeGap.objects.filter(workspace_id=workspace_id).order_by("-created_at", "-id")


def suggestion_stats(*, workspace_id: int) -> tuple[dict, QuerySet]:
    """Totals, and per entry: how often suggested, accepted, dismissed; most suggested first."""
    suggestions = Suggestion.objects.filter(workspace_id=workspace_id)
    counts = {
        "suggested": Count("id"),
        "accepted": Count("id", filter=Q(status=SuggestionStatus.ACCEPTED)),
        "dismissed": Count("id", filter=Q(status=SuggestionStatus.DISMISSED)),
    }
    totals = suggestions.aggregate(**counts)
    by_entry = (
        suggestions.filter(entry__isnull=False)
        .values("entry_id")
        .annotate(title=Max("title"), **counts)
        .order_by("-suggested", "entry_id")  # type: ignore[misc]  # annotated through **counts: the stubs cannot see it
    )
    return totals, by_entry


def acceptance_rate(*, accepted: int, suggested: int) -> float | None:
    return round(accepted / suggested, 4) if suggested else None


# ------------------------------------------------------------------------------
# The inbox app (apps.integrations.canvas)
# ------------------------------------------------------------------------------
def _canvas_item(suggestion: Suggestion) -> dict:
    return {"id": suggestion.id, "title": suggestion.title, "body": suggestion.body, "score": suggestion.score}


def suggestions_for_canvas(*, conversation: Conversation, limit: int) -> list[dict]:
    """The suggestions an agent has not decided yet, newest message first."""
    shown = suggestion_list(conversation=conversation).filter(status=SuggestionStatus.SHOWN)[:limit]
    return [_canvas_item(s) for s in shown]


def suggestion_for_canvas(*, conversation: Conversation, suggestion_id: int) -> dict | None:
    suggestion = Suggestion.objects.filter(
        workspace_id=conversation.workspace_id, conversation=conversation, pk=suggestion_id
    ).first()
    return None if suggestion is None else _canvas_item(suggestion)


def digest_list(*, workspace_id: int) -> QuerySet[DailyDigest]:
    return DailyDigest.objects.filter(workspace_id=workspace_id).order_by("-day")
