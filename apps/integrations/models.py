"""Intercom: a workspace's connection, its teammates, webhook deliveries, replies sent back, inbox-app choices."""

from django.db import models

from project.encryption import EncryptedTextField


class Region(models.TextChoices):
    US = "us", "United States"
    EU = "eu", "Europe"
    AU = "au", "Australia"


class ConnectionMethod(models.TextChoices):
    OAUTH = "oauth", "OAuth install of Cue's public app"
    TOKEN = "token", "Access token of the workspace's own app"


class DisabledCode(models.TextChoices):
    """Why a connection stopped routing: the machine-readable half of `disabled_reason`."""

    TOKEN_REFUSED = "token_refused", "Intercom refuses the access token"
    APP_MISMATCH = "app_mismatch", "The access token belongs to another Intercom workspace"
    APP_CLAIMED = "app_claimed", "Another Cue workspace proved it owns the Intercom workspace"


class IntercomConnection(models.Model):
    """One workspace's link to one Intercom workspace (Intercom calls its id `app_id`).

    `app_id` is the tenant key of every webhook and Canvas Kit request. It is never taken from the
    caller: it is what Intercom's `GET /me` says the access token belongs to, asked on every
    install and once more for connections stored before that rule (`verified_at`). Exactly one
    *active* connection per app id (a partial unique constraint): a workspace that proves it owns
    an app already connected elsewhere takes it over, and the other connection is kept, disabled,
    with a reason its owner can read. A disabled connection routes nothing and calls nothing.

    Webhooks of an OAuth connection are signed with Cue's app secret (INTERCOM_CLIENT_SECRET);
    a token connection keeps the secret of the workspace's own Intercom app in `client_secret`.
    """

    workspace = models.OneToOneField("accounts.Workspace", on_delete=models.CASCADE, related_name="intercom_connection")
    app_id = models.CharField(max_length=64)
    region = models.CharField(max_length=2, choices=Region.choices, default=Region.US)
    api_version = models.CharField(max_length=16)
    method = models.CharField(max_length=8, choices=ConnectionMethod.choices)
    access_token = EncryptedTextField()
    client_secret = EncryptedTextField(blank=True, default="")
    # The Intercom admin the token belongs to (from GET /me): replies default to being sent as them.
    token_admin_id = models.CharField(max_length=64, blank=True)
    connected_by = models.ForeignKey(
        "accounts.Membership", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    connected_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    admins_synced_at = models.DateTimeField(null=True, blank=True)
    # When Intercom last confirmed (GET /me) that the token belongs to `app_id`; null: never (stored before the rule).
    verified_at = models.DateTimeField(null=True, blank=True)
    # When this connection took the app over from another Cue workspace (by proving it owns it).
    took_over_at = models.DateTimeField(null=True, blank=True)
    disabled_at = models.DateTimeField(null=True, blank=True)
    disabled_code = models.CharField(max_length=16, choices=DisabledCode.choices, blank=True)
    disabled_reason = models.CharField(max_length=500, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["app_id"],
                condition=models.Q(disabled_at__isnull=True),
                name="integrations_conn_active_app_uniq",
            )
        ]

    def __str__(self) -> str:
        state = "" if self.is_active else ", disabled"
        return f"Intercom {self.app_id} ({self.region}{state}) for workspace {self.workspace_id}"

    @property
    def is_active(self) -> bool:
        return self.disabled_at is None


class IntercomAdmin(models.Model):
    """A teammate of the Intercom workspace, mapped to a Cue member by email when one matches."""

    workspace = models.ForeignKey("accounts.Workspace", on_delete=models.CASCADE, related_name="intercom_admins")
    intercom_id = models.CharField(max_length=64)
    name = models.CharField(max_length=200, blank=True)
    email = models.EmailField(blank=True)
    membership = models.ForeignKey(
        "accounts.Membership", null=True, blank=True, on_delete=models.SET_NULL, related_name="intercom_admins"
    )
    synced_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "intercom_id"], name="integrations_admin_ws_intercom_uniq")
        ]

    def __str__(self) -> str:
        return f"{self.name or self.email} ({self.intercom_id})"


