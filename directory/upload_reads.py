"""Reading a stored upload's records back as the connectors' records (the upload's connector, its commit)."""

from __future__ import annotations

from collections.abc import Iterator

from .connectors.base import FolderRecord, UserRecord
from .models import AgentUpload, UploadRecordKind


def folder_records(upload: AgentUpload) -> Iterator[FolderRecord]:
    rows = upload.records.filter(kind=UploadRecordKind.FOLDER).order_by("pk").values_list("data", flat=True)
    for data in rows.iterator(chunk_size=2000):
        yield FolderRecord(id=data["id"], name=data["name"], kind=data.get("kind", "ou"), parent_id=data["parent_id"],
                           path=data["path"])


def gone_ids(upload: AgentUpload) -> frozenset[str]:
    return frozenset(upload.records.filter(kind=UploadRecordKind.GONE).values_list("external_id", flat=True))


def user_record(data: dict, shared: dict | None = None) -> UserRecord:
    """`shared` (one per read): the users of one OU share one folder set, and repeated names one string, so a
    read of 300,000 users holds each once (a one-folder frozenset alone is 216 bytes)."""
    folder_ids, first, last = frozenset(data["folder_ids"]), data["first_name"], data["last_name"]
    if shared is not None:
        folder_ids, first, last = (shared.setdefault(v, v) for v in (folder_ids, first, last))
    return UserRecord(
        id=data["id"], first_name=first, last_name=last, email=data["email"],
        enabled=data["enabled"], folder_ids=folder_ids, display_name=data["display_name"],
        upn=data["upn"], dn=data["dn"], chains=tuple(tuple(chain) for chain in data.get("chains", ())),
    )
