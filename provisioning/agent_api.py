"""The agent API's endpoints that need the engine (R17, R21, R26): start an upload (checked against the mark the
portal hands out), the linked users it lacks and the deleted ones among them, its commit (which starts the run), the
poll (whether a fresh read is wanted, and what to read), the linked users among the ones the agent names, and a
failed read (a failed run). They store through directory (directory/uploads.py, over provisioning/agent_uploads.py)
and ask the engine directly; the URLs, bodies and statuses are the agent's, unchanged (agent_api_urls.py)."""

from __future__ import annotations

from typing import cast

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from directory import agent_requests
from directory.api.serializers import (
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
from directory.api.views import AgentView, told_of
from directory.connectors.base import canonical_guid
from directory.models import Integration

from . import agent_marks, agent_outcomes, agent_runs, agent_uploads


class StartUploadView(AgentView):
    @extend_schema(request=StartUploadSerializer, responses={201: StartedUploadSerializer},
                   summary="Open an upload (an older open one of this integration is aborted); says the limits")
    def post(self, request: Request) -> Response:
        data = self.body(request, StartUploadSerializer)
        upload = agent_uploads.start_upload(cast(Integration, request.auth), directory_id=data["directory_id"],
                                            agent_version=data["agent_version"], host=data["host"],
                                            last_read_seconds=data["last_read_seconds"], request_id=data["request_id"],
                                            told=told_of(data))
        return Response(StartedUploadSerializer(upload).data, status=status.HTTP_201_CREATED)


class CommitView(AgentView):
    @extend_schema(request=CommitSerializer, responses={200: UploadSerializer},
                   summary="Commit with the counts sent; only then is the upload used")
    def post(self, request: Request, upload_id: int) -> Response:
        data = self.body(request, CommitSerializer)
        result = agent_uploads.commit_upload(self.upload(request, upload_id), folder_count=data["folder_count"],
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
        user_ids, more = agent_uploads.missing_user_ids(self.upload(request, upload_id), after=data["after"],
                                                        limit=data["limit"])
        return Response({"user_ids": user_ids, "more": more})


class GoneView(AgentView):
    @extend_schema(request=GoneSerializer, responses={200: UploadSerializer},
                   summary="Name the missing users AD deleted, so they are disabled as deleted (not as moved)")
    def post(self, request: Request, upload_id: int) -> Response:
        data = self.body(request, GoneSerializer)
        upload = agent_uploads.add_gone(self.upload(request, upload_id), data["records"])
        return Response(UploadSerializer(upload).data)


class PollView(AgentView):
    @extend_schema(request=PollSerializer, responses={200: PollReplySerializer},
                   summary="The agent is alive; the reply says whether the portal wants a fresh read now")
    def post(self, request: Request) -> Response:
        data = self.body(request, PollSerializer)
        integration = cast(Integration, request.auth)  # what AgentTokenAuthentication authenticates
        integration.touch_agent(data["agent_version"], data["host"], data["last_read_seconds"])
        read_now = agent_runs.agent_is_asked(integration)  # a run waiting for the agent's fresh read
        mapped = integration.folders.filter(mapping__isnull=False).values_list("external_id", flat=True)
        wanted = agent_marks.read_from(integration)  # "full" while a Force Re-sync waits for this read
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
        return Response({"user_ids": agent_uploads.linked_user_ids(cast(Integration, request.auth), ids)})


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
        run = agent_outcomes.read_failed(integration, data["message"], permanent=data["permanent"], host=data["host"])
        return Response({"run_id": run.pk}, status=status.HTTP_201_CREATED)
