"""Active Directory groups as folders, and who is in them through nesting (G1, G2, G5). No Django here.

One paged search reads every group under the base DN with its `member` DNs; nesting is then walked here, with
cycle detection (adread.nesting), from each mapped group. So membership costs one search in all, whatever the
number of groups or users, and the walk also gives the chain through which each user is in a group, which the
in-chain matching rule (`memberOf:1.2.840.113556.1.4.1941:=`, which Samba supports too) would not.
Members that are not user objects of the user search (computers, contacts, groups themselves) are never users.
Real AD returns at most 1,500 `member` values per read and ranges the rest (`member;range=0-1499`); ldap3's
auto_range (on by default) fetches the further ranges; Samba never ranges, so that part is not tested here.
A member outside the base DN is not read, as a user outside the base DN is not.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass

from .nesting import chains_from, named_chain
from .records import FolderRecord, UserRecord, canonical_guid

GROUP_FILTER = "(objectClass=group)"
GROUP_ATTRIBUTES = ("objectGUID", "cn", "groupType", "member")
SECURITY_ENABLED = 0x80000000  # groupType bit: a security group (else a distribution group)


@dataclass(frozen=True)
class GroupGraph:
    folders: list[FolderRecord]  # the security groups, as folders
    ids: dict[str, str]  # group DN key -> objectGUID, every group (distribution ones carry nesting too)
    names: dict[str, str]  # objectGUID -> name
    members: dict[str, list[str]]  # group DN key -> member DN keys, as `member` lists them


def group_graph(entries: Iterable, dn_key) -> GroupGraph:
    """The graph of groups from the entries of one search (`_Entry`s), DN keys made by the connector's dn_key."""
    ids: dict[str, str] = {}
    names: dict[str, str] = {}
    members: dict[str, list[str]] = {}
    folders: list[FolderRecord] = []
    for entry in entries:
        guid = entry.raw("objectGUID")
        if guid is None:
            continue
        key, gid = dn_key(entry.dn), canonical_guid(guid)
        name = entry.text("cn") or entry.dn
        ids[key], names[gid] = gid, name
        members[key] = [dn_key(value.decode("utf-8", "replace") if isinstance(value, bytes) else value)
                        for value in entry.attributes.get("member", [])]
        group_type = entry.text("groupType")
        if group_type.lstrip("-").isdigit() and int(group_type) & SECURITY_ENABLED:
            folders.append(FolderRecord(id=gid, name=name, kind="gr", path=name))
    folders.sort(key=lambda f: f.name.lower())
    return GroupGraph(folders=folders, ids=ids, names=names, members=members)


def scope_by_groups(everyone: Iterable[UserRecord], graph: GroupGraph, dn_key, ou_ids: frozenset[str],
                    group_ids: frozenset[str]) -> list[UserRecord]:
    """The users of the wanted OUs, and of the wanted groups through nesting, each with every such folder."""
    users = []
    for user, joined in _joined(everyone, graph, dn_key, group_ids):
        if joined or user.folder_ids & ou_ids:
            users.append(user)
    return users


def with_groups(everyone: Iterable[UserRecord], graph: GroupGraph, dn_key) -> list[UserRecord]:
    """Every user, each also in every security group it is a member of, directly or through nesting (G2, G6).

    What a read of everything gives (the on-prem agent's: it pushes the whole base DN and the portal scopes),
    so that a group mapped later scopes exactly as it does when direct mode reads only that group.
    """
    return [user for user, _ in _joined(everyone, graph, dn_key, frozenset(f.id for f in graph.folders))]


def _joined(everyone: Iterable[UserRecord], graph: GroupGraph, dn_key,
            group_ids: frozenset[str]) -> list[tuple[UserRecord, bool]]:
    """Each user, with the groups of `group_ids` it is in (through nesting) added to its folders and chains."""
    by_dn = {dn_key(u.dn): u for u in everyone}
    key_of = {gid: key for key, gid in graph.ids.items()}
    joined: dict[str, set[str]] = {}
    chains: dict[str, list[tuple[str, ...]]] = {}
    for gid in sorted(group_ids):
        if gid not in key_of:
            continue  # gone: the planner fails the read for a mapped group it did not see (G4)
        for member_key, chain in chains_from(key_of[gid], graph.members).items():
            user = by_dn.get(member_key)
            if user is None:
                continue
            joined.setdefault(user.id, set()).add(gid)
            chains.setdefault(user.id, []).append(named_chain(
                tuple(graph.ids[k] for k in chain), graph.names))
    users = []
    for user in by_dn.values():
        groups = joined.get(user.id)
        if groups:
            users.append((dataclasses.replace(user, folder_ids=user.folder_ids | groups,
                                              chains=tuple(sorted(chains[user.id]))), True))
        else:
            users.append((user, False))
    return users
