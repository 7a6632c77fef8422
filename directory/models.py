"""Integrations (links to one directory) and the folders (OUs, AUs) discovered through them."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from adread.dn import domain_of
from passportal.crypto import EncryptedTextField, hash_token
from passportal.models import Client

from .clouds import CLOUDS, CUSTOM, DEFAULT_CLOUD


class IntegrationKind(models.TextChoices):
    ACTIVE_DIRECTORY = "ad", "Active Directory"
    ENTRA = "entra", "Entra ID"
    DEMO = "demo", "Demo directory (sample data, not a real AD)"
    SCIM = "scim", "SCIM 2.0 (Entra ID or Okta provisioning pushes)"


class EntraRole(models.TextChoices):
    PRIMARY = "primary", "Primary Entra ID"
    ADDITIONAL = "additional", "Additional Entra ID domain"


# One choice per Microsoft cloud (directory/clouds.py holds their values), and Custom.
EntraCloud = models.TextChoices(  # type: ignore[call-overload]  # the stubs know only the class form
    "EntraCloud",
    [(cloud.key.upper(), (cloud.key, cloud.label)) for cloud in CLOUDS.values()]
    + [("CUSTOM", (CUSTOM, "Custom: a proxy or private endpoint (login host, Graph URL and token scope typed below)"))],
)


class AdMode(models.TextChoices):
    AGENT = "agent", "On-prem agent pushes to the portal"
    DIRECT = "direct", "Portal reads the DC directly"


class TlsMode(models.TextChoices):
    LDAPS = "ldaps", "LDAPS (636)"
    STARTTLS = "starttls", "StartTLS"
    NONE = "none", "None (plain LDAP: not for production)"


# R26: the fields that decide where each stored secret is sent, or which certificates it trusts when it is.
# A change to any of them clears that secret unless the same change types it again: the admin form and the
# staff API both ask Integration.moved_secrets, so the list lives here only.
SECRET_DESTINATIONS: dict[str, tuple[str, ...]] = {
    "bind_password": ("ldap_urls", "tls_mode", "tls_verify", "tls_ca_pem"),
    "client_secret": ("entra_cloud", "login_host", "graph_base_url", "graph_scope", "tenant", "tls_verify",
                      "tls_ca_pem"),
}


def _comparable(name: str, value: Any) -> Any:
    """A field value as it decides a destination: text trimmed, LDAP URLs as their list of lines."""
    if name == "ldap_urls":
        return tuple(line.strip() for line in (value or "").splitlines() if line.strip())
    return value.strip() if isinstance(value, str) else value


class Integration(models.Model):
    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="integrations")
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=8, choices=IntegrationKind.choices)
    link_enabled = models.BooleanField("Link on", default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # R22: held when a run would disable more than this share and at least this many users.
    disable_threshold_percent = models.PositiveSmallIntegerField(default=10)
    disable_threshold_minimum = models.PositiveIntegerField(default=25)

    # Active Directory
    ad_mode = models.CharField(max_length=8, choices=AdMode.choices, blank=True)
    ldap_urls = models.TextField(blank=True, help_text="One LDAP URL per line, tried in order (failover).")
    base_dn = models.CharField(max_length=500, blank=True)
    bind_dn = models.CharField("Bind DN or UPN", max_length=500, blank=True)
    bind_password = EncryptedTextField(blank=True)
    tls_mode = models.CharField(max_length=8, choices=TlsMode.choices, default=TlsMode.LDAPS, blank=True)
    tls_ca_pem = models.TextField("CA certificate (PEM)", blank=True)
    tls_verify = models.BooleanField("Verify the server certificate", default=True)
    page_size = models.PositiveIntegerField(default=500)
    agent_token_hash = models.CharField(max_length=64, blank=True, db_index=True)
    agent_token_hint = models.CharField(max_length=12, blank=True, help_text="First characters, to recognise it.")
    # The token a rotation replaced keeps working until agent_previous_token_until (AGENT_TOKEN_GRACE_MINUTES), so
    # the agent can be given the new one without a gap; only the one token replaced last has that grace.
    agent_previous_token_hash = models.CharField(max_length=64, blank=True, default="", db_default="", db_index=True)
    agent_previous_token_until = models.DateTimeField(null=True, blank=True)
    # Health: every push and poll says the agent's version, the host it runs on and how long its last read took.
    agent_last_contact = models.DateTimeField("Last heard from the agent", null=True, blank=True)
    agent_version = models.CharField("Agent version", max_length=50, blank=True)
    agent_host = models.CharField("Agent host", max_length=255, blank=True, default="", db_default="")
    agent_last_read_seconds = models.FloatField("Agent's last read (seconds)", null=True, blank=True)

    # Entra ID
    entra_role = models.CharField(max_length=10, choices=EntraRole.choices, blank=True)
    tenant = models.CharField("Tenant (GUID or verified domain)", max_length=255, blank=True)
    app_client_id = models.CharField("Application (client) id", max_length=64, blank=True)
    client_secret = EncryptedTextField(blank=True)
    # A Microsoft cloud sets the login host, Graph base URL and token scope together; Custom takes all three.
    # db_default too: a row written by code that predates these columns (a rolling deploy) still gets a value.
    entra_cloud = models.CharField("Cloud", max_length=12, choices=EntraCloud.choices, default=DEFAULT_CLOUD,
                                   db_default=DEFAULT_CLOUD, blank=True)
    login_host = models.CharField(max_length=255, default="login.microsoftonline.com", blank=True,
                                  help_text="Set by the cloud; typed only for Custom (a host alone, no https://).")
    graph_base_url = models.URLField(default="https://graph.microsoft.com/v1.0", blank=True,
                                     help_text="Set by the cloud; typed only for Custom.")
    graph_scope = models.CharField(
        "Token scope", max_length=255, blank=True, default="", db_default="",
        help_text="Set by the cloud; typed only for Custom: the Graph resource the token is for, e.g. "
                  "https://graph.microsoft.com/.default, when the Graph URL is a proxy with a host of its own.")
    tenant_guid = models.CharField(max_length=36, blank=True, db_index=True)
    tenant_domains = models.JSONField(default=list, blank=True)
    delta_state = models.JSONField(
        default=dict, blank=True, help_text="Stored Graph delta links, by resource."
    )

    class Meta:
        ordering = ["client", "kind", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["client"],
                condition=Q(kind="entra", entra_role="primary"),
                name="one_primary_entra_per_client",
                violation_error_message="This client already has a primary Entra ID integration.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.client.name}: {self.name} ({self.get_kind_display()})"

    @property
    def directory_id(self) -> str:
        """The directory this integration reads: the AD base DN's domain, or the Entra tenant GUID (R3)."""
        if self.kind == IntegrationKind.ENTRA:
            return self.tenant_guid or self.tenant
        if self.kind == IntegrationKind.SCIM:
            return f"scim:{self.pk}"  # the portal's own store of what the SCIM client pushed (scim/)
        # The same value the LDAP connector and the agent's uploads carry: the domain of the base DN.
        if self.base_dn:
            return domain_of(self.base_dn)
        upload = self.agent_uploads.filter(status=UploadStatus.COMMITTED).order_by("-committed_at").first()
        return upload.directory_id if upload else ""

    def moved_secrets(self, changes: Mapping[str, Any]) -> list[str]:
        """The stored secrets that these new field values would send somewhere new, or trust differently.

        Compared with the saved row (not with this object, which a form may already have changed).
        """
        if self.pk is None:
            return []
        guards = {name for names in SECRET_DESTINATIONS.values() for name in names}
        stored = Integration.objects.filter(pk=self.pk).values(*guards, *SECRET_DESTINATIONS).first()
        if stored is None:
            return []
        return [secret for secret, names in SECRET_DESTINATIONS.items() if stored[secret] and any(
            name in changes and _comparable(name, changes[name]) != _comparable(name, stored[name]) for name in names)]

    def url_list(self) -> list[str]:
        return [line.strip() for line in self.ldap_urls.splitlines() if line.strip()]

    def issue_agent_token(self, *, grace: timedelta | None = None) -> str:
        """A new agent token; only its hash is stored, so the caller shows it once (R25).

        The token it replaces keeps working for `grace` (AGENT_TOKEN_GRACE_MINUTES unless given; zero stops it at
        once), so the agent can be reconfigured without a gap. A token replaced before that one stops now.
        """
        token = "pat_" + secrets.token_urlsafe(32)
        grace = timedelta(minutes=settings.AGENT_TOKEN_GRACE_MINUTES) if grace is None else grace
        if self.agent_token_hash and grace > timedelta(0):
            self.agent_previous_token_hash = self.agent_token_hash
            self.agent_previous_token_until = timezone.now() + grace
        else:
            self.agent_previous_token_hash, self.agent_previous_token_until = "", None
        self.agent_token_hash = hash_token(token)
        self.agent_token_hint = token[:8]
        self.save(update_fields=["agent_token_hash", "agent_token_hint", "agent_previous_token_hash",
                                 "agent_previous_token_until", "updated_at"])
        return token

    def end_previous_agent_token(self) -> None:
        """The token a rotation replaced stops now, before its grace ends (say, because it leaked)."""
        self.agent_previous_token_hash, self.agent_previous_token_until = "", None
        self.save(update_fields=["agent_previous_token_hash", "agent_previous_token_until", "updated_at"])

    def previous_agent_token_works_until(self) -> datetime | None:
        """When the token a rotation replaced stops, if it still works now."""
        until = self.agent_previous_token_until
        return until if self.agent_previous_token_hash and until and until > timezone.now() else None

    def touch_agent(self, version: str, host: str = "", last_read_seconds: float | None = None) -> None:
        """The agent was heard from: when, its version, and the host and last read duration when it says them.

        A poll before the agent's first read says no duration: the one stored stays, as does the host when an
        older agent does not say it.
        """
        self.agent_last_contact = timezone.now()
        self.agent_version = version[:50]
        fields = ["agent_last_contact", "agent_version"]
        if host:
            self.agent_host = host[:255]
            fields.append("agent_host")
        if last_read_seconds is not None:
            self.agent_last_read_seconds = last_read_seconds
            fields.append("agent_last_read_seconds")
        self.save(update_fields=fields)


