"""Staff API views: thin, they parse input and call the same services as the admin pages."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from django.db import transaction
from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer

from directory.connectors import DirectoryError
from directory.models import AdMode, Folder, Integration, IntegrationKind
from notifications.activation import queue_activation_emails
from notifications.models import Notification
from passportal import staff
from passportal.actors import actor_of
from passportal.models import Client, PermissionLevel, PortalUser, SecurityGroup

from .. import actions, agent_requests, runs, sync
from ..models import CreationIssue, Mapping, SyncRun, SyncTrigger
from ..planner import MappingRule
from ..state import load_mappings
from . import preconditions
from . import serializers as s
from .permissions import StaffModelPermissions

log = logging.getLogger(__name__)


class StaffViewSet(viewsets.GenericViewSet):
    permission_classes = [StaffModelPermissions]
    action_perms: dict[str, list[str]] = {}


def _number(request: Request, name: str) -> int | None:
    """A numeric filter from the query string; anything else is no filter (as for the lists already here)."""
    value = request.query_params.get(name, "")
    return int(value) if value.isdigit() else None


class ClientViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin,
                    mixins.UpdateModelMixin, StaffViewSet):
    queryset = s.site_admins_of(Client.objects.all())
    serializer_class = s.ClientSerializer


class IntegrationViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin,
                         mixins.UpdateModelMixin, StaffViewSet):
    queryset = Integration.objects.select_related("client")
    serializer_class = s.IntegrationSerializer
    action_perms = {
        "resync": ["provisioning.add_syncrun"],
        "link": ["directory.change_integration"],
        "agent_token": ["directory.change_integration"],
    }

    def get_queryset(self) -> QuerySet[Integration]:
        queryset = super().get_queryset()
        client = self.request.query_params.get("client")
        return queryset.filter(client_id=client) if client and client.isdigit() else queryset

    @extend_schema(request=s.ResyncSerializer, responses={202: s.SyncRunSerializer})
    @action(detail=True, methods=["post"])
    def resync(self, request: Request, pk: str | None = None) -> Response:
        """Force Re-sync: a full sync now, or with `incremental` the delta sync; returns the run that does it."""
        serializer = s.ResyncSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        full = not serializer.validated_data["incremental"]
        run = runs.request_sync(self.get_object(), SyncTrigger.FORCE, full=full, started_by=actor_of(request.user))
        return Response(s.SyncRunSerializer(run).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=s.EnabledSerializer, responses={200: s.SyncRunSerializer})
    @action(detail=True, methods=["post"])
    def link(self, request: Request, pk: str | None = None) -> Response:
        """Switch the link on or off: off disables every user that came from it at once; on starts a sync (for an
        on-prem agent, a `queued` run waiting for its fresh read: "agent not responding" after the request timeout)."""
        serializer = s.EnabledSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        run = actions.set_link(self.get_object(), serializer.validated_data["enabled"], by=actor_of(request.user))
        return Response(s.SyncRunSerializer(run).data)

    @extend_schema(request=None, responses={201: s.AgentTokenSerializer})
    @action(detail=True, methods=["post"], url_path="agent-token")
    def agent_token(self, request: Request, pk: str | None = None) -> Response:
        """Create the agent token, or rotate it. Shown in this answer only.

        A rotated token keeps working for AGENT_TOKEN_GRACE_MINUTES (`previous_token_works_until`), then stops.
        """
        integration = self.get_object()
        if integration.kind != IntegrationKind.ACTIVE_DIRECTORY or integration.ad_mode != AdMode.AGENT:
            return Response({"detail": "Agent tokens are for Active Directory integrations in agent mode."},
                            status=status.HTTP_409_CONFLICT)
        rotated = bool(integration.agent_token_hash)
        token = integration.issue_agent_token()
        log.info("agent token of integration %s %s by %s", integration.pk, "rotated" if rotated else "created",
                 request.user)
        response = Response({"token": token, "hint": integration.agent_token_hint, "rotated": rotated,
                             "previous_token_works_until": integration.previous_agent_token_works_until()},
                            status=status.HTTP_201_CREATED)
        response["Cache-Control"] = "no-store"  # the only copy: no cache along the way may keep it
        return response


class FolderViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, StaffViewSet):
    queryset = Folder.objects.select_related("mapping").order_by("integration", "path")
    serializer_class = s.FolderSerializer

    def get_queryset(self) -> QuerySet[Folder]:
        queryset = super().get_queryset()
        integration = self.request.query_params.get("integration")
        return queryset.filter(integration_id=integration) if integration and integration.isdigit() else queryset


class MappingViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin, StaffViewSet):
    queryset = Mapping.objects.select_related("folder").prefetch_related("security_groups")
    serializer_class = s.MappingSerializer
    action_perms = {"apply": ["provisioning.add_mapping", "provisioning.change_mapping"]}

    @extend_schema(request=s.ApplySerializer, responses={200: s.SyncRunSerializer, 202: s.SyncRunSerializer},
                   description="Saves the mappings and starts a sync (202). With dry_run nothing is saved: the preview "
                               "run is answered (200), or, for an on-prem agent's integration, which must read AD now, "
                               "the run waiting for the agent's read is answered at once (202, its address in "
                               "Location): GET it until its status is succeeded (the preview) or failed (the agent "
                               "could not read, or is not responding after AGENT_PREVIEW_TIMEOUT_MINUTES).")
    @action(detail=False, methods=["post"])
    def apply(self, request: Request) -> Response:
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
        if data["dry_run"] and agent_requests.needs_agent(integration):
            # The on-prem agent reads AD for it: answered at once with the waiting run, which is polled (its
            # Location) until the preview is planned, or failed saying the agent is not responding.
            waiting = agent_requests.start_preview(integration, SyncTrigger.APPLY, mappings=rules,
                                                   started_by=actor_of(request.user))
            location = reverse("api:syncrun-detail", args=[waiting.pk])
            return Response(s.SyncRunSerializer(waiting).data, status=status.HTTP_202_ACCEPTED,
                            headers={"Location": location})
        if data["dry_run"]:
            try:
                preview = sync.preview(integration, mappings=rules, started_by=actor_of(request.user))
            except DirectoryError as exc:
                return Response({"detail": f"The directory could not be read: {exc}"},
                                status=status.HTTP_503_SERVICE_UNAVAILABLE)
            return Response(s.SyncRunSerializer(preview.run).data)
        actions.save_proposal(integration, {"folders": [f.pk for f in data["folders"]], "level": level.pk,
                                    "groups": sorted(group_ids), "new_group": "", "remove": []},
                              by=actor_of(request.user))
        run = runs.request_sync(integration, SyncTrigger.APPLY, full=True, started_by=actor_of(request.user))
        return Response(s.SyncRunSerializer(run).data, status=status.HTTP_202_ACCEPTED)

    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Remove a mapping and start a sync: its users in no other configured folder are disabled."""
        mapping = self.get_object()
        integration = mapping.folder.integration
        with transaction.atomic():
            mapping.delete()
        run = runs.request_sync(integration, SyncTrigger.APPLY, full=True, started_by=actor_of(request.user))
        return Response(s.SyncRunSerializer(run).data, status=status.HTTP_202_ACCEPTED)


class SyncRunViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, StaffViewSet):
    queryset = SyncRun.objects.all()
    serializer_class = s.SyncRunSerializer
    action_perms = {"apply_held": ["provisioning.change_syncrun"], "discard_held": ["provisioning.change_syncrun"]}

    def get_queryset(self) -> QuerySet[SyncRun]:
        queryset = super().get_queryset()
        integration = self.request.query_params.get("integration")
        return queryset.filter(integration_id=integration) if integration and integration.isdigit() else queryset

    @extend_schema(summary="A sync run; a dry run waiting for the on-prem agent's read is planned here once it has "
                           "arrived (status queued, phase \"waiting for the on-prem agent\", until then; failed "
                           "with \"The on-prem agent is not responding\" after the timeout)")
    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        run = self.get_object()
        if agent_requests.waits_for_agent(run):
            agent_requests.settle(run)
        return Response(s.SyncRunSerializer(run).data)

    def _decide(self, request: Request, decide: Callable[..., object]) -> Response:
        run = self.get_object()
        try:
            decide(run, by=actor_of(request.user))
        except ValueError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        run.refresh_from_db()
        return Response(s.SyncRunSerializer(run).data)

    @extend_schema(request=None, responses={200: s.SyncRunSerializer})
    @action(detail=True, methods=["post"], url_path="apply-held")
    def apply_held(self, request: Request, pk: str | None = None) -> Response:
        """Apply the disables this run held; the run then records who decided and when."""
        return self._decide(request, actions.apply_held_disables)

    @extend_schema(request=None, responses={200: s.SyncRunSerializer})
    @action(detail=True, methods=["post"], url_path="discard-held")
    def discard_held(self, request: Request, pk: str | None = None) -> Response:
        """Discard the disables this run held (nobody is disabled); the run records who decided and when."""
        return self._decide(request, actions.discard_held_disables)


