"""Active Directory groups as folders, and who is in them through nesting (G1, G2, G5). No Django here.

One paged search reads every group under the base DN with its `member` DNs; nesting is then walked here, with
cycle detection (adread.nesting), from each mapped group. So membership costs one search in all, whatever the
number of groups or users, and the walk also gives the chain through which each user is in a group, which the
in-chain matching rule (`memberOf:1.2.840.113556.1.4.1941:=`, which Samba supports too) would not.
Members that are not user objects of the user search (computers, contacts, groups themselves) are never users.
Real AD returns at most 1,500 `member` values per read and ranges the rest (`member;range=0-1499`); ldap3's
auto_range (on by default) fetches the further ranges; Samba never ranges, so that part is not tested here.
A member outside the base DN is not read, as a user outside the base DN is not.

DNs are matched as the server writes them, as UTF-8 bytes with ASCII letters lowercased: AD (and Samba) render
a `member` value from the member object's own stored name, exactly as they render that object's DN in a search
result, so one object's DN is spelled alike in both (the lowercasing only guards against a DC that varies the
case of attribute names or DC= parts). Parsing 20,000 member DNs and 20,000 user DNs into a normal form would
cost more than reading the groups does (ldap3's parser: ~13 us a DN), and even lowercasing them as text costs
four times lowercasing the bytes the server sent.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass

from .nesting import groups_from, named_chain
from .records import FolderRecord, canonical_guid

GROUP_FILTER = "(objectClass=group)"
GROUP_ATTRIBUTES = ("objectGUID", "cn", "groupType", "member")
SECURITY_ENABLED = 0x80000000  # groupType bit: a security group (else a distribution group)

IN_CHAIN = "1.2.840.113556.1.4.1941"  # LDAP_MATCHING_RULE_IN_CHAIN: member of, directly or through nesting
_FILTER_ESCAPES = {"\\": r"\5c", "*": r"\2a", "(": r"\28", ")": r"\29", "\0": r"\00"}

Chains = tuple[tuple[str, ...], ...]
NO_FOLDERS: frozenset[str] = frozenset()


@dataclass(frozen=True)
class GroupGraph:
    folders: list[FolderRecord]  # the security groups, as folders
    ids: dict[bytes, str]  # group DN (dn_bytes) -> objectGUID, every group
    names: dict[str, str]  # objectGUID -> name
    members: dict[bytes, list[bytes]]  # group DN -> member DNs (dn_bytes), as `member` lists them


def group_graph(entries: Iterable) -> GroupGraph:
    """The graph of groups from the entries of one search (`_Entry`s). Distribution groups carry nesting too."""
    ids: dict[bytes, str] = {}
    names: dict[str, str] = {}
    members: dict[bytes, list[bytes]] = {}
    folders: list[FolderRecord] = []
    for entry in entries:
        guid = entry.raw("objectGUID")
        if guid is None:
            continue
        key, gid = dn_bytes(entry.dn), canonical_guid(guid)
        name = entry.text("cn") or entry.dn
        ids[key], names[gid] = gid, name
        members[key] = [value.lower() if isinstance(value, bytes) else dn_bytes(value)
                        for value in entry.attributes.get("member", ())]
        group_type = entry.text("groupType")
        if group_type.lstrip("-").isdigit() and int(group_type) & SECURITY_ENABLED:
            folders.append(FolderRecord(id=gid, name=name, kind="gr", path=name))
    folders.sort(key=lambda f: f.name.lower())
    return GroupGraph(folders=folders, ids=ids, names=names, members=members)


class Memberships:
    """Which of `group_ids` each member DN is in through nesting, and through which chains (G2, G5).

    Worked out once per read, from the groups alone: each wanted group's nested groups are walked once (over
    group-in-group edges only), each group that holds members directly learns which wanted groups reach it and
    by which chain, and members held by the same groups share one answer. A user then costs one lookup by its
    DN (`of`), made while its record is built, so no record is built twice.
    """

    def __init__(self, graph: GroupGraph, group_ids: Collection[str]) -> None:
        reached = _reached(graph, _children(graph), group_ids)
        # Member DN -> the groups of `reached` that hold it directly, as a tuple. Built with dict and set
        # operations, which run in C: a Python loop over 20,000 member values costs more than the walk.
        self._held: dict[bytes, tuple[bytes, ...]] = {}
        for key in reached:
            listed = graph.members[key]
            again = {member: self._held[member] + (key,) for member in self._held.keys() & listed}
            self._held.update(dict.fromkeys(listed, (key,)))
            self._held.update(again)
        # Groups are members too; a user's DN never is a group's, so their entries are never looked up.
        self._shared = {held: _joined(held, reached) for held in set(self._held.values())}

    def get(self, dn: str) -> tuple[frozenset[str], Chains] | None:
        """The wanted groups a member DN is in and its chains; None when it is in none of them."""
        held = self._held.get(dn_bytes(dn))
        return None if held is None else self._shared[held]

    def of(self, dn: str, folder: str | None) -> tuple[frozenset[str], Chains]:
        """A user's folders (its OU `folder`, if any, and the wanted groups it is in) and its chains."""
        held = self._held.get(dn.encode().lower())  # dn_bytes, inline: once per user
        if held is None:
            return (frozenset((folder,)) if folder else NO_FOLDERS), ()
        groups, chains = self._shared[held]
        return (groups | {folder} if folder else groups), chains