class FolderKind(models.TextChoices):
    OU = "ou", "Organizational unit"
    AU = "au", "Administrative unit"
    SCIM_GROUP = "sg", "SCIM group"
    # Directory groups (G1): AD groups with the security bit, Entra security and mail-enabled security groups,
    # and Microsoft 365 groups, shown as such. Members are counted through nested groups (G2).
    GROUP = "gr", "Security group"
    M365_GROUP = "mg", "Microsoft 365 group"


class Folder(models.Model):
    integration = models.ForeignKey(Integration, on_delete=models.CASCADE, related_name="folders")
    kind = models.CharField(max_length=2, choices=FolderKind.choices)
    external_id = models.CharField(max_length=64, help_text=(
        "OU objectGUID, AU id or group id: the directory's own id, kept when the folder is renamed or moved."))
    name = models.CharField(max_length=500)
    parent = models.ForeignKey("self", on_delete=models.SET_NULL, null=True, blank=True, related_name="children")
    path = models.CharField(max_length=2000, blank=True, help_text="Display path, e.g. Corp/Sales/EMEA or the DN.")
    first_seen = models.DateTimeField(default=timezone.now)
    last_seen = models.DateTimeField(default=timezone.now)
    gone = models.BooleanField(default=False)

    class Meta:
        ordering = ["integration", "path"]
        constraints = [
            models.UniqueConstraint(fields=["integration", "external_id"], name="folder_unique_per_integration"),
        ]

    def __str__(self) -> str:
        return self.path or self.name


