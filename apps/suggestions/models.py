"""Suggestions shown for a customer message, the agent's verdict on each, and messages that found no match."""

from django.conf import settings
from django.db import models


class SuggestionStatus(models.TextChoices):
    SHOWN = "shown"
    ACCEPTED = "accepted"
    DISMISSED = "dismissed"


class SentAs(models.TextChoices):
    REPLY = "reply"
    NOTE = "note"


class Suggestion(models.Model):
    """One knowledge entry suggested for one customer message, ranked, with what the agent did with it."""

    workspace = models.ForeignKey("accounts.Workspace", on_delete=models.CASCADE, related_name="+")
    conversation = models.ForeignKey("conversations.Conversation", on_delete=models.CASCADE, related_name="suggestions")
    message = models.ForeignKey("conversations.Message", on_delete=models.CASCADE, related_name="suggestions")
    # SET_NULL keeps the history (and the acceptance stats) when an entry is deleted; title/body are
    # snapshots of what the agent was shown.
    entry = models.ForeignKey("knowledge.Entry", on_delete=models.SET_NULL, null=True, related_name="suggestions")
    title = models.CharField(max_length=300)
    body = models.TextField()
    score = models.FloatField()
    rank = models.PositiveSmallIntegerField()
    status = models.CharField(max_length=10, choices=SuggestionStatus.choices, default=SuggestionStatus.SHOWN)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    sent_as = models.CharField(max_length=10, choices=SentAs.choices, blank=True)
    reply = models.ForeignKey(
        "integrations.OutboundReply", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["message", "entry"], name="suggestions_one_per_message_entry"),
        ]
        indexes = [
            models.Index(fields=["conversation", "-message", "rank"], name="suggestions_by_conversation"),
            models.Index(fields=["workspace", "entry"], name="suggestions_by_entry"),
        ]

    def __str__(self) -> str:
        return f"{self.title} for message {self.message_id} ({self.status})"


class KnowledgeGap(models.Model):
    """A customer message the knowledge base had no good answer for: what to write next."""

    workspace = models.ForeignKey("accounts.Workspace", on_delete=models.CASCADE, related_name="+")
    conversation = models.ForeignKey("conversations.Conversation", on_delete=models.CASCADE, related_name="+")
    message = models.OneToOneField("conversations.Message", on_delete=models.CASCADE, related_name="knowledge_gap")
    text = models.TextField()
    best_score = models.FloatField(default=0.0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["workspace", "-created_at"], name="suggestions_gaps_newest")]

    def __str__(self) -> str:
        return f"gap for message {self.message_id}"
