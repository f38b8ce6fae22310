"""Conversations and their messages, mirrored from Intercom per workspace."""

from django.db import models


class ConversationState(models.TextChoices):
    OPEN = "open", "Open"
    CLOSED = "closed", "Closed"
    SNOOZED = "snoozed", "Snoozed"


CUSTOMER_AUTHOR_TYPES = frozenset({"user", "lead", "contact"})
# Intercom's author type of a teammate; Intercom's own bot (Operator, Fin) writes as "bot" and is no agent.
AGENT_AUTHOR_TYPE = "admin"


class Conversation(models.Model):
    """The latest known state of an Intercom conversation.

    `updated_at_intercom` and `last_event_at` are the version of the state stored: an event whose
    (conversation updated_at, event created_at) is older than them never overwrites it.
    """

    workspace = models.ForeignKey("accounts.Workspace", on_delete=models.CASCADE, related_name="conversations")
    intercom_id = models.CharField(max_length=64)
    state = models.CharField(max_length=10, choices=ConversationState.choices, default=ConversationState.OPEN)
    subject = models.CharField(max_length=500, blank=True)
    assignee_id = models.CharField(max_length=64, blank=True)
    team_assignee_id = models.CharField(max_length=64, blank=True)
    customer_id = models.CharField(max_length=64, blank=True)
    customer_name = models.CharField(max_length=200, blank=True)
    customer_email = models.CharField(max_length=254, blank=True)
    tags = models.JSONField(default=list, blank=True)
    intercom_url = models.CharField(max_length=500, blank=True)
    snoozed_until = models.DateTimeField(null=True, blank=True)
    created_at_intercom = models.DateTimeField(null=True, blank=True)
    updated_at_intercom = models.DateTimeField(null=True, blank=True)
    last_event_at = models.DateTimeField(null=True, blank=True)
    # The newest message, kept here so a list needs no per-row query.
    last_message_at = models.DateTimeField(null=True, blank=True)
    last_message_text = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "intercom_id"], name="conversations_ws_intercom_uniq")
        ]
        indexes = [
            # The list's order (newest first), so a page is an index scan.
            models.Index(fields=["workspace", "-updated_at_intercom", "-id"], name="conversations_ws_updated_idx"),
            models.Index(
                fields=["workspace", "state", "-updated_at_intercom", "-id"], name="conversations_ws_state_idx"
            ),
            models.Index(fields=["workspace", "assignee_id"], name="conversations_ws_assignee_idx"),
        ]

    def __str__(self) -> str:
        return f"Conversation {self.intercom_id} ({self.state})"


class Message(models.Model):
    """One part of a conversation: the opening message, a reply, a note, or an action (assign, close, ...)."""

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="messages")
    workspace = models.ForeignKey("accounts.Workspace", on_delete=models.CASCADE, related_name="messages")
    # The opening message is "source:<id>": Intercom numbers it apart from the parts.
    intercom_part_id = models.CharField(max_length=80)
    author_type = models.CharField(max_length=20, blank=True)
    author_id = models.CharField(max_length=64, blank=True)
    author_name = models.CharField(max_length=200, blank=True)
    kind = models.CharField(max_length=40)
    body_html = models.TextField(blank=True)
    body_text = models.TextField(blank=True)
    created_at_intercom = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "intercom_part_id"], name="conversations_msg_ws_part_uniq")
        ]
        indexes = [models.Index(fields=["conversation", "created_at_intercom"], name="conversations_msg_conv_idx")]

    def __str__(self) -> str:
        return f"{self.kind} {self.intercom_part_id} by {self.author_type}"

    @property
    def is_from_customer(self) -> bool:
        return self.author_type in CUSTOMER_AUTHOR_TYPES
