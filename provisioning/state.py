"""The portal's state as plain data for the planner: what a run reads besides the directory.

`load_current` and `load_mappings` shape the client's users, the integration's links and its mappings for
the pure planner; `inputs_digest` says whether any of that changed since a run (the run short cut);
`directory_origins` says where one portal user came from. Nothing here writes.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from django.db import connection

from directory.connectors.base import Snapshot, UserRecord
from directory.models import Integration
from passportal.models import GroupMembership, MembershipSource, PortalUser

from .models import CreationIssue, DirectoryLink, Mapping
from .planner import NAMED_GROUP_KINDS, Current, LinkState, MappingRule, Plan, UserState
from .planning.reasons import IssueReason
from .wording import via_chains

# ---------------------------------------------------------------- loading plain state

T = TypeVar("T")


def load_mappings(integration: Integration) -> dict[str, MappingRule]:
    """Every mapping, gone folders included: the planner knows which folders a read saw (R19), and a
    read that sees no folder at all must still count as one that expected users (R21, R22)."""
    groups: dict[int, set[int]] = defaultdict(set)
    for mapping_id, group_id in Mapping.security_groups.through.objects.filter(
        mapping__folder__integration=integration
    ).values_list("mapping_id", "securitygroup_id"):
        groups[mapping_id].add(group_id)
    rules: dict[str, MappingRule] = {}
    # Plain tuples: model instances for 1,000 mappings and their prefetched groups cost ~0.3 s.
    for pk, external_id, path, name, kind, level_id, rank in Mapping.objects.filter(
        folder__integration=integration
    ).values_list("pk", "folder__external_id", "folder__path", "folder__name", "folder__kind", "permission_level_id",
                  "permission_level__rank"):
        rules[external_id] = MappingRule(folder_id=external_id, level_id=level_id, level_rank=rank,
                                         group_ids=frozenset(groups.get(pk, ())), folder_path=path or name,
                                         folder_kind=kind, folder_name=name)
    return rules


def _groups_mapped(integration: Integration) -> bool:
    return Mapping.objects.filter(folder__integration=integration, folder__kind__in=NAMED_GROUP_KINDS).exists()


def _folder_set(value: str | Iterable[str]) -> frozenset[str]:
    # The driver hands JSON over as text on SQLite and as a list on PostgreSQL.
    return frozenset(json.loads(value) if isinstance(value, str) else value)


@dataclass
class Loaded:
    current: Current  # its links carry their rows and state fingerprints, for writing changed links


def _rows(sql: str, params: list) -> Iterator[tuple]:
    """Plain tuples straight from the driver: loading 100,000 rows through the ORM's converters costs seconds.

    Streamed (a server-side cursor on PostgreSQL, as QuerySet.iterator() uses): a plain cursor would hold the
    whole result in the driver while the rows become states, ~75 MB per 100,000 users at the run's peak."""
    with connection.chunked_cursor() as cursor:
        cursor.execute(sql, params)
        while True:
            batch = cursor.fetchmany(10000)
            if not batch:
                return
            yield from batch


def load_current(integration: Integration, *, only_external_ids: Iterable[str] | None = None,
                 listed: Iterable[UserRecord] = ()) -> Loaded:
    """The client's users and this integration's links as plain data (a few queries, streamed).

    `listed`: the users the read listed. A link's id and its user's email, when the read says the same, are then
    the read's own strings, not a second copy of each from the database (~50 MB at 300,000 users).
    """
    # One object for each repeated value (names, group and folder sets; an empty frozenset is a new 216-byte
    # object each time): the driver makes a new one for every row, and a run holds them all until it applies.
    share = _Shared()
    links, record_of_user = _load_links(integration, share, only_external_ids, listed)
    users = _load_users(integration, share, record_of_user)
    open_issues = frozenset(
        CreationIssue.objects.filter(integration=integration, closed_at__isnull=True).values_list(
            "external_id", "reason"
        )
    )
    held_elsewhere = dict(
        DirectoryLink.objects.filter(integration__client_id=integration.client_id)
        .exclude(integration_id=integration.pk).values_list("portal_user_id", "integration__name")
    )
    return Loaded(Current(users=users, links=links, open_issues=open_issues, held_elsewhere=held_elsewhere))


