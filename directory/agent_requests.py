"""Requests the portal makes of an on-prem agent through its poll: read AD now for a preview, or read the folders.

The portal cannot reach the agent (it opens no port), so a request waits in the database: the agent's next poll
is handed every request still waiting (`hand_out`), the agent reads AD and pushes an upload answering it (committed
as answered, never as the integration's last read: `answer`), or reports that its read failed (`fail`). Whether a
request has waited too long is the engine's decision (provisioning/agent_requests.py), not this module's.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone

from .connectors.base import FolderRecord
from .folders import FolderChanges, record_folders
from .models import AgentRequest, AgentRequestKind, AgentUpload, Integration, UploadStatus

NO_FOLDER_CHANGES = FolderChanges(created=0, renamed_or_moved=0, gone=0, back=0)


class NotAnswerable(Exception):
    """The request is not this integration's (`unknown`), or no longer waits for an answer."""

    def __init__(self, message: str, *, unknown: bool) -> None:
        super().__init__(message)
        self.unknown = unknown


def ask(integration: Integration, kind: str) -> AgentRequest:
    """A new request of `kind` (AgentRequestKind) for the agent's next poll."""
    return AgentRequest.objects.create(integration=integration, kind=kind)


def waiting(integration: Integration) -> QuerySet[AgentRequest]:
    """The integration's requests still waiting for an answer, oldest first. Older than AGENT_REQUEST_TIMEOUT_MINUTES
    they are left out: the page that asked has said "agent not responding" by then, and a late read helps nobody."""
    since = timezone.now() - timedelta(minutes=settings.AGENT_REQUEST_TIMEOUT_MINUTES)
    return integration.agent_requests.filter(answered_at__isnull=True, error="", requested_at__gte=since).order_by("pk")


def hand_out(integration: Integration) -> list[dict]:
    """What a poll tells the agent to do besides a full push: [{"id": 7, "kind": "preview"}, ...].

    A request already handed out is handed out again until answered: an agent that stopped half-way (or could not
    reach the portal with its answer) tries again at its next poll.
    """
    requests = list(waiting(integration).values("pk", "kind", "picked_up_at"))
    fresh = [r["pk"] for r in requests if r["picked_up_at"] is None]
    if fresh:
        AgentRequest.objects.filter(pk__in=fresh, picked_up_at__isnull=True).update(picked_up_at=timezone.now())
    return [{"id": r["pk"], "kind": r["kind"]} for r in requests]


def to_answer(integration: Integration, request_id: int) -> AgentRequest:
    """The integration's request `request_id`, locked, still waiting for its answer; NotAnswerable otherwise."""
    request = AgentRequest.objects.select_for_update().filter(pk=request_id, integration=integration).first()
    if request is None:
        raise NotAnswerable(f"request {request_id} is not a request of this integration", unknown=True)
    if request.answered_at is not None or request.error:
        raise NotAnswerable(f"request {request_id} was already answered: nothing more is needed for it",
                            unknown=False)
    return request


def answer(upload: AgentUpload, folders: Sequence[FolderRecord]) -> FolderChanges:
    """Commit an upload that answers its request (inside the commit's transaction): a preview is kept to be planned
    against and never applied; a folder read updates the folder tree (R19). Neither starts a run."""
    now = timezone.now()
    assert upload.request_id is not None, "only an upload that names its request answers one"
    request = to_answer(upload.integration, upload.request_id)
    upload.status, upload.committed_at = UploadStatus.ANSWERED, now
    upload.save(update_fields=["status", "committed_at"])
    AgentRequest.objects.filter(pk=request.pk).update(answered_at=now)
    if request.kind == AgentRequestKind.FOLDERS:
        return record_folders(upload.integration, folders)
    return NO_FOLDER_CHANGES


def fail(integration: Integration, request_id: int, message: str) -> bool:
    """The agent could not read AD for this request: the page that asked says why. False if it was not waiting."""
    return AgentRequest.objects.filter(pk=request_id, integration=integration, answered_at__isnull=True,
                                       error="").update(error=message or "the read failed") == 1


def answered_upload(request: AgentRequest) -> AgentUpload | None:
    """The upload that answered the request, if it has arrived."""
    return request.uploads.filter(status=UploadStatus.ANSWERED).order_by("-pk").first()
