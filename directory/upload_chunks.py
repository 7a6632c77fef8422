"""Storing an open upload's chunks: folders, then users (whose folders must be in the upload, or known to the
portal for a partial one), then the linked users AD deleted among those the upload lacks. Each chunk is validated
whole (upload_records) and stored in one transaction, or not at all."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from django.db import transaction
from django.utils import timezone

from . import partial_uploads
from .models import AgentUpload, AgentUploadRecord, UploadRecordKind, UploadStatus
from .upload_limits import refuse_past_caps, stored_size
from .upload_records import (
    MAX_OUS_PER_USER,
    MAX_RECORDS_PER_CHUNK,
    UploadClosed,
    UploadRejected,
    validate_folders,
    validate_gone,
    validate_users,
)


def open_upload(upload: AgentUpload) -> AgentUpload:
    locked = AgentUpload.objects.select_for_update().get(pk=upload.pk)
    if locked.status != UploadStatus.OPEN:
        raise UploadClosed(f"upload {locked.pk} is {locked.get_status_display().lower()}: start a new upload")
    return locked


def _still_open(upload: AgentUpload) -> None:
    upload.refresh_from_db(fields=["status"])
    if upload.status != UploadStatus.OPEN:
        raise UploadClosed(f"upload {upload.pk} is {upload.get_status_display().lower()}: start a new upload")


def _already_stored(upload: AgentUpload, kind: str, ids: Sequence[str]) -> set[str]:
    return set(AgentUploadRecord.objects.filter(upload=upload, kind=kind, external_id__in=ids)
               .values_list("external_id", flat=True))


def _count_chunk(upload: AgentUpload, counter: str, records: int, size: int) -> None:
    setattr(upload, counter, getattr(upload, counter) + records)
    upload.byte_count += size
    upload.chunk_count += 1
    upload.last_chunk_at = timezone.now()
    upload.save(update_fields=[counter, "byte_count", "chunk_count", "last_chunk_at"])


def add_folders(upload: AgentUpload, records: Any) -> AgentUpload:
    clean = validate_folders(records)
    size = stored_size(clean)
    with transaction.atomic():
        upload = open_upload(upload)
        refuse_past_caps(upload, len(clean), size)
        _refuse_duplicates(upload, UploadRecordKind.FOLDER, clean)
        _store(upload, UploadRecordKind.FOLDER, clean)
        _count_chunk(upload, "folder_count", len(clean), size)
    return upload


def add_users(upload: AgentUpload, records: Any) -> AgentUpload:
    """Store a chunk of users. Their folders must already be in this upload: folders are sent first."""
    clean = validate_users(records)
    size = stored_size(clean)
    with transaction.atomic():
        upload = open_upload(upload)
        refuse_past_caps(upload, len(clean), size)
        _refuse_duplicates(upload, UploadRecordKind.USER, clean)
        wanted = sorted({f for r in clean for f in r["folder_ids"]})
        known = _stored_kinds(upload, wanted)
        if upload.partial:  # it sends no folders: its users are in folders the portal knows
            known.update(partial_uploads.known_folder_kinds(upload.integration, set(wanted) - set(known)))
        for index, record in enumerate(clean):
            for folder_id in record["folder_ids"]:
                if folder_id not in known:
                    raise UploadRejected(f"user {index}: folder_ids names {folder_id}, which is not a folder of "
                                         "this upload (send every folder before the users)",
                                         index=index, field="folder_ids")
            if sum(known[f] == "ou" for f in record["folder_ids"]) > MAX_OUS_PER_USER:
                raise UploadRejected(f"user {index}: folder_ids names more than one OU (a user sits in the one OU "
                                     "that holds it; groups may be several)", index=index, field="folder_ids")
        _store(upload, UploadRecordKind.USER, clean)
        _count_chunk(upload, "user_count", len(clean), size)
    return upload


def _stored_kinds(upload: AgentUpload, ids: Sequence[str]) -> dict[str, str]:
    """Folder id -> kind ("ou" or "gr") of those of `ids` this upload holds; OUs stored without a kind are OUs."""
    rows = AgentUploadRecord.objects.filter(upload=upload, kind=UploadRecordKind.FOLDER, external_id__in=ids)
    return {external_id: kind or "ou" for external_id, kind in rows.values_list("external_id", "data__kind")}


def _refuse_duplicates(upload: AgentUpload, kind: str, clean: list[dict]) -> None:
    ids = [r["id"] for r in clean]
    stored = _already_stored(upload, kind, ids)
    for index, external_id in enumerate(ids):
        if external_id in stored:
            raise UploadRejected(f"{kind} {index}: id {external_id} was already sent in an earlier chunk of this "
                                 "upload", index=index, field="id")


def _store(upload: AgentUpload, kind: str, clean: list[dict]) -> None:
    AgentUploadRecord.objects.bulk_create(
        [AgentUploadRecord(upload=upload, kind=kind, external_id=r["id"], data=r) for r in clean], batch_size=1000,
    )


def _missing(upload: AgentUpload, linked: Collection[str]) -> list[str]:
    """The integration's linked users (`linked`, the engine's) this upload does not hold, sorted: the ones the agent
    may name as deleted."""
    expected = set(linked)
    held = set(upload.records.filter(kind=UploadRecordKind.USER).values_list("external_id", flat=True))
    return sorted(expected - held)


def missing_user_ids(upload: AgentUpload, linked: Collection[str], *, after: str = "",
                     limit: int = MAX_RECORDS_PER_CHUNK) -> tuple[list[str], bool]:
    """One page (`limit` ids, at most a chunk) of the linked users this upload does not hold, after `after`;
    and whether more.

    The agent sends every user under its base DN first: those it did not send left the base DN or AD itself.
    It looks them up in AD and names the deleted ones (`add_gone`), so they are disabled as deleted (R8).
    """
    _still_open(upload)
    missing = [guid for guid in _missing(upload, linked) if guid > after]
    limit = min(limit, MAX_RECORDS_PER_CHUNK)
    return missing[:limit], len(missing) > limit


def add_gone(upload: AgentUpload, records: Any, linked: Collection[str]) -> AgentUpload:
    """Store linked users the agent found deleted in AD; each must be one the upload lacks (missing_user_ids)."""
    clean = validate_gone(records, set(_missing(upload, linked)))
    with transaction.atomic():
        upload = open_upload(upload)
        _refuse_duplicates(upload, UploadRecordKind.GONE, clean)
        _store(upload, UploadRecordKind.GONE, clean)
        upload.chunk_count += 1
        upload.last_chunk_at = timezone.now()
        upload.save(update_fields=["chunk_count", "last_chunk_at"])
    return upload
