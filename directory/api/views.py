"""The push API an on-prem agent calls: start an upload, send folder and user chunks, commit (R17, R21, R26)."""

from __future__ import annotations

from typing import Any, cast

from django.db import transaction
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import Serializer
from rest_framework.views import APIView

from adread.incremental import ReadMark
from directory import agent_requests, partial_uploads, uploads
from directory.connectors.base import canonical_guid
from directory.models import AdMode, AgentUpload, Integration, IntegrationKind
from directory.signals import agent_polled, agent_read_failed

from . import busy, limits
from .authentication import AgentTokenAuthentication, IsAgent
from .serializers import (
    ChunkSerializer,
    CommitSerializer,
    FailureReplySerializer,
    FailureSerializer,
    GoneSerializer,
    LinkedReplySerializer,
    LinkedSerializer,
    MissingReplySerializer,
    MissingSerializer,
    PollReplySerializer,
    PollSerializer,
    StartedUploadSerializer,
    StartUploadSerializer,
    UploadSerializer,
)


def _over_limit(message: str, *, status_code: int, limit: str, maximum: int,
                retry_after: int | None = None) -> Response:
    """413 or 429 as JSON naming the setting, so the agent's log says which limit to stay under or raise."""
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
    return Response({"detail": message, "limit": limit, "maximum": maximum}, status=status_code, headers=headers)


def _rejected(exc: uploads.UploadRejected) -> Response:
    if isinstance(exc, uploads.UploadTooLarge):
        return _over_limit(str(exc), status_code=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE, limit=exc.limit,
                           maximum=exc.maximum)
    body: dict[str, str | int] = {"detail": str(exc)}
    if exc.index is not None:
        body["record"] = exc.index
    if exc.field is not None:
        body["field"] = exc.field
    code = status.HTTP_409_CONFLICT if isinstance(exc, uploads.UploadClosed) else status.HTTP_400_BAD_REQUEST
    return Response(body, status=code)


def _first_error(exc: ValidationError) -> Response:
    detail = exc.detail
    if isinstance(detail, dict):
        field, messages = next(iter(detail.items()))
        message = messages[0] if isinstance(messages, list) else messages
        return Response({"detail": f"{field}: {message}", "field": field}, status=status.HTTP_400_BAD_REQUEST)
    return Response({"detail": str(detail)}, status=status.HTTP_400_BAD_REQUEST)


class AgentView(APIView):
    authentication_classes = [AgentTokenAuthentication]
    permission_classes = [IsAgent]
    parser_classes = [limits.AgentJSONParser]

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        busy.limit_lock_waits()  # before authentication, the first statement that may wait
        super().initial(request, *args, **kwargs)
        integration = cast(Integration, request.auth)  # what AgentTokenAuthentication authenticates
        if integration.kind != IntegrationKind.ACTIVE_DIRECTORY or integration.ad_mode != AdMode.AGENT:
            self.permission_denied(request, message=f"{integration} does not take uploads from an on-prem agent "
                                                    "(set it to Active Directory, agent mode).")
        with transaction.atomic():
            # The database cache swallows its own write errors, so with the database busy (SQLite's write lock
            # held by a run) the counter would be retried for ever; in a transaction the lock is taken first,
            # and a busy database is an error here, answered 503.
            limits.throttle(integration.pk)
        limits.refuse_large_declared_body(request.META.get("CONTENT_LENGTH") or "0")

    def body(self, request: Request, serializer_class: type[Serializer]) -> Any:
        serializer = serializer_class(data=request.data)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data

    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, uploads.UploadRejected):
            return _rejected(exc)
        if isinstance(exc, limits.LimitExceeded):
            return _over_limit(str(exc), status_code=exc.status_code, limit=exc.limit, maximum=exc.maximum,
                               retry_after=exc.retry_after)
        if isinstance(exc, ValidationError):
            return _first_error(exc)
        if busy.is_busy(exc):
            # A lock the request waited for too long (a run's apply): nothing was stored, the agent sends it again.
            body, headers = busy.answer()
            return Response(body, status=status.HTTP_503_SERVICE_UNAVAILABLE, headers=headers)
        return super().handle_exception(exc)

    def finalize_response(self, request: Request, response: Response, *args: Any, **kwargs: Any) -> Response:
        busy.restore_lock_waits()
        return super().finalize_response(request, response, *args, **kwargs)

    def upload(self, request: Request, upload_id: int) -> AgentUpload:
        # Only this token's integration: another integration's upload id is simply not found (R26).
        return get_object_or_404(AgentUpload.objects.select_related("integration"), pk=upload_id,
                                 integration=request.auth)


class StartUploadView(AgentView):
    @extend_schema(request=StartUploadSerializer, responses={201: StartedUploadSerializer},
                   summary="Open an upload (an older open one of this integration is aborted); says the limits")
    def post(self, request: Request) -> Response:
        data = self.body(request, StartUploadSerializer)
        upload = uploads.start_upload(cast(Integration, request.auth), directory_id=data["directory_id"],
                                      agent_version=data["agent_version"], host=data["host"],
                                      last_read_seconds=data["last_read_seconds"], request_id=data["request_id"],
                                      told=_told(data))
        return Response(StartedUploadSerializer(upload).data, status=status.HTTP_201_CREATED)


def _told(data: dict) -> partial_uploads.ReadTold:
    """What the agent says it read (an older agent says nothing: a full read)."""
    return partial_uploads.ReadTold(partial=data["partial"], read_from=_mark(data["read_from"], "read_from"),
                                    mark=_mark(data["mark"], "mark"), folders_digest=data["folders_digest"],
                                    why=data["full_because"])


