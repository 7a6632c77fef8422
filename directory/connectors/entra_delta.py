"""The incremental read of an Entra tenant: follow the delta links a full read stored (R17, G6).

`users/delta` and `administrativeUnits/delta` say which users and AUs changed; a changed user is read again
with all its AUs (and its groups, once a group is mapped), several users at once on the read's budget (entra_budget:
one Retry-After holds them all; one failure fails the round). A delta link Graph refuses, or more changes than
`incremental_change_limit`, raises FullReadNeeded: the connector then reads everything instead.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Mapping
from typing import Any
from urllib.parse import urlsplit

from . import entra_user_groups
from .base import DirectoryUnavailable, FolderRecord, Snapshot, UserRecord, canonical_guid
from .entra_client import GraphClient, GraphStatus, short_url
from .entra_read import user_au_ids, user_item
from .entra_records import folder_record, is_user, user_record


class FullReadNeeded(Exception):
    """An incremental round cannot be used (delta link refused, too many changes): read everything."""


def stored_links(graph: GraphClient) -> dict[str, str] | None:
    """The delta links stored for this tenant by the last run, or None (never read, or another tenant's)."""
    graph.msal_app()  # the tenant GUID the links belong to
    state = graph.settings.delta_state or {}
    users, aus = state.get("users"), state.get("administrativeUnits")
    if not users or not aus or str(state.get("tenant", "")).lower() != graph.tenant_id:
        return None
    if state.get("groups"):
        return {"users": users, "administrativeUnits": aus, "groups": state["groups"]}
    return {"users": users, "administrativeUnits": aus}


def run_delta(graph: GraphClient, link: str) -> tuple[list[dict[str, Any]], str]:
    """Follow a stored delta link to its new delta link; a refused link -> FullReadNeeded."""
    items: list[dict[str, Any]] = []
    url = link
    while True:
        try:
            page = graph.get(url)
        except GraphStatus as exc:
            if exc.status in (400, 404, 409, 410):
                raise FullReadNeeded(
                    f"Graph refused the stored delta link {short_url(url)} ({exc.status} {exc.code})."
                ) from exc
            raise DirectoryUnavailable(f"Graph {short_url(exc.url)} answered {exc.status} {exc.code}.") from exc
        items += page.get("value", [])
        if page.get("@odata.nextLink"):
            url = page["@odata.nextLink"]
        elif page.get("@odata.deltaLink"):
            return items, page["@odata.deltaLink"]
        else:
            raise DirectoryUnavailable(f"Graph {short_url(url)} ended a delta round without a delta link.")


def check_group_delta(graph: GraphClient, link: str) -> str:
    """G6: the new groups delta link when no group's members changed; else the run reads the groups in full.

    `members@delta` lists a group's DIRECT members only, and a change inside a nested group shows on that group
    alone (notes, groups/delta): whom it reaches through nesting is for a full read of the mapped groups to say.
    A rename alone changes nobody's scope.
    """
    items, new_link = run_delta(graph, link)
    changed = [item for item in items if "@removed" in item or item.get("members@delta")]
    if changed:
        raise FullReadNeeded(f"the members of {len(changed)} group(s) changed since the last run, and a change "
                             "inside a nested group reaches whoever is in the groups above it.")
    return new_link


def incremental_snapshot(graph: GraphClient, links: Mapping[str, str], folder_ids: Collection[str]) -> Snapshot:
    """The users changed since the stored links, with the new links to store after a successful run."""
    user_items, users_link = run_delta(graph, links["users"])
    au_items, aus_link = run_delta(graph, links["administrativeUnits"])
    groups_link = check_group_delta(graph, links["groups"]) if "groups" in links else None
    notes: list[str] = []
    changed, removed = _changed_users(user_items)
    folders, gone_aus = _changed_aus(au_items, changed, removed)
    if gone_aus:
        notes.append(f"{gone_aus} AU(s) deleted: their users are re-checked at the next full read.")
    limit = graph.settings.incremental_change_limit
    if len(changed) > limit:
        raise FullReadNeeded(f"{len(changed)} users changed since the last run (more than {limit}).")
    users = _read_changed(graph, changed, removed, with_groups=groups_link is not None)
    new_links: dict[str, Any] = {"tenant": graph.tenant_id, "users": users_link, "administrativeUnits": aus_link}
    if groups_link is not None:
        new_links["groups"] = groups_link
    return Snapshot(
        directory_id=graph.tenant_id, folders=tuple(folders), users=tuple(users), complete=True,
        incremental=True, read_folder_ids=frozenset(canonical_guid(f) for f in folder_ids),
        removed_user_ids=frozenset(removed), folders_complete=False, notes=tuple(notes), delta_state=new_links,
    )


def _changed_users(user_items: list[dict[str, Any]]) -> tuple[dict[str, dict[str, Any] | None], set[str]]:
    """Later entries win: delta may replay an object, and a restore follows a removal."""
    changed: dict[str, dict[str, Any] | None] = {}
    removed: set[str] = set()
    for item in user_items:
        user_id = canonical_guid(item["id"])
        if "@removed" in item:
            removed.add(user_id)
            changed.pop(user_id, None)
        else:
            removed.discard(user_id)
            changed[user_id] = item
    return changed, removed


def _changed_aus(au_items: list[dict[str, Any]], changed: dict[str, dict[str, Any] | None],
                 removed: set[str]) -> tuple[list[FolderRecord], int]:
    """The AUs still there, and how many were deleted; their added or removed members count as changed users."""
    folders: list[FolderRecord] = []
    gone_aus = 0
    for item in au_items:
        if "@removed" in item:
            gone_aus += 1
            continue
        folders.append(folder_record(item))
        for member in item.get("members@delta") or []:
            member_id = canonical_guid(member["id"])
            if is_user(member) and member_id not in removed:
                changed.setdefault(member_id, None)  # properties fetched below
    return folders, gone_aus


def _read_changed(graph: GraphClient, changed: dict[str, dict[str, Any] | None], removed: set[str], *,
                  with_groups: bool) -> list[UserRecord]:
    """Each changed user with all its folders; one deleted since the delta round joins `removed`.

    The users are read `read_concurrency` at once on the tenant's budget (GraphClient.for_each), each user's
    requests in turn; any that fails fails the whole round (R21). The records come back in the users' order.
    """
    ids = sorted(changed)
    records = graph.for_each(ids, lambda user_id: _read_one(graph, user_id, changed[user_id], with_groups))
    users: list[UserRecord] = []
    for user_id, record in zip(ids, records, strict=True):
        if record is None:  # deleted since the delta round: the next delta says so too
            removed.add(user_id)
        else:
            users.append(record)
    return users


def _read_one(graph: GraphClient, user_id: str, item: dict[str, Any] | None, with_groups: bool) -> UserRecord | None:
    """One changed user with its AUs (and its groups, the chains through which: G2, G5, G6); None once deleted."""
    if item is None or "accountEnabled" not in item:
        item = user_item(graph, user_id)
        if item is None:
            return None
    try:
        au_ids = user_au_ids(graph, user_id)
        record = user_record(item, au_ids, graph.url("/users/delta"))
        if with_groups:  # as a resync reads them
            group_ids, chains = entra_user_groups.user_groups(graph, user_id)
            record = dataclasses.replace(record, folder_ids=record.folder_ids | group_ids, chains=chains)
    except GraphStatus as exc:
        # The user's own memberships gone: deleted since the round. A nested group's members gone (that group
        # deleted meanwhile) says nothing of the user: the round fails rather than drop it.
        if exc.status == 404 and f"/users/{user_id}/" in urlsplit(exc.url).path:
            return None
        raise DirectoryUnavailable(f"Graph {short_url(exc.url)} answered {exc.status} {exc.code}.") from exc
    return record
