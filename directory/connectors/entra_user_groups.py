"""One Entra user's groups through nesting, with the chain through which (G2, G5): for one user's resync (R28) and
for each user an incremental run finds changed (G6).

A full read walks the mapped groups down to their users (entra_groups); one user's resync walks up from the
user instead, so it costs a few requests whatever the size of the groups:

- `/users/{id}/transitiveMemberOf/microsoft.graph.group`: every group the user is in, directly or through
  nested groups (the cast leaves out directory roles and administrative units), paged, up to 999 a page;
- `/users/{id}/memberOf/microsoft.graph.group`: the groups that hold the user directly;
- for each group that holds the user only through another group, its member groups
  (`/groups/{id}/members/microsoft.graph.group`): the links of the chains. A group that holds the user directly
  needs none: the shortest chain through it ends there.

Throttling (Graph's identity and access limits, in resource units): a transitiveMemberOf or memberOf page
costs 2, 1 with $select; a group's members page 3, 2 with $select. A user in ten groups, three of them only
through nesting, costs 1 + 1 + 3 x 2 = 8 units; 429 and Retry-After are waited out by the client.
"""

from __future__ import annotations

from typing import Any

from adread.nesting import chains_from, named_chain

from .base import canonical_guid
from .entra_client import GraphClient

Chains = tuple[tuple[str, ...], ...]


def user_groups(graph: GraphClient, user_id: str) -> tuple[frozenset[str], Chains]:
    """Every group the user is in through nesting (security and Microsoft 365 groups alike: the planner keeps
    the mapped ones), and for each the shortest chain from it down to the group that holds the user.

    Raises the client's GraphStatus as any read does (a 404: the user is gone).
    """
    names = {canonical_guid(g["id"]): g.get("displayName") or g["id"]
             for g in _items(graph, f"/users/{user_id}/transitiveMemberOf/microsoft.graph.group"
                                    "?$select=id,displayName&$top=999")}
    if not names:
        return frozenset(), ()
    holding = {canonical_guid(g["id"])
               for g in _items(graph, f"/users/{user_id}/memberOf/microsoft.graph.group?$select=id&$top=999")}
    direct: dict[str, list[str]] = {}
    for group_id in sorted(names):
        if group_id in holding:
            direct[group_id] = [user_id]
        else:  # in the user's groups only through one of its member groups: those are the chain's next links
            members = _items(graph, f"/groups/{group_id}/members/microsoft.graph.group?$select=id&$top=999")
            direct[group_id] = [m for m in (canonical_guid(g["id"]) for g in members) if m in names]
    chains = []
    for group_id in names:
        chain = chains_from(group_id, direct).get(user_id)
        if chain is not None:
            chains.append(named_chain(chain, names))
    return frozenset(names), tuple(sorted(chains))


def _items(graph: GraphClient, path: str) -> list[dict[str, Any]]:
    return [item for page in graph.pages(graph.url(path)) for item in page.get("value", [])]
