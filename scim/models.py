"""What a SCIM client (Entra ID's or Okta's provisioning service) pushed into one integration.

These rows are the integration's stored directory state, as an agent upload is for AD: `ScimConnector`
reads them as plain records, and the same planner and applier as every other source decide what happens
to portal users. Users are never hard-deleted here while they matter: a DELETE keeps a tombstone
(`deleted_at`), so the engine sees the identity as deleted (R8) and a re-created user gets its id back.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from directory.models import Integration


class ScimToken(models.Model):
    """A bearer token for one integration (R26), stored as its sha256 only (R25).

    The current token has no `expires_at`; rotating gives the previous one a short grace period, so the
    IdP can be switched over without a gap.
    """

    integration = models.ForeignKey(Integration, on_delete=models.CASCADE, related_name="scim_tokens")
    token_hash = models.CharField(max_length=64, unique=True)
    hint = models.CharField(max_length=12, help_text="First characters, to recognise it.")
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                   related_name="+")
    expires_at = models.DateTimeField(null=True, blank=True, help_text="Empty: the current token.")
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["integration", "-created_at"]
        verbose_name = "SCIM token"

    def __str__(self) -> str:
        return f"{self.hint}… ({self.integration})"


class ScimUser(models.Model):
    integration = models.ForeignKey(Integration, on_delete=models.CASCADE, related_name="scim_users")
    scim_id = models.CharField(max_length=36, help_text="The SCIM id the portal gave it: its directory id (R3).")
    user_name = models.CharField(max_length=256)
    user_name_key = models.CharField(max_length=256, help_text="userName casefolded: userName is caseExact false.")
    external_id = models.CharField(max_length=256, blank=True)
    given_name = models.CharField(max_length=256, blank=True)
    family_name = models.CharField(max_length=256, blank=True)
    display_name = models.CharField(max_length=256, blank=True)
    email = models.TextField(blank=True, help_text="The primary (else work, else first) email, as sent.")
    active = models.BooleanField(default=True)
    data = models.JSONField(default=dict, help_text="The resource as the client sent it (id, meta, password left out).")
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["integration", "pk"]
        verbose_name = "SCIM user"
        constraints = [
            models.UniqueConstraint(fields=["integration", "scim_id"], name="scim_user_id_unique"),
            models.UniqueConstraint(fields=["integration", "user_name_key"], name="scim_user_name_unique"),
        ]
        indexes = [models.Index(fields=["integration", "external_id"])]

    def __str__(self) -> str:
        return self.user_name


class ScimGroup(models.Model):
    """A group the client pushes: a folder of the integration (kind "SCIM group"), mapped like an OU or AU."""

    integration = models.ForeignKey(Integration, on_delete=models.CASCADE, related_name="scim_groups")
    scim_id = models.CharField(max_length=36)
    display_name = models.CharField(max_length=256)
    external_id = models.CharField(max_length=256, blank=True)
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["integration", "pk"]
        verbose_name = "SCIM group"
        constraints = [models.UniqueConstraint(fields=["integration", "scim_id"], name="scim_group_id_unique")]

    def __str__(self) -> str:
        return self.display_name


class ScimMembership(models.Model):
    group = models.ForeignKey(ScimGroup, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(ScimUser, on_delete=models.CASCADE, related_name="memberships")
    display = models.CharField(max_length=256, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["group", "user"], name="scim_membership_unique")]

    def __str__(self) -> str:
        return f"{self.user_id} in {self.group_id}"


class ScimEvent(models.Model):
    """One SCIM request that changed something, or was refused (R24): who, what, the result, and its run."""

    integration = models.ForeignKey(Integration, on_delete=models.CASCADE, related_name="scim_events")
    at = models.DateTimeField(auto_now_add=True)
    method = models.CharField(max_length=8)
    path = models.CharField(max_length=300)
    resource_id = models.CharField(max_length=36, blank=True)
    status = models.PositiveSmallIntegerField()
    summary = models.TextField(blank=True)
    run = models.ForeignKey("provisioning.SyncRun", on_delete=models.SET_NULL, null=True, blank=True,
                            related_name="+")

    class Meta:
        ordering = ["-at", "-pk"]
        verbose_name = "SCIM request"
        indexes = [models.Index(fields=["integration", "-at"])]

    def __str__(self) -> str:
        return f"{self.method} {self.path} -> {self.status}"

    @property
    def is_error(self) -> bool:
        return self.status >= 400


class ScimIntegration(Integration):
    """The SCIM integrations, for their own admin page: endpoint, tokens and recent requests (R27)."""

    class Meta:
        proxy = True
        verbose_name = "SCIM integration"
