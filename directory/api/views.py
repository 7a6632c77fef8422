"""The push API an on-prem agent calls (R17, R21, R26): what every endpoint shares (the agent's token, limits, errors
as JSON), and the folder and user chunks, which only store. The endpoints that need the engine (start, missing, gone,
commit, poll, linked, failures) are provisioning's (provisioning/agent_api.py), over the same base."""

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
from directory import partial_uploads, upload_chunks, upload_records
from directory.models import AdMode, AgentUpload, Integration, IntegrationKind

from . import busy, limits
from .authentication import AgentTokenAuthentication, IsAgent
from .serializers import ChunkSerializer, UploadSerializer


def _over_limit(message: str, *, status_code: int, limit: str, maximum: int,
                retry_after: int | None = None) -> Response:
    """413 or 429 as JSON naming the setting, so the agent's log says which limit to stay under or raise."""
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
    return Response({"detail": message, "limit": limit, "maximum": maximum}, status=status_code, headers=headers)


def _rejected(exc: upload_records.UploadRejected) -> Response:
    if isinstance(exc, upload_records.UploadTooLarge):
        return _over_limit(str(exc), status_code=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE, limit=exc.limit,
                           maximum=exc.maximum)
    body: dict[str, str | int] = {"detail": str(exc)}
    if exc.index is not None:
        body["record"] = exc.index
    if exc.field is not None:
        body["field"] = exc.field
    code = status.HTTP_409_CONFLICT if isinstance(exc, upload_records.UploadClosed) else status.HTTP_400_BAD_REQUEST
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
        if isinstance(exc, upload_records.UploadRejected):
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


def told_of(data: dict) -> partial_uploads.ReadTold:
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
        upload = upload_chunks.add_folders(self.upload(request, upload_id), data["records"])
        return Response(UploadSerializer(upload).data)


class UserChunkView(AgentView):
    @extend_schema(request=ChunkSerializer, responses={200: UploadSerializer},
                   summary="Add up to 2,000 users; their folder_ids must be folders of this upload")
    def post(self, request: Request, upload_id: int) -> Response:
        data = self.body(request, ChunkSerializer)
        upload = upload_chunks.add_users(self.upload(request, upload_id), data["records"])
        return Response(UploadSerializer(upload).data)
