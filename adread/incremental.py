"""Read what changed in Active Directory since the last read, by uSNChanged (no Django: the agent uses it too).

Every AD object carries `uSNChanged`, the update sequence number its domain controller gave its latest change,
and the rootDSE's `highestCommittedUSN` is the DC's latest. A read of the objects whose uSNChanged is above
the number read at the start of the previous read is a read of the changes, and it needs nothing but read
rights. (DirSync, the other way, needs "Replicating Directory Changes", which an MSP's read-only service
account rarely has.) USNs belong to one DC: a mark is good only on the DC that gave it, known by its
`invocationId` (which also changes when that DC's database is restored from a backup), so the mark keeps
the DC's host name and invocation id, and a read that reaches another DC reads everything.

What a read of the changes sees:
- users changed above the mark, searched from the domain's root: a user moved out of the base DN is seen
  under its new DN, in no folder, so out of scope (R9); a rename, a disable, an email changed (R6, R7, R8);
- deleted users: their tombstones (the show-deleted control, `isDeleted=TRUE`) changed above the mark (R8).
What it cannot see, so it reads everything instead:
- an OU renamed, moved or deleted changes its users' DNs without changing the users, and a new OU must
  appear as a folder (R19): any OU under the base DN, or that the caller knows (it may have left the base),
  changed above the mark;
- a group's members are the group's attribute, not the user's (G2, G4): any group, likewise;
- no mark, or a mark of another DC or of another incarnation of it.
The mark returned is the one to keep once the run that used the read has succeeded; a read or a run that
fails keeps the old one, so its changes are read again (R21).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from ldap3 import BASE, Connection

from . import groups
from .build import user_record
from .dn import dn_key, domain_root, guids_in
from .ldap import LdapConnector
from .records import DirectoryUnavailable, Snapshot, UserRecord, canonical_guid
from .search import USER_ATTRIBUTES, USER_FILTER, Entry

# A change read asks for what a full read asks for: the attributes a user's record is built of.
CHANGE_ATTRIBUTES = USER_ATTRIBUTES
_STRUCTURE_FILTER = "(|(objectClass=organizationalUnit)(objectClass=group))"


@dataclass(frozen=True)
class ReadMark:
    """Where the last good read of one DC started: its host, its invocation id and its highestCommittedUSN."""

    host: str
    invocation_id: str
    usn: int

    def as_dict(self) -> dict[str, Any]:
        return {"host": self.host, "invocation_id": self.invocation_id, "usn": self.usn}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> ReadMark | None:
        """The mark kept as JSON, or None when there is none or it is not one (then the read is a full one)."""
        if not isinstance(data, Mapping):
            return None
        host, invocation_id, usn = data.get("host"), data.get("invocation_id"), data.get("usn")
        if not (isinstance(host, str) and host and isinstance(invocation_id, str) and invocation_id):
            return None
        if not isinstance(usn, int) or isinstance(usn, bool) or usn < 0:
            return None
        return cls(host, invocation_id, usn)


@dataclass(frozen=True)
class ChangesRead:
    """A read asked to bring only the changes: its snapshot, the mark to keep, and why it read everything."""

    snapshot: Snapshot
    mark: ReadMark
    full_because: str = ""  # "" when only the changes were read; else the reason, in plain words

    @property
    def changes_only(self) -> bool:
        return not self.full_because


def read_changes(connector: LdapConnector, folder_ids: Collection[str], since: ReadMark | None, *,
                 known_user_ids: Collection[str] | None = None, known_folder_ids: Collection[str] = ()) -> ChangesRead:
    """The users of folder_ids changed since `since` (an incremental snapshot), or a full read when it must.

    `known_user_ids` are the ids the caller has linked: a full read looks up those it did not see (deleted or
    moved); a change read keeps a changed user outside the caller's folders only if it is one of them (None:
    keeps every changed user, and a full read looks up nobody).
    `known_folder_ids` are the OUs and groups the caller knows, so one that left the base DN is noticed.
    """
    wanted = frozenset(canonical_guid(f) for f in folder_ids)
    known_users = None if known_user_ids is None else guids_in(known_user_ids)
    known_folders = guids_in(known_folder_ids)

    def read(conn: Connection) -> ChangesRead:
        mark = dc_mark(conn)
        why = _why_not_from(since, mark)
        if not why and since is not None:
            why = _structure_changed(connector, conn, since.usn, known_folders)
            if not why:
                return ChangesRead(_changes(connector, conn, since.usn, wanted, known_users), mark)
        return ChangesRead(connector.read_everything(conn, wanted, known_users or frozenset()), mark, why)

    return connector._with_connection(read)  # this module is the connector's other half: its private helpers are shared


def dc_mark(conn: Connection) -> ReadMark:
    """The DC's mark now: rootDSE (highestCommittedUSN, dsServiceName, dnsHostName), then its invocationId.

    Read before any change is searched, so a change made while the read runs is read again next time.
    """
    root = _base_entry(conn, "", ("highestCommittedUSN", "dsServiceName", "dnsHostName"))
    usn, service = _text(root, "highestCommittedUSN"), _text(root, "dsServiceName")
    if not usn.isdigit() or not service:
        raise DirectoryUnavailable("The domain controller did not say its highest committed USN and its "
                                   "NTDS settings (rootDSE), so its changes cannot be read.")
    settings = _base_entry(conn, service, ("invocationId",))
    invocation = (settings.get("invocationId") or [b""])[0]
    if len(invocation) != 16:
        raise DirectoryUnavailable(f"The domain controller's invocation id could not be read from {service}.")
    host = _text(root, "dnsHostName").lower() or str(conn.server.host)
    return ReadMark(host=host, invocation_id=canonical_guid(invocation), usn=int(usn))


def _why_not_from(since: ReadMark | None, now: ReadMark) -> str:
    """Why changes cannot be read from this mark on this DC ("" when they can)."""
    if since is None:
        return "no earlier read to start from"
    if since.host != now.host:
        return f"another domain controller answered ({now.host}; the last read was from {since.host})"
    if since.invocation_id != now.invocation_id:
        return f"the domain controller {now.host} was restored or rebuilt since the last read (new invocation id)"
    if since.usn > now.usn:
        return f"the domain controller {now.host} is behind the last read (restored from a backup)"
    return ""


def _structure_changed(connector: LdapConnector, conn: Connection, usn: int, known_folders: frozenset[str]) -> str:
    """Why an OU or group change since `usn` needs a full read ("" when none under the base DN did)."""
    base = dn_key(connector.settings.base_dn)
    search = f"(&{_STRUCTURE_FILTER}(uSNChanged>={usn + 1}))"
    for entry in connector._search(conn, search, ("objectGUID", "objectClass"),
                                   base=domain_root(connector.settings.base_dn), controls=connector._show_deleted()):
        guid = entry.raw("objectGUID")
        key = dn_key(entry.dn)
        inside = key == base or key.endswith("," + base)
        if inside or (guid is not None and canonical_guid(guid) in known_folders):
            classes = {v.decode().lower() for v in entry.attributes.get("objectClass", [])}
            what = "a group" if "group" in classes else "an OU"
            return f"{what} changed since the last read (its members or its users' places may have changed)"
    return ""


def _changes(connector: LdapConnector, conn: Connection, usn: int, wanted: frozenset[str],
             known_users: frozenset[str] | None) -> Snapshot:
    """The users changed above `usn` and the users deleted above it, as an incremental snapshot."""
    root, base = domain_root(connector.settings.base_dn), dn_key(connector.settings.base_dn)
    above = f"(uSNChanged>={usn + 1})"
    entries = [(entry, dn_key(entry.dn).endswith("," + base))
               for entry in connector._search(conn, f"(&{USER_FILTER}{above})", CHANGE_ATTRIBUTES, base=root)]
    # Users changed elsewhere in the domain that the caller does not link are none of this read's business.
    entries = [(entry, inside) for entry, inside in entries if inside or _linked(entry, known_users)]
    users = []
    if entries:
        tree = connector._read_tree(conn)  # places each changed user in its OU
        joined = None
        if not wanted or wanted - set(tree.ids_by_dn.values()):  # a group is wanted, or everything (G2, G6)
            # The groups did not change (else this would be a full read), but who is in them is theirs to say.
            joined = groups.memberships_for(connector._read_groups(conn), wanted)
        for entry, inside in entries:
            record = user_record(entry, tree.ids_by_dn, joined)
            if record is not None and _concerns(record, inside, wanted, known_users):
                users.append(record)
    removed = set()
    for entry in connector._search(conn, f"(&(objectClass=user)(isDeleted=TRUE){above})", ("objectGUID",),
                                   base=root, controls=connector._show_deleted()):
        guid = entry.raw("objectGUID")
        if guid is not None:
            removed.add(canonical_guid(guid))
    return Snapshot(directory_id=connector.directory_id, folders=(), users=tuple(users), complete=True,
                    incremental=True, read_folder_ids=wanted, removed_user_ids=frozenset(removed),
                    folders_complete=False)


def _linked(entry: Entry, known: frozenset[str] | None) -> bool:
    guid = entry.raw("objectGUID")
    return known is None or (guid is not None and canonical_guid(guid) in known)


def _concerns(record: UserRecord, under_base: bool, wanted: frozenset[str], known: frozenset[str] | None) -> bool:
    """A changed user the caller must hear of: one it links (all, when it did not say), or one in its folders."""
    if known is None or record.id in known:
        return True
    return under_base and (not wanted or bool(record.folder_ids & wanted))


def _base_entry(conn: Connection, dn: str, attributes: tuple[str, ...]) -> dict[str, list[bytes]]:
    conn.search(dn, "(objectClass=*)", BASE, attributes=list(attributes))
    for item in conn.response or []:
        if item.get("type") == "searchResEntry":
            return {k: list(v) for k, v in (item.get("raw_attributes") or {}).items()}
    return {}


def _text(entry: dict[str, list[bytes]], name: str) -> str:
    values = entry.get(name) or []
    return values[0].decode("utf-8", errors="replace").strip() if values else ""


__all__ = ["CHANGE_ATTRIBUTES", "ChangesRead", "ReadMark", "dc_mark", "read_changes"]
