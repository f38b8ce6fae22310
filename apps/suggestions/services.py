"""Writes for suggestions: rank a new customer message and store what to show; record an agent's verdict."""

import logging
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from apps.accounts.models import Membership
from apps.conversations.models import Message
from apps.conversations.selectors import messages_answered_by
from apps.conversations.services import is_agent_reply, is_suggestion_trigger
from apps.integrations import selectors as integration_selectors
from apps.integrations.models import OutboundReply, ReplyKind
from apps.integrations.services import reply_request
from apps.knowledge.selectors import entries_rank, entry_matching_reply, knowledge_settings_get
from apps.knowledge.services import evidence_record
from apps.suggestions.models import KnowledgeGap, SentAs, Suggestion, SuggestionStatus
from project.metrics import metric_emit

logger = logging.getLogger(__name__)

ACTIONS = {"accept": SuggestionStatus.ACCEPTED, "dismiss": SuggestionStatus.DISMISSED}
_REPLY_KINDS = {SentAs.REPLY: ReplyKind.COMMENT, SentAs.NOTE: ReplyKind.NOTE}
# An agent's reply answers the customer's messages since the agent's previous reply: at most the newest
# this many (a burst like "hi" / "I was charged twice" / "order 1234"), so one reply never teaches much.
ANSWERED_MESSAGES_MAX = 3


class SuggestionAlreadyDecided(Exception):
    """The agent (or a colleague) already decided this suggestion differently."""

    def __init__(self, suggestion: Suggestion):
        self.suggestion = suggestion
        super().__init__(f"Suggestion {suggestion.id} is already {suggestion.status}.")


def evidence_ref(message: Message) -> str:
    """The knowledge app's key for a customer message: one verdict per (entry, message)."""
    return f"message:{message.id}"


def _gap_store(message: Message, *, best_score: float) -> None:
    KnowledgeGap.objects.bulk_create(
        [
            KnowledgeGap(
                workspace_id=message.workspace_id,
                conversation_id=message.conversation_id,
                message=message,
                text=message.body_text,
                best_score=best_score,
            )
        ],
        ignore_conflicts=True,
    )
    logger.info("knowledge gap", extra={"workspace_id": message.workspace_id, "message_id": message.id})


# ------------------------------------------------------------------------------
# The suggestion step
# ------------------------------------------------------------------------------
@transaction.atomic
def suggestions_create_for_message(*, message_id: int) -> str:
    """Rank the knowledge base for a customer message; store its Suggestion rows, or a KnowledgeGap.

    Returns what happened: "suggested", "gap", or why nothing was done ("missing", "not_customer",
    "already"). Idempotent: the message row is locked, and a message that already has suggestions or
    a gap is left alone, so a redelivered or duplicated task never stores (or ranks) twice.
    """
    message = Message.objects.select_for_update().filter(pk=message_id).first()
    if message is None:
        return "missing"
    if not is_suggestion_trigger(message):
        return "not_customer"
    if Suggestion.objects.filter(message=message).exists() or KnowledgeGap.objects.filter(message=message).exists():
        return "already"
    knowledge = knowledge_settings_get(workspace_id=message.workspace_id)
    # Rank without the threshold so a gap records how close the best entry came.
    ranked = entries_rank(
        workspace_id=message.workspace_id,
        text=message.body_html or message.body_text,
        limit=knowledge.top_k,
        threshold=0.0,
    )
    good = [r for r in ranked if r.score >= knowledge.suggestion_threshold and r.score > 0]
    if not good:
        _gap_store(message, best_score=ranked[0].score if ranked else 0.0)
        return "gap"
    Suggestion.objects.bulk_create(
        [
            Suggestion(
                workspace_id=message.workspace_id,
                conversation_id=message.conversation_id,
                message=message,
                entry_id=r.entry_id,
                title=r.title[:300],
                body=r.body,
                score=r.score,
                rank=rank,
            )
            for rank, r in enumerate(good, start=1)
        ],
        ignore_conflicts=True,
    )
    logger.info(
        "suggestions stored",
        extra={"workspace_id": message.workspace_id, "message_id": message.id, "count": len(good)},
    )
    # From the message's arrival in Cue (its webhook) to its suggestions stored, the push still to come.
    latency_ms = (timezone.now() - message.created_at).total_seconds() * 1000
    metric_emit(name="SuggestionLatency", value=round(latency_ms, 3), unit="Milliseconds")
    return "suggested"


