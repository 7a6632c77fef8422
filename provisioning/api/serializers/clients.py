"""Clients and their Site Admins, as the staff API shows them (R14: what stops user mapping)."""

from __future__ import annotations

from django.db.models import Prefetch, QuerySet
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from passportal.models import Client, PortalUser

from ...access import mapping_blockers
from .common import level_label


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
    mapping_blockers = serializers.SerializerMethodField(
        help_text="What stops user mapping, in words; empty if nothing.")
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