def _load_links(integration: Integration, share: _Shared, only_external_ids: Iterable[str] | None,
                listed: Iterable[UserRecord]) -> tuple[dict[str, LinkState], dict[int, UserRecord]]:
    """This integration's links by external id, and the read's record of each linked user the read listed."""
    by_id = {record.id: record for record in listed}
    record_of_user: dict[int, UserRecord] = {}
    links: dict[str, LinkState] = {}
    wanted = set(only_external_ids) if only_external_ids is not None else None
    # Where each identity was last seen, only when a group is mapped: a reason then names the groups a user
    # was removed from (G4); OU and AU integrations do not pay for reading it.
    folders = ", folder_ids" if _groups_mapped(integration) else ", NULL"
    for pk, ext, uid, state_hash, folder_ids in _rows(
        # Table names come from model metadata, never from input.
        f"SELECT id, external_id, portal_user_id, state_hash{folders} FROM {DirectoryLink._meta.db_table} "  # noqa: S608
        "WHERE integration_id = %s", [integration.pk],
    ):
        if wanted is not None and ext not in wanted:
            continue
        record = by_id.get(ext)
        if record is not None:
            ext = record.id
            record_of_user[uid] = record
        links[ext] = LinkState(ext, uid, share(_folder_set(folder_ids) if folder_ids else frozenset()), pk, state_hash)
    return links, record_of_user


def _load_users(integration: Integration, share: _Shared, record_of_user: dict[int, UserRecord]
                ) -> dict[int, UserState]:
    """The client's users by id; one query: each user with its mapping memberships (a row per membership)."""
    users: dict[int, UserState] = {}
    previous: tuple | None = None
    member_of: list[int] = []
    for row in _rows(
        "SELECT u.id, u.email, u.first_name, u.last_name, u.disabled_reason, u.disabled_by_staff, "  # noqa: S608
        f"u.permission_level_id, u.permission_level_set_by_hand, m.group_id FROM {PortalUser._meta.db_table} u "
        f"LEFT JOIN {GroupMembership._meta.db_table} m ON m.user_id = u.id AND m.source = %s "
        "WHERE u.client_id = %s ORDER BY u.id",
        [MembershipSource.MAPPING, integration.client_id],
    ):
        if previous is not None and row[0] != previous[0]:
            users[previous[0]] = _user_state(previous, member_of, share, record_of_user.get(previous[0]))
            member_of = []
        previous = row
        if row[8] is not None:
            member_of.append(row[8])
    if previous is not None:
        users[previous[0]] = _user_state(previous, member_of, share, record_of_user.get(previous[0]))
    return users


class _Shared:
    """Hands back one object for each equal value it is given (one per load: nothing outlives the run)."""

    def __init__(self) -> None:
        self._seen: dict[object, object] = {}

    def __call__(self, value: T) -> T:
        return self._seen.setdefault(value, value)  # type: ignore[return-value]  # an equal value is of its type


def _user_state(row: tuple, member_of: list[int], share: _Shared, record: UserRecord | None) -> UserState:
    uid, email, first, last, reason, staff, level, by_hand, _ = row
    if record is not None and record.email == email:
        email = record.email  # the read's string: the same email once
    return UserState(uid, email, share(first), share(last), share(reason), bool(staff), level, bool(by_hand),
                     share(frozenset(member_of)))


# ---------------------------------------------------------------- what a run reads besides the directory