# ------------------------------------------------------------------------------
# Feedback
# ------------------------------------------------------------------------------
def _validate(action: str, send_as: str | None) -> None:
    if action not in ACTIONS:
        raise ValidationError({"action": [f"Use one of: {', '.join(ACTIONS)}."]})
    if send_as is not None and send_as not in SentAs.values:
        raise ValidationError({"send_as": [f"Use one of: {', '.join(SentAs.values)}."]})
    if send_as is not None and action != "accept":
        raise ValidationError({"send_as": ["Only an accepted suggestion can be sent."]})


def _decide(
    suggestion: Suggestion, *, action: str, user_id: int | None, sent_as: str = "", reply: OutboundReply | None
) -> None:
    """Store the verdict and teach the ranker: the triggering message becomes evidence for or against the entry."""
    if suggestion.entry_id is not None:
        evidence_record(
            workspace_id=suggestion.workspace_id,
            entry_id=suggestion.entry_id,
            message_ref=evidence_ref(suggestion.message),
            text=suggestion.message.body_text,
            action=action,
        )
    suggestion.status = ACTIONS[action]
    suggestion.decided_by_id = user_id
    suggestion.decided_at = timezone.now()
    suggestion.sent_as = sent_as
    suggestion.reply = reply
    suggestion.save(update_fields=["status", "decided_by", "decided_at", "sent_as", "reply"])
    # 1 for an accept, 0 otherwise: the metric's Average is the accept rate.
    metric_emit(name="SuggestionAccepted", value=1 if action == "accept" else 0, dimensions={"Action": action})


@transaction.atomic
def suggestion_feedback(
    *, membership: Membership, suggestion_id: int, action: str, send_as: str | None = None
) -> tuple[Suggestion, bool]:
    """Accept or dismiss a suggestion of the member's workspace; accepting can send it as a reply or a note.

    Returns (suggestion, changed). The same verdict again is a no-op (changed=False, no second reply);
    a different one raises SuggestionAlreadyDecided. Sending needs an Intercom connection
    (ValidationError otherwise, nothing stored); the reply is queued, Intercom is called by its task.
    """
    _validate(action, send_as)
    suggestion = (
        Suggestion.objects.select_for_update(of=("self",))
        .select_related("message", "conversation")
        .get(workspace_id=membership.workspace_id, pk=suggestion_id)
    )
    if suggestion.status != SuggestionStatus.SHOWN:
        if suggestion.status == ACTIONS[action] and (send_as is None or send_as == suggestion.sent_as):
            return suggestion, False
        raise SuggestionAlreadyDecided(suggestion)
    reply = None
    if send_as is not None:
        if integration_selectors.connection_for_workspace(workspace=membership.workspace_id) is None:
            raise ValidationError({"send_as": ["Intercom is not connected: connect it to send replies from Cue."]})
        reply = reply_request(
            workspace=membership.workspace,
            conversation=suggestion.conversation,
            body=suggestion.body,
            kind=_REPLY_KINDS[SentAs(send_as)],
            requested_by=membership,
            source="suggestion",
            source_id=str(suggestion.id),
        )
    _decide(suggestion, action=action, user_id=membership.user_id, sent_as=send_as or "", reply=reply)
    logger.info(
        "suggestion decided",
        extra={"workspace_id": suggestion.workspace_id, "suggestion_id": suggestion.id, "action": action},
    )
    return suggestion, True


@transaction.atomic
def suggestion_feedback_from_canvas(
    *, workspace_id: int, conversation_id: int, suggestion_id: int, action: str, reply: OutboundReply | None = None
) -> Suggestion | None:
    """The inbox app's click (send / note: accept; dismiss): the same learning as the API's feedback.

    The canvas has queued any reply itself. A suggestion already decided keeps its first verdict.
    """
    suggestion = (
        Suggestion.objects.select_for_update(of=("self",))
        .select_related("message")
        .filter(workspace_id=workspace_id, conversation_id=conversation_id, pk=suggestion_id)
        .first()
    )
    if suggestion is None or suggestion.status != SuggestionStatus.SHOWN:
        return suggestion
    sent_as = "" if reply is None else (SentAs.NOTE if reply.kind == ReplyKind.NOTE else SentAs.REPLY)
    _decide(suggestion, action=action, user_id=None, sent_as=sent_as, reply=reply)
    return suggestion


