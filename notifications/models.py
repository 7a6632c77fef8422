"""The bell (R20): notifications staff read in the admin."""

from __future__ import annotations

from django.db import models

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
    created_at = models.DateTimeField(auto_now_add=True)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["read_at", "created_at"])]

    def __str__(self) -> str:
        return self.title
