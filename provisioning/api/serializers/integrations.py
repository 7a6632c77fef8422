"""Integrations, their folders, mappings and runs, as the staff API shows and takes them. Secrets (bind
password, client secret) are write-only: never returned (R25)."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers

from directory import validators
from directory.clouds import DEFAULT_CLOUD, ENDPOINT_FIELDS
from directory.entra_tenant import check_entra_integration
from directory.models import SECRET_DESTINATIONS, AdMode, Folder, Integration, IntegrationKind
from passportal.models import PermissionLevel, SecurityGroup, wrong_kind_message

from ...access import mapping_blockers
from ...forms import MAX_FOLDERS_PER_APPLY
from ...models import Mapping, SyncRun
from .common import level_label


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


class AgentTokenSerializer(serializers.Serializer):
    """A new agent token: shown in this answer only (the portal keeps its hash); the one it replaced keeps working
    for a grace period (AGENT_TOKEN_GRACE_MINUTES), so the agent can be given the new one without a gap."""

    token = serializers.CharField()
    hint = serializers.CharField(help_text="Its first characters, as the integration shows them from now on.")
    rotated = serializers.BooleanField(help_text="True when it replaced a token.")
    previous_token_works_until = serializers.DateTimeField(
        allow_null=True, help_text="When the token it replaced stops working (null: no token was replaced).")