class UploadStatus(models.TextChoices):
    OPEN = "open", "Open: receiving chunks"
    COMMITTED = "committed", "Committed"
    ABORTED = "aborted", "Aborted (replaced by a newer upload)"
    EXPIRED = "expired", "Expired (no chunk for too long)"
    # The answer to a request (a preview, or a read of the folders): shown or recorded, never the integration's
    # last read, so it never starts a run and no run applies it.
    ANSWERED = "answered", "Answered a request (a preview or a folder read; never applied)"


class AgentRequestKind(models.TextChoices):
    PREVIEW = "preview", "A preview: read AD now, to be shown and never applied"
    FOLDERS = "folders", "Folder discovery: read the OUs and groups now"


class AgentRequest(models.Model):
    """Work the portal asks of an on-prem agent through its poll (it opens no port): a preview or a folder read.

    The agent's next poll is told of it; it reads AD and pushes an upload answering it (AgentUpload.request), or
    reports that the read failed (`error`). A request nobody picks up in time is "agent not responding" on the page
    that asked (provisioning/agent_requests.py decides when).
    """

    integration = models.ForeignKey(Integration, on_delete=models.CASCADE, related_name="agent_requests")
    kind = models.CharField(max_length=10, choices=AgentRequestKind.choices)
    requested_at = models.DateTimeField(auto_now_add=True)
    picked_up_at = models.DateTimeField(null=True, blank=True, help_text="When a poll first handed it to the agent.")
    answered_at = models.DateTimeField(null=True, blank=True, help_text="When the upload answering it was committed.")
    error = models.TextField(blank=True, help_text="Why the agent could not read AD for it (its failure report).")

    class Meta:
        ordering = ["integration", "pk"]

    def __str__(self) -> str:
        return f"Request {self.pk} ({self.get_kind_display()}) of {self.integration}"


