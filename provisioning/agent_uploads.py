"""The on-prem agent's upload as the engine serves it: directory stores it (directory/uploads.py), and what needs the
engine is asked of it here, by direct calls: what the agent is to read and the mark it refuses (agent_marks), the
linked users an upload lacks, and the run a committed upload starts (R17, through agent_runs and request_sync).

The agent API's views (provisioning/agent_api.py) and whatever stands in for the agent (tests, the benchmark) call
these; directory imports nothing of the engine.
"""

from __future__ import annotations

from typing import Any

from directory import partial_uploads, upload_chunks, upload_commit, upload_records, upload_start
from directory.models import AgentUpload, Integration, UploadStatus

from . import agent_marks, agent_outcomes
from .models import DirectoryLink


def linked_ids(integration: Integration) -> list[str]:
    """The external ids (objectGUIDs) of the integration's linked directory users."""
    return list(DirectoryLink.objects.filter(integration=integration).values_list("external_id", flat=True))


def start_upload(integration: Integration, *, directory_id: str, agent_version: str, host: str = "",
                 last_read_seconds: float | None = None, request_id: int | None = None,
                 told: partial_uploads.ReadTold | None = None) -> AgentUpload:
    """Open an upload (upload_start.start_upload); a partial one is checked against the mark the portal would hand out
    now, and one from another mark makes the portal forget its mark, so the agent's next read is a full one."""
    told = told or partial_uploads.ReadTold()
    wanted = agent_marks.read_from(integration) if told.partial else partial_uploads.FULL_READ
    try:
        return upload_start.start_upload(integration, directory_id=directory_id, agent_version=agent_version,
                                         host=host, last_read_seconds=last_read_seconds, request_id=request_id,
                                         told=told, wanted=wanted)
    except upload_records.MarkRefused:
        agent_marks.forget(integration)
        raise


def commit_upload(upload: AgentUpload, *, folder_count: Any, user_count: Any,
                  gone_count: Any = None) -> upload_commit.CommitResult:
    """Commit the upload (upload_commit.commit_upload); a read committed as the integration's (not an answer to a
    request) starts the run that applies it: the one waiting for the agent, or a new one (R17)."""
    result = upload_commit.commit_upload(upload, folder_count=folder_count, user_count=user_count,
                                         gone_count=gone_count)
    if result.upload.status == UploadStatus.COMMITTED:
        agent_outcomes.upload_arrived(result.upload.integration)
    return result


def missing_user_ids(upload: AgentUpload, *, after: str = "", limit: int = upload_records.MAX_RECORDS_PER_CHUNK
                     ) -> tuple[list[str], bool]:
    """One page of the linked users this upload lacks, and whether more (upload_chunks.missing_user_ids)."""
    return upload_chunks.missing_user_ids(upload, linked_ids(upload.integration), after=after, limit=limit)


def add_gone(upload: AgentUpload, records: Any) -> AgentUpload:
    """Store the linked users the agent found deleted in AD (upload_chunks.add_gone)."""
    return upload_chunks.add_gone(upload, records, linked_ids(upload.integration))


def linked_user_ids(integration: Integration, ids: list[str]) -> list[str]:
    """Which of `ids` the portal links, sorted (partial_uploads.linked_user_ids)."""
    return partial_uploads.linked_user_ids(ids, linked_ids(integration))
