"""Portal users as the staff API shows them (where they came from, their groups), the staff writes on one user
(enable, resync, a user created by hand, a group) and the bell's notifications."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from notifications.models import Notification
from passportal.models import (
    GroupMembership,
    PermissionLevel,
    PortalUser,
    SecurityGroup,
    row_version,
    wrong_kind_message,
)

from ...models import DirectoryLink
from .common import level_label, one_line


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


class NewPortalUserSerializer(serializers.ModelSerializer):
    """A portal user staff create by hand (a client's first Site Admin, say): an activation email is queued."""

    class Meta:
        model = PortalUser
        fields = ["client", "first_name", "last_name", "email", "permission_level"]
        validators: list[Any] = []  # the email is checked per client below, in words and whatever its case
        extra_kwargs = {"email": {"required": True}, "client": {"required": True}}

    def validate_first_name(self, value: str) -> str:
        return one_line(value)

    def validate_last_name(self, value: str) -> str:
        return one_line(value)

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


class ActivationSentSerializer(serializers.Serializer):
    queued = serializers.BooleanField()
    detail = serializers.CharField()
