"""The full read of an Entra tenant: every AU and group as folders, the users of the mapped ones (R19, G1, G2).

Functions over a `GraphClient`; `EntraConnector` (entra.py) calls them. A full read takes fresh delta links
first, so the changes made while it runs are replayed by the next incremental read (entra_delta).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection
from typing import Any
from urllib.parse import quote

from . import entra_groups, entra_user_groups
from .base import DirectoryAuthError, DirectoryUnavailable, FolderRecord, Snapshot, UserRecord, canonical_guid
from .entra_client import GraphClient, GraphStatus, TenantInfo, short_url
from .entra_records import AU_SELECT, USER_SELECT, folder_record, is_user, require_properties, user_record


class NoDeltaLink(Exception):
    """Graph ended a delta round without a delta link: the next incremental run reads everything."""


def read_folders(graph: GraphClient) -> list[FolderRecord]:
    """Every AU, then every security and Microsoft 365 group (G1)."""
    records = []
    for page in graph.pages(graph.url(f"/directory/administrativeUnits?$select={AU_SELECT}&$top=999")):
        records += [folder_record(item) for item in page.get("value", [])]
    return records + entra_groups.read_group_folders(graph)


def read_users(graph: GraphClient, folder_ids: Collection[str]) -> list[UserRecord]:
    """Users of the given AUs, each with every one of those AUs it is in.

    The AUs are read `read_concurrency` at once (GraphClient.for_each), each AU's pages one after another; the
    records are then put together in the AUs' order, so the result is the one a read of one AU after another
    gives. Any AU that cannot be read fails the whole read (R21).
    """
    au_ids = sorted({canonical_guid(f) for f in folder_ids})
    found: dict[str, dict[str, Any]] = {}
    memberships: dict[str, set[str]] = {}
    read = graph.for_each(au_ids, lambda au_id: au_members(graph, au_id))
    for au_id, (_, items) in zip(au_ids, read, strict=True):
        for item in items:  # a user in several AUs: the last AU's copy, as one read after another keeps
            user_id = canonical_guid(item["id"])
            found[user_id] = item
            memberships.setdefault(user_id, set()).add(au_id)
    source = read[-1][0] if read else ""
    return [user_record(found[uid], memberships[uid], source) for uid in sorted(found)]


def au_members(graph: GraphClient, au_id: str) -> tuple[str, list[dict[str, Any]]]:
    """The user members of one AU, every page in turn: (the URL read, the users' Graph objects)."""
    url = graph.url(f"/directory/administrativeUnits/{au_id}/members/microsoft.graph.user"
                    f"?$select={USER_SELECT}&$top=999")
    users: list[dict[str, Any]] = []
    try:
        for page in graph.pages(url):
            for item in page.get("value", []):
                if is_user(item):
                    require_properties(item, url)  # here, so the first user read without them stops the read
                    users.append(item)
    except GraphStatus as exc:
        raise DirectoryUnavailable(
            f"Graph {short_url(exc.url)} answered {exc.status} {exc.code} while reading the members of "
            f"AU {au_id}: nothing was changed."
        ) from exc
    return url, users


def user_au_ids(graph: GraphClient, user_id: str) -> set[str]:
    url = graph.url(f"/users/{quote(user_id)}/memberOf/microsoft.graph.administrativeUnit?$select=id")
    ids: set[str] = set()
    for page in graph.pages(url):
        ids |= {canonical_guid(item["id"]) for item in page.get("value", [])}
    return ids


def user_item(graph: GraphClient, user_id: str) -> dict[str, Any] | None:
    try:
        return graph.get(graph.url(f"/users/{quote(user_id)}?$select={USER_SELECT}"))
    except GraphStatus as exc:
        if exc.status == 404:
            return None
        raise DirectoryUnavailable(f"Graph {short_url(exc.url)} answered {exc.status} {exc.code}.") from exc


def read_user(graph: GraphClient, user_id: str) -> UserRecord | None:
    """One user with all its AU memberships and every group it is in through nesting, with the chains through
    which (R28, G2, G5); None when the directory no longer has it."""
    user_id = canonical_guid(user_id)
    item = user_item(graph, user_id)
    if item is None:
        return None
    try:
        au_ids = user_au_ids(graph, user_id)
        group_ids, chains = entra_user_groups.user_groups(graph, user_id)
    except GraphStatus as exc:
        if exc.status == 404:
            return None
        raise DirectoryUnavailable(f"Graph {short_url(exc.url)} answered {exc.status} {exc.code}.") from exc
    return dataclasses.replace(user_record(item, au_ids | group_ids, graph.url(f"/users/{user_id}")), chains=chains)


def tenant_info(graph: GraphClient) -> TenantInfo:
    """GUID from msal's authority discovery, confirmed by GET /organization (which lists the domains)."""
    graph.msal_app()
    guid = graph.tenant_id
    try:
        body = graph.get(graph.url("/organization?$select=id,displayName,verifiedDomains"))
    except GraphStatus as exc:
        raise DirectoryUnavailable(f"Graph {short_url(exc.url)} answered {exc.status} {exc.code}.") from exc
    orgs = body.get("value") or []
    if not orgs:
        raise DirectoryUnavailable("Graph /organization returned no organization.")
    org = orgs[0]
    if str(org.get("id", "")).lower() != guid:
        raise DirectoryAuthError(
            f"Entra ID tenant mismatch: login resolved {graph.settings.tenant} to {guid} but Graph answers "
            f"for {org.get('id')}: check the login host and Graph base URL belong to the same cloud."
        )
    domains = sorted(org.get("verifiedDomains") or [], key=lambda d: (not d.get("isInitial"), d.get("name", "")))
    return TenantInfo(guid=guid, display_name=org.get("displayName") or "",
                      domains=tuple(d["name"].lower() for d in domains if d.get("name")))


def full_snapshot(graph: GraphClient, folder_ids: Collection[str], notes: list[str]) -> Snapshot:
    """Every folder and the users of `folder_ids` (empty: every AU), with the delta links to store (or None)."""
    graph.msal_app()
    links = _fresh_links(graph, notes)
    folders = read_folders(graph)
    known = {f.id for f in folders}
    wanted = {canonical_guid(f) for f in folder_ids} if folder_ids else known
    # An AU that no longer exists has no members: its users fall out of scope (R9, R19). Groups are read
    # through their nested members (G2); a mapped group that is gone fails the plan (G4).
    groups = [f for f in folders if f.id in wanted and f.kind in entra_groups.GROUP_KINDS]
    if groups and links is not None:
        try:  # G6: incremental runs watch every group's members once a group is mapped
            links["groups"] = fresh_delta_link(graph, f"/groups/delta?$select={entra_groups.GROUP_DELTA_SELECT}")
        except (GraphStatus, NoDeltaLink) as exc:
            links = None
            notes.append(f"Delta links not refreshed ({exc}); the next incremental run reads everything.")
    users = entra_groups.with_group_members(graph, read_users(graph, wanted & known - {g.id for g in groups}),
                                            groups)
    return Snapshot(directory_id=graph.tenant_id, folders=tuple(folders), users=tuple(users), complete=True,
                    read_folder_ids=frozenset(wanted), notes=tuple(notes),
                    delta_state={"tenant": graph.tenant_id, **links} if links is not None else None)


def _fresh_links(graph: GraphClient, notes: list[str]) -> dict[str, str] | None:
    """Delta links first: changes made while the full read runs are replayed by the next incremental run.

    A delta link Graph refuses (an answer, not an outage) costs only the next incremental run; an outage that
    outlasts the retries (GraphGaveUp) or a refused permission stops the read here, at its first request.
    """
    try:
        return {
            "users": fresh_delta_link(graph, f"/users/delta?$select={USER_SELECT}"),
            "administrativeUnits": fresh_delta_link(graph, f"/directory/administrativeUnits/delta?$select={AU_SELECT}"),
        }
    except (GraphStatus, NoDeltaLink) as exc:
        notes.append(f"Delta links not refreshed ({exc}); the next incremental run reads everything.")
        return None


def fresh_delta_link(graph: GraphClient, path: str) -> str:
    """A delta link for "from now on": `$deltatoken=latest`, or a whole initial round where it is refused."""
    try:
        body = graph.get(graph.url(f"{path}&$deltatoken=latest"))
    except GraphStatus as exc:
        if exc.status not in (400, 501):
            raise
        body = graph.get(graph.url(path))
    while "@odata.deltaLink" not in body and body.get("@odata.nextLink"):
        body = graph.get(body["@odata.nextLink"])
    if "@odata.deltaLink" not in body:
        raise NoDeltaLink(f"Graph {path.split('?')[0]} gave no delta link")
    return body["@odata.deltaLink"]
