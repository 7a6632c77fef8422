"""The vault: clients, permission levels, security groups and the portal users in them."""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.contrib.auth.hashers import check_password, make_password
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Case, Q, Value, When
from django.db.models.functions import Lower
from django.utils import timezone

from .actors import Actor, stored
from .reasons import DisableReason


class Client(models.Model):
    name = models.CharField(max_length=200)
    is_company_vault = models.BooleanField(
        default=False, help_text="The MSP's own organisation: its users are Pro-Users."
    )
    site_enabled = models.BooleanField("Enable Site", default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-is_company_vault", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["is_company_vault"],
                condition=Q(is_company_vault=True),
                name="one_company_vault",
                violation_error_message="There is already a Company Vault: an installation has exactly one.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} (Company Vault)" if self.is_company_vault else self.name

    @property
    def user_kind(self) -> str:
        return UserKind.PRO if self.is_company_vault else UserKind.SITE


class UserKind(models.TextChoices):
    PRO = "pro", "Pro-User"
    SITE = "site", "Site-User"


class PermissionLevel(models.Model):
    name = models.CharField(max_length=100)
    user_kind = models.CharField(max_length=4, choices=UserKind.choices)
    rank = models.PositiveIntegerField(help_text="Higher wins when several mappings apply to one user.")
    is_site_admin = models.BooleanField(
        default=False, help_text="Users with this level are Site Admins of their client."
    )

    class Meta:
        ordering = ["user_kind", "-rank"]
        constraints = [
            models.UniqueConstraint(fields=["user_kind", "name"], name="permission_level_name_unique_per_kind"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_user_kind_display()})"


class SecurityGroup(models.Model):
    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="security_groups")
    name = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["client", "name"]
        constraints = [
            models.UniqueConstraint(
                "client",
                Lower("name"),
                name="security_group_name_unique_per_client",
                violation_error_message="A security group with this name already exists in this client.",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class UserStatus(models.TextChoices):
    PENDING = "pending", "Pending activation"
    ACTIVE = "active", "Active"
    DISABLED = "disabled", "Disabled"


# Why a sync disabled a user (the values are `passportal.reasons.DisableReason`, which the planner decides with);
# a staff disable is kept apart in `disabled_by_staff` (R8). Only the words for people are added here.
_DISABLED_LABELS = {
    DisableReason.DIRECTORY: "Disabled in the directory",
    DisableReason.DELETED: "Deleted in the directory",
    DisableReason.OUT_OF_SCOPE: "Moved out of every mapped folder",
    DisableReason.LINK_OFF: "The integration's link was switched off",
}
# Django's functional API takes (name, (value, label)) pairs; the stubs know only a string of names.
DisabledReason = models.TextChoices(  # type: ignore[call-overload]
    "DisabledReason", [("NONE", ("", "-"))] + [(r.name, (r.value, _DISABLED_LABELS[r])) for r in DisableReason])


def row_version(updated_at: datetime) -> str:
    """The version of a portal user's row as the admin form and the API's ETag carry it: its updated_at.

    Every write of a user (staff's saves, a run's compare-and-set updates) moves updated_at, so a page or an
    API client holding an older version is looking at values that may since have changed.
    """
    return updated_at.isoformat()


class PortalUser(models.Model):
    """A person in the vault (not a Django staff user). Pro- or Site-User follows from the client."""

    client = models.ForeignKey(Client, on_delete=models.PROTECT, related_name="users")
    first_name = models.CharField(max_length=150, blank=True)
    last_name = models.CharField(max_length=150, blank=True)
    email = models.EmailField(max_length=254)
    status = models.CharField(max_length=10, choices=UserStatus.choices, default=UserStatus.PENDING)
    disabled_reason = models.CharField(
        max_length=20, choices=DisabledReason.choices, default=DisabledReason.NONE, blank=True
    )
    # When and by which run a sync set `disabled_reason`: the user's page says why, since when, and links the run.
    disabled_at = models.DateTimeField(null=True, blank=True)
    disabled_by_run = models.ForeignKey(
        "provisioning.SyncRun", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    disabled_by_staff = models.BooleanField(default=False)
    staff_disabled_at = models.DateTimeField(null=True, blank=True)
    staff_disabled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # Who lifted the last staff disable, and when (the disable itself keeps its own who and when above).
    staff_enabled_at = models.DateTimeField(null=True, blank=True)
    staff_enabled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    permission_level = models.ForeignKey(
        PermissionLevel, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    permission_level_set_by_hand = models.BooleanField(
        default=False, help_text="Set by staff: mappings leave this level alone."
    )
    security_groups: models.ManyToManyField[SecurityGroup, GroupMembership] = models.ManyToManyField(
        SecurityGroup, through="GroupMembership", related_name="members", blank=True
    )
    password = models.CharField(max_length=128, blank=True)
    activated_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["client", "last_name", "first_name"]
        constraints = [
            models.UniqueConstraint(
                "client",
                Lower("email"),
                name="portal_user_email_unique_per_client",
                violation_error_message="A user with this email already exists in this client.",
            ),
            # The stored status can never disagree with the reasons it is made of.
            models.CheckConstraint(
                condition=(
                    Q(status=UserStatus.DISABLED, disabled_by_staff=True)
                    | (Q(status=UserStatus.DISABLED) & ~Q(disabled_reason=""))
                    | (Q(disabled_by_staff=False, disabled_reason="") & ~Q(status=UserStatus.DISABLED))
                ),
                name="portal_user_status_matches_reasons",
            ),
        ]
        indexes = [models.Index(fields=["client", "status"])]

    def __str__(self) -> str:
        return f"{self.first_name} {self.last_name} <{self.email}>".strip()

    def clean(self) -> None:
        # Every ModelForm of a portal user (the admin's) refuses a level of the wrong kind, on the level's field.
        if self.client_id is not None:
            try:
                validate_level_for_client(self.permission_level, self.client)
            except ValidationError as error:
                raise ValidationError({"permission_level": error}) from error

    @property
    def kind(self) -> str:
        return self.client.user_kind

    def get_kind_display(self) -> str:
        return UserKind(self.kind).label

    @staticmethod
    def status_for(*, disabled_by_staff: bool, disabled_reason: str, activated: bool) -> UserStatus:
        """The one rule for a user's status: disabled by staff or by a sync, else active once activated."""
        if disabled_by_staff or disabled_reason:
            return UserStatus.DISABLED
        return UserStatus.ACTIVE if activated else UserStatus.PENDING

    @staticmethod
    def status_expression(*, disabled_reason: str) -> Value | Case:
        """`status_for` as a database expression, for an UPDATE of many users that sets `disabled_reason` to this.

        The same rule in the same order; the new reason is passed in because an UPDATE's expressions read the
        row's other columns as they were before it.
        """
        if disabled_reason:
            return Value(UserStatus.DISABLED)
        return Case(
            When(disabled_by_staff=True, then=Value(UserStatus.DISABLED)),
            When(activated_at__isnull=False, then=Value(UserStatus.ACTIVE)),
            default=Value(UserStatus.PENDING),
        )

    @property
    def status_now(self) -> UserStatus:
        """What `status_for` says of this user's fields as they are in memory (the stored `status` may lag)."""
        return self.status_for(disabled_by_staff=self.disabled_by_staff, disabled_reason=self.disabled_reason,
                               activated=self.activated_at is not None)

    def set_disabled_by_staff(self, disabled: bool, *, by: Actor = None) -> None:
        """Set or lift a staff disable, keeping who and when (the caller saves). A repeated disable keeps the first;
        lifting one keeps who lifted it and when, and lifting none changes nothing."""
        if disabled and self.disabled_by_staff and self.staff_disabled_at is not None:
            return
        if not disabled and self.disabled_by_staff:
            self.staff_enabled_at, self.staff_enabled_by = timezone.now(), stored(by)
        self.disabled_by_staff = disabled
        self.staff_disabled_at = timezone.now() if disabled else None
        self.staff_disabled_by = stored(by) if disabled else None

    def refresh_status(self) -> None:
        self.status = self.status_now

    def set_password(self, raw_password: str) -> None:
        self.password = make_password(raw_password)

    def check_password(self, raw_password: str) -> bool:
        return bool(self.password) and check_password(raw_password, self.password)

    @property
    def is_site_admin(self) -> bool:
        return bool(self.permission_level and self.permission_level.is_site_admin)


class MembershipSource(models.TextChoices):
    MAPPING = "mapping", "Granted by a mapping"
    STAFF = "staff", "Added by staff"


class GroupMembership(models.Model):
    """A user in a group, and who put it there: mapping grants come and go, staff grants stay (R12)."""

    user = models.ForeignKey(PortalUser, on_delete=models.CASCADE, related_name="memberships")
    group = models.ForeignKey(SecurityGroup, on_delete=models.CASCADE, related_name="memberships")
    source = models.CharField(max_length=10, choices=MembershipSource.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "group", "source"], name="membership_unique_per_source"),
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.group} ({self.get_source_display()})"


class ActivationToken(models.Model):
    """An activation link (R18): only the sha256 of the token is stored (R25), bound to one user and one email."""

    user = models.ForeignKey(PortalUser, on_delete=models.CASCADE, related_name="activation_tokens")
    token_hash = models.CharField(max_length=64, unique=True)
    # The address the link was sent to: a link never outlives a change of the user's email.
    email = models.EmailField(max_length=254)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    voided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["user", "used_at", "voided_at"])]

    def __str__(self) -> str:
        return f"Activation link for user {self.user_id}"


