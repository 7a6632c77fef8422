"""What an on-prem agent pushes: open an upload, add validated chunks, commit it; and the connector over it.

An upload is invisible until its commit arrives with counts that match what was stored: the engine
reads only the latest committed upload of an integration (through `UploadConnector`), so a push
that dies half-way changes nothing (R21). Every record is checked before it is stored, and a bad
one is refused with the record's index and field (`UploadRejected`). An upload is capped in records and
bytes (`UploadTooLarge`), and one left open with no chunk for a while is expired (`expire_uploads`, scheduled),
so a token can never fill the database (settings AGENT_UPLOAD_*).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from . import agent_requests, partial_uploads
from .connectors.base import DirectoryUnavailable, FolderRecord, Snapshot, UserRecord, canonical_guid, full_snapshot
from .folders import FolderChanges, record_folders
from .models import AgentRequest, AgentUpload, AgentUploadRecord, Integration, UploadRecordKind, UploadStatus
from .upload_digest import records_digest

MAX_RECORDS_PER_CHUNK = 2000
MAX_OUS_PER_USER = 1  # AD: the one OU that directly holds the user
# ... and the security groups it is in, directly or through nesting (G2). An AD user's access token holds at most
# 1,015 groups, so no real user is in more; the cap only stops a token from storing more than a directory can hold.
MAX_GROUPS_PER_USER = 1015
MAX_FOLDERS_PER_USER = MAX_OUS_PER_USER + MAX_GROUPS_PER_USER
# A chain (G5) is the group's id, then the names of the groups from it down to the one holding the user. AD sets
# no depth limit on nesting; 50 names is far beyond any real one and keeps one record's size bounded.
MAX_CHAIN_LENGTH = 50
# What an agent may push as a folder: an OU, or a security group (G1). Groups sit in no tree (no parent).
FOLDER_KINDS = {"ou": "an OU", "gr": "a security group"}

# Longest value accepted per field; longer is refused, never cut (a cut email would be another address).
FOLDER_FIELDS = {"name": 500, "path": 2000}
USER_FIELDS = {"first_name": 150, "last_name": 150, "email": 254, "display_name": 256, "upn": 1024, "dn": 2000}


class UploadRejected(Exception):
    """A request the portal refuses; the message names the record and the field when there is one."""

    def __init__(self, message: str, *, index: int | None = None, field: str | None = None) -> None:
        super().__init__(message)
        self.index = index
        self.field = field


class UploadClosed(UploadRejected):
    """The upload was already committed, aborted or expired."""


class MarkRefused(UploadClosed):
    """A partial upload from a mark the portal does not hand out now: the agent reads everything instead (and the
    engine forgets the mark, so the next poll says so)."""


class UploadTooLarge(UploadRejected):
    """The chunk would take the upload past one of its caps; `limit` names the setting, `maximum` its value."""

    def __init__(self, message: str, *, limit: str, maximum: int) -> None:
        super().__init__(message)
        self.limit = limit
        self.maximum = maximum


@dataclass(frozen=True)
class CommitResult:
    upload: AgentUpload
    folders: FolderChanges
    gone: int = 0  # linked users the agent named deleted in AD


# ---------------------------------------------------------------- validating records


def _guid(value: Any, index: int, field: str, kind: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise UploadRejected(f"{kind} {index}: {field} is missing or not text (a GUID is expected)",
                             index=index, field=field)
    try:
        return canonical_guid(value)
    except ValueError:
        raise UploadRejected(f"{kind} {index}: {field} {value[:60]!r} is not a GUID", index=index,
                             field=field) from None


def _text(record: dict, index: int, field: str, limit: int, kind: str) -> str:
    value = record.get(field, "")
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise UploadRejected(f"{kind} {index}: {field} must be text, not {type(value).__name__}",
                             index=index, field=field)
    if len(value) > limit:
        raise UploadRejected(f"{kind} {index}: {field} is {len(value)} characters long, at most {limit} are accepted",
                             index=index, field=field)
    # NUL cannot be stored (PostgreSQL text and JSON refuse it): U+FFFD marks where it was, so an email
    # holding one stays invalid (a creation issue) instead of crashing the upload.
    return value.replace("\x00", "\ufffd") if "\x00" in value else value


def _records(records: Any, kind: str) -> list[dict]:
    if not isinstance(records, list):
        raise UploadRejected(f"'records' must be a list of {kind} objects", field="records")
    if not records:
        raise UploadRejected("'records' is empty: send at least one record per chunk", field="records")
    if len(records) > MAX_RECORDS_PER_CHUNK:
        raise UploadRejected(f"{len(records)} records in one chunk: at most {MAX_RECORDS_PER_CHUNK} are accepted",
                             field="records")
    for index, record in enumerate(records):
        if not isinstance(record, dict):
            raise UploadRejected(f"{kind} {index}: must be an object, not {type(record).__name__}", index=index)
    return records


def _unique(ids: list[str], kind: str) -> None:
    seen: dict[str, int] = {}
    for index, external_id in enumerate(ids):
        if external_id in seen:
            raise UploadRejected(f"{kind} {index}: id {external_id} appears twice in this chunk "
                                 f"(also record {seen[external_id]})", index=index, field="id")
        seen[external_id] = index


def validate_folders(records: Any) -> list[dict]:
    """Folder dicts with canonical ids, or UploadRejected naming the first bad record and field."""
    clean = []
    for index, record in enumerate(_records(records, "folder")):
        parent = record.get("parent_id")
        kind = record.get("kind") or "ou"  # agents from before groups were folders send OUs only
        if kind not in FOLDER_KINDS:
            raise UploadRejected(f"folder {index}: kind {str(kind)[:20]!r} is not one of "
                                 f"{', '.join(sorted(FOLDER_KINDS))} (an OU or a security group)",
                                 index=index, field="kind")
        clean.append({
            "id": _guid(record.get("id"), index, "id", "folder"),
            "kind": kind,
            "name": _text(record, index, "name", FOLDER_FIELDS["name"], "folder"),
            "path": _text(record, index, "path", FOLDER_FIELDS["path"], "folder"),
            "parent_id": None if parent in (None, "") else _guid(parent, index, "parent_id", "folder"),
        })
        if not clean[-1]["name"]:
            raise UploadRejected(f"folder {index}: name is missing", index=index, field="name")
        if kind != "ou" and clean[-1]["parent_id"] is not None:
            raise UploadRejected(f"folder {index}: a group has no parent_id (only OUs sit in the tree)",
                                 index=index, field="parent_id")
    _unique([r["id"] for r in clean], "folder")
    return clean


def validate_users(records: Any) -> list[dict]:
    """User dicts with canonical ids, or UploadRejected naming the first bad record and field."""
    clean = []
    for index, record in enumerate(_records(records, "user")):
        enabled = record.get("enabled")
        if not isinstance(enabled, bool):
            raise UploadRejected(f"user {index}: enabled must be true or false", index=index, field="enabled")
        folder_ids = record.get("folder_ids", [])
        if not isinstance(folder_ids, list) or len(folder_ids) > MAX_FOLDERS_PER_USER:
            raise UploadRejected(f"user {index}: folder_ids must be a list of at most {MAX_FOLDERS_PER_USER} "
                                 f"folder ids (the OU that holds the user, and at most {MAX_GROUPS_PER_USER} "
                                 "security groups it is in)", index=index, field="folder_ids")
        item = {
            "id": _guid(record.get("id"), index, "id", "user"),
            "enabled": enabled,
            "folder_ids": sorted({_guid(f, index, "folder_ids", "user") for f in folder_ids}),
        }
        for field, limit in USER_FIELDS.items():
            item[field] = _text(record, index, field, limit, "user")
        item["chains"] = _chains(record.get("chains"), index, frozenset(item["folder_ids"]))
        clean.append(item)
    _unique([r["id"] for r in clean], "user")
    return clean


def _chains(value: Any, index: int, folder_ids: frozenset[str]) -> list[list[str]]:
    """Through which groups the user is in each of its groups (G5): [group id, outer name, ..., inner name].

    Only read to tell people; still checked like every field: each starts with one of the user's folders,
    at most one per group, names are text of a folder name's length.
    """
    if value in (None, []):
        return []
    if not isinstance(value, list) or len(value) > MAX_GROUPS_PER_USER:
        raise UploadRejected(f"user {index}: chains must be a list of at most {MAX_GROUPS_PER_USER} chains, one per "
                             "group the user is in", index=index, field="chains")
    clean: dict[str, list[str]] = {}
    for chain in value:
        if not isinstance(chain, list) or not 2 <= len(chain) <= MAX_CHAIN_LENGTH + 1:
            raise UploadRejected(f"user {index}: each chain must be a list of a group id and 1 to {MAX_CHAIN_LENGTH} "
                                 "group names", index=index, field="chains")
        group_id = _guid(chain[0], index, "chains", "user")
        if group_id not in folder_ids or group_id in clean:
            raise UploadRejected(f"user {index}: the chain of group {group_id} names a group that is not in the "
                                 "user's folder_ids, or names it twice", index=index, field="chains")
        names = []
        for name in chain[1:]:
            if not isinstance(name, str) or not name or len(name) > FOLDER_FIELDS["name"]:
                raise UploadRejected(f"user {index}: a chain's names must be text of 1 to {FOLDER_FIELDS['name']} "
                                     "characters", index=index, field="chains")
            names.append(name.replace("\x00", "\ufffd"))
        clean[group_id] = [group_id, *names]
    return [clean[g] for g in sorted(clean)]


# ---------------------------------------------------------------- the upload service


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


def _open_upload(upload: AgentUpload) -> AgentUpload:
    locked = AgentUpload.objects.select_for_update().get(pk=upload.pk)
    if locked.status != UploadStatus.OPEN:
        raise UploadClosed(f"upload {locked.pk} is {locked.get_status_display().lower()}: start a new upload")
    return locked


def _already_stored(upload: AgentUpload, kind: str, ids: Sequence[str]) -> set[str]:
    return set(AgentUploadRecord.objects.filter(upload=upload, kind=kind, external_id__in=ids)
               .values_list("external_id", flat=True))


def _stored_size(clean: list[dict]) -> int:
    """Bytes the records take as JSON: what the byte cap counts, whatever transport brought them."""
    return len(json.dumps(clean, ensure_ascii=False, separators=(",", ":")).encode())


def _refuse_past_caps(upload: AgentUpload, records: int, size: int) -> None:
    """UploadTooLarge if this chunk would take the upload past AGENT_UPLOAD_MAX_RECORDS or _MAX_BYTES."""
    most_records, most_bytes = settings.AGENT_UPLOAD_MAX_RECORDS, settings.AGENT_UPLOAD_MAX_BYTES
    total = upload.folder_count + upload.user_count + records
    if total > most_records:
        raise UploadTooLarge(
            f"This chunk would bring upload {upload.pk} to {total:,} records (folders and users): at most "
            f"{most_records:,} are accepted per upload (AGENT_UPLOAD_MAX_RECORDS on the portal)",
            limit="AGENT_UPLOAD_MAX_RECORDS", maximum=most_records)
    if upload.byte_count + size > most_bytes:
        raise UploadTooLarge(
            f"This chunk would bring upload {upload.pk} to {upload.byte_count + size:,} bytes of records: at most "
            f"{most_bytes:,} are accepted per upload (AGENT_UPLOAD_MAX_BYTES on the portal)",
            limit="AGENT_UPLOAD_MAX_BYTES", maximum=most_bytes)


def _count_chunk(upload: AgentUpload, counter: str, records: int, size: int) -> None:
    setattr(upload, counter, getattr(upload, counter) + records)
    upload.byte_count += size
    upload.chunk_count += 1
    upload.last_chunk_at = timezone.now()
    upload.save(update_fields=[counter, "byte_count", "chunk_count", "last_chunk_at"])


def add_folders(upload: AgentUpload, records: Any) -> AgentUpload:
    clean = validate_folders(records)
    size = _stored_size(clean)
    with transaction.atomic():
        upload = _open_upload(upload)
        _refuse_past_caps(upload, len(clean), size)
        _refuse_duplicates(upload, UploadRecordKind.FOLDER, clean)
        _store(upload, UploadRecordKind.FOLDER, clean)
        _count_chunk(upload, "folder_count", len(clean), size)
    return upload


def add_users(upload: AgentUpload, records: Any) -> AgentUpload:
    """Store a chunk of users. Their folders must already be in this upload: folders are sent first."""
    clean = validate_users(records)
    size = _stored_size(clean)
    with transaction.atomic():
        upload = _open_upload(upload)
        _refuse_past_caps(upload, len(clean), size)
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


def _still_open(upload: AgentUpload) -> None:
    upload.refresh_from_db(fields=["status"])
    if upload.status != UploadStatus.OPEN:
        raise UploadClosed(f"upload {upload.pk} is {upload.get_status_display().lower()}: start a new upload")


def validate_gone(records: Any, missing: set[str]) -> list[dict]:
    """Gone user ids (GUID text) the portal named missing, or UploadRejected naming the first bad one."""
    if not isinstance(records, list) or not records or len(records) > MAX_RECORDS_PER_CHUNK:
        raise UploadRejected(f"'records' must be a list of 1 to {MAX_RECORDS_PER_CHUNK} user ids", field="records")
    clean = []
    for index, value in enumerate(records):
        guid = _guid(value, index, "id", "gone user")
        if guid not in missing:
            raise UploadRejected(f"gone user {index}: {guid} is not a linked user this upload lacks (ask "
                                 "uploads/<id>/missing/ which ones are)", index=index, field="id")
        clean.append({"id": guid})
    _unique([r["id"] for r in clean], "gone user")
    return clean


def add_gone(upload: AgentUpload, records: Any, linked: Collection[str]) -> AgentUpload:
    """Store linked users the agent found deleted in AD; each must be one the upload lacks (missing_user_ids)."""
    clean = validate_gone(records, set(_missing(upload, linked)))
    with transaction.atomic():
        upload = _open_upload(upload)
        _refuse_duplicates(upload, UploadRecordKind.GONE, clean)
        _store(upload, UploadRecordKind.GONE, clean)
        upload.chunk_count += 1
        upload.last_chunk_at = timezone.now()
        upload.save(update_fields=["chunk_count", "last_chunk_at"])
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
        upload = _open_upload(upload)
        if (upload.folder_count, upload.user_count) != (folder_count, user_count):
            raise UploadRejected(
                f"counts do not match: the agent sent {folder_count} folders and {user_count} users, the portal "
                f"received {upload.folder_count} folders and {upload.user_count} users; the upload stays "
                "uncommitted", field="folder_count" if upload.folder_count != folder_count else "user_count",
            )
        received = len(_gone_ids(upload))
        if gone_count is not None and received != gone_count:
            raise UploadRejected(f"counts do not match: the agent named {gone_count} deleted users, the portal "
                                 f"received {received}; the upload stays uncommitted", field="gone_count")
        if upload.request_id is not None:
            folders = list(_folder_records(upload))
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
            older = older.exclude(pk=getattr(partial_uploads.picture(integration), "pk", None))
            partial_uploads.write_into_picture(upload)
        AgentUploadRecord.objects.filter(upload__in=older).delete()
        older.delete()
        # A partial upload holds no folders: the tree stays as the last full read left it (an OU changed: full).
        changes = agent_requests.NO_FOLDER_CHANGES if upload.partial else record_folders(
            integration, list(_folder_records(upload)))
    integration.touch_agent(upload.agent_version)
    return CommitResult(upload=upload, folders=changes, gone=received)


# ---------------------------------------------------------------- expiry (a scheduled task)

# An aborted or expired upload's row (its records are already gone) is kept this long, so an agent that comes
# back late is told "expired" (409) rather than "not found"; then it goes too.
CLOSED_UPLOADS_KEPT = timedelta(days=1)


def expire_uploads(now: datetime | None = None) -> int:
    """Expire open uploads with no chunk for AGENT_UPLOAD_EXPIRE_MINUTES and delete their records.

    An upload never committed is never read (R21), so without this a push that died, or a token used to
    store without committing, would keep its records forever. Returns how many uploads expired.
    """
    now = now or timezone.now()
    cutoff = now - timedelta(minutes=settings.AGENT_UPLOAD_EXPIRE_MINUTES)
    with transaction.atomic():
        # Locked, and the idle test applied to the locked rows: a chunk arriving meanwhile keeps its upload.
        idle = list(AgentUpload.objects.select_for_update().filter(status=UploadStatus.OPEN, last_chunk_at__lt=cutoff)
                    .values_list("pk", flat=True))
        AgentUploadRecord.objects.filter(upload_id__in=idle).delete()
        AgentUpload.objects.filter(pk__in=idle).update(status=UploadStatus.EXPIRED)
    AgentUpload.objects.filter(status__in=[UploadStatus.ABORTED, UploadStatus.EXPIRED],
                               last_chunk_at__lt=now - CLOSED_UPLOADS_KEPT).delete()
    # Answers to requests (previews, folder reads) and the requests themselves: long since shown or given up on.
    answered = AgentUpload.objects.filter(status=UploadStatus.ANSWERED, committed_at__lt=now - CLOSED_UPLOADS_KEPT)
    AgentUploadRecord.objects.filter(upload__in=answered).delete()
    answered.delete()
    AgentRequest.objects.filter(requested_at__lt=now - CLOSED_UPLOADS_KEPT).delete()
    return len(idle)


# ---------------------------------------------------------------- reading a committed upload


def _folder_records(upload: AgentUpload) -> Iterator[FolderRecord]:
    rows = upload.records.filter(kind=UploadRecordKind.FOLDER).order_by("pk").values_list("data", flat=True)
    for data in rows.iterator(chunk_size=2000):
        yield FolderRecord(id=data["id"], name=data["name"], kind=data.get("kind", "ou"), parent_id=data["parent_id"],
                           path=data["path"])


def _gone_ids(upload: AgentUpload) -> frozenset[str]:
    return frozenset(upload.records.filter(kind=UploadRecordKind.GONE).values_list("external_id", flat=True))


def _user_record(data: dict, shared: dict | None = None) -> UserRecord:
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

    @staticmethod
    def _users(upload: AgentUpload, folder_ids: Collection[str]) -> list[UserRecord]:
        wanted = frozenset(canonical_guid(f) for f in folder_ids)
        rows = upload.records.filter(kind=UploadRecordKind.USER).order_by("pk").values_list("data", flat=True)
        shared: dict = {}
        users = (_user_record(data, shared) for data in rows.iterator(chunk_size=2000))
        return [u for u in users if not wanted or u.folder_ids & wanted]