def inputs_digest(integration: Integration) -> str:
    """A digest of everything a run's plan and apply read from the portal's own tables for this integration.

    The client's users (the fields the planner reads) and their mapping groups, this integration's links
    (with the fingerprint of what the directory said), its open creation issues, the users other
    integrations of the client hold, its mappings (folder, level and rank, groups), its folder tree, its
    thresholds, and the code that plans. Equal digests mean a run would plan from the same state (the run
    short cut in `sync` relies on it), so every column the planner or the applier reads is in it, and
    nothing that changes on its own (timestamps). One statement on PostgreSQL (one snapshot of the tables).

    On PostgreSQL the large tables (users, memberships, links, issues) are digested by row version, not by
    content: every INSERT, UPDATE or COPY of a row stamps it with the writing transaction's id (`xmin`, MVCC
    itself, which no writer can skip), and a DELETE or TRUNCATE takes the row away, so (count, sum of a hash
    of (id, xmin)) changes with any write to a row the planner reads, whatever the writer (an ORM `update()`,
    raw SQL, another process). A write that changes no column the planner reads also changes it: the next run
    is then planned in full, never skipped wrongly. Measured at 100,000 users: ~0.1 s instead of ~0.7 s for
    hashing the rows' text. Folders are digested by content: every upload's commit stamps their `last_seen`.
    """
    versions = connection.vendor == "postgresql"  # row versions (xmin) on PostgreSQL, the rows' text elsewhere
    parts = _digested_parts(integration)
    digest = hashlib.blake2b(digest_size=16)
    digest.update(repr((_code_version(), integration.link_enabled, integration.disable_threshold_percent,
                        integration.disable_threshold_minimum)).encode())
    with connection.cursor() as cursor:
        if versions:
            cursor.execute("SELECT " + ", ".join(_part_digest(alias, cols, where, order)
                                                 for alias, cols, where, order, _ in parts),
                           [p for *_, params in parts for p in params])
            digest.update(repr(cursor.fetchone()).encode())
        else:
            for _, cols, where, order, params in parts:
                cursor.execute(f"SELECT json_array({cols}) FROM {where} ORDER BY {order}", params)  # noqa: S608
                for (row,) in iter(cursor.fetchone, None):
                    digest.update(row.encode())
                digest.update(b"\x00")
    return digest.hexdigest()


Part = tuple[str | None, str, str, str, list[Any]]


def _digested_parts(integration: Integration) -> list[Part]:
    """The rows inputs_digest covers, one part per table read: (alias digested by row version, or None for by
    content; columns; FROM ... WHERE ...; ORDER BY; params). Table names come from the models."""
    from directory.models import Folder
    from passportal.models import PermissionLevel

    q = connection.ops.quote_name
    user, member, link = (q(m._meta.db_table) for m in (PortalUser, GroupMembership, DirectoryLink))
    issue, mapping, folder = (q(m._meta.db_table) for m in (CreationIssue, Mapping, Folder))
    level, integ = q(PermissionLevel._meta.db_table), q(Integration._meta.db_table)
    through = q(Mapping.security_groups.through._meta.db_table)
    client_id, pk = integration.client_id, integration.pk
    return [
        ("u", "u.id, u.email, u.first_name, u.last_name, u.disabled_reason, u.disabled_by_staff, "
         "u.permission_level_id, u.permission_level_set_by_hand", f"{user} u WHERE u.client_id = %s", "u.id",
         [client_id]),
        ("m", "m.user_id, m.group_id", f"{member} m JOIN {user} u ON u.id = m.user_id WHERE u.client_id = %s "
         "AND m.source = %s", "m.user_id, m.group_id", [client_id, MembershipSource.MAPPING]),
        ("l", "l.id, l.external_id, l.portal_user_id, l.state_hash, l.folder_ids",
         f"{link} l WHERE l.integration_id = %s", "l.id", [pk]),
        ("c", "c.external_id, c.reason", f"{issue} c WHERE c.integration_id = %s AND c.closed_at IS NULL",
         "c.external_id, c.reason", [pk]),
        ("l", "l.portal_user_id, l.integration_id", f"{link} l JOIN {integ} i ON i.id = l.integration_id "
         "WHERE i.client_id = %s AND l.integration_id <> %s", "l.portal_user_id", [client_id, pk]),
        (None, "i.id, i.name", f"{integ} i WHERE i.client_id = %s AND i.id <> %s", "i.id", [client_id, pk]),
        (None, "f.external_id, p.id, p.permission_level_id, v.rank", f"{mapping} p JOIN {folder} f ON "
         f"f.id = p.folder_id JOIN {level} v ON v.id = p.permission_level_id WHERE f.integration_id = %s",
         "f.external_id", [pk]),
        (None, "g.mapping_id, g.securitygroup_id", f"{through} g JOIN {mapping} p ON p.id = g.mapping_id JOIN "
         f"{folder} f ON f.id = p.folder_id WHERE f.integration_id = %s", "g.mapping_id, g.securitygroup_id", [pk]),
        (None, "f.id, f.external_id, f.kind, f.name, f.path, f.parent_id, f.gone",
         f"{folder} f WHERE f.integration_id = %s", "f.id", [pk]),
    ]