@transaction.atomic
def suggestion_feedback_from_reply(*, message_id: int) -> dict:
    """Learn from a reply an agent wrote in Intercom: if it repeats an entry's text, accept that entry.

    The customer's messages the reply answers (conversations.selectors.messages_answered_by) become
    accepted evidence for the entry, exactly as accepting its suggestion would; a suggestion of that
    entry still shown for one of them is marked accepted (by the member mapped to the Intercom
    teammate, when teammates are synced), so the stats count what the agent used. A verdict already
    given (the agent clicked accept, or dismiss) is kept and never counted twice, so a redelivered or
    repeated task changes nothing. Returns what happened under "status": "learnt", or why not
    ("missing", "not_agent_reply", "nothing_answered", "no_match").
    """
    reply = Message.objects.filter(pk=message_id).first()
    if reply is None:
        return {"status": "missing"}
    if not is_agent_reply(reply):
        return {"status": "not_agent_reply"}
    answered = messages_answered_by(reply=reply, limit=ANSWERED_MESSAGES_MAX)
    if not answered:
        return {"status": "nothing_answered"}
    suggested = Suggestion.objects.filter(
        workspace_id=reply.workspace_id, message__in=answered, entry__isnull=False
    ).values_list("entry_id", flat=True)
    match = entry_matching_reply(workspace_id=reply.workspace_id, text=reply.body_text, candidate_ids=suggested)
    if match is None:
        return {"status": "no_match"}
    user_id = integration_selectors.member_user_of_admin(workspace_id=reply.workspace_id, admin_id=reply.author_id)
    shown = {
        s.message_id: s
        for s in Suggestion.objects.select_for_update(of=("self",)).filter(
            workspace_id=reply.workspace_id, message__in=answered, entry_id=match.entry_id
        )
    }
    for message in answered:
        suggestion = shown.get(message.id)
        if suggestion is None:
            evidence_record(
                workspace_id=reply.workspace_id,
                entry_id=match.entry_id,
                message_ref=evidence_ref(message),
                text=message.body_text,
                action="accept",
                keep_existing=True,
            )
        elif suggestion.status == SuggestionStatus.SHOWN:
            suggestion.message = message
            _decide(suggestion, action="accept", user_id=user_id, reply=None)
    result = {
        "status": "learnt",
        "entry_id": match.entry_id,
        "overlap": match.overlap,
        "message_ids": [m.id for m in answered],
    }
    logger.info("learnt from an agent's reply", extra={"workspace_id": reply.workspace_id, **result})
    return result


@dataclass
class UnmatchedReply:
    """An imported agent reply that repeats no entry, with the customer messages it answered."""

    message_id: int
    html: str
    text: str
    questions: list[str]


@dataclass
class HistoryLesson:
    learnt: int = 0
    gaps: int = 0
    unmatched: list[UnmatchedReply] = field(default_factory=list)


@transaction.atomic
def suggestions_learn_from_history(*, message_ids: list[int]) -> HistoryLesson:
    """Learn from newly imported (closed) conversation messages as from live ones, without showing anything.

    Each agent reply that repeats an entry teaches it as a typed reply does (suggestion_feedback_from_reply);
    a customer question no such reply answered and no entry ranks for becomes a knowledge gap; the replies
    that repeat no entry are returned (with what they answered) for the importer's proposals. Call it with
    messages just inserted, once: what it records is idempotent anyway (one verdict per message and entry,
    one gap per message).
    """
    messages = list(Message.objects.filter(pk__in=message_ids).order_by("created_at_intercom", "id"))
    lesson = HistoryLesson()
    answered: set[int] = set()
    for message in messages:
        if not is_agent_reply(message):
            continue
        result = suggestion_feedback_from_reply(message_id=message.id)
        if result["status"] == "learnt":
            lesson.learnt += 1
            answered.update(result["message_ids"])
        elif result["status"] == "no_match":
            asked = messages_answered_by(reply=message, limit=ANSWERED_MESSAGES_MAX)
            lesson.unmatched.append(
                UnmatchedReply(message.id, message.body_html, message.body_text, [m.body_text for m in asked])
            )
    questions = [m for m in messages if is_suggestion_trigger(m) and m.id not in answered]
    if questions:
        knowledge = knowledge_settings_get(workspace_id=questions[0].workspace_id)
        for message in questions:
            ranked = entries_rank(workspace_id=message.workspace_id, text=message.body_text, limit=1, threshold=0.0)
            best = ranked[0].score if ranked else 0.0
            if best < knowledge.suggestion_threshold or best <= 0:
                _gap_store(message, best_score=best)
                lesson.gaps += 1
    return lesson
