"""Read Entra ID groups as folders, and their members through nested groups (G1, G2, G5, G6).

Kept apart from the AU reading (`entra_read.py`, `entra_delta.py`, which call in here): the Graph contracts are
those of docs/notes/entra-groups.md. Folders: security groups (mail-enabled ones included) and Microsoft 365 groups; a
Microsoft 365 group need not be security-enabled, so the list asks for either. Members: `transitiveMembers`
cast to users, paged, so contacts, devices and service principals never come back and nesting is Graph's to
resolve, cycles included. Which chain a user is in through (for people to read) comes from the direct members
of the nested groups, read only for groups that have nested groups at all: a flat group costs two requests.
The mapped groups are read several at once, as the AUs are (entra_budget: one Retry-After holds every request of
the read), each collection's pages in turn. A mapped group Graph no longer answers for (404: deleted; 403:
permission lost) fails the whole read (G4), and stops the requests of the others.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Iterable, Sequence
from typing import Any

from adread.nesting import chains_from, named_chain

from .base import DirectoryUnavailable, FolderRecord, UserRecord, canonical_guid
from .entra_client import GraphClient, GraphStatus, short_url
from .entra_records import USER_SELECT, is_user, require_properties, user_record

GROUP_SELECT = "id,displayName,groupTypes,securityEnabled,mailEnabled"
GROUP_FILTER = "securityEnabled eq true or groupTypes/any(c:c eq 'Unified')"
GROUP_KINDS = frozenset({"gr", "mg"})
GROUP_DELTA_SELECT = "id,displayName,members"


def folder_record(item: dict[str, Any]) -> FolderRecord:
    name = item.get("displayName") or item["id"]
    kind = "mg" if "Unified" in (item.get("groupTypes") or []) else "gr"
    return FolderRecord(id=canonical_guid(item["id"]), name=name, kind=kind, path=name)


def read_group_folders(graph: GraphClient) -> list[FolderRecord]:
    url = graph.url(f"/groups?$filter={GROUP_FILTER}&$select={GROUP_SELECT}&$top=999")
    return [folder_record(item) for page in graph.pages(url) for item in page.get("value", [])]


def _collect(graph: GraphClient, url: str, name: str) -> list[dict[str, Any]]:
    """Every item of a member collection of a mapped group; a group Graph no longer serves fails the read."""
    try:
        return [item for page in graph.pages(url) for item in page.get("value", [])]
    except GraphStatus as exc:
        raise DirectoryUnavailable(
            f"The group {name} could not be read (Graph {short_url(exc.url)} answered {exc.status} {exc.code}): "
            "deleted, or the app can no longer read it. Nothing was changed; remove its mapping if it is gone "
            "for good."
        ) from exc


GroupRead = tuple[str, list[dict[str, Any]], dict[str, str]]  # (users URL, user items, names of it and its nested)


def read_group_members(graph: GraphClient, groups: Collection[FolderRecord]
                       ) -> tuple[dict[str, dict[str, Any]], dict[str, set[str]], dict[str, list[tuple[str, ...]]]]:
    """Users of the given groups through nesting: (items by user id, group ids per user, chains per user).

    The groups are read `read_concurrency` at once on the tenant's budget (GraphClient.for_each), then the direct
    members of every group nested in them, each once however many mapped groups it is under; the results are put
    together in the groups' order, so the records are those of one group read after another. Any group that
    cannot be read fails the whole read (G4, R21).
    """
    ordered = sorted(groups, key=lambda g: g.id)
    reads = graph.for_each(ordered, lambda group: _group_members(graph, group))
    direct = _direct_members(graph, ordered, reads)
    items: dict[str, dict[str, Any]] = {}
    member_of: dict[str, set[str]] = {}
    chains: dict[str, list[tuple[str, ...]]] = {}
    for group, (_, users, names) in zip(ordered, reads, strict=True):
        via = chains_from(group.id, {g: direct[g] for g in names}) if len(names) > 1 else {}
        for item in users:
            user_id = canonical_guid(item["id"])
            items.setdefault(user_id, item)  # a user in several groups: the first group's copy
            member_of.setdefault(user_id, set()).add(group.id)
            chain = via.get(user_id, (group.id,))
            chains.setdefault(user_id, []).append(named_chain(chain, names))
    return items, member_of, chains


def _group_members(graph: GraphClient, group: FolderRecord) -> GroupRead:
    """One mapped group's users through nesting, and the groups nested in it (with the group's own name first)."""
    base = f"/groups/{group.id}/transitiveMembers"
    url = graph.url(f"{base}/microsoft.graph.user?$select={USER_SELECT}&$top=999")
    users = [u for u in _collect(graph, url, group.name) if is_user(u)]
    for item in users:  # here, so the first user read without its properties stops the read
        require_properties(item, url)
    nested = _collect(graph, graph.url(f"{base}/microsoft.graph.group?$select=id,displayName&$top=999"), group.name)
    names = {group.id: group.name} | {canonical_guid(g["id"]): g.get("displayName") or g["id"] for g in nested}
    return url, users, names


def _direct_members(graph: GraphClient, groups: Sequence[FolderRecord], reads: Sequence[GroupRead]
                    ) -> dict[str, list[str]]:
    """Direct members of each mapped group that has nested groups and of each group nested in one: enough to say
    through which chain (G5). A flat group needs none. A failure names the mapped group it was read for."""
    wanted: dict[str, str] = {}  # group id -> the name of the (first) mapped group it is read for
    for group, (_, _, names) in zip(groups, reads, strict=True):
        if len(names) > 1:
            for group_id in names:
                wanted.setdefault(group_id, group.name)
    ids = sorted(wanted)

    def members(group_id: str) -> list[str]:
        url = graph.url(f"/groups/{group_id}/members?$select=id&$top=999")
        return [canonical_guid(m["id"]) for m in _collect(graph, url, wanted[group_id])]

    return dict(zip(ids, graph.for_each(ids, members), strict=True))


def with_group_members(graph: GraphClient, users: Iterable[UserRecord], groups: Collection[FolderRecord]
                       ) -> list[UserRecord]:
    """The AU users read, merged with the users of the mapped groups: one record per user, every folder it is in."""
    by_id = {u.id: u for u in users}
    if not groups:
        return list(by_id.values())
    items, member_of, chains = read_group_members(graph, groups)
    for user_id in sorted(items):
        record = by_id.get(user_id) or user_record(items[user_id], (), graph.url("/groups"))
        by_id[user_id] = dataclasses.replace(record, folder_ids=record.folder_ids | member_of[user_id],
                                             chains=tuple(sorted(chains[user_id])))
    return [by_id[uid] for uid in sorted(by_id)]
