"""The connector over what an on-prem agent pushed: it reads an integration's latest committed upload, never AD.

An upload is invisible until its commit arrives with counts that match what was stored: the engine reads only the
latest committed upload of an integration (through `UploadConnector`), so a push that dies half-way changes nothing
(R21). The push itself lives beside this module, one step each: opening an upload (upload_start.py), the records an
agent may push and the errors it is answered with (upload_records.py), storing the chunks (upload_chunks.py), the
caps in records and bytes and the expiry of idle uploads, so a token can never fill the database (upload_limits.py,
settings AGENT_UPLOAD_*), the commit (upload_commit.py), and reading the stored records back (upload_reads.py).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection

from . import partial_uploads
from .connectors.base import DirectoryUnavailable, FolderRecord, Snapshot, UserRecord, canonical_guid, full_snapshot
from .models import AgentUpload, Integration, UploadRecordKind, UploadStatus

# The connector reads records through these (upload_reads, shared with the commit).
from .upload_reads import folder_records as _folder_records
from .upload_reads import gone_ids as _gone_ids
from .upload_reads import user_record as _user_record


class UploadConnector:
    """The connector for an agent integration: it reads the latest committed upload, never AD itself.

    Given `upload` (a preview the agent read on request), it reads that one instead.
    """

    def __init__(self, integration: Integration, upload: AgentUpload | None = None) -> None:
        self.integration = integration
        self.upload = upload

    def _latest(self) -> AgentUpload:
        if self.upload is not None:
            return self.upload
        upload = partial_uploads.picture(self.integration)  # the last full read, later changes written into it
        if upload is None:
            raise DirectoryUnavailable(
                f"The on-prem agent of {self.integration} has not completed an upload yet: check that it runs "
                "and can reach the portal (its last contact: "
                f"{self.integration.agent_last_contact or 'never'})."
            )
        return upload

    @property
    def directory_id(self) -> str:
        return self._latest().directory_id

    def test(self) -> str:
        upload = self._latest()
        return (f"On-prem agent {upload.agent_version or '(version unknown)'}, last contact "
                f"{self.integration.agent_last_contact:%Y-%m-%d %H:%M %Z}; latest upload committed "
                f"{upload.committed_at:%Y-%m-%d %H:%M %Z}: {upload.folder_count} OUs and {upload.user_count} "
                f"users of {upload.directory_id}.")

    def read_folders(self) -> list[FolderRecord]:
        return list(_folder_records(self._latest()))

    def read_users(self, folder_ids: Collection[str]) -> list[UserRecord]:
        return self._users(self._latest(), folder_ids)

    def read_user(self, user_id: str) -> UserRecord | None:
        try:
            guid = canonical_guid(user_id)
        except (ValueError, AttributeError) as exc:
            raise ValueError(f"{user_id!r} is not a GUID: a user is read by its objectGUID") from exc
        row = self._latest().records.filter(kind=UploadRecordKind.USER, external_id=guid).first()
        return _user_record(row.data) if row else None

    def read_snapshot(self, folder_ids: Collection[str], *, incremental: bool = False) -> Snapshot:
        """The latest committed upload as a complete snapshot (agents always push everything).

        The linked users the agent found deleted in AD come as `removed_user_ids`: disabled as deleted (R8).
        """
        upload = self._latest()
        folders = list(_folder_records(upload))
        users = self._users(upload, folder_ids)
        read_ids = frozenset(canonical_guid(f) for f in folder_ids) or frozenset(f.id for f in folders)
        snapshot = full_snapshot(upload.directory_id, folders, users, read_ids)
        gone = _gone_ids(upload)
        return dataclasses.replace(snapshot, removed_user_ids=gone) if gone else snapshot

    def read_latest(self, folder_ids: Collection[str]) -> tuple[Snapshot, AgentUpload]:
        """What the latest committed upload read, for the run it starts, and that upload: a partial one as a partial
        snapshot (every user it holds: one moved out of the mapped folders goes out of scope), else read_snapshot's."""
        newest = (self.integration.agent_uploads.filter(status=UploadStatus.COMMITTED)
                  .order_by("-committed_at", "-pk").first())
        if newest is None or not newest.partial or self.upload is not None:
            return self.read_snapshot(folder_ids), self._latest()
        read_ids = frozenset(canonical_guid(f) for f in folder_ids)
        users = tuple(self._users(newest, ()))
        return partial_uploads.partial_snapshot(newest, users, _gone_ids(newest), read_ids), newest

    @staticmethod
    def _users(upload: AgentUpload, folder_ids: Collection[str]) -> list[UserRecord]:
        wanted = frozenset(canonical_guid(f) for f in folder_ids)
        rows = upload.records.filter(kind=UploadRecordKind.USER).order_by("pk").values_list("data", flat=True)
        shared: dict = {}
        users = (_user_record(data, shared) for data in rows.iterator(chunk_size=2000))
        return [u for u in users if not wanted or u.folder_ids & wanted]
