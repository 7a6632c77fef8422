"""Read Entra ID groups as folders, and their members through nested groups (G1, G2, G5, G6).

Kept apart from the AU reading in `entra.py`, which calls in here: the Graph contracts are those of
docs/notes/entra-groups.md. Folders: security groups (mail-enabled ones included) and Microsoft 365 groups; a
Microsoft 365 group need not be security-enabled, so the list asks for either. Members: `transitiveMembers`
cast to users, paged, so contacts, devices and service principals never come back and nesting is Graph's to
resolve, cycles included. Which chain a user is in through (for people to read) comes from the direct members
of the nested groups, read only for groups that have nested groups at all: a flat group costs two requests.
A mapped group Graph no longer answers for (404: deleted; 403: permission lost) fails the whole read (G4).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Iterable
from typing import TYPE_CHECKING, Any

from adread.nesting import chains_from, named_chain

from .base import DirectoryUnavailable, FolderRecord, UserRecord, canonical_guid

if TYPE_CHECKING:
    from .entra import EntraConnector

GROUP_SELECT = "id,displayName,groupTypes,securityEnabled,mailEnabled"
GROUP_FILTER = "securityEnabled eq true or groupTypes/any(c:c eq 'Unified')"
GROUP_KINDS = frozenset({"gr", "mg"})


def folder_record(item: dict[str, Any]) -> FolderRecord:
    name = item.get("displayName") or item["id"]
    kind = "mg" if "Unified" in (item.get("groupTypes") or []) else "gr"
    return FolderRecord(id=canonical_guid(item["id"]), name=name, kind=kind, path=name)


def read_group_folders(connector: EntraConnector) -> list[FolderRecord]:
    url = connector._url(f"/groups?$filter={GROUP_FILTER}&$select={GROUP_SELECT}&$top=999")
    return [folder_record(item) for page in connector._pages(url) for item in page.get("value", [])]


def _collect(connector: EntraConnector, url: str, group_id: str, name: str) -> list[dict[str, Any]]:
    """Every item of a member collection of a mapped group; a group Graph no longer serves fails the read."""
    from .entra import _GraphStatus, _short

    try:
        return [item for page in connector._pages(url) for item in page.get("value", [])]
    except _GraphStatus as exc:
        raise DirectoryUnavailable(
            f"The group {name} could not be read (Graph {_short(exc.url)} answered {exc.status} {exc.code}): "
            "deleted, or the app can no longer read it. Nothing was changed; remove its mapping if it is gone "
            "for good."
        ) from exc


def read_group_members(connector: EntraConnector, groups: Collection[FolderRecord]
                       ) -> tuple[dict[str, dict[str, Any]], dict[str, set[str]], dict[str, list[tuple[str, ...]]]]:
    """Users of the given groups through nesting: (items by user id, group ids per user, chains per user)."""
    from .entra import USER_SELECT, _is_user, _require_properties

    items: dict[str, dict[str, Any]] = {}
    member_of: dict[str, set[str]] = {}
    chains: dict[str, list[tuple[str, ...]]] = {}
    for group in sorted(groups, key=lambda g: g.id):
        base = f"/groups/{group.id}/transitiveMembers"
        url = connector._url(f"{base}/microsoft.graph.user?$select={USER_SELECT}&$top=999")
        users = [u for u in _collect(connector, url, group.id, group.name) if _is_user(u)]
        nested = _collect(connector, connector._url(f"{base}/microsoft.graph.group?$select=id,displayName&$top=999"),
                          group.id, group.name)
        names = {group.id: group.name} | {canonical_guid(g["id"]): g.get("displayName") or g["id"] for g in nested}
        via = _chains(connector, group, names) if nested else {}
        for item in users:
            user_id = canonical_guid(item["id"])
            if user_id not in items:
                _require_properties(item, url)
                items[user_id] = item
            member_of.setdefault(user_id, set()).add(group.id)
            chain = via.get(user_id, (group.id,))
            chains.setdefault(user_id, []).append(named_chain(chain, names))
    return items, member_of, chains


def _chains(connector: EntraConnector, group: FolderRecord, names: dict[str, str]) -> dict[str, tuple[str, ...]]:
    """Direct members of the group and of each group nested in it: enough to say through which chain (G5)."""
    direct: dict[str, list[str]] = {}
    for group_id in names:
        url = connector._url(f"/groups/{group_id}/members?$select=id&$top=999")
        direct[group_id] = [canonical_guid(m["id"]) for m in _collect(connector, url, group.id, group.name)]
    return chains_from(group.id, direct)


def with_group_members(connector: EntraConnector, users: Iterable[UserRecord], groups: Collection[FolderRecord]
                       ) -> list[UserRecord]:
    """The AU users read, merged with the users of the mapped groups: one record per user, every folder it is in."""
    from .entra import _user_record

    by_id = {u.id: u for u in users}
    if not groups:
        return list(by_id.values())
    items, member_of, chains = read_group_members(connector, groups)
    for user_id in sorted(items):
        record = by_id.get(user_id) or _user_record(items[user_id], (), connector._url("/groups"))
        by_id[user_id] = dataclasses.replace(record, folder_ids=record.folder_ids | member_of[user_id],
                                             chains=tuple(sorted(chains[user_id])))
    return [by_id[uid] for uid in sorted(by_id)]


def user_group_ids(connector: EntraConnector, user_id: str) -> set[str]:
    """Every group one user is in, nested ones included (one user's resync, an incremental run's changed users)."""
    url = connector._url(f"/users/{user_id}/transitiveMemberOf/microsoft.graph.group?$select=id&$top=999")
    return {canonical_guid(item["id"]) for page in connector._pages(url) for item in page.get("value", [])}


GROUP_DELTA_SELECT = "id,displayName,members"


def check_group_delta(connector: EntraConnector, link: str) -> str:
    """G6: the new groups delta link when no group's members changed; else the run reads the groups in full.

    `members@delta` lists a group's DIRECT members only, and a change inside a nested group shows on that group
    alone (notes, groups/delta): whom it reaches through nesting is for a full read of the mapped groups to say.
    A rename alone changes nobody's scope.
    """
    from .entra import FullReadNeeded

    items, new_link = connector._run_delta(link)
    changed = [item for item in items if "@removed" in item or item.get("members@delta")]
    if changed:
        raise FullReadNeeded(f"the members of {len(changed)} group(s) changed since the last run, and a change "
                             "inside a nested group reaches whoever is in the groups above it.")
    return new_link
