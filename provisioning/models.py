"""Mappings, the links between directory identities and portal users, sync runs and creation issues."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import models
from django.db.models import Q

from directory.models import Folder, Integration
from passportal.models import PermissionLevel, PortalUser, SecurityGroup

from .planning import reasons as planning_reasons


class Mapping(models.Model):
    """A configured folder: folder -> permission level + security groups (R11)."""

    folder = models.OneToOneField(Folder, on_delete=models.CASCADE, related_name="mapping")
    permission_level = models.ForeignKey(PermissionLevel, on_delete=models.PROTECT, related_name="+")
    security_groups = models.ManyToManyField(SecurityGroup, blank=True, related_name="mappings")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.folder} -> {self.permission_level}"


class SyncTrigger(models.TextChoices):
    SCHEDULE = "schedule", "Schedule"
    NIGHTLY = "nightly", "Nightly full sync"
    FORCE = "force", "Force Re-sync"
    AGENT = "agent", "On-prem agent"
    APPLY = "apply", "Mapping applied"
    COMMAND = "command", "manage.py resync"
    USER = "user", "Single user resync"
    LINK = "link", "Link switched"
    SCIM = "scim", "SCIM request"


class SyncStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    HELD = "held", "Held: disables wait for staff"


class HeldResolution(models.TextChoices):
    NONE = "", "-"
    APPLIED = "applied", "Applied by staff"
    DISCARDED = "discarded", "Discarded by staff"


class SyncRun(models.Model):
    """One read of a directory and the changes applied from it (R24)."""

    integration = models.ForeignKey(Integration, on_delete=models.CASCADE, related_name="runs")
    trigger = models.CharField(max_length=10, choices=SyncTrigger.choices)
    full = models.BooleanField(default=True, help_text="Full read, or incremental where the source allows.")
    dry_run = models.BooleanField(default=False)
    status = models.CharField(max_length=10, choices=SyncStatus.choices, default=SyncStatus.QUEUED)
    phase = models.CharField(max_length=40, blank=True)
    progress_done = models.PositiveIntegerField(default=0)
    progress_total = models.PositiveIntegerField(default=0)
    requested_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    counts = models.JSONField(default=dict, blank=True)
    changes = models.JSONField(default=dict, blank=True, help_text="The plan's changes, for the run page.")
    held_disables = models.JSONField(default=list, blank=True)
    held_resolution = models.CharField(max_length=10, choices=HeldResolution.choices, blank=True, default="")
    held_decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+",
        help_text="The staff member who applied or discarded the held disables.",
    )
    held_decided_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    portal_user = models.ForeignKey(
        PortalUser, on_delete=models.SET_NULL, null=True, blank=True, related_name="+",
        help_text="The one user a single-user resync was for.",
    )

    class Meta:
        ordering = ["-requested_at", "-id"]
        indexes = [models.Index(fields=["integration", "status"])]
        constraints = [
            # R23 enforced by the database: one run at a time, and one follow-up waiting.
            models.UniqueConstraint(
                fields=["integration"],
                condition=Q(status="running", dry_run=False),
                name="one_running_sync_per_integration",
            ),
            models.UniqueConstraint(
                fields=["integration"],
                condition=Q(status="queued", dry_run=False),
                name="one_queued_sync_per_integration",
            ),
        ]

    def __str__(self) -> str:
        return f"Run {self.pk} of {self.integration} ({self.get_status_display()})"

    @property
    def duration(self) -> timedelta | None:
        if self.started_at and self.finished_at:
            return self.finished_at - self.started_at
        return None


class DirectoryLink(models.Model):
    """A directory identity (R3: the directory's id for it, with the directory) -> one portal user."""

    integration = models.ForeignKey(Integration, on_delete=models.CASCADE, related_name="links")
    directory_id = models.CharField(max_length=255, help_text="AD domain / Entra tenant id.")
    external_id = models.CharField(max_length=64, help_text="objectGUID or Entra object id, lowercase.")
    portal_user = models.ForeignKey(PortalUser, on_delete=models.CASCADE, related_name="directory_links")
    folder_ids = models.JSONField(default=list, blank=True, help_text="Folders it was last seen in.")
    in_scope = models.BooleanField(default=True)
    last_seen = models.DateTimeField(null=True, blank=True)
    last_run = models.ForeignKey(SyncRun, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    directory_state = models.JSONField(default=dict, blank=True, help_text="What the directory said last.")
    state_hash = models.CharField(max_length=32, blank=True, help_text="Fingerprint of folders + state.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["integration", "external_id"], name="link_unique_per_integration"),
            # One person, one portal user, across all of a client's directories (R4).
            models.UniqueConstraint(fields=["portal_user"], name="link_one_identity_per_portal_user"),
        ]

    def __str__(self) -> str:
        return f"{self.external_id} -> {self.portal_user}"

    def seen_at(self) -> datetime | None:
        """When the directory last listed this identity.

        Runs rewrite a link only when what the directory says of it changes; one that a complete run
        did not rewrite was listed by it (a missing one is disabled, which rewrites it).
        """
        if not self.in_scope:
            return self.last_seen
        latest = (
            SyncRun.objects.filter(integration_id=self.integration_id, full=True, dry_run=False,
                                   status__in=[SyncStatus.SUCCEEDED, SyncStatus.HELD], portal_user__isnull=True)
            .exclude(trigger=SyncTrigger.LINK)
            .order_by("-finished_at").values_list("finished_at", flat=True).first()
        )
        return max(filter(None, [self.last_seen, latest]), default=None)


# Why a directory user is a creation issue (the values are the planner's `IssueReason`); the words for people here.
_ISSUE_LABELS = {
    planning_reasons.IssueReason.NO_EMAIL: "No email in the directory",
    planning_reasons.IssueReason.INVALID_EMAIL: "Invalid email",
    planning_reasons.IssueReason.EMAIL_TAKEN: "Email already used by another user of the client",
    planning_reasons.IssueReason.DUPLICATE_EMAIL: "Another directory user has the same email",
}
# Django's functional API takes (name, (value, label)) pairs; the stubs know only a string of names.
IssueReason = models.TextChoices(  # type: ignore[call-overload]
    "IssueReason", [(r.name, (r.value, _ISSUE_LABELS[r])) for r in planning_reasons.IssueReason])


class CreationIssue(models.Model):
    """A directory user in scope who could not become (or stay in step with) a portal user (R7)."""

    integration = models.ForeignKey(Integration, on_delete=models.CASCADE, related_name="creation_issues")
    external_id = models.CharField(max_length=64)
    reason = models.CharField(max_length=20, choices=IssueReason.choices)
    user_name = models.CharField(max_length=500, blank=True)
    email = models.CharField(max_length=500, blank=True)
    folder = models.ForeignKey(Folder, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    folder_path = models.CharField(max_length=2000, blank=True)
    message = models.TextField()
    opened_at = models.DateTimeField(auto_now_add=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    opened_by_run = models.ForeignKey(SyncRun, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")

    class Meta:
        ordering = ["-opened_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["integration", "external_id", "reason"],
                condition=Q(closed_at__isnull=True),
                name="one_open_issue_per_cause",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user_name or self.external_id}: {self.get_reason_display()}"


class AdReadMark(models.Model):
    """Where the last good read of an AD integration started, so the next run reads only what changed since.

    Kept by the portal, one per integration (adread.incremental.ReadMark): the domain controller that answered,
    its invocation id and its highestCommittedUSN from the start of that read. Replaced only by a run that
    succeeded (R21): a read or a run that fails keeps it, so the same changes are read again.
    """

    integration = models.OneToOneField(Integration, on_delete=models.CASCADE, primary_key=True,
                                       related_name="ad_read_mark")
    host = models.CharField("Domain controller", max_length=255)
    invocation_id = models.CharField(max_length=36)
    usn = models.PositiveBigIntegerField("Highest committed USN at the start of the read")
    folders_digest = models.CharField(max_length=32, help_text="The folders that read covered (others: a full read).")
    full_read_at = models.DateTimeField(help_text="When the last full read started.")
    kept_by = models.ForeignKey(SyncRun, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.integration}: {self.host} at USN {self.usn}"
