"""The connector seam: the interface every source meets, over the plain records of `adread.records`.

Connectors never import models (ARCHITECTURE, rule 1): they take plain settings and return these
frozen records. A read that does not complete raises; it never returns a partial result as whole.
The records and errors live in `adread` (no Django in it) because the standalone on-prem agent reads AD
with the same code; they are re-exported here, so the portal keeps importing them from this module.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Protocol

from adread.records import (
    DirectoryAuthError,
    DirectoryError,
    DirectoryUnavailable,
    FolderRecord,
    Snapshot,
    UserRecord,
    canonical_guid,
    full_snapshot,
)

__all__ = ["Connector", "DirectoryAuthError", "DirectoryError", "DirectoryUnavailable", "FindsDeletedUsers",
           "FolderRecord", "Snapshot", "UserRecord", "canonical_guid", "full_snapshot"]


class Connector(Protocol):
    @property
    def directory_id(self) -> str:
        """The AD domain or Entra tenant the read is of (a plain attribute or a property, both read-only here)."""

    def test(self) -> str:
        """A short report a person can read: server, bind, counts."""

    def read_folders(self) -> list[FolderRecord]: ...

    def read_users(self, folder_ids: Collection[str]) -> list[UserRecord]: ...

    def read_user(self, user_id: str) -> UserRecord | None: ...

    def read_snapshot(self, folder_ids: Collection[str], *, incremental: bool = False) -> Snapshot: ...


class FindsDeletedUsers(Connector, Protocol):
    """A connector whose full read can tell a deleted user from one moved out of scope (AD: R8 against R9).

    It marks itself with `finds_deleted_users = True` and takes `known_user_ids` (the ids the caller has
    linked): those its read did not see and the directory has deleted come back in `removed_user_ids`.
    The caller passes them only to such a connector, so the others never pay for loading them.
    """

    finds_deleted_users: bool

    def read_snapshot(self, folder_ids: Collection[str], *, incremental: bool = False,
                      known_user_ids: Collection[str] = ()) -> Snapshot: ...