def _mark(value: object, field: str) -> dict | None:
    """A mark as the agent sends it ({"host", "invocation_id", "usn"}), or None; anything else is refused."""
    if value is None:
        return None
    mark = ReadMark.from_dict(value if isinstance(value, dict) else None)
    if mark is None:
        raise ValidationError({field: "must be {host, invocation_id, usn} (text, text, a whole number)"})
    return mark.as_dict()


class FolderChunkView(AgentView):
    @extend_schema(request=ChunkSerializer, responses={200: UploadSerializer},
                   summary="Add up to 2,000 folders (OUs); send every folder before the users")
    def post(self, request: Request, upload_id: int) -> Response:
        data = self.body(request, ChunkSerializer)
        upload = uploads.add_folders(self.upload(request, upload_id), data["records"])
        return Response(UploadSerializer(upload).data)


class UserChunkView(AgentView):
    @extend_schema(request=ChunkSerializer, responses={200: UploadSerializer},
                   summary="Add up to 2,000 users; their folder_ids must be folders of this upload")
    def post(self, request: Request, upload_id: int) -> Response:
        data = self.body(request, ChunkSerializer)
        upload = uploads.add_users(self.upload(request, upload_id), data["records"])
        return Response(UploadSerializer(upload).data)


class CommitView(AgentView):
    @extend_schema(request=CommitSerializer, responses={200: UploadSerializer},
                   summary="Commit with the counts sent; only then is the upload used")
    def post(self, request: Request, upload_id: int) -> Response:
        data = self.body(request, CommitSerializer)
        result = uploads.commit_upload(self.upload(request, upload_id), folder_count=data["folder_count"],
                                       user_count=data["user_count"], gone_count=data["gone_count"])
        body = UploadSerializer(result.upload).data
        body["folders_created"] = result.folders.created
        body["folders_gone"] = result.folders.gone
        body["gone_count"] = result.gone
        return Response(body)


class MissingView(AgentView):
    @extend_schema(request=MissingSerializer, responses={200: MissingReplySerializer},
                   summary="After the users: the linked users this upload lacks (moved out of the base DN, or deleted)")
    def post(self, request: Request, upload_id: int) -> Response:
        data = self.body(request, MissingSerializer)
        user_ids, more = uploads.missing_user_ids(self.upload(request, upload_id), after=data["after"],
                                                  limit=data["limit"])
        return Response({"user_ids": user_ids, "more": more})


class GoneView(AgentView):
    @extend_schema(request=GoneSerializer, responses={200: UploadSerializer},
                   summary="Name the missing users AD deleted, so they are disabled as deleted (not as moved)")
    def post(self, request: Request, upload_id: int) -> Response:
        data = self.body(request, GoneSerializer)
        upload = uploads.add_gone(self.upload(request, upload_id), data["records"])
        return Response(UploadSerializer(upload).data)


class PollView(AgentView):
    @extend_schema(request=PollSerializer, responses={200: PollReplySerializer},
                   summary="The agent is alive; the reply says whether the portal wants a fresh read now")
    def post(self, request: Request) -> Response:
        data = self.body(request, PollSerializer)
        integration = cast(Integration, request.auth)  # what AgentTokenAuthentication authenticates
        integration.touch_agent(data["agent_version"], data["host"], data["last_read_seconds"])
        # The engine decides whether a read is wanted (a run waiting for the agent); directory never imports it.
        read_now = any(answer for _, answer in agent_polled.send(sender=Integration, integration=integration))
        mapped = integration.folders.filter(mapping__isnull=False).values_list("external_id", flat=True)
        wanted = partial_uploads.read_from(integration)  # "full" while a Force Re-sync waits for this read
        return Response({"read_now": read_now,
                         "requests": agent_requests.hand_out(integration) if data["take_requests"] else [],
                         "mapped_folder_ids": sorted(mapped), "read_from": wanted["read_from"],
                         "read_why": wanted["why"], "folders_digest": wanted["folders_digest"]})


class LinkedView(AgentView):
    @extend_schema(request=LinkedSerializer, responses={200: LinkedReplySerializer},
                   summary="Which of these users (changed outside the base DN, or deleted in AD) the portal links")
    def post(self, request: Request) -> Response:
        data = self.body(request, LinkedSerializer)
        try:
            ids = [canonical_guid(value) for value in data["user_ids"]]
        except ValueError:
            raise ValidationError({"user_ids": "must be objectGUIDs"}) from None
        return Response({"user_ids": partial_uploads.linked_user_ids(cast(Integration, request.auth), ids)})


class FailureView(AgentView):
    @extend_schema(request=FailureSerializer, responses={201: FailureReplySerializer},
                   summary="The agent could not read AD: recorded as a failed run, with a notification")
    def post(self, request: Request) -> Response:
        data = self.body(request, FailureSerializer)
        integration = cast(Integration, request.auth)  # what AgentTokenAuthentication authenticates
        integration.touch_agent(data["agent_version"], data["host"], data["last_read_seconds"])
        if data["request_id"] is not None:
            # A read a person asked for (a preview, the folders): their page says why; the runs are not concerned.
            if not agent_requests.fail(integration, data["request_id"], data["message"]):
                return Response({"detail": f"request {data['request_id']} is not waiting for an answer"},
                                status=status.HTTP_409_CONFLICT)
            return Response({"run_id": None}, status=status.HTTP_201_CREATED)
        answers = agent_read_failed.send(sender=Integration, integration=integration, message=data["message"],
                                         permanent=data["permanent"], host=data["host"])
        runs = [run for _, run in answers if run is not None]
        # A receiver's answer is whatever it returns (here a SyncRun); the stubs type it as a string.
        return Response({"run_id": runs[0].pk if runs else None},  # type: ignore[attr-defined]
                        status=status.HTTP_201_CREATED)
