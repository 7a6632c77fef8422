"""Case groups (issue 16, Performance), on the benchmark's DC (bench/ad.py, which seeds the groups).

200 security groups under OU=bench-groups (a sibling of OU=bench20k, so the OU cases never read them), in chains
nested three deep, holding the 20,000 users between them, all 200 mapped; an initial `run_sync` over the domain
root, and what its read spends on memberships (the group search and the nesting walk) set against a raw ldap3 paged
read of the same group entries with their `member` values (the floor).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

from bench.ad import (
    GROUP_PREFIX,
    GROUPS,
    HOST,
    PAGE_SIZE,
    USERS,
    dc,
    ensure_seeded,
    expected_groups,
    groups_base_dn,
)
from bench.common import measured, setup_django
from bench.e2e import timed_run


def groups_setup() -> object:
    """A fresh database, an AD integration over the domain root (users and groups are in sibling OUs), and
    the 200 bench groups recorded and mapped; no OU is mapped, so the groups alone put users in scope."""
    ensure_seeded()
    server = dc()
    setup_django(fresh=True)
    from bench.e2e import make_client, map_folders
    from directory.models import Integration
    from provisioning import sync

    integration = Integration.objects.create(
        client=make_client(), name="Bench AD groups", kind="ad", ad_mode="direct", ldap_urls=server.ldaps_url,
        base_dn=server.base_dn, bind_dn=server.admin_bind_dn, bind_password=server.admin_password,
        tls_mode="ldaps", tls_ca_pem=server.ca_pem, page_size=PAGE_SIZE, disable_threshold_percent=100,
    )
    sync.run_sync(integration, "command")  # nothing mapped yet: records the folders, groups among them
    bench_groups = integration.folders.filter(kind="gr", name__regex=rf"^{GROUP_PREFIX}[0-9]{{3}}$")
    ids = list(bench_groups.values_list("external_id", flat=True))
    if len(ids) != GROUPS or map_folders(integration, ids) != GROUPS:
        raise SystemExit(f"expected {GROUPS} bench security groups under {server.base_dn}, found {len(ids)}")
    return integration


class MembershipProbe:
    """Watches one AD read from outside while installed: the group search with the graph built from it
    (`_read_groups`, which pages through the groups as it builds), the nesting walk that works out once who is in
    which group (`adread.groups.Memberships`), each user's lookup in it while its record is built (`Memberships.of`,
    timed call by call, so the timer's own cost is counted too), the whole read and its LDAP searches; and what the
    read saw (`seen`), to check it against what was seeded."""

    def __init__(self) -> None:
        self.figures = {"group_read_seconds": 0.0, "walk_seconds": 0.0, "join_seconds": 0.0, "read_seconds": 0.0,
                        "group_searches": 0, "read_searches": 0, "reads": 0, "group_reads": 0, "walks": 0,
                        "joins": 0}
        self.seen: dict = {}

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        patched = self._timed_steps()
        for owner, name, _, timed in patched:
            setattr(owner, name, timed)
        try:
            yield
        finally:
            for owner, name, original, _ in patched:
                setattr(owner, name, original)

    def _timed_steps(self) -> tuple:
        """(owner, name, original, timed) for each step of the read that is watched."""
        from adread import groups as adgroups
        from adread import ldap as adldap
        from adread.connection import search_count

        probe, seen, clock = self.figures, self.seen, time.perf_counter
        read_groups, read_everything = adldap.LdapConnector._read_groups, adldap.LdapConnector.read_everything
        walk, join = adgroups.Memberships.__init__, adgroups.Memberships.of

        def timed_read_groups(connector, conn):
            before, start = search_count(conn), clock()
            graph = read_groups(connector, conn)
            probe["group_read_seconds"] += clock() - start
            probe["group_searches"] += search_count(conn) - before
            probe["group_reads"] += 1
            seen["bench_groups"] = sum(1 for f in graph.folders if f.name.startswith(GROUP_PREFIX))
            seen["member_values"] = sum(len(graph.members[key]) for key in graph.members
                                        if graph.names.get(graph.ids[key], "").startswith(GROUP_PREFIX))
            return graph

        def timed_walk(memberships, *args, **kwargs):
            start = clock()
            walk(memberships, *args, **kwargs)
            probe["walk_seconds"] += clock() - start
            probe["walks"] += 1

        def timed_join(memberships, dn, folder):
            start = clock()
            found = join(memberships, dn, folder)
            probe["join_seconds"] += clock() - start
            probe["joins"] += 1
            return found

        def timed_everything(connector, conn, *args, **kwargs):
            before, start = search_count(conn), clock()
            try:
                snapshot = read_everything(connector, conn, *args, **kwargs)
            finally:
                probe["read_seconds"] += clock() - start
                probe["read_searches"] += search_count(conn) - before
                probe["reads"] += 1
            seen["users"] = len(snapshot.users)
            seen["memberships"] = sum(len(u.chains) for u in snapshot.users)
            seen["deepest"] = max((len(chain) - 1 for u in snapshot.users for chain in u.chains), default=0)
            return snapshot

        return ((adldap.LdapConnector, "_read_groups", read_groups, timed_read_groups),
                (adldap.LdapConnector, "read_everything", read_everything, timed_everything),
                (adgroups.Memberships, "__init__", walk, timed_walk), (adgroups.Memberships, "of", join, timed_join))


def case_groups(params: dict) -> dict:
    """An initial run with the 200 groups mapped; the figure is what its read spends on memberships.

    The run's read (one LdapConnector.read_everything: a first run has no mark to read changes from) is watched
    by a MembershipProbe. The OU and user searches the read makes as well are in `read_seconds`, not the figure:
    they are the OU cases' read, measured against their own floor.
    """
    integration = groups_setup()
    probe = MembershipProbe()
    result: dict = {}
    with probe.installed():
        timed_run(integration, result)
    figures, wanted = probe.figures, expected_groups()
    got = {key: probe.seen.get(key) for key in ("bench_groups", "member_values", "users", "memberships", "deepest")}
    expected = {"bench_groups": GROUPS, "member_values": wanted["member_values"], "users": USERS,
                "memberships": wanted["memberships"], "deepest": wanted["deepest"]}
    if got != expected or (figures["reads"], figures["group_reads"], figures["walks"]) != (1, 1, 1):
        raise SystemExit(f"the group read gave {got} in {figures['reads']} reads, expected {expected} in one")
    if result["counts"].get("created") != USERS:
        raise SystemExit(f"expected {USERS} users created, got {result['counts']}")
    result.update(figures, **{f"seen_{k}": v for k, v in got.items()})
    result["run_seconds"] = result["seconds"]
    # The figure: the membership read (group search and graph, nesting walk, each user's lookup).
    result["seconds"] = figures["group_read_seconds"] + figures["walk_seconds"] + figures["join_seconds"]
    result["searches_per_group"] = figures["read_searches"] / GROUPS
    return result


def case_groups_floor(params: dict) -> dict:
    """ldap3 alone: page through the same group entries (same base, filter, attributes, page size), keeping
    the raw entries with their `member` values. Connect and bind are outside the figure, as in the case,
    whose group search runs on the read's open connection."""
    ensure_seeded()
    server = dc()
    setup_django(fresh=False)
    from ldap3 import NONE, SUBTREE, Connection, Server

    from adread.groups import GROUP_ATTRIBUTES, GROUP_FILTER

    result: dict = {}
    start = time.perf_counter()
    conn = Connection(Server(HOST, port=636, use_ssl=True, tls=server.tls(), get_info=NONE),
                      server.admin_bind_dn, server.admin_password, auto_bind=True, raise_exceptions=True,
                      read_only=True)
    result["connect_seconds"] = time.perf_counter() - start
    entries = []
    with measured(result):
        for item in conn.extend.standard.paged_search(server.base_dn, GROUP_FILTER, SUBTREE,
                                                      attributes=list(GROUP_ATTRIBUTES), paged_size=PAGE_SIZE,
                                                      generator=True):
            if item.get("type") == "searchResEntry":
                entries.append((item["dn"], item["raw_attributes"]))
    conn.unbind()
    suffix = f",{groups_base_dn(server)}".lower()
    bench = [attrs for dn, attrs in entries if dn.lower().endswith(suffix)]
    values = sum(len(attrs.get("member", [])) for attrs in bench)
    result.update(groups_read=len(entries), bench_groups=len(bench), member_values=values)
    if (len(bench), values) != (GROUPS, expected_groups()["member_values"]):
        raise SystemExit(f"the floor read {len(bench)} bench groups with {values} member values, expected "
                         f"{GROUPS} with {expected_groups()['member_values']}")
    return result