class RateCounter(models.Model):
    """Refused attempts (activation links, sign-ins) in one window, keyed by a digest; see passportal.ratelimit."""

    key = models.CharField(max_length=64, unique=True)
    count = models.PositiveIntegerField(default=0)
    window_started_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.count} refused since {self.window_started_at:%Y-%m-%d %H:%M}"


# ---------------------------------------------------------------- which levels a portal user may have
# Pro-User levels in the Company Vault, Site-User levels elsewhere: the one home of this rule, so the admin, the
# mapping form and the API refuse the same thing in the same words.

WRONG_KIND = "wrong_user_kind"


def wrong_kind_message(level: PermissionLevel | None, client: Client | None) -> str | None:
    """What is wrong with giving `level` to a user of `client`, or None when it fits (or nothing is chosen yet)."""
    if level is None or client is None or level.user_kind == client.user_kind:
        return None
    has = UserKind(client.user_kind).label
    return (f"{level.name} is a {UserKind(level.user_kind).label} level, but the users of {client.name} are "
            f"{has}s: choose a {has} level.")


def validate_level_for_client(level: PermissionLevel | None, client: Client | None) -> None:
    """Raise a ValidationError (code "wrong_user_kind") when `level` is of the wrong kind for `client`'s users."""
    if (message := wrong_kind_message(level, client)) is not None:
        raise ValidationError(message, code=WRONG_KIND)
