"""Groups for the Graph stand-in (testing/fake_entra.py): the contracts of docs/notes/entra-groups.md.

Kept apart from the stand-in's users and AUs, as a mixin of `FakeEntraServer`, so each file stays about one
thing. It serves:

    GET /groups?$filter=securityEnabled eq true or groupTypes/any(c:c eq 'Unified')&$select=...&$top=...
    GET /groups/{id}                                   404 Request_ResourceNotFound once deleted
    GET /groups/{id}/members[/microsoft.graph.user]    direct members, every type (or users only)
    GET /groups/{id}/transitiveMembers[/microsoft.graph.user]   flat, nested members included, paged
    GET /groups/delta?$select=...,members              rows with members@delta (DIRECT members only)
    GET /users/{id}/memberOf[/microsoft.graph.group]            direct groups (and AUs, uncast)
    GET /users/{id}/transitiveMemberOf[/microsoft.graph.group]  nested groups too (and AUs, uncast), paged

Nesting cycles are allowed (no Microsoft page says they are refused); a group inside a cycle lists itself among
its own transitive members, as the notes assume. Members may be users, groups, devices, organizational contacts
and service principals; only users are users.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

GROUP_DEFAULT_PROPERTIES = ("id", "displayName", "description", "groupTypes", "mailEnabled", "securityEnabled")
# groupTypes / mailEnabled / securityEnabled of each kind of group (notes: "Group types").
GROUP_KINDS = {
    "security": ([], False, True),
    "mail_security": ([], True, True),
    "m365": (["Unified"], True, False),
    "m365_security": (["Unified"], True, True),
    "distribution": ([], True, False),
}


@dataclass
class FakeGroup:
    id: str
    display_name: str
    group_types: list[str]
    mail_enabled: bool
    security_enabled: bool
    members: list[str] = field(default_factory=list)  # direct member ids, in order added
    changed_seq: int = 0

    def graph(self) -> dict[str, Any]:
        return {"@odata.type": "#microsoft.graph.group", "id": self.id, "displayName": self.display_name,
                "description": None, "groupTypes": list(self.group_types), "mailEnabled": self.mail_enabled,
                "securityEnabled": self.security_enabled}


class GroupsMixin:
    """Group state per tenant, its mutations (each logged for groups/delta) and its Graph endpoints."""

    # ---- state (reset by FakeEntraServer.reset through _reset_groups)
    def _reset_groups(self) -> None:
        self.groups_by_tenant: dict[str, dict[str, FakeGroup]] = {}
        self.group_log: list[tuple[int, str, str, str]] = []  # (seq, tenant guid, group id, member id)
        self.group_tombstones: dict[str, tuple[int, str]] = {}  # group id -> (seq, tenant guid)

    def groups_of(self, tenant=None) -> dict[str, FakeGroup]:
        tenant = tenant or self.tenant
        return self.groups_by_tenant.setdefault(tenant.guid, {})

    # ---- mutations
    def add_security_group(self, display_name: str, *, kind: str = "security", members: Iterable[Any] = (),
                           tenant=None, group_id: str | None = None) -> FakeGroup:
        """A group of `kind` ("security", "mail_security", "m365", "m365_security", "distribution")."""
        tenant = tenant or self.tenant
        types, mail, security = GROUP_KINDS[kind]
        with self._lock:
            group = FakeGroup(group_id or str(uuid.uuid4()), display_name, list(types), mail, security,
                              changed_seq=self._next_seq())
            self.groups_of(tenant)[group.id] = group
            for member in members:
                self.add_group_member(group, member, tenant=tenant)
        return group

    def add_contact(self, display_name: str, tenant=None):
        """An organizational contact: a group member that is never a user."""
        return self._add_object("#microsoft.graph.orgContact", display_name, (), tenant or self.tenant)

    def add_service_principal(self, display_name: str, tenant=None):
        return self._add_object("#microsoft.graph.servicePrincipal", display_name, (), tenant or self.tenant)

    def add_group_member(self, group: FakeGroup, member: Any, tenant=None) -> None:
        tenant = tenant or self.tenant
        with self._lock:
            if member.id in group.members:
                return
            group.members.append(member.id)
            self.group_log.append((self._next_seq(), tenant.guid, group.id, member.id))

    def remove_group_member(self, group: FakeGroup, member: Any, tenant=None) -> None:
        tenant = tenant or self.tenant
        with self._lock:
            if member.id in group.members:
                group.members.remove(member.id)
                self.group_log.append((self._next_seq(), tenant.guid, group.id, member.id))

    def rename_group(self, group: FakeGroup, display_name: str) -> None:
        with self._lock:
            group.display_name = display_name
            group.changed_seq = self._next_seq()

    def delete_group(self, group: FakeGroup, tenant=None) -> None:
        """Soft delete (security and Microsoft 365 groups): GET on it and its members answers 404 from now."""
        tenant = tenant or self.tenant
        with self._lock:
            self.groups_of(tenant).pop(group.id, None)
            for other in self.groups_of(tenant).values():
                if group.id in other.members:
                    other.members.remove(group.id)
            self.group_tombstones[group.id] = (self._next_seq(), tenant.guid)

    # ---- Graph
    def _graph_groups(self, tenant, rest: list[str], params: dict[str, str], path: str) -> dict[str, Any]:
        from testing.fake_entra import GraphError, _select

        groups = self.groups_of(tenant)
        if not rest:
            return self._collection("groups", [_select(g.graph(), params, GROUP_DEFAULT_PROPERTIES)
                                               for g in groups.values() if _matches(g, params.get("$filter", ""))],
                                    params, path)
        if rest == ["delta"]:
            return self._group_delta(tenant, params, path)
        group = groups.get(rest[0])
        if group is None:
            raise GraphError(404, "Request_ResourceNotFound", f"Resource '{rest[0]}' does not exist or one of its "
                             "queried reference-property objects are not present.")
        if len(rest) == 1:
            return _select(group.graph(), params, GROUP_DEFAULT_PROPERTIES)
        if rest[1] not in ("members", "transitiveMembers") or len(rest) > 3:
            raise GraphError(400, "BadRequest", f"Unsupported segment {'/'.join(rest[1:])}")
        cast = rest[2] if len(rest) == 3 else None
        if cast not in (None, "microsoft.graph.user", "microsoft.graph.group"):
            raise GraphError(400, "Request_UnsupportedQuery", f"Unsupported cast {cast}")
        ids = group.members if rest[1] == "members" else self._transitive(tenant, group)
        items = [item for member_id in ids if (item := self._member_json(tenant, member_id, params, cast))]
        context = {"microsoft.graph.user": "users", "microsoft.graph.group": "groups"}.get(cast, "directoryObjects")
        return self._collection(context, items, params, path)

    def _transitive(self, tenant, group: FakeGroup) -> list[str]:
        """Every nested member once, breadth first; a cycle ends where it meets a group already walked."""
        groups = self.groups_of(tenant)
        seen: list[str] = []
        known: set[str] = set()
        queue = [group.id]
        walked: set[str] = set()
        while queue:
            current = queue.pop(0)
            if current in walked:
                continue
            walked.add(current)
            for member_id in groups[current].members:
                if member_id not in known:
                    known.add(member_id)
                    seen.append(member_id)
                if member_id in groups:
                    queue.append(member_id)
        return seen

    def _member_json(self, tenant, member_id: str, params: dict[str, str], cast: str | None) -> dict[str, Any] | None:
        from testing.fake_entra import _select

        user = tenant.users.get(member_id)
        if user is not None:
            if user.soft_deleted or cast == "microsoft.graph.group":
                return None
            return self._user_json(user, params, typed=cast is None)
        if cast == "microsoft.graph.user":
            return None
        group = self.groups_of(tenant).get(member_id)
        if group is not None:
            return _select(group.graph(), params, GROUP_DEFAULT_PROPERTIES, keep_type=True)
        if cast is not None:
            return None
        return _select(tenant.objects[member_id].graph(), params, None, keep_type=True)

    def _user_memberships(self, tenant, user, relation: str, cast: str | None, params: dict[str, str],
                          path: str) -> dict[str, Any]:
        """/users/{id}/memberOf and /users/{id}/transitiveMemberOf, as Graph documents them: the groups the user
        is in (directly, or also through nested groups) and its administrative units, each typed by
        @odata.type; cast to microsoft.graph.group or microsoft.graph.administrativeUnit for one kind only.
        Paged like every collection (default 100, $top up to 999); $select applies. Directory roles: none here."""
        from testing.fake_entra import GraphError, _select

        if cast not in (None, "microsoft.graph.group", "microsoft.graph.administrativeUnit"):
            raise GraphError(400, "Request_UnsupportedQuery", f"Unsupported cast {cast}")
        items: list[dict[str, Any]] = []
        if cast != "microsoft.graph.administrativeUnit":
            groups = self.groups_of(tenant).values()
            holding = [g for g in groups if user.id in (g.members if relation == "memberOf"
                                                        else self._transitive(tenant, g))]
            items += [_select(g.graph(), params, GROUP_DEFAULT_PROPERTIES, keep_type=cast is None) for g in holding]
        if cast != "microsoft.graph.group":
            items += self._user_aus(tenant, user, params, typed=cast is None)
        context = {"microsoft.graph.group": "groups",
                   "microsoft.graph.administrativeUnit": "administrativeUnits"}.get(cast, "directoryObjects")
        return self._collection(context, items, params, path)

    def _group_delta(self, tenant, params: dict[str, str], path: str) -> dict[str, Any]:
        window = self._delta_window(params, "groups")
        if window is None:
            return self._latest("groups", path, params.get("$select", ""))
        since, upto, _, _ = window
        groups = self.groups_of(tenant)
        touched: dict[str, set[str]] = {}
        for seq, guid, group_id, member_id in self.group_log:
            if guid == tenant.guid and since < seq <= upto:
                touched.setdefault(group_id, set()).add(member_id)
        items: list[dict[str, Any]] = []
        for group in groups.values():
            if since == 0 and group.changed_seq <= upto:
                members = list(group.members)
            elif since < group.changed_seq <= upto or group.id in touched:
                members = sorted(touched.get(group.id, set()))
            else:
                continue
            entries = []
            for member_id in members:
                entry: dict[str, Any] = {"@odata.type": self._odata_type(tenant, member_id), "id": member_id}
                if member_id not in group.members:
                    entry["@removed"] = {"reason": "deleted"}
                entries.append(entry)
            items.append({**group.graph(), "members@delta": entries})
        if since:
            items += [{"id": gid, "@removed": {"reason": "changed"}}
                      for gid, (seq, guid) in self.group_tombstones.items()
                      if guid == tenant.guid and since < seq <= upto]
        return self._delta_page("groups", path, items, window)

    def _odata_type(self, tenant, member_id: str) -> str:
        if member_id in tenant.users or member_id in tenant.user_tombstones:
            return "#microsoft.graph.user"
        if member_id in self.groups_of(tenant) or member_id in self.group_tombstones:
            return "#microsoft.graph.group"
        return tenant.objects[member_id].odata_type


def _matches(group: FakeGroup, odata_filter: str) -> bool:
    """The two filters the notes name: security groups, and security or Microsoft 365 groups."""
    if not odata_filter:
        return True
    security = "securityEnabled eq true" in odata_filter and group.security_enabled
    unified = "groupTypes/any(c:c eq 'Unified')" in odata_filter and "Unified" in group.group_types
    return security or unified
