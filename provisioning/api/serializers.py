"""Serializers of the staff API. Secrets (bind password, client secret) are write-only: never returned (R25)."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Prefetch, QuerySet
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from directory import validators
from directory.clouds import DEFAULT_CLOUD, ENDPOINT_FIELDS
from directory.entra_tenant import check_entra_integration
from directory.models import SECRET_DESTINATIONS, AdMode, Folder, Integration, IntegrationKind
from notifications.models import Notification
from passportal.levels import wrong_kind_message
from passportal.models import Client, GroupMembership, PermissionLevel, PortalUser, SecurityGroup, UserKind, row_version
from passportal.text import validate_one_line

from ..access import mapping_blockers
from ..forms import MAX_FOLDERS_PER_APPLY
from ..models import CreationIssue, DirectoryLink, IssueReason, Mapping, SyncRun


def level_label(level: PermissionLevel | None) -> str:
    """A level as people tell it apart: two levels may share a name, one per kind ("Read Only (Site-User)")."""
    return str(level) if level is not None else ""


def _one_line(value: str) -> str:
    try:
        validate_one_line(value)
    except DjangoValidationError as exc:
        raise serializers.ValidationError(exc.messages) from exc
    return value.strip()


class SiteAdminSerializer(serializers.ModelSerializer):
    """A portal user of the client whose level makes it a Site Admin; `activated` says whether it opens mapping."""

    activated = serializers.SerializerMethodField()
    permission_level_label = serializers.SerializerMethodField()

    class Meta:
        model = PortalUser
        fields = ["id", "first_name", "last_name", "email", "status", "activated", "permission_level",
                  "permission_level_label"]
        read_only_fields = fields

    def get_activated(self, obj: PortalUser) -> bool:
        return obj.activated_at is not None

    def get_permission_level_label(self, obj: PortalUser) -> str:
        return level_label(obj.permission_level)


class ClientSerializer(serializers.ModelSerializer):
    mapping_blockers = serializers.SerializerMethodField(help_text="What stops user mapping (R14); empty if nothing.")
    site_admins = serializers.SerializerMethodField(
        help_text="The client's Site Admins (users with a Site Admin level). Create one with POST /api/users/.")

    class Meta:
        model = Client
        fields = ["id", "name", "is_company_vault", "site_enabled", "mapping_blockers", "site_admins", "created_at"]
        read_only_fields = ["is_company_vault", "created_at"]

    def get_mapping_blockers(self, obj: Client) -> list[str]:
        return mapping_blockers(obj)

    @extend_schema_field(SiteAdminSerializer(many=True))
    def get_site_admins(self, obj: Client) -> list[dict]:
        admins = getattr(obj, "site_admin_users", None)  # prefetched by the list; one query otherwise
        if admins is None:
            admins = site_admins_of(Client.objects.filter(pk=obj.pk)).get().site_admin_users  # type: ignore[attr-defined]  # Prefetch to_attr
        # many=True builds a ListSerializer, whose data is a list; the stubs type the single serializer's.
        return SiteAdminSerializer(admins, many=True).data  # type: ignore[return-value]


def site_admins_of(clients: QuerySet[Client]) -> QuerySet[Client]:
    """Clients with their Site Admins prefetched (`site_admin_users`), in one query for the whole list."""
    users = PortalUser.objects.filter(permission_level__is_site_admin=True).select_related("permission_level")
    return clients.prefetch_related(Prefetch("users", queryset=users.order_by("pk"), to_attr="site_admin_users"))


class IntegrationSerializer(serializers.ModelSerializer):
    bind_password = serializers.CharField(write_only=True, required=False, allow_blank=True,
                                          style={"input_type": "password"})
    client_secret = serializers.CharField(write_only=True, required=False, allow_blank=True,
                                          style={"input_type": "password"})
    has_bind_password = serializers.SerializerMethodField()
    has_client_secret = serializers.SerializerMethodField()
    has_agent_token = serializers.SerializerMethodField(
        help_text="An agent token exists (create or rotate one with POST .../agent-token/; only its hash is kept).")

    class Meta:
        model = Integration
        fields = [
            "id", "client", "name", "kind", "link_enabled", "disable_threshold_percent", "disable_threshold_minimum",
            "ad_mode", "ldap_urls", "base_dn", "bind_dn", "bind_password", "has_bind_password", "tls_mode",
            "tls_ca_pem", "tls_verify", "page_size", "has_agent_token", "agent_token_hint", "agent_last_contact",
            "agent_version", "agent_host", "agent_last_read_seconds",
            "entra_role", "tenant", "app_client_id", "client_secret", "has_client_secret", "entra_cloud", "login_host",
            "graph_base_url", "graph_scope", "tenant_guid", "tenant_domains", "created_at",
        ]
        read_only_fields = ["link_enabled", "agent_token_hint", "agent_last_contact", "agent_version", "agent_host",
                            "agent_last_read_seconds", "tenant_guid", "tenant_domains", "created_at"]
        extra_kwargs = {
            "agent_last_contact": {"help_text": "Last heard from the agent: its last push, poll or failure report."},
            "agent_version": {"help_text": "The version the agent said when last heard from."},
            "agent_host": {"help_text": "The host name the agent runs on."},
            "agent_last_read_seconds": {"help_text": "How long the agent's last read of AD took, in seconds."},
        }

    def get_has_agent_token(self, obj: Integration) -> bool:
        return bool(obj.agent_token_hash)

    def get_has_bind_password(self, obj: Integration) -> bool:
        return bool(obj.bind_password)

    def get_has_client_secret(self, obj: Integration) -> bool:
        return bool(obj.client_secret)

    # The same checks as the admin form: each bad value is refused on its own field.
    def validate_ldap_urls(self, value: str) -> str:
        return validators.clean_ldap_urls(value)

    def validate_base_dn(self, value: str) -> str:
        return validators.clean_dn(value)

    def validate_bind_dn(self, value: str) -> str:
        return validators.clean_bind_dn(value)

    def validate_tls_ca_pem(self, value: str) -> str:
        return validators.clean_ca_pem(value)

    def validate_tenant(self, value: str) -> str:
        return validators.clean_tenant(value)

    def validate_login_host(self, value: str) -> str:
        return validators.clean_login_host(value)

    def validate_graph_base_url(self, value: str) -> str:
        return validators.clean_graph_base_url(value)

    def validate_graph_scope(self, value: str) -> str:
        return validators.clean_graph_scope(value)

    def validate(self, attrs: dict) -> dict:
        kind = attrs.get("kind") or getattr(self.instance, "kind", "")
        if kind == IntegrationKind.ENTRA:
            self._apply_cloud(attrs)  # before comparing destinations: the cloud may have moved all three
        moved = self._clear_moved_secrets(attrs)
        values = {**self._current_values(), **attrs}
        kind = values.get("kind")
        if self.instance is not None and "client" in attrs and attrs["client"] != self.instance.client:
            raise serializers.ValidationError({"client": "An integration cannot move to another client."})
        if kind == IntegrationKind.ENTRA:
            self._check_entra(attrs, values, moved)
        elif kind == IntegrationKind.ACTIVE_DIRECTORY:
            self._check_active_directory(values, moved)
        return attrs

    def _apply_cloud(self, attrs: dict) -> None:
        """The cloud sets the login host, Graph base URL and token scope; Custom takes them as sent (or stored)."""
        cloud = attrs.get("entra_cloud") or getattr(self.instance, "entra_cloud", "") or DEFAULT_CLOUD
        typed = {name: attrs[name] for name in ENDPOINT_FIELDS if name in attrs}
        stored = {name: getattr(self.instance, name) for name in ENDPOINT_FIELDS} if self.instance else {}
        try:
            attrs.update(validators.cloud_endpoints(cloud, typed, stored))
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.message_dict) from exc
        attrs["entra_cloud"] = cloud

    def _clear_moved_secrets(self, attrs: dict) -> list[str]:
        """Blank keeps a stored secret; a change of where it goes clears it unless typed again here (R26)."""
        if self.instance is None:
            return []
        for secret in SECRET_DESTINATIONS:
            if attrs.get(secret) == "":
                attrs.pop(secret)
        moved = [secret for secret in self.instance.moved_secrets(attrs) if not attrs.get(secret)]
        for secret in moved:
            attrs[secret] = ""
        return moved

    def _check_entra(self, attrs: dict, values: dict, moved: list[str]) -> None:
        for name in ("tenant", "app_client_id"):
            if not values.get(name):
                raise serializers.ValidationError({name: "This field is required for an Entra ID integration."})
        if not values.get("entra_role"):
            raise serializers.ValidationError({"entra_role": "Choose primary or additional."})
        if not values.get("client_secret"):  # nothing to log in with: no request leaves
            raise serializers.ValidationError(
                {"client_secret": validators.missing_secret("client_secret", moved="client_secret" in moved)})
        candidate = Integration(**values)
        try:
            check_entra_integration(candidate)  # R5: resolves the tenant and refuses one linked twice
        except DjangoValidationError as exc:
            if hasattr(exc, "error_dict"):  # already says which field
                raise serializers.ValidationError(exc.message_dict) from exc
            field = "client_secret" if exc.code == "entra_refused" else "tenant"
            raise serializers.ValidationError({field: exc.messages}) from exc
        attrs["tenant_guid"] = candidate.tenant_guid
        attrs["tenant_domains"] = candidate.tenant_domains

    def _check_active_directory(self, values: dict, moved: list[str]) -> None:
        if not values.get("ad_mode"):
            raise serializers.ValidationError({"ad_mode": "Choose agent or direct for an Active Directory "
                                                          "integration."})
        if values["ad_mode"] == AdMode.DIRECT:
            problems = validators.direct_ad_problems(values, password=str(values.get("bind_password") or ""),
                                                     password_moved="bind_password" in moved)
            if problems:
                raise serializers.ValidationError(problems)

    def _current_values(self) -> dict:
        if self.instance is None:
            return {}
        return {f.name: getattr(self.instance, f.name) for f in Integration._meta.concrete_fields
                if f.name not in ("id", "client")} | {"pk": self.instance.pk, "client": self.instance.client}


class FolderSerializer(serializers.ModelSerializer):
    mapping = serializers.SerializerMethodField()

    class Meta:
        model = Folder
        fields = ["id", "integration", "kind", "external_id", "name", "path", "parent", "gone", "first_seen",
                  "last_seen", "mapping"]

    def get_mapping(self, obj: Folder) -> int | None:
        mapping = getattr(obj, "mapping", None)
        return mapping.pk if mapping else None


class MappingSerializer(serializers.ModelSerializer):
    permission_level_label = serializers.SerializerMethodField()

    class Meta:
        model = Mapping
        fields = ["id", "folder", "permission_level", "permission_level_label", "security_groups", "created_by",
                  "created_at", "updated_at"]
        read_only_fields = fields

    def get_permission_level_label(self, obj: Mapping) -> str:
        return level_label(obj.permission_level)


class ApplySerializer(serializers.Serializer):
    """Apply one permission level and groups to up to 100 folders of one integration."""

    integration = serializers.PrimaryKeyRelatedField(queryset=Integration.objects.select_related("client"))
    folders = serializers.PrimaryKeyRelatedField(queryset=Folder.objects.filter(gone=False), many=True,
                                                 allow_empty=False)
    permission_level = serializers.PrimaryKeyRelatedField(queryset=PermissionLevel.objects.all())
    security_groups = serializers.PrimaryKeyRelatedField(queryset=SecurityGroup.objects.all(), many=True,
                                                         required=False, default=list)
    dry_run = serializers.BooleanField(default=False)

    def validate_folders(self, folders: list[Folder]) -> list[Folder]:
        if len(folders) > MAX_FOLDERS_PER_APPLY:
            raise serializers.ValidationError(
                f"{len(folders)} folders: one apply takes at most {MAX_FOLDERS_PER_APPLY}; send them in several "
                "applies (there is no limit on how many are configured in total).")
        return folders

    def validate(self, attrs: dict) -> dict:
        integration = attrs["integration"]
        client = integration.client
        if blockers := mapping_blockers(client):
            raise serializers.ValidationError({"integration": blockers})
        wrong = [f.pk for f in attrs["folders"] if f.integration_id != integration.pk]
        if wrong:
            raise serializers.ValidationError({"folders": f"Folders {wrong} are not folders of this integration."})
        if (wrong_kind := wrong_kind_message(attrs["permission_level"], client)) is not None:
            raise serializers.ValidationError({"permission_level": wrong_kind})
        foreign = [g.pk for g in attrs["security_groups"] if g.client_id != client.pk]
        if foreign:
            raise serializers.ValidationError({"security_groups": f"Groups {foreign} belong to another client."})
        return attrs


class SyncRunSerializer(serializers.ModelSerializer):
    class Meta:
        model = SyncRun
        fields = ["id", "integration", "trigger", "full", "dry_run", "status", "phase", "progress_done",
                  "progress_total", "requested_at", "started_at", "finished_at", "counts", "changes",
                  "held_disables", "held_resolution", "held_decided_by", "held_decided_at", "error", "started_by",
                  "portal_user"]
        read_only_fields = fields


class DirectoryIdentitySerializer(serializers.ModelSerializer):
    """A directory user linked to this portal user: the integration and the id the directory knows it by."""

    integration_name = serializers.CharField(source="integration.name", read_only=True)
    integration_kind = serializers.CharField(source="integration.kind", read_only=True)

    class Meta:
        model = DirectoryLink
        fields = ["integration", "integration_name", "integration_kind", "directory_id", "external_id", "in_scope",
                  "folder_ids", "last_seen", "created_at"]
        read_only_fields = fields


class MembershipSerializer(serializers.ModelSerializer):
    """A security group the user is in, and who put it there: a mapping (comes and goes) or staff (stays)."""

    name = serializers.CharField(source="group.name", read_only=True)

    class Meta:
        model = GroupMembership
        fields = ["group", "name", "source", "created_at"]
        read_only_fields = fields


class PortalUserSerializer(serializers.ModelSerializer):
    """A portal user. Staff may change its permission level, and nothing else; mappings then leave that level alone."""

    kind = serializers.CharField(read_only=True)
    permission_level_label = serializers.SerializerMethodField()
    directory_identities = DirectoryIdentitySerializer(many=True, read_only=True, source="directory_links")
    security_groups = MembershipSerializer(many=True, read_only=True, source="memberships")
    version = serializers.SerializerMethodField(
        help_text="The version of this user as read; the same value as the ETag header of GET /api/users/<id>/. "
                  "Send it quoted in If-Match with a PATCH or PUT.")

    class Meta:
        model = PortalUser
        fields = ["id", "client", "kind", "first_name", "last_name", "email", "status", "disabled_reason",
                  "disabled_at", "disabled_by_run", "disabled_by_staff", "staff_disabled_at", "staff_disabled_by",
                  "permission_level", "permission_level_label", "permission_level_set_by_hand", "directory_identities",
                  "security_groups", "activated_at", "created_at", "updated_at", "version"]
        read_only_fields = [f for f in fields if f != "permission_level"]

    def get_permission_level_label(self, obj: PortalUser) -> str:
        return level_label(obj.permission_level)

    def get_version(self, obj: PortalUser) -> str:
        return row_version(obj.updated_at)

    def validate_permission_level(self, level: PermissionLevel | None) -> PermissionLevel | None:
        if self.instance is not None and (wrong_kind := wrong_kind_message(level, self.instance.client)):
            raise serializers.ValidationError(wrong_kind)
        return level

    def update(self, instance: PortalUser, validated_data: dict) -> PortalUser:
        if "permission_level" in validated_data and validated_data["permission_level"] != instance.permission_level:
            validated_data["permission_level_set_by_hand"] = True  # a level staff set is kept from mappings
        for name, value in validated_data.items():
            setattr(instance, name, value)
        # Only what the request changes (and the version): never the other columns as this request read them.
        instance.save(update_fields=[*validated_data, "updated_at"])
        return instance


class EnabledSerializer(serializers.Serializer):
    enabled = serializers.BooleanField()


class ResyncSerializer(serializers.Serializer):
    incremental = serializers.BooleanField(
        default=False, help_text="Run the incremental sync the 5-minute schedule runs instead of a full one: Entra ID "
                                 "reads only what changed since the last run; Active Directory is always read in full.")


class NotificationSerializer(serializers.ModelSerializer):
    class Meta:
        model = Notification
        fields = ["id", "kind", "client", "integration", "title", "message", "url", "created_at", "read_at",
                  "resolved_at"]
        read_only_fields = fields


# ---------------------------------------------------------------- the vault: levels, groups, users staff create


class PermissionLevelSerializer(serializers.ModelSerializer):
    """A permission level. Its kind is fixed once created; name, rank and the Site Admin flag may change."""

    kind = serializers.ChoiceField(source="user_kind", choices=UserKind.choices,
                                   help_text="pro: for the Company Vault's users; site: for clients' users.")
    # A declared field, taken out of the class by DRF's metaclass; the stubs read it as Field.label, a string.
    label = serializers.SerializerMethodField(  # type: ignore[assignment]
        help_text="The name with its kind, e.g. Read Only (Site-User).")

    class Meta:
        model = PermissionLevel
        fields = ["id", "name", "kind", "label", "rank", "is_site_admin"]
        validators: list[Any] = []  # the name is checked per kind below, in words

    def get_label(self, obj: PermissionLevel) -> str:
        return level_label(obj)

    def validate_name(self, value: str) -> str:
        return _one_line(value)

    def validate(self, attrs: dict) -> dict:
        level = self.instance
        if level is not None and "user_kind" in attrs and attrs["user_kind"] != level.user_kind:
            raise serializers.ValidationError({"kind": "A level keeps its kind (users hold it): create a level of "
                                                       "the other kind instead."})
        kind = attrs.get("user_kind", getattr(level, "user_kind", ""))
        name = attrs.get("name", getattr(level, "name", ""))
        taken = PermissionLevel.objects.filter(user_kind=kind, name=name)
        if level is not None:
            taken = taken.exclude(pk=level.pk)
        if taken.exists():
            raise serializers.ValidationError(
                {"name": f"There is already a {UserKind(kind).label} level named {name}."})
        return attrs


class SecurityGroupSerializer(serializers.ModelSerializer):
    class Meta:
        model = SecurityGroup
        fields = ["id", "client", "name", "created_at"]
        read_only_fields = ["created_at"]
        validators: list[Any] = []  # the name is checked per client below, in words and whatever its case

    def validate_name(self, value: str) -> str:
        return _one_line(value)

    def validate(self, attrs: dict) -> dict:
        if SecurityGroup.objects.filter(client=attrs["client"], name__iexact=attrs["name"]).exists():
            raise serializers.ValidationError(
                {"name": f"{attrs['client'].name} already has a security group named {attrs['name']}."})
        return attrs


class CreationIssueSerializer(serializers.ModelSerializer):
    """A directory user in scope who could not become a portal user, with the reason; open until the cause goes."""

    client = serializers.IntegerField(source="integration.client_id", read_only=True)
    integration_name = serializers.CharField(source="integration.name", read_only=True)
    reason_label = serializers.CharField(source="get_reason_display", read_only=True)
    open = serializers.SerializerMethodField()

    class Meta:
        model = CreationIssue
        fields = ["id", "client", "integration", "integration_name", "external_id", "reason", "reason_label",
                  "user_name", "email", "folder", "folder_path", "message", "open", "opened_at", "closed_at",
                  "opened_by_run"]
        read_only_fields = fields

    def get_open(self, obj: CreationIssue) -> bool:
        return obj.closed_at is None


class IssueFilterSerializer(serializers.Serializer):
    """The filters of the creation issue list; each is optional."""

    client = serializers.IntegerField(required=False)
    integration = serializers.IntegerField(required=False)
    reason = serializers.ChoiceField(choices=IssueReason.choices, required=False)
    open = serializers.BooleanField(required=False, allow_null=True, default=None,
                                    help_text="true: open issues only; false: closed ones only.")


class NewPortalUserSerializer(serializers.ModelSerializer):
    """A portal user staff create by hand (a client's first Site Admin, say): an activation email is queued."""

    class Meta:
        model = PortalUser
        fields = ["client", "first_name", "last_name", "email", "permission_level"]
        validators: list[Any] = []  # the email is checked per client below, in words and whatever its case
        extra_kwargs = {"email": {"required": True}, "client": {"required": True}}

    def validate_first_name(self, value: str) -> str:
        return _one_line(value)

    def validate_last_name(self, value: str) -> str:
        return _one_line(value)

    def validate(self, attrs: dict) -> dict:
        client, email = attrs["client"], attrs["email"].strip()
        if (wrong_kind := wrong_kind_message(attrs.get("permission_level"), client)) is not None:
            raise serializers.ValidationError({"permission_level": wrong_kind})
        if PortalUser.objects.filter(client=client, email__iexact=email).exists():
            raise serializers.ValidationError({"email": f"{client.name} already has a user with the email {email}."})
        attrs["email"] = email
        return attrs


class UserGroupSerializer(serializers.Serializer):
    group = serializers.PrimaryKeyRelatedField(queryset=SecurityGroup.objects.all(),
                                               help_text="A security group of the user's client.")


class AgentTokenSerializer(serializers.Serializer):
    """A new agent token: shown in this answer only (the portal keeps its hash); the one it replaced keeps working
    for a grace period (AGENT_TOKEN_GRACE_MINUTES), so the agent can be given the new one without a gap."""

    token = serializers.CharField()
    hint = serializers.CharField(help_text="Its first characters, as the integration shows them from now on.")
    rotated = serializers.BooleanField(help_text="True when it replaced a token.")
    previous_token_works_until = serializers.DateTimeField(
        allow_null=True, help_text="When the token it replaced stops working (null: no token was replaced).")


class ActivationSentSerializer(serializers.Serializer):
    queued = serializers.BooleanField()
    detail = serializers.CharField()
