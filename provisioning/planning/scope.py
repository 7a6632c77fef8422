"""Which mapped folders count, what they grant, and how a user's scope is named (R9, R13, R19, G1, G4, G5)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping

from directory.connectors.base import Snapshot, UserRecord

from .cleaning import storable
from .data import MappingRule, Seen

# Folder kinds that are directory groups (G1): AD and Entra security groups, Microsoft 365 groups. A mapped
# group a complete read did not see fails the run (G4): an empty or unreadable group must never look like
# "everybody left", which an OU's users falling out of scope (R19) would. SCIM groups ("sg") are pushed, not
# read, so a deleted one is a gone folder as before; their users' reasons still name them.
GROUP_KINDS = frozenset({"gr", "mg"})
NAMED_GROUP_KINDS = GROUP_KINDS | {"sg"}


def unreadable_groups(snapshot: Snapshot, mappings: Mapping[str, MappingRule]) -> str:
    """G4: a mapped group a complete read did not see fails the read, naming it; "" when every one was seen.

    Deleted, or hidden from the account that reads: the read cannot tell which, and neither may empty the
    scope. Staff remove the mapping of a group that is gone for good.
    """
    if not (snapshot.complete and snapshot.folders_complete and not snapshot.incremental):
        return ""
    present = {f.id for f in snapshot.folders}
    missing = sorted((m.folder_name or m.folder_path or m.folder_id for m in mappings.values()
                      if m.folder_kind in GROUP_KINDS and m.folder_id not in present), key=str.lower)
    if not missing:
        return ""
    which = f"group {missing[0]}" if len(missing) == 1 else f"groups {', '.join(missing)}"
    return (f"The mapped {which} could not be read: deleted, or the account the portal reads with can no longer "
            "see it. Nobody was changed. If the group is gone for good, remove its mapping.")


def removed_from(before: frozenset[str], now: frozenset[str], mappings: Mapping[str, MappingRule]) -> str:
    """G4: "removed from group Sales-Team", for the mapped groups a user was in last time and is in no more."""
    names = sorted({m.folder_name or m.folder_path for f in before - now
                    if (m := mappings.get(f)) is not None and m.folder_kind in NAMED_GROUP_KINDS}, key=str.lower)
    if not names:
        return ""
    return f"removed from group{'s' if len(names) > 1 else ''} {', '.join(names)}"


def live_mapped_folders(snapshot: Snapshot, mappings: Mapping[str, MappingRule]) -> frozenset[str]:
    """Mapped folders that still exist; a gone folder's users fall out of scope (R19, R9)."""
    if snapshot.folders_complete:
        present = {f.id for f in snapshot.folders}
        return frozenset(fid for fid in mappings if fid in present)
    return frozenset(mappings)


class Grants:
    """Level and groups per combination of mapped folders, computed once per combination (R13)."""

    def __init__(self, live: frozenset[str], mappings: Mapping[str, MappingRule]) -> None:
        self.live, self.mappings = live, mappings
        self.cache: dict[frozenset[str], tuple[list[MappingRule], int | None, frozenset[int]]] = {}

    def __call__(self, record: UserRecord) -> tuple[list[MappingRule], int | None, frozenset[int]]:
        key = record.folder_ids & self.live
        found = self.cache.get(key)
        if found is None:
            rules = [self.mappings[f] for f in sorted(key)]
            found = self.cache[key] = (rules, _level(rules), _groups(rules))
        return found


def _level(rules: list[MappingRule]) -> int | None:
    """R13: the highest-ranked level of the user's mappings (ties: the lower id, for a stable answer)."""
    if not rules:
        return None
    return max(rules, key=lambda r: (r.level_rank, -r.level_id)).level_id


def _groups(rules: list[MappingRule]) -> frozenset[int]:
    """R13: the union of the user's mappings' groups."""
    return frozenset().union(*(r.group_ids for r in rules)) if rules else frozenset()


class Vias:
    """G5: through which mapped folders, and for a group which chain of groups, a user is in scope.

    "Corp/Sales" for an OU or AU, "Sales-Team > EMEA" for a group (outer group first, then the group that holds
    the user directly). Users without chains share one answer per combination of folders, computed once.
    """

    def __init__(self, live: frozenset[str], mappings: Mapping[str, MappingRule]) -> None:
        self.live, self.mappings = live, mappings
        self.cache: dict[frozenset[str], tuple[str, ...]] = {}

    def __call__(self, record: UserRecord) -> tuple[str, ...]:
        key = record.folder_ids & self.live
        if not record.chains:
            found = self.cache.get(key)
            if found is None:
                found = self.cache[key] = tuple(sorted((self._name(f) for f in key), key=str.lower))
            return found
        chains = {chain[0]: chain[1:] for chain in sorted(record.chains, key=len, reverse=True) if chain}
        return tuple(sorted((" > ".join(storable(n) for n in chains[f]) if chains.get(f) else self._name(f)
                             for f in key), key=str.lower))

    def _name(self, folder_id: str) -> str:
        rule = self.mappings[folder_id]
        return rule.folder_path or rule.folder_name or folder_id


def fingerprint(seen: Seen) -> str:
    """A stable digest of what the directory said of a linked identity (the link's `state_hash`): a link whose
    fingerprint is the one it stored is not rewritten. `Seen.state` keeps a fixed key order, so its repr is stable."""
    if seen.digest:
        return seen.digest
    payload = repr((sorted(seen.folder_ids), seen.in_scope, tuple(seen.state.items())))
    return hashlib.blake2b(payload.encode(), digest_size=16).hexdigest()


def link_state(record: UserRecord, vias: Vias | None = None) -> Mapping[str, object]:
    """What a link remembers of what the directory said (`Seen.state`), in a fixed key order (its digest)."""
    # Only for users in groups: the link of an OU or AU user keeps the fingerprint it always had.
    return DirectoryState(record, vias(record) if record.chains and vias is not None else None)


STATE_KEYS = ("first_name", "last_name", "email", "enabled", "upn", "display_name", "dn")


class DirectoryState(Mapping[str, object]):
    """`Seen.state`, read from the record when asked instead of copied into a dict per user (a run holds one per
    identity until it applies: at 300,000 users the dicts alone were ~80 MB). Keys in the order of STATE_KEYS, then
    "via" for a user in groups; equal to the dict it stands for, and its items the same (the link's fingerprint)."""

    __slots__ = ("_record", "_via")

    def __init__(self, record: UserRecord, via: tuple[str, ...] | None) -> None:
        self._record, self._via = record, via

    def __getitem__(self, key: str) -> object:
        if key == "via" and self._via is not None:
            return list(self._via)
        if key not in STATE_KEYS:
            raise KeyError(key)
        value = getattr(self._record, key)
        # NUL is the one character PostgreSQL cannot store (text or JSON): a directory value holding it must
        # not crash the run, so what the link remembers shows U+FFFD in its place.
        return storable(value) if isinstance(value, str) else value

    def __iter__(self) -> Iterator[str]:
        yield from STATE_KEYS
        if self._via is not None:
            yield "via"

    def __len__(self) -> int:
        return len(STATE_KEYS) + (self._via is not None)

    def __repr__(self) -> str:
        return repr(dict(self))
