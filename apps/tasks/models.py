"""The task ledger: one row per task id, the source of truth for exactly-once effects."""

import uuid

from django.db import models


class TaskStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed (will retry)"
    DEAD = "dead", "Dead"
    REJECTED = "rejected", "Rejected (permanent error, not retried)"


# A task in one of these is over: no delivery runs it again (an operator may retry it by hand).
FINISHED_STATUSES = (TaskStatus.SUCCEEDED, TaskStatus.DEAD, TaskStatus.REJECTED)


class TaskRun(models.Model):
    """A durable task: what to run, and what happened each time it ran.

    `sent_at` is null until the message went out (the outbox the sweeper drains);
    `claimed_until` bounds a running attempt (a later delivery may take over after it);
    `claim_id` tells the attempt that holds the claim from one that lost it.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=200, db_index=True)
    args = models.JSONField(default=list, blank=True)
    kwargs = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=10, choices=TaskStatus.choices, default=TaskStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    max_attempts = models.PositiveIntegerField(default=5)
    last_error = models.TextField(blank=True)
    result = models.JSONField(null=True, blank=True)
    workspace = models.ForeignKey(
        "accounts.Workspace", null=True, blank=True, on_delete=models.CASCADE, related_name="task_runs"
    )
    correlation_id = models.CharField(max_length=64, blank=True)
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="children")
    callback = models.CharField(max_length=200, blank=True)
    error_callback = models.CharField(max_length=200, blank=True)
    claim_id = models.UUIDField(null=True, blank=True)
    claimed_until = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    sends = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="tasks_due_idx"),
            models.Index(fields=["status", "claimed_until"], name="tasks_claim_idx"),
            models.Index(fields=["workspace", "status", "created_at"], name="tasks_ws_status_idx"),
            # The sweeper's outbox: pending rows never sent, or sent long ago and never claimed.
            models.Index(
                fields=["sent_at", "created_at"],
                name="tasks_pending_send_idx",
                condition=models.Q(status=TaskStatus.PENDING),
            ),
            models.Index(fields=["-created_at"], name="tasks_created_idx"),  # the admin's newest-first list
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status__in=TaskStatus.values),
                name="tasks_status_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} {self.id} ({self.status})"