class AgentUpload(models.Model):
    """One snapshot an on-prem agent pushes in chunks. Nothing in it is used until it is committed."""

    integration = models.ForeignKey(Integration, on_delete=models.CASCADE, related_name="agent_uploads")
    status = models.CharField(max_length=10, choices=UploadStatus.choices, default=UploadStatus.OPEN)
    directory_id = models.CharField(max_length=255, help_text="The AD domain the agent read, e.g. corp.example.test.")
    agent_version = models.CharField(max_length=50, blank=True)
    folder_count = models.PositiveIntegerField(default=0)
    user_count = models.PositiveIntegerField(default=0)
    chunk_count = models.PositiveIntegerField(default=0)
    # Bytes of the records stored so far (their JSON): capped by AGENT_UPLOAD_MAX_BYTES.
    byte_count = models.PositiveBigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    # Opened or last given a chunk: an open upload idle longer than AGENT_UPLOAD_EXPIRE_MINUTES expires.
    last_chunk_at = models.DateTimeField(default=timezone.now)
    committed_at = models.DateTimeField(null=True, blank=True)
    # Set at commit (directory/upload_digest.py): a run compares it with the last run's instead of reading the
    # records again. Empty for uploads committed before it existed: the run computes it then.
    records_digest = models.CharField(max_length=64, blank=True, default="")
    # Set for an upload answering a request (a preview or a folder read): committed as ANSWERED, never applied.
    request = models.ForeignKey(AgentRequest, on_delete=models.SET_NULL, null=True, blank=True,
                                related_name="uploads")
    # What the agent read (directory/partial_uploads.py): only the changes since the portal's mark (partial), or
    # everything; the domain controller's mark from the start of its read (kept once the run succeeded), the
    # mapped folders it was told of (their digest) and, for a full read, why. An older agent sends none: a full read.
    partial = models.BooleanField(default=False)
    read_mark = models.JSONField(null=True, blank=True)
    read_folders_digest = models.CharField(max_length=32, blank=True, default="")
    read_why = models.CharField(max_length=300, blank=True, default="")

    class Meta:
        ordering = ["integration", "-created_at"]
        indexes = [models.Index(fields=["integration", "status", "-committed_at"])]

    def __str__(self) -> str:
        return f"Upload {self.pk} of {self.integration} ({self.get_status_display()})"


class UploadRecordKind(models.TextChoices):
    FOLDER = "folder", "Folder (OU)"
    USER = "user", "User"
    # A linked user the upload does not hold, which the agent found deleted in AD (a tombstone, or nowhere in the
    # domain): disabled as deleted, not as moved out of scope.
    GONE = "gone", "User deleted in the directory"


class AgentUploadRecord(models.Model):
    """One validated folder or user of an upload, as the plain fields of its connector record."""

    upload = models.ForeignKey(AgentUpload, on_delete=models.CASCADE, related_name="records")
    kind = models.CharField(max_length=6, choices=UploadRecordKind.choices)
    external_id = models.CharField(max_length=36)
    data = models.JSONField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["upload", "kind", "external_id"], name="upload_record_unique_id"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.external_id}"
