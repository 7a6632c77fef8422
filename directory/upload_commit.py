"""Committing an agent upload: only when the agent's counts match what arrived does the upload become the
integration's read (R21); its folder tree is recorded (R19) and older reads go. The engine's agent API starts the
run that applies it (provisioning/agent_uploads.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils import timezone

from . import agent_requests, partial_uploads
from .folders import FolderChanges, record_folders
from .models import AgentUpload, AgentUploadRecord, UploadStatus
from .upload_chunks import open_upload
from .upload_digest import records_digest
from .upload_reads import folder_records, gone_ids
from .upload_records import UploadRejected


@dataclass(frozen=True)
class CommitResult:
    upload: AgentUpload
    folders: FolderChanges
    gone: int = 0  # linked users the agent named deleted in AD


def commit_upload(upload: AgentUpload, *, folder_count: Any, user_count: Any, gone_count: Any = None) -> CommitResult:
    """Make the upload the integration's current snapshot, if the agent's counts match what arrived.

    `gone_count` (the deleted users the agent named) is checked when the agent sends it; older agents do not.
    Then record the folder tree (R19) and drop older uploads; the engine's agent API starts the run that applies it
    (provisioning/agent_uploads.py).
    """
    counts = [("folder_count", folder_count), ("user_count", user_count)]
    for name, value in [*counts, *([("gone_count", gone_count)] if gone_count is not None else [])]:
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise UploadRejected(f"{name} must be a whole number of at least 0", field=name)
    with transaction.atomic():
        upload = open_upload(upload)
        if (upload.folder_count, upload.user_count) != (folder_count, user_count):
            raise UploadRejected(
                f"counts do not match: the agent sent {folder_count} folders and {user_count} users, the portal "
                f"received {upload.folder_count} folders and {upload.user_count} users; the upload stays "
                "uncommitted", field="folder_count" if upload.folder_count != folder_count else "user_count",
            )
        received = len(gone_ids(upload))
        if gone_count is not None and received != gone_count:
            raise UploadRejected(f"counts do not match: the agent named {gone_count} deleted users, the portal "
                                 f"received {received}; the upload stays uncommitted", field="gone_count")
        if upload.request_id is not None:
            folders = list(folder_records(upload))
            return CommitResult(upload=upload, folders=agent_requests.answer(upload, folders), gone=received)
        upload.status = UploadStatus.COMMITTED
        upload.committed_at = timezone.now()
        upload.records_digest = records_digest(upload.pk, upload.directory_id)  # once, not at every run
        upload.save(update_fields=["status", "committed_at", "records_digest"])
        integration = upload.integration
        # Older reads go; answers to requests stay until their page has used them (expire_uploads drops them), and
        # a partial upload keeps the full one it changes (written into it: the integration's picture of AD).
        older = integration.agent_uploads.exclude(pk=upload.pk).exclude(
            status__in=[UploadStatus.OPEN, UploadStatus.ANSWERED])
        if upload.partial:
            picture = partial_uploads.picture(integration)
            if picture is not None:
                older = older.exclude(pk=picture.pk)
            partial_uploads.write_into_picture(upload)
        AgentUploadRecord.objects.filter(upload__in=older).delete()
        older.delete()
        # A partial upload holds no folders: the tree stays as the last full read left it (an OU changed: full).
        changes = agent_requests.NO_FOLDER_CHANGES if upload.partial else record_folders(
            integration, list(folder_records(upload)))
    integration.touch_agent(upload.agent_version)
    return CommitResult(upload=upload, folders=changes, gone=received)
