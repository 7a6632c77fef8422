"""Group nesting as plain data: which groups hold a member directly, and through which chain (G2, G5).

Pure and standard-library only, so the portal's connectors and the on-prem agent can share it. Directories
allow membership cycles (A in B, B in A): every walk here keeps a set of groups already walked, so it ends.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable, Iterable, Mapping
from typing import TypeVar

K = TypeVar("K", bound=Hashable)  # how a walk names groups: Entra ids, or AD DNs as bytes


def chains_from(root: str, direct: Mapping[str, Iterable[str]]) -> dict[str, tuple[str, ...]]:
    """Each member reachable from `root` -> the shortest chain of group ids that leads to it.

    `direct` maps a group id to the ids of its direct members (users and groups alike). The chain starts with
    `root` and ends with the group that holds the member directly: a direct member's chain is (root,).
    Breadth first, so the chain shown is the shortest; ties go to the order `direct` lists members in.
    """
    found: dict[str, tuple[str, ...]] = {}
    for group, chain in groups_from(root, direct):
        for member in direct.get(group, ()):
            if member not in found:
                found[member] = chain
    return found


def groups_from(root: K, direct: Mapping[K, Iterable[K]]) -> list[tuple[K, tuple[K, ...]]]:
    """The groups reachable from `root` (itself first), each once with the chain that leads to it, ending in it.

    Breadth first, in the order `chains_from` walks them: a member is reached through the first group of this
    list that holds it directly. Only the keys of `direct` are groups; anything else listed is a leaf.
    """
    walked = {root}
    order: list[tuple[K, tuple[K, ...]]] = []
    queue: deque[tuple[K, tuple[K, ...]]] = deque([(root, (root,))])
    while queue:
        group, chain = queue.popleft()
        order.append((group, chain))
        for member in direct.get(group, ()):
            if member in direct and member not in walked:
                walked.add(member)
                queue.append((member, (*chain, member)))
    return order


def named_chain(chain: tuple[str, ...], names: Mapping[str, str]) -> tuple[str, ...]:
    """A chain of group ids as a record carries it (UserRecord.chains): (root id, root name, ..., inner name)."""
    return (chain[0], *(names.get(g, g) for g in chain))
