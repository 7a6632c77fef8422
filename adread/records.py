"""The plain records a directory read produces, and the errors a read raises.

Shared by the portal (directory.connectors re-exports them) and the standalone on-prem agent, so this
module imports nothing but the standard library. A read that does not complete raises; it never returns a
partial result as whole.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any


class DirectoryError(Exception):
    """A directory could not be read. The message says which server and what it said."""

    permanent = False


class DirectoryUnavailable(DirectoryError):
    """Network, timeout, throttling beyond retries, a page missing: try again later."""


class DirectoryAuthError(DirectoryError):
    """Credentials or permissions refused: a person must fix the integration's settings."""

    permanent = True


def canonical_guid(value: bytes | str) -> str:
    """AD objectGUID (16 little-endian bytes) or GUID text -> lowercase canonical text (R3, R4)."""
    if isinstance(value, bytes | bytearray):
        return str(uuid.UUID(bytes_le=bytes(value)))
    if _CANONICAL.match(value):
        return value  # already canonical, as Graph sends ids: skip the parse (20,000 per read)
    return str(uuid.UUID(value.strip().strip("{}")))


_CANONICAL = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z")


@dataclass(frozen=True, slots=True)
class FolderRecord:
    id: str  # OU objectGUID, AU id or group objectGUID/id, canonical lowercase GUID text
    name: str
    kind: str  # "ou", "au", "gr" (security group) or "mg" (Microsoft 365 group)
    parent_id: str | None = None  # OUs only: the OU directly above, if it is under the base
    path: str = ""  # a display path ("Corp/Sales/EMEA") or the DN


@dataclass(frozen=True, slots=True)
class UserRecord:
    id: str  # objectGUID or Entra object id, canonical lowercase GUID text
    first_name: str
    last_name: str
    email: str  # "" when the directory has none
    enabled: bool
    folder_ids: frozenset[str]  # AD: the one OU that directly holds the user; Entra: every AU it is in
    display_name: str = ""
    upn: str = ""
    dn: str = ""  # AD only, for display; never an identity
    # Through which groups the user is in each group folder of `folder_ids`, for people to read (G5): one
    # chain per group, (group id, outer group's name, ..., name of the group that holds the user directly).
    # A direct member's chain is (group id, group name). Never used to decide scope: `folder_ids` does that.
    chains: tuple[tuple[str, ...], ...] = ()


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What one read saw, and how much of the directory it speaks for: the planner's contract with every read.

    Full read (`incremental=False`): `users` are every user (enabled or not) in `read_folder_ids`. A linked user
    missing from it is out of scope (R9), or deleted (R8) when the connector could tell and lists it in
    `removed_user_ids`. Only a full read may sweep, and one that lists nobody while mappings exist is held (R21).

    Partial read (`incremental=True`: a delta, DirSync or uSNChanged round, a SCIM push, one user's resync):
    `users` are only the users it has news of, each with all its current folders; `removed_user_ids` are the
    ids the directory reports deleted. The planner plans those identities alone: a listed user in no mapped
    folder is out of scope as in a full read, a removed one is disabled as deleted, and every identity the read
    does not mention is left exactly as it is (no sweep, its issues stay open). Planning a partial read gives
    the mentioned identities the same actions a full read with the same news would. R22 counts its disables
    against the integration's provisioned users (the links in `Current`), never against the read's size, so
    the `Current` it is planned against holds every link when a threshold applies. `folders_complete=False`
    says the folder list was not re-read: every mapped folder then counts as present.

    `complete=False` says the read did not cover what it meant to (R21): the planner changes nobody's enabled
    state, whatever else it says.
    """

    directory_id: str
    folders: tuple[FolderRecord, ...]
    users: tuple[UserRecord, ...]
    complete: bool
    incremental: bool = False
    read_folder_ids: frozenset[str] = frozenset()
    removed_user_ids: frozenset[str] = frozenset()
    folders_complete: bool = True  # False when the folder list was not re-read (incremental)
    notes: tuple[str, ...] = field(default=())
    # What the connector needs handed back at its next read (Entra: the Graph delta links), stored by the run
    # only once it succeeded; None when the read leaves the stored state as it is.
    delta_state: Mapping[str, Any] | None = None


def full_snapshot(directory_id: str, folders: Iterable[FolderRecord], users: Iterable[UserRecord],
                  read_folder_ids: Collection[str]) -> Snapshot:
    return Snapshot(
        directory_id=directory_id,
        folders=tuple(folders),
        users=tuple(users),
        complete=True,
        read_folder_ids=frozenset(read_folder_ids),
    )
