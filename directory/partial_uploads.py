"""An on-prem agent's upload of what changed in AD since the portal's mark (a partial upload), and its full picture.

The portal keeps the mark (provisioning.ad_reads) and hands it out in the agent's poll (`read_from`); the agent reads
the changes since it with adread.incremental, as direct mode does, and uploads only the users it has news of, the
linked users AD deleted (as `gone`), and the new mark. The portal plans such an upload as a partial snapshot. An
upload whose mark is not the one the portal would hand out now is refused at its start (409): the portal forgets its
mark, so the agent's next read is a full one. An upload that says nothing of a mark (an older agent) is a full read.
The mark and the linked users are the engine's: provisioning's agent API (provisioning/agent_uploads.py) hands them
to the functions here, which never ask for them.

The latest full upload stays the integration's picture of AD, for what reads one user or the folders of the last
upload (a user's resync, a preview from the last upload): a partial upload's users and deletions are written into it
when the partial upload is committed, so the picture never goes back to a read older than the last changes.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from adread.batches import chunks

from .connectors.base import Snapshot
from .models import AgentUpload, AgentUploadRecord, Folder, Integration, UploadRecordKind, UploadStatus

MARK_KEYS = ("host", "invocation_id", "usn")
WHY_LENGTH = 300


@dataclass(frozen=True)
class ReadTold:
    """What the agent says it read, when its upload starts (every field empty: an older agent, a full read)."""

    partial: bool = False
    read_from: Mapping[str, Any] | None = None  # the mark a partial read started from
    mark: Mapping[str, Any] | None = None  # the DC's mark at the start of this read
    folders_digest: str = ""
    why: str = ""


# What the portal wants read when nobody says otherwise: everything.
FULL_READ: Mapping[str, Any] = {"read_from": "full", "why": "", "folders_digest": ""}


def refusal(told: ReadTold, wanted: Mapping[str, Any]) -> str:
    """Why a partial upload cannot be planned from the mark the portal would hand out now (`wanted`, what a poll
    says: agent_marks.read_from), in words for the agent's log; "" when it can, or when the upload is a full read."""
    if not told.partial:
        return ""
    problem = _mismatch(told, wanted)
    return (f"This upload holds only the changes since a mark the portal does not hand out now ({problem}): "
            "read everything and upload it.") if problem else ""


def _mismatch(told: ReadTold, wanted: Mapping[str, Any]) -> str:
    mark = wanted.get("read_from")
    if not isinstance(mark, Mapping):
        return f"the portal asks for a full read: {wanted.get('why') or 'no mark'}"
    if told.read_from is None or any(told.read_from.get(k) != mark.get(k) for k in MARK_KEYS):
        return "it started from another mark than the portal's"
    if told.folders_digest != wanted.get("folders_digest"):
        return "the mapped folders changed since the agent was told of them"
    new = told.mark or {}
    if new.get("host") != mark["host"] or new.get("invocation_id") != mark["invocation_id"] or not (
            isinstance(new.get("usn"), int) and new["usn"] >= mark["usn"]):
        return "its new mark is not of the same domain controller, or is behind the old one"
    return ""


def stored_fields(told: ReadTold) -> dict[str, Any]:
    """The upload's fields that keep what the agent read."""
    return {"partial": told.partial, "read_mark": dict(told.mark) if told.mark else None,
            "read_folders_digest": told.folders_digest, "read_why": told.why[:WHY_LENGTH]}


def known_folder_kinds(integration: Integration, ids: Collection[str]) -> dict[str, str]:
    """Folder id -> kind of the integration's folders among `ids`: a partial upload sends no folders, its users'
    folders are the ones the portal knows (a new OU or group makes the agent's read a full one)."""
    rows = Folder.objects.filter(integration=integration, external_id__in=list(ids))
    return dict(rows.values_list("external_id", "kind"))


def picture(integration: Integration) -> AgentUpload | None:
    """The latest committed full upload: the integration's picture of AD, changes of later partial ones included."""
    return (integration.agent_uploads.filter(status=UploadStatus.COMMITTED, partial=False)
            .order_by("-committed_at", "-pk").first())


def write_into_picture(upload: AgentUpload) -> None:
    """Write a committed partial upload's users (replacing the picture's) and deletions into the picture (in the
    commit's transaction). Without a picture (none was ever committed) there is nothing to keep up to date."""
    base = picture(upload.integration)
    if base is None:
        return
    users = list(upload.records.filter(kind=UploadRecordKind.USER).values_list("external_id", "data"))
    gone = list(upload.records.filter(kind=UploadRecordKind.GONE).values_list("external_id", flat=True))
    for batch in chunks([external_id for external_id, _ in users] + gone, 2000):
        base.records.filter(kind=UploadRecordKind.USER, external_id__in=batch).delete()
    known_gone = set(base.records.filter(kind=UploadRecordKind.GONE).values_list("external_id", flat=True))
    AgentUploadRecord.objects.bulk_create(
        [AgentUploadRecord(upload=base, kind=UploadRecordKind.USER, external_id=i, data=d) for i, d in users]
        + [AgentUploadRecord(upload=base, kind=UploadRecordKind.GONE, external_id=i, data={"id": i})
           for i in gone if i not in known_gone], batch_size=1000)
    base.user_count = base.records.filter(kind=UploadRecordKind.USER).count()
    base.save(update_fields=["user_count"])


def partial_snapshot(upload: AgentUpload, users: tuple, gone: frozenset[str], read_ids: frozenset[str]) -> Snapshot:
    """A partial upload as the planner takes it: only the users it has news of, and the ones AD deleted."""
    return Snapshot(directory_id=upload.directory_id, folders=(), users=users, complete=True, incremental=True,
                    read_folder_ids=read_ids, removed_user_ids=gone, folders_complete=False)


def linked_user_ids(ids: Collection[str], linked: Collection[str]) -> list[str]:
    """Which of `ids` (users the agent saw change outside its base DN, or deleted in AD) are among `linked` (the
    integration's linked users), sorted: the agent uploads only those of the users it has no business sending
    otherwise."""
    return sorted(set(ids) & set(linked))
