"""The bell (R20): notifications staff read in the admin; the outbox of emails waiting to be sent."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from passportal.models import Client


class NotificationKind(models.TextChoices):
    CREATION_ISSUE = "creation_issue", "Creation issue"
    SYNC_FAILED = "sync_failed", "Sync failed"
    DISABLES_HELD = "disables_held", "Disables held"
    TENANT_LINKED = "tenant_linked", "Entra tenant already linked"
    EMAIL_FAILED = "email_failed", "Email delivery failed"


class Notification(models.Model):
    kind = models.CharField(max_length=20, choices=NotificationKind.choices)
    client = models.ForeignKey(Client, on_delete=models.CASCADE, null=True, blank=True, related_name="notifications")
    integration = models.ForeignKey(
        "directory.Integration", on_delete=models.CASCADE, null=True, blank=True, related_name="notifications"
    )
    title = models.CharField(max_length=300)
    message = models.TextField(blank=True)
    url = models.CharField(max_length=500, blank=True)
    # What it is about, named by whoever raised it (e.g. one creation issue): when that is settled, the raiser
    # resolves the topic and the notification no longer needs anyone.
    topic = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    read_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(
        null=True, blank=True, help_text="When what it reported was settled (the issue closed, the run decided)."
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["read_at", "created_at"]),
            models.Index(fields=["topic"], condition=models.Q(resolved_at__isnull=True),
                         name="notification_open_topic"),
        ]

    def __str__(self) -> str:
        return self.title

    @property
    def needs_someone(self) -> bool:
        return self.read_at is None and self.resolved_at is None


class EmailKind(models.TextChoices):
    ACTIVATION = "activation", "Account activation"


class OutboxStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    SENDING = "sending", "Sending"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled (link replaced or void)"


class OutboxEmail(models.Model):
    """One email to send. Written in the caller's transaction, sent later by the outbox sender."""

    kind = models.CharField(max_length=20, choices=EmailKind.choices)
    recipient = models.EmailField(max_length=254)
    # What the templates need. An activation holds its plain token until sent: the link is built from it.
    context = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=10, choices=OutboxStatus.choices, default=OutboxStatus.QUEUED)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    claim = models.UUIDField(null=True, blank=True, help_text="The sender run that holds the row while sending.")
    claimed_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    portal_user = models.ForeignKey(
        "passportal.PortalUser", on_delete=models.SET_NULL, null=True, blank=True, related_name="outbox_emails"
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "outbox email"
        indexes = [
            models.Index(fields=["status", "next_attempt_at"]),
            models.Index(fields=["claim"]),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} to {self.recipient} ({self.get_status_display()})"
