"""What an agent may push, checked before anything is stored: the limits of one record and one chunk, and the
errors the agent API answers with (the record's index and the field named: UploadRejected, 400; an upload no longer
open, 409; past a cap, 413)."""

from __future__ import annotations

from typing import Any

from .connectors.base import canonical_guid

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
    clean: list[dict[str, Any]] = []
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
    clean: list[dict[str, Any]] = []
    for index, record in enumerate(_records(records, "user")):
        enabled = record.get("enabled")
        if not isinstance(enabled, bool):
            raise UploadRejected(f"user {index}: enabled must be true or false", index=index, field="enabled")
        folder_ids = record.get("folder_ids", [])
        if not isinstance(folder_ids, list) or len(folder_ids) > MAX_FOLDERS_PER_USER:
            raise UploadRejected(f"user {index}: folder_ids must be a list of at most {MAX_FOLDERS_PER_USER} "
                                 f"folder ids (the OU that holds the user, and at most {MAX_GROUPS_PER_USER} "
                                 "security groups it is in)", index=index, field="folder_ids")
        item: dict[str, Any] = {
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
