"""Read Active Directory over LDAP with ldap3: OUs as folders, user objects as users. Never writes (R1).

The connector ties the reader's parts together: `connection` reaches a DC (TLS, the bind, the hand-over to the
next DC), `search` says what is asked for and pages through it, `build` makes records of the entries, `groups`
works out who is in which group through nesting, and `dn` keeps DN and GUID text. Settings come in as a plain
`LdapSettings`; nothing here imports models.

It lives outside the Django project because the standalone on-prem agent (agent/) reads AD with exactly
this code: it imports ldap3 and the standard library only. The portal imports it through
directory.connectors.ldap, which re-exports it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Collection, Iterator, Sequence
from typing import TypeVar

from ldap3 import SUBTREE, SYNC, Connection, Server

from . import groups
from .batches import chunks
from .build import Tree, ou_tree, user_record
from .connection import ClientStrategy, Connections, LdapSettings, ReadStats
from .dn import domain_of, domain_root, guid_filter, guids_in
from .records import FolderRecord, Snapshot, UserRecord, canonical_guid, full_snapshot
from .search import (
    GUIDS_PER_LOOKUP,
    OU_ATTRIBUTES,
    OU_FILTER,
    USER_ATTRIBUTES,
    USER_FILTER,
    Controls,
    Entry,
    paged,
    show_deleted,
)

T = TypeVar("T")


class LdapConnector:
    """Reads OUs and users from AD (or the demo's in-memory directory) with paged searches only."""

    finds_deleted_users = True  # read_snapshot takes known_user_ids (base.FindsDeletedUsers)

    def __init__(self, settings: LdapSettings, *, servers: Sequence[Server] | None = None,
                 client_strategy: ClientStrategy = SYNC, tracks_changes: bool = True) -> None:
        self._connections = Connections(settings, servers, client_strategy)
        self.settings = settings
        self.directory_id = domain_of(settings.base_dn)
        # A DC keeps update sequence numbers (uSNChanged, highestCommittedUSN), so a run can read only what
        # changed; the demo's in-memory directory keeps none, so it is always read in full.
        self.tracks_changes = tracks_changes

    @property
    def last_read(self) -> ReadStats:
        """Which server answered the last read, and how many search requests (pages) it took."""
        return self._connections.last_read

    # ---- the Connector interface -------------------------------------------------------------
    def test(self) -> str:
        def count(conn: Connection) -> tuple[int, int]:
            folders = sum(1 for _ in self._search(conn, OU_FILTER, OU_ATTRIBUTES))
            users = sum(1 for _ in self._search(conn, USER_FILTER, ("objectGUID",)))
            return folders, users

        folders, users = self._with_connection(count)
        return (f"Connected to {self.last_read.server} and bound as {self.settings.bind_dn}: "
                f"{folders} OUs and {users} users under {self.settings.base_dn} "
                f"(read in {self.last_read.search_requests} paged searches).")

    def read_folders(self) -> list[FolderRecord]:
        """Every OU, then every security group (G1)."""
        return self._with_connection(lambda conn: self._read_tree(conn).folders + self._read_groups(conn).folders)

    def read_users(self, folder_ids: Collection[str]) -> list[UserRecord]:
        wanted = frozenset(canonical_guid(f) for f in folder_ids)

        def read(conn: Connection) -> list[UserRecord]:
            return self._read_users(conn, self._read_tree(conn), wanted)

        return self._with_connection(read)

    def read_user(self, user_id: str) -> UserRecord | None:
        """One user by objectGUID (R28), in its OU and every security group it is in, or None when the directory
        has no such user.

        The id must be GUID text: anything else (a filter fragment, say) is refused with ValueError.
        """
        try:
            guid = canonical_guid(user_id)
        except (ValueError, AttributeError, TypeError) as exc:
            raise ValueError(f"{user_id!r} is not a GUID: a user is read by its objectGUID") from exc

        def read(conn: Connection) -> UserRecord | None:
            entries = list(self._search(conn, f"(&{USER_FILTER}{guid_filter(guid)})", USER_ATTRIBUTES))
            if not entries:
                return None
            # G2: the groups the user is in through nesting, so a user in scope by a group stays in scope.
            joined = groups.memberships_for(self._groups_holding(conn, entries[0].dn), frozenset())
            return user_record(entries[0], self._read_tree(conn).ids_by_dn, joined)

        return self._with_connection(read)

    def deleted_users(self, user_ids: Collection[str]) -> frozenset[str]:
        """Which of these objectGUIDs AD has deleted: a tombstone, or nowhere in the domain (R8).

        The on-prem agent asks this of the linked users its upload did not hold: a user found alive elsewhere in
        the domain was moved (out of scope), not deleted. Text that is no GUID is never searched for.
        """
        guids = guids_in(user_ids)
        if not guids:
            return frozenset()
        return self._with_connection(lambda conn: self._deleted(conn, guids))

    def read_snapshot(self, folder_ids: Collection[str], *, incremental: bool = False,
                      known_user_ids: Collection[str] = ()) -> Snapshot:
        """A complete read of the folder tree and of the users in folder_ids (empty: every folder, so every
        user, each with every security group it is in through nesting, and its chains: G2, G6).

        AD is always read in full here, so `incremental` is accepted and a full snapshot returned.
        `known_user_ids` are the objectGUIDs the caller expects (its linked users): those this read did not
        see anywhere under the base DN are looked up, and the deleted ones come back in `removed_user_ids`,
        so a user who left the company is not taken for one moved to an unmapped OU (R8, R9).
        """
        wanted = frozenset(canonical_guid(f) for f in folder_ids)
        known = guids_in(known_user_ids)
        return self._with_connection(lambda conn: self.read_everything(conn, wanted, known))

    def read_everything(self, conn: Connection, wanted: frozenset[str], known: frozenset[str]) -> Snapshot:
        """read_snapshot's full read over an open connection (adread.incremental falls back to it on its own)."""
        tree, graph = self._read_tree(conn), self._read_groups(conn)
        seen: set[str] = set()
        # G2: with a group wanted, or everything (the agent's read), each user's record is built in its groups
        users = self._read_users(conn, tree, wanted, seen, groups.memberships_for(graph, wanted))
        folders = tree.folders + graph.folders
        deleted = self._deleted(conn, known - seen)
        snapshot = full_snapshot(self.directory_id, folders, users, wanted or frozenset(f.id for f in folders))
        return dataclasses.replace(snapshot, removed_user_ids=deleted) if deleted else snapshot

    # ---- the reader's steps, shared with adread.incremental (the connector's other half) ------------
    def _with_connection(self, work: Callable[[Connection], T]) -> T:
        return self._connections.run(work)

    def _search(self, conn: Connection, search_filter: str, attributes: Sequence[str],
                base: str | None = None, scope: str = SUBTREE, controls: Controls | None = None) -> Iterator[Entry]:
        """Every entry matching the filter under `base` (the base DN if None), page by page."""
        return paged(conn, base or self.settings.base_dn, search_filter, attributes, self.settings.page_size,
                     scope, controls)

    def _show_deleted(self) -> Controls | None:
        return show_deleted(self._connections.in_memory)

    def _read_tree(self, conn: Connection) -> Tree:
        return ou_tree(self._search(conn, OU_FILTER, OU_ATTRIBUTES))

    def _read_groups(self, conn: Connection) -> groups.GroupGraph:
        return groups.group_graph(self._search(conn, groups.GROUP_FILTER, groups.GROUP_ATTRIBUTES))

    def _read_users(self, conn: Connection, tree: Tree, wanted: frozenset[str], seen: set[str] | None = None,
                    joined: groups.Memberships | None = None) -> list[UserRecord]:
        """The users of the wanted folders (OUs, and groups `joined` puts users in); `seen` collects every user
        under the base DN, wanted or not."""
        users = []
        for entry in self._search(conn, USER_FILTER, USER_ATTRIBUTES):
            record = user_record(entry, tree.ids_by_dn, joined)
            if record is None:
                continue
            if seen is not None:
                seen.add(record.id)
            if not wanted or record.folder_ids & wanted:
                users.append(record)
        return users

    def _deleted(self, conn: Connection, missing: Collection[str]) -> frozenset[str]:
        """Which of these objectGUIDs, not under the base DN, are deleted: a tombstone, or nowhere in the domain.

        Searched from the domain's root, not the base DN: a user moved to an OU outside the base DN still
        exists (out of scope), and a deleted one sits in CN=Deleted Objects, which only the show-deleted
        control reveals.
        """
        live: set[str] = set()
        ordered = sorted(missing)
        for batch in chunks(ordered, GUIDS_PER_LOOKUP):
            search_filter = "(|" + "".join(guid_filter(guid) for guid in batch) + ")"
            for entry in self._search(conn, search_filter, ("objectGUID", "isDeleted"),
                                      base=domain_root(self.settings.base_dn), controls=self._show_deleted()):
                guid = entry.raw("objectGUID")
                if guid is not None and entry.text("isDeleted").upper() != "TRUE":
                    live.add(canonical_guid(guid))
        return frozenset(missing) - live

    def _groups_holding(self, conn: Connection, dn: str) -> groups.GroupGraph:
        """The groups `dn` is in through nesting: one search with the in-chain rule. ldap3's in-memory server (the
        demo directory) has no extensible match, so it reads every group, which the walk narrows alike."""
        if self._connections.in_memory:
            return self._read_groups(conn)
        return groups.group_graph(self._search(conn, groups.holding_filter(dn), groups.GROUP_ATTRIBUTES))


__all__ = ["LdapConnector"]
