"""Records built from LDAP entries: the OU tree (each OU a folder, with its path and the OU above it) and a user's
record, placed in the OU that directly holds it and in the groups it is in through nesting (G2)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ldap3.utils.dn import parse_dn

from . import groups
from .dn import dn_key, parent_dn, parent_key, unescape
from .flags import account_enabled
from .records import FolderRecord, UserRecord, canonical_guid
from .search import Entry


@dataclass(frozen=True)
class Tree:
    """The OUs of one read, and each OU's objectGUID by its DN (to place users in their parent OU)."""

    folders: list[FolderRecord]
    ids_by_dn: dict[str, str]


def ou_tree(ous: Iterable[Entry]) -> Tree:
    """The OU entries of one search as folders, sorted by path."""
    entries = list(ous)
    ids_by_dn: dict[str, str] = {}
    for entry in entries:
        guid = entry.raw("objectGUID")
        if guid is not None:
            ids_by_dn[dn_key(entry.dn)] = canonical_guid(guid)
    folders = []
    for entry in entries:
        key = dn_key(entry.dn)
        if key not in ids_by_dn:
            continue
        components = parse_dn(entry.dn)
        # The path runs from the top of the domain (DC= parts left out): Contoso/Sales/EMEA.
        in_domain = [value for attr, value, _ in components if attr.lower() != "dc"]
        path = "/".join(unescape(value) for value in reversed(in_domain))
        folders.append(FolderRecord(
            id=ids_by_dn[key], name=unescape(components[0][1]), kind="ou",
            parent_id=ids_by_dn.get(dn_key(parent_dn(entry.dn))), path=path,
        ))
    folders.sort(key=lambda f: f.path.lower())
    return Tree(folders=folders, ids_by_dn=ids_by_dn)


def user_record(entry: Entry, ou_ids: dict[str, str], joined: groups.Memberships | None = None) -> UserRecord | None:
    """The user of one entry, or None for an entry without an objectGUID. `joined` (the memberships of a group
    read) adds the groups it is in; without it the user is in its OU alone."""
    guid = entry.raw("objectGUID")
    if guid is None:
        return None
    uac_text = entry.text("userAccountControl")
    uac = int(uac_text) if uac_text.lstrip("-").isdigit() else 0
    folder = ou_ids.get(parent_key(entry.dn))
    folder_ids, chains = (joined.of(entry.dn, folder) if joined is not None
                          else (frozenset({folder}) if folder else frozenset(), ()))
    return UserRecord(
        id=canonical_guid(guid),
        first_name=entry.text("givenName"),
        last_name=entry.text("sn"),
        email=entry.text("mail").strip(),
        enabled=account_enabled(uac),
        folder_ids=folder_ids,
        display_name=entry.text("displayName"),
        upn=entry.text("userPrincipalName"),
        dn=entry.dn,
        chains=chains,
    )


__all__ = ["Tree", "ou_tree", "user_record"]