def dn_bytes(dn: str) -> bytes:
    """A DN as the graph keys it: UTF-8, ASCII letters lowercased (as `member` values come, they are bytes)."""
    return dn.encode().lower()


def memberships_for(graph: GroupGraph, wanted: frozenset[str]) -> Memberships | None:
    """Whom a read puts in groups: nothing wanted means everything (the agent's read: every security group,
    so that a group mapped later scopes as direct mode does); else the wanted groups, None when none is."""
    if not wanted:
        return Memberships(graph, [f.id for f in graph.folders])
    wanted_groups = wanted & graph.names.keys()
    return Memberships(graph, wanted_groups) if wanted_groups else None


def holding_filter(dn: str) -> str:
    """A search filter for the groups `dn` is in, directly or through nesting (one user's read, R28).

    Those groups, with their `member` values, hold every chain from any of them down to the user, so the
    walk over them gives the user's groups and chains as a read of all groups would. Samba has the rule too.
    """
    # RFC 4515: a DN may hold parentheses, * or \\, which a filter's value must escape.
    escaped = "".join(_FILTER_ESCAPES.get(char, char) for char in dn)
    return f"(&{GROUP_FILTER}(member:{IN_CHAIN}:={escaped}))"


def _children(graph: GroupGraph) -> dict[bytes, list[bytes]]:
    """Group DN -> its member groups, in the order `member` lists them (which breaks ties between chains)."""
    children: dict[bytes, list[bytes]] = {}
    for key, listed in graph.members.items():
        nested = graph.members.keys() & listed
        if len(nested) > 1:
            children[key] = [member for member in listed if member in nested]
        else:
            children[key] = list(nested)
    return children


def _reached(graph: GroupGraph, children: dict[bytes, list[bytes]], group_ids: Collection[str]
             ) -> dict[bytes, list[tuple[str, int, tuple[str, ...]]]]:
    """Group DN -> (wanted group id, order of the walk, named chain) for each wanted group that reaches it."""
    key_of = {gid: key for key, gid in graph.ids.items()}
    reached: dict[bytes, list[tuple[str, int, tuple[str, ...]]]] = {}
    for gid in sorted(group_ids):
        root = key_of.get(gid)
        if root is None:
            continue  # gone: the planner fails the read for a mapped group it did not see (G4)
        for order, (key, chain) in enumerate(groups_from(root, children)):
            named = named_chain(tuple(graph.ids[k] for k in chain), graph.names)
            reached.setdefault(key, []).append((gid, order, named))
    return reached


def _joined(held: tuple[bytes, ...], reached: dict[bytes, list[tuple[str, int, tuple[str, ...]]]]
            ) -> tuple[frozenset[str], Chains]:
    """The wanted groups a member of the groups `held` is in, each by the chain its walk met first (shortest)."""
    best: dict[str, tuple[int, tuple[str, ...]]] = {}
    for key in held:
        for gid, order, chain in reached[key]:
            if gid not in best or order < best[gid][0]:
                best[gid] = (order, chain)
    return frozenset(best), tuple(sorted(chain for _, chain in best.values()))
