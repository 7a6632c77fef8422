"""Opening an agent upload: what the agent says of itself and of its read is checked, an older open upload of the
same job is aborted (the agent started over), and an upload answering a portal's request is tied to it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.db import transaction

from . import agent_requests, partial_uploads
from .models import AgentRequest, AgentUpload, AgentUploadRecord, Integration, UploadStatus
from .upload_records import MarkRefused, UploadClosed, UploadRejected


def start_upload(integration: Integration, *, directory_id: str, agent_version: str, host: str = "",
                 last_read_seconds: float | None = None, request_id: int | None = None,
                 told: partial_uploads.ReadTold | None = None,
                 wanted: Mapping[str, Any] = partial_uploads.FULL_READ) -> AgentUpload:
    """Open a new upload; an older one of the same job still open is aborted (the agent started over).

    With `request_id` the upload answers that request of the portal (a preview or a folder read): it is committed
    as answered, never as the integration's last read. `told` says what the agent read (only the changes since the
    portal's mark, or everything: directory/partial_uploads.py), `wanted` what the portal would have it read now
    (a partial upload from another mark is refused: MarkRefused). The agent's health is kept on the integration.
    """
    told = told or partial_uploads.ReadTold()
    directory_id = (directory_id or "").strip().lower()
    if not directory_id or len(directory_id) > 255:
        raise UploadRejected("directory_id must be the AD domain the agent reads (1-255 characters)",
                             field="directory_id")
    if len(agent_version) > 50:
        raise UploadRejected("agent_version is longer than 50 characters", field="agent_version")
    if told.partial and request_id is not None:
        raise UploadRejected("an upload answering a request holds a full read, never only the changes",
                             field="partial")
    refused = partial_uploads.refusal(told, wanted)
    if refused:
        raise MarkRefused(refused)
    with transaction.atomic():
        request = _request(integration, request_id) if request_id is not None else None
        stale = list(integration.agent_uploads.filter(status=UploadStatus.OPEN, request=request)
                     .values_list("pk", flat=True))
        if stale:
            AgentUploadRecord.objects.filter(upload_id__in=stale).delete()
            AgentUpload.objects.filter(pk__in=stale).update(status=UploadStatus.ABORTED)
        upload = AgentUpload.objects.create(integration=integration, directory_id=directory_id,
                                            agent_version=agent_version, request=request,
                                            **partial_uploads.stored_fields(told))
    integration.touch_agent(agent_version, host, last_read_seconds)
    return upload


def _request(integration: Integration, request_id: int) -> AgentRequest:
    try:
        return agent_requests.to_answer(integration, request_id)
    except agent_requests.NotAnswerable as exc:
        if exc.unknown:
            raise UploadRejected(str(exc), field="request_id") from None
        raise UploadClosed(str(exc)) from None
