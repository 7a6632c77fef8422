"""The vault's permission levels and security groups, as the staff API shows and takes them."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from passportal.models import PermissionLevel, SecurityGroup, UserKind

from .common import level_label, one_line


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
        return one_line(value)

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
        return one_line(value)

    def validate(self, attrs: dict) -> dict:
        if SecurityGroup.objects.filter(client=attrs["client"], name__iexact=attrs["name"]).exists():
            raise serializers.ValidationError(
                {"name": f"{attrs['client'].name} already has a security group named {attrs['name']}."})
        return attrs
