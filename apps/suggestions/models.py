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


class DailyDigest(models.Model):
    """One workspace's figures for one UTC day, stored for the API and mailed to its owners once."""

    workspace = models.ForeignKey("accounts.Workspace", on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    messages_received = models.PositiveIntegerField(default=0)
    suggestions_shown = models.PositiveIntegerField(default=0)
    suggestions_accepted = models.PositiveIntegerField(default=0)
    suggestions_dismissed = models.PositiveIntegerField(default=0)
    gaps = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    emailed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["workspace", "day"], name="suggestions_one_digest_a_day")]
        ordering = ["-day"]

    def __str__(self) -> str:
        return f"digest {self.workspace_id} {self.day}"

    @property
    def acceptance_rate(self) -> float | None:
        decided = self.suggestions_accepted + self.suggestions_dismissed
        return round(self.suggestions_accepted / decided, 4) if decided else None