def _part_digest(alias: str | None, cols: str, where: str, order: str) -> str:
    """PostgreSQL: one part's digest as a subquery, by row versions (alias given) or by the rows' text."""
    if alias:
        return (f"(SELECT array[count(*), sum(hashint8extended({alias}.id, {alias}.xmin::text::bigint))]::text "  # noqa: S608
                f"FROM {where})")
    # JSON arrays: unambiguous rows whatever the names hold (a "|" in a name cannot shift a field).
    return f"(SELECT md5(coalesce(string_agg(json_build_array({cols})::text, ',' ORDER BY {order}), '')) FROM {where})"  # noqa: S608


# Creation issues a plan of the same read opens again, word for word, whatever else the portal holds: they depend on
# the directory's record alone. An email taken or shared depends on who holds it, which the run itself may change.
_ISSUES_OF_THE_RECORD = frozenset({IssueReason.NO_EMAIL, IssueReason.INVALID_EMAIL})


def replans_to_nothing(snapshot: Snapshot, result: Plan) -> bool:
    """Whether the state this plan leaves, planned again from the same read, plans nothing (a pure decision).

    The planner converges in one run for a complete full read: what it creates, updates, grants and disables is
    what the next plan finds in step. Not so for a read of changes only or of part of the directory (R9: only a
    full read sweeps), a plan that failed, held disables (R22: held again, for staff), noted doubles in the read,
    or creation issues that depend on who holds an email (which this run's own writes may change).
    """
    return (not snapshot.incremental and snapshot.complete and snapshot.folders_complete and not result.failure
            and not result.held_disables and not result.notes
            and all(issue.reason in _ISSUES_OF_THE_RECORD for issue in result.issues_open))


_CODE_VERSION: list[str] = []


def _code_version() -> str:
    """The planner's source (every file of `planner.SOURCES`: its passes live in `planning/`), the applier's and this
    module's, and Django's version (its email validator): new rules, new digest."""
    if not _CODE_VERSION:
        from pathlib import Path

        import django

        from .planner import SOURCES

        here = hashlib.blake2b(digest_size=16)
        # The applier by its path, not imported: it imports this module (Loaded), and an import back would be a circle.
        for source in (*SOURCES, Path(__file__).with_name("applier.py"), Path(__file__)):
            here.update(source.name.encode())
            here.update(source.read_bytes())
        here.update(django.get_version().encode())
        _CODE_VERSION.append(here.hexdigest())
    return _CODE_VERSION[0]


# ---------------------------------------------------------------- one user's origins


def directory_origins(user: PortalUser) -> list[dict]:
    """Each directory identity of a portal user: its integration, the folders it was last seen in, when."""
    from directory.models import Folder

    origins = []
    for link in user.directory_links.select_related("integration").order_by("integration__name"):
        # One read of the link's folders: their paths, and which of them are mapped (the OneToOne's id or None).
        folders = list(Folder.objects.filter(integration=link.integration, external_id__in=link.folder_ids)
                       .values_list("path", "mapping"))
        paths = [path for path, _ in folders]
        # Through which folders and chains of nested groups the last sync found the user in scope (G5): the
        # link keeps the chains of a user in groups; an OU or AU user is in scope through its mapped folders.
        name = f"{user.first_name} {user.last_name}".strip()
        via = (link.directory_state or {}).get("via") or (
            sorted((path for path, mapping in folders if mapping is not None), key=str.lower) if link.in_scope else [])
        via = via_chains(list(via), name) if link.in_scope else []
        origins.append({"link": link, "integration": link.integration, "folders": paths or link.folder_ids,
                        "via": via})
    return origins