USER_FILTERS = [
    OpenApiParameter("client", int, description="Users of this client."),
    OpenApiParameter("integration", int, description="Users linked to a directory user of this integration."),
    OpenApiParameter("external_id", str, description="The user linked to this directory id (objectGUID or Entra id)."),
]


class StaleUser(Exception):
    """A change sent over an older version of the user than the one stored (answered 412)."""

    def __init__(self, user: PortalUser) -> None:
        super().__init__(user.pk)
        self.user = user


class PortalUserViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin,
                        mixins.UpdateModelMixin, StaffViewSet):
    queryset = (PortalUser.objects.select_related("client", "permission_level")
                .prefetch_related("directory_links__integration", "memberships__group"))
    serializer_class = s.PortalUserSerializer
    action_perms = {
        "resync": ["passportal.change_portaluser", "provisioning.add_syncrun"],
        "enabled": ["passportal.change_portaluser"],
        "activation": ["passportal.change_portaluser"],
        "groups": ["passportal.change_portaluser"],
        "remove_group": ["passportal.change_portaluser"],
    }

    def get_queryset(self) -> QuerySet[PortalUser]:
        queryset = super().get_queryset()
        if (client := _number(self.request, "client")) is not None:
            queryset = queryset.filter(client_id=client)
        if (integration := _number(self.request, "integration")) is not None:
            queryset = queryset.filter(directory_links__integration_id=integration)
        if external_id := self.request.query_params.get("external_id", "").strip().lower():
            queryset = queryset.filter(directory_links__external_id=external_id)
        return queryset.distinct() if integration is not None or external_id else queryset

    @extend_schema(parameters=USER_FILTERS)
    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Portal users, with their directory identities and security groups."""
        return super().list(request, *args, **kwargs)

    @extend_schema(parameters=[preconditions.ETAG])
    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """A portal user; the ETag header is its version, to send back in If-Match with a change."""
        user = self.get_object()
        return Response(self.get_serializer(user).data, headers={"ETag": preconditions.etag(user.updated_at)})

    @extend_schema(parameters=[preconditions.IF_MATCH, preconditions.ETAG],
                   responses={200: s.PortalUserSerializer, 412: preconditions.StaleSerializer,
                              428: preconditions.PreconditionRequiredSerializer})
    def update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Change the user's permission level (then mappings leave it alone), only over the version you read:
        If-Match is required; a user changed since is refused with 412 and nothing is saved."""
        return super().update(request, *args, **kwargs)

    @extend_schema(parameters=[preconditions.IF_MATCH, preconditions.ETAG],
                   responses={200: s.PortalUserSerializer, 412: preconditions.StaleSerializer,
                              428: preconditions.PreconditionRequiredSerializer})
    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Change the user's permission level (then mappings leave it alone), only over the version you read:
        If-Match is required; a user changed since is refused with 412 and nothing is saved."""
        return super().partial_update(request, *args, **kwargs)

    def perform_update(self, serializer: BaseSerializer[PortalUser]) -> None:
        tags = preconditions.if_match(self.request.headers.get("If-Match"))
        user = serializer.instance
        assert user is not None, "an update has the user it changes"
        with transaction.atomic():
            # Under the row's lock (SQLite: the write lock IMMEDIATE took), so no run writes between check and save.
            now = PortalUser.objects.select_for_update().values_list("updated_at", flat=True).get(pk=user.pk)
            if not preconditions.matches(tags, now):
                raise StaleUser(self.get_queryset().get(pk=user.pk))
            serializer.save()

    def finalize_response(self, request: Request, response: Response, *args: Any, **kwargs: Any) -> Response:
        if self.action in ("update", "partial_update") and response.status_code == 200:
            response["ETag"] = preconditions.etag(self.get_object().updated_at)  # the version just written
        return super().finalize_response(request, response, *args, **kwargs)

    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, StaleUser):
            current = exc.user
            return Response({"detail": preconditions.stale_message(current.updated_at),
                             "etag": preconditions.etag(current.updated_at),
                             "current": s.PortalUserSerializer(current).data},
                            status=status.HTTP_412_PRECONDITION_FAILED,
                            headers={"ETag": preconditions.etag(current.updated_at)})
        return super().handle_exception(exc)

    @extend_schema(request=s.NewPortalUserSerializer, responses={201: s.PortalUserSerializer})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Create a portal user by hand (a client's first Site Admin, say); its activation email is queued."""
        serializer = s.NewPortalUserSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = staff.create_portal_user(**serializer.validated_data)
        user_id = user.pk
        transaction.on_commit(lambda: queue_activation_emails([user_id]))
        return Response(s.PortalUserSerializer(self.get_queryset().get(pk=user.pk)).data,
                        status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={200: s.ActivationSentSerializer})
    @action(detail=True, methods=["post"])
    def activation(self, request: Request, pk: str | None = None) -> Response:
        """Send the activation email again: a new link replaces the old one; disabled or active users get none."""
        user = self.get_object()
        if queue_activation_emails([user.pk]):
            return Response({"queued": True, "detail": f"Activation email queued for {user.email}."})
        return Response({"queued": False, "detail": "Nothing sent: the user is disabled or already activated."})

    @extend_schema(request=s.UserGroupSerializer, responses={200: s.PortalUserSerializer})
    @action(detail=True, methods=["post"])
    def groups(self, request: Request, pk: str | None = None) -> Response:
        """Add the user to a security group of its client, as staff: no sync takes it away."""
        user = self.get_object()
        serializer = s.UserGroupSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        group = serializer.validated_data["group"]
        if group.client_id != user.client_id:
            return Response({"group": [f"{group.name} is a group of another client."]},
                            status=status.HTTP_400_BAD_REQUEST)
        staff.add_group(user, group)
        return Response(s.PortalUserSerializer(self.get_queryset().get(pk=user.pk)).data)

    @extend_schema(request=None, responses={200: s.PortalUserSerializer})
    @action(detail=True, methods=["delete"], url_path=r"groups/(?P<group_id>[0-9]+)")
    def remove_group(self, request: Request, pk: str | None = None, group_id: str | None = None) -> Response:
        """Take back a group staff added. A group a mapping grants stays while a mapping grants it."""
        user = self.get_object()
        group = get_object_or_404(SecurityGroup, pk=group_id, client_id=user.client_id)
        if not staff.remove_group(user, group):
            return Response({"detail": f"{group.name} was not added by staff: a mapping grants it, and it goes when "
                                       "no mapping does."}, status=status.HTTP_409_CONFLICT)
        return Response(s.PortalUserSerializer(self.get_queryset().get(pk=user.pk)).data)

    @extend_schema(request=None, responses={200: s.SyncRunSerializer(many=True)})
    @action(detail=True, methods=["post"])
    def resync(self, request: Request, pk: str | None = None) -> Response:
        """Read this one user from its directories and apply the rules to it alone."""
        resynced = actions.resync_user(self.get_object(), by=actor_of(request.user))
        return Response(s.SyncRunSerializer(resynced, many=True).data)

    @extend_schema(request=s.EnabledSerializer, responses={200: s.PortalUserSerializer})
    @action(detail=True, methods=["post"])
    def enabled(self, request: Request, pk: str | None = None) -> Response:
        """Disable or enable by staff; a staff disable is kept apart from a directory disable."""
        serializer = s.EnabledSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = self.get_object()
        actions.staff_set_enabled(user, serializer.validated_data["enabled"], by=actor_of(request.user))
        return Response(s.PortalUserSerializer(user).data)


class NotificationViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, StaffViewSet):
    queryset = Notification.objects.select_related("client", "integration")
    serializer_class = s.NotificationSerializer
    action_perms = {"read": ["notifications.change_notification"]}

    def get_queryset(self) -> QuerySet[Notification]:
        queryset = super().get_queryset()
        if self.request.query_params.get("unread") in ("1", "true"):
            queryset = queryset.filter(read_at__isnull=True)
        return queryset

    @extend_schema(request=None, responses={200: s.NotificationSerializer})
    @action(detail=True, methods=["post"])
    def read(self, request: Request, pk: str | None = None) -> Response:
        note = self.get_object()
        if note.read_at is None:
            note.read_at = timezone.now()
            note.save(update_fields=["read_at"])
        return Response(s.NotificationSerializer(note).data)


class PermissionLevelViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin,
                             mixins.UpdateModelMixin, StaffViewSet):
    """Permission levels, highest rank first within each kind; a PATCH of `rank` re-ranks one."""

    queryset = PermissionLevel.objects.all()
    serializer_class = s.PermissionLevelSerializer

    def get_queryset(self) -> QuerySet[PermissionLevel]:
        kind = self.request.query_params.get("kind")
        return super().get_queryset().filter(user_kind=kind) if kind else super().get_queryset()

    @extend_schema(parameters=[OpenApiParameter("kind", str, enum=["pro", "site"], description="Levels of one kind.")])
    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().list(request, *args, **kwargs)


class SecurityGroupViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, StaffViewSet):
    queryset = SecurityGroup.objects.all()
    serializer_class = s.SecurityGroupSerializer

    def get_queryset(self) -> QuerySet[SecurityGroup]:
        client = _number(self.request, "client")
        return super().get_queryset().filter(client_id=client) if client is not None else super().get_queryset()

    @extend_schema(parameters=[OpenApiParameter("client", int, description="Groups of this client.")])
    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().list(request, *args, **kwargs)


class CreationIssueViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, StaffViewSet):
    """Directory users in scope who could not become portal users, and why (newest first)."""

    queryset = CreationIssue.objects.select_related("integration").order_by("-opened_at", "-pk")
    serializer_class = s.CreationIssueSerializer

    def get_queryset(self) -> QuerySet[CreationIssue]:
        queryset = super().get_queryset()
        if self.action != "list":
            return queryset
        filters = s.IssueFilterSerializer(data=self.request.query_params)
        filters.is_valid(raise_exception=True)  # an unknown reason is a 400 naming the reasons, not an empty list
        wanted = filters.validated_data
        if "client" in wanted:
            queryset = queryset.filter(integration__client_id=wanted["client"])
        if "integration" in wanted:
            queryset = queryset.filter(integration_id=wanted["integration"])
        if "reason" in wanted:
            queryset = queryset.filter(reason=wanted["reason"])
        if wanted.get("open") is not None:
            queryset = queryset.filter(closed_at__isnull=wanted["open"])
        return queryset

    @extend_schema(parameters=[s.IssueFilterSerializer])
    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().list(request, *args, **kwargs)
