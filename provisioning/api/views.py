"""Staff API views: thin, they parse input and call the same services as the admin pages."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from directory.connectors import DirectoryError
from directory.models import Folder, Integration
from notifications.models import Notification
from passportal.models import Client, PortalUser

from .. import services
from ..applier import load_mappings
from ..models import Mapping, SyncRun, SyncTrigger
from ..planner import MappingRule
from ..views.setup import save_proposal
from . import serializers as s
from .permissions import StaffModelPermissions


class StaffViewSet(viewsets.GenericViewSet):
    permission_classes = [StaffModelPermissions]
    action_perms: dict[str, list[str]] = {}


class ClientViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin,
                    mixins.UpdateModelMixin, StaffViewSet):
    queryset = Client.objects.all()
    serializer_class = s.ClientSerializer


class IntegrationViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin,
                         mixins.UpdateModelMixin, StaffViewSet):
    queryset = Integration.objects.select_related("client")
    serializer_class = s.IntegrationSerializer
    action_perms = {
        "resync": ["provisioning.add_syncrun"],
        "link": ["directory.change_integration"],
    }

    def get_queryset(self):
        queryset = super().get_queryset()
        client = self.request.query_params.get("client")
        return queryset.filter(client_id=client) if client and client.isdigit() else queryset

    @extend_schema(request=s.ResyncSerializer, responses={202: s.SyncRunSerializer})
    @action(detail=True, methods=["post"])
    def resync(self, request, pk=None):
        """Force Re-sync: a full sync now, or with `incremental` the delta sync; returns the run that does it."""
        serializer = s.ResyncSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        full = not serializer.validated_data["incremental"]
        run = services.request_sync(self.get_object(), SyncTrigger.FORCE, full=full, started_by=request.user)
        return Response(s.SyncRunSerializer(run).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=s.EnabledSerializer, responses={200: s.SyncRunSerializer})
    @action(detail=True, methods=["post"])
    def link(self, request, pk=None):
        """Switch the link on or off (R10): off disables every user that came from it at once."""
        serializer = s.EnabledSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        run = services.set_link(self.get_object(), serializer.validated_data["enabled"], by=request.user)
        return Response(s.SyncRunSerializer(run).data)


class FolderViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, StaffViewSet):
    queryset = Folder.objects.select_related("mapping").order_by("integration", "path")
    serializer_class = s.FolderSerializer

    def get_queryset(self):
        queryset = super().get_queryset()
        integration = self.request.query_params.get("integration")
        return queryset.filter(integration_id=integration) if integration and integration.isdigit() else queryset


class MappingViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin, StaffViewSet):
    queryset = Mapping.objects.select_related("folder").prefetch_related("security_groups")
    serializer_class = s.MappingSerializer
    action_perms = {"apply": ["provisioning.add_mapping", "provisioning.change_mapping"]}

    @extend_schema(request=s.ApplySerializer, responses={200: s.SyncRunSerializer, 202: s.SyncRunSerializer})
    @action(detail=False, methods=["post"])
    def apply(self, request):
        """Apply a level and groups to folders. With dry_run the preview run is returned and nothing is saved."""
        serializer = s.ApplySerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        integration, level = data["integration"], data["permission_level"]
        group_ids = frozenset(g.pk for g in data["security_groups"])
        rules = load_mappings(integration)
        for folder in data["folders"]:
            rules[folder.external_id] = MappingRule(folder_id=folder.external_id, level_id=level.pk,
                                                    level_rank=level.rank, group_ids=group_ids,
                                                    folder_path=folder.path or folder.name)
        if data["dry_run"]:
            try:
                preview = services.preview(integration, mappings=rules, started_by=request.user)
            except DirectoryError as exc:
                return Response({"detail": f"The directory could not be read: {exc}"},
                                status=status.HTTP_503_SERVICE_UNAVAILABLE)
            return Response(s.SyncRunSerializer(preview.run).data)
        save_proposal(integration, {"folders": [f.pk for f in data["folders"]], "level": level.pk,
                                    "groups": sorted(group_ids), "new_group": "", "remove": []}, by=request.user)
        run = services.request_sync(integration, SyncTrigger.APPLY, full=True, started_by=request.user)
        return Response(s.SyncRunSerializer(run).data, status=status.HTTP_202_ACCEPTED)

    def destroy(self, request, *args, **kwargs):
        """Remove a mapping and start a sync: its users in no other configured folder are disabled."""
        mapping = self.get_object()
        integration = mapping.folder.integration
        with transaction.atomic():
            mapping.delete()
        run = services.request_sync(integration, SyncTrigger.APPLY, full=True, started_by=request.user)
        return Response(s.SyncRunSerializer(run).data, status=status.HTTP_202_ACCEPTED)


class SyncRunViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, StaffViewSet):
    queryset = SyncRun.objects.all()
    serializer_class = s.SyncRunSerializer
    action_perms = {"apply_held": ["provisioning.change_syncrun"], "discard_held": ["provisioning.change_syncrun"]}

    def get_queryset(self):
        queryset = super().get_queryset()
        integration = self.request.query_params.get("integration")
        return queryset.filter(integration_id=integration) if integration and integration.isdigit() else queryset

    def _decide(self, request, decide) -> Response:
        run = self.get_object()
        try:
            decide(run, by=request.user)
        except ValueError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        run.refresh_from_db()
        return Response(s.SyncRunSerializer(run).data)

    @extend_schema(request=None, responses={200: s.SyncRunSerializer})
    @action(detail=True, methods=["post"], url_path="apply-held")
    def apply_held(self, request, pk=None):
        """Apply the disables this run held; the run then records who decided and when."""
        return self._decide(request, services.apply_held_disables)

    @extend_schema(request=None, responses={200: s.SyncRunSerializer})
    @action(detail=True, methods=["post"], url_path="discard-held")
    def discard_held(self, request, pk=None):
        """Discard the disables this run held (nobody is disabled); the run records who decided and when."""
        return self._decide(request, services.discard_held_disables)


class PortalUserViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.UpdateModelMixin, StaffViewSet):
    queryset = PortalUser.objects.select_related("client")
    serializer_class = s.PortalUserSerializer
    action_perms = {
        "resync": ["passportal.change_portaluser", "provisioning.add_syncrun"],
        "enabled": ["passportal.change_portaluser"],
    }

    def get_queryset(self):
        queryset = super().get_queryset()
        client = self.request.query_params.get("client")
        return queryset.filter(client_id=client) if client and client.isdigit() else queryset

    @extend_schema(request=None, responses={200: s.SyncRunSerializer(many=True)})
    @action(detail=True, methods=["post"])
    def resync(self, request, pk=None):
        """Read this one user from its directories and apply the rules to it alone."""
        runs = services.resync_user(self.get_object(), by=request.user)
        return Response(s.SyncRunSerializer(runs, many=True).data)

    @extend_schema(request=s.EnabledSerializer, responses={200: s.PortalUserSerializer})
    @action(detail=True, methods=["post"])
    def enabled(self, request, pk=None):
        """Disable or enable by staff; a staff disable is kept apart from a directory disable."""
        serializer = s.EnabledSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = self.get_object()
        services.staff_set_enabled(user, serializer.validated_data["enabled"], by=request.user)
        return Response(s.PortalUserSerializer(user).data)


class NotificationViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, StaffViewSet):
    queryset = Notification.objects.select_related("client", "integration")
    serializer_class = s.NotificationSerializer
    action_perms = {"read": ["notifications.change_notification"]}

    def get_queryset(self):
        queryset = super().get_queryset()
        if self.request.query_params.get("unread") in ("1", "true"):
            queryset = queryset.filter(read_at__isnull=True)
        return queryset

    @extend_schema(request=None, responses={200: s.NotificationSerializer})
    @action(detail=True, methods=["post"])
    def read(self, request, pk=None):
        note = self.get_object()
        if note.read_at is None:
            note.read_at = timezone.now()
            note.save(update_fields=["read_at"])
        return Response(s.NotificationSerializer(note).data)