class DeliveryStatus(models.TextChoices):
    RECEIVED = "received", "Received"
    PROCESSED = "processed", "Processed"
    SKIPPED = "skipped", "Skipped"


class WebhookDelivery(models.Model):
    """One webhook notification as Intercom signed it: stored before anything is done with it.

    Unique on (workspace, notification id): Intercom's redeliveries of a notification insert
    nothing and dispatch nothing. The raw body is kept (not re-serialised) so it can be
    verified again and processed again. The row is also its own outbox: one still `received`
    long after it arrived (its dispatch was lost) is dispatched again by a scheduled job.
    """

    workspace = models.ForeignKey("accounts.Workspace", on_delete=models.CASCADE, related_name="intercom_deliveries")
    notification_id = models.CharField(max_length=100)
    topic = models.CharField(max_length=100)
    body = models.TextField()
    status = models.CharField(max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.RECEIVED)
    # Intercom's own clock for the event (the notification's created_at): orders events of a conversation.
    event_created_at = models.DateTimeField(null=True, blank=True)
    received_at = models.DateTimeField()
    processed_at = models.DateTimeField(null=True, blank=True)
    redispatched_at = models.DateTimeField(null=True, blank=True)
    result = models.JSONField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "notification_id"], name="integrations_delivery_notif_uniq")
        ]
        indexes = [
            models.Index(fields=["workspace", "received_at"], name="integrations_delivery_ws_idx"),
            models.Index(
                fields=["received_at"], name="integrations_delivery_open_idx", condition=models.Q(status="received")
            ),
        ]
        verbose_name_plural = "webhook deliveries"

    def __str__(self) -> str:
        return f"{self.topic} {self.notification_id}"


class ReplyKind(models.TextChoices):
    COMMENT = "comment", "Reply to the customer"
    NOTE = "note", "Internal note"


class ReplyStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"


class OutboundReply(models.Model):
    """A reply (or note) Cue is asked to post to an Intercom conversation: sent once, by the send_reply task.

    Intercom's reply endpoint has no idempotency key, so the row is the memory: it is locked while
    sending, and once Intercom's part id is recorded a redelivered task does nothing.
    """

    workspace = models.ForeignKey("accounts.Workspace", on_delete=models.CASCADE, related_name="intercom_replies")
    conversation = models.ForeignKey(
        "conversations.Conversation", on_delete=models.CASCADE, related_name="outbound_replies"
    )
    kind = models.CharField(max_length=8, choices=ReplyKind.choices, default=ReplyKind.COMMENT)
    body = models.TextField()
    admin_id = models.CharField(max_length=64)
    requested_by = models.ForeignKey(
        "accounts.Membership", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Where the reply came from, for the suggestions feedback (a suggestion id, a canvas choice).
    source = models.CharField(max_length=40, blank=True)
    source_id = models.CharField(max_length=64, blank=True)
    status = models.CharField(max_length=8, choices=ReplyStatus.choices, default=ReplyStatus.PENDING)
    task_id = models.UUIDField(null=True, blank=True)
    intercom_part_id = models.CharField(max_length=64, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["workspace", "status", "created_at"], name="integrations_reply_ws_idx")]
        verbose_name_plural = "outbound replies"

    def __str__(self) -> str:
        return f"{self.kind} to {self.conversation_id} ({self.status})"


class CanvasAction(models.Model):
    """What an agent chose in the inbox app (Canvas Kit) for a conversation."""

    workspace = models.ForeignKey("accounts.Workspace", on_delete=models.CASCADE, related_name="canvas_actions")
    conversation = models.ForeignKey(
        "conversations.Conversation", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    intercom_conversation_id = models.CharField(max_length=64, blank=True)
    admin_id = models.CharField(max_length=64, blank=True)
    action = models.CharField(max_length=20)
    suggestion_id = models.BigIntegerField(null=True, blank=True)
    reply = models.ForeignKey(OutboundReply, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["workspace", "created_at"], name="integrations_canvas_ws_idx")]

    def __str__(self) -> str:
        return f"{self.action} by {self.admin_id} on {self.intercom_conversation_id}"
