"""Active Directory end to end: a Samba AD DC with 20,000 users over 200 OUs, through the LDAP connector.

The DC is the test suite's (testing/samba.py) run a second time on 127.0.0.2, only for the benchmark:
20,000 extra users in the tests' DC would make every test's search tens of milliseconds slower
(Samba answers a subtree search from its objectCategory index, then filters by base DN). Its users are
seeded once per machine, in a process of their own, and the seeded directory is kept as a tarball the
DC is restored from whenever it is not running, so seeding is never timed and rarely repeated.

Cases: initial (every user created) and nochange (a second run over the same directory), each through
the engine with an AD integration in direct mode. Floor: a raw ldap3 paged read of the same OUs and
users (same filters, attributes and page size), in the same run.

The groups of case groups (bench/ad_groups.py, issue 16): 200 security groups under OU=bench-groups (a sibling of
OU=bench20k, so the OU cases never read them), in chains nested three deep, holding the 20,000 users between them,
are seeded here too, once, and checked by count before the seeded copy is saved.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from adread.flags import UserAccountControl  # noqa: E402
from bench.common import dispatch, measured, setup_django  # noqa: E402
from bench.e2e import timed_run  # noqa: E402
from testing.samba import SambaDC  # noqa: E402

OU_NAME = "bench20k"
USERS = 20_000
OUS = 200
PAGE_SIZE = 1000
SEED_MARK = f"bench seed complete: {USERS} users in {OUS} OUs"
HOST = "127.0.0.2"  # the tests' DC has 127.0.0.1
STATE_DIR = Path(os.environ.get("PASSPORTAL_BENCH_SAMBA_DIR", "/tmp/passportal-bench-samba"))  # noqa: S108 - like testing/samba.py
SEED_CONNECTIONS = 3  # Samba's prefork LDAP server gives each connection its own worker
SEED_WINDOW = 200  # adds in flight per connection (pipelined; the server answers in order)
GROUPS_OU = "bench-groups"  # beside OU=bench20k, not in it: the OU cases' base DN never holds a group
GROUPS = 200
CHAIN = 3  # groups nested three deep: bg-000 holds bg-001, which holds bg-002; then bg-003 > bg-004 > bg-005 ...
USERS_PER_GROUP = USERS // GROUPS  # each user is a direct member of one group: bg-(n // 100)
GROUP_PREFIX = "bg-"
GROUP_TYPE_GLOBAL_SECURITY = -2147483646  # 0x80000002: global scope, security enabled
GROUPS_SEED_MARK = f"bench groups complete: {GROUPS} security groups nested {CHAIN} deep over {USERS} users"
TREE_DELETE_OID = "1.2.840.113556.1.4.805"


class BenchDC(SambaDC):
    """A second Samba AD DC on 127.0.0.2, only for the benchmark, so its 20,000 users never slow the tests.

    Samba binds its fixed ports per address (`bind interfaces only`), so a DC on 127.0.0.2 runs beside the
    test suite's DC on 127.0.0.1; testing/samba.py gives it its address, its TLS and its life cycle. Its seeded
    directory is kept as a tarball: whenever it is not running, it comes back from that copy in seconds
    instead of being seeded again.
    """

    @property
    def tarball(self) -> Path:
        seeded_copy = self.state_dir / "seeded.tar"
        return seeded_copy if seeded_copy.exists() else self.state_dir / "provisioned.tar"

    def reset_to_provisioned(self) -> None:
        """Stop, forget the seeded copy and start again from the provisioned (empty) domain."""
        self._stop_by_pid()
        (self.state_dir / "seeded.tar").unlink(missing_ok=True)
        shutil.rmtree(self.dc_dir, ignore_errors=True)
        self.ensure_running()

    def save_seeded_copy(self) -> None:
        """Stop, keep the seeded directory as the tarball later starts restore, start again."""
        self._stop_by_pid()
        partial = self.state_dir / "seeded.tar.partial"
        with tarfile.open(partial, "w") as tar:
            tar.add(self.dc_dir, arcname="dc")
        partial.rename(self.state_dir / "seeded.tar")
        self._start_daemon()


def dc() -> BenchDC:
    server = BenchDC(state_dir=STATE_DIR, host=HOST)
    server.ensure_running()
    return server


def bench_base_dn(server) -> str:
    return f"OU={OU_NAME},{server.base_dn}"


# ---------------------------------------------------------------- seeding (once per machine)


def seeded(server) -> bool:
    from ldap3 import BASE
    from ldap3.core.exceptions import LDAPNoSuchObjectResult

    conn = server.admin_connection(timeout=60)
    try:
        conn.search(bench_base_dn(server), "(objectClass=organizationalUnit)", BASE, attributes=["description"])
        entries = list(conn.entries)  # read before unbind, which empties them
        if not entries or SEED_MARK not in (entries[0].description.values or []):
            return False
        # A copy saved before seeds were checked may be marked complete and still miss users: count them.
        users, ous = count_seeded(conn, bench_base_dn(server))
    except LDAPNoSuchObjectResult:
        return False
    finally:
        conn.unbind()
    if (users, ous) != (USERS, OUS + 1):
        print(f"the seeded copy holds {users} users and {ous} OUs, expected {USERS} and {OUS + 1}: seeding again",
              file=sys.stderr)
        return False
    return True


def case_seed(params: dict) -> dict:
    """Users (OU=bench20k) and groups (OU=bench-groups), each unless a complete seed is there; saved once."""
    server = dc()
    start = time.perf_counter()
    users_seeded = not seeded(server)
    if users_seeded:
        seed_users(server)
    groups_seeded_now = not groups_seeded(server)
    if groups_seeded_now:
        seed_groups(server)
    if users_seeded or groups_seeded_now:
        server.save_seeded_copy()  # only after every count above matched
    return {"seconds": time.perf_counter() - start, "seeded": users_seeded, "groups_seeded": groups_seeded_now}


def seed_users(server) -> None:
    """Create OU=bench20k with 200 OUs of 100 users each; raises (nothing saved) when a count is off."""
    from ldap3 import ASYNC, MODIFY_REPLACE, Connection

    # Start from the freshly provisioned directory: a seed cut off half-way is cheaper to drop than to
    # tree-delete (deleting 20,000 objects keeps Samba busy for minutes).
    server.reset_to_provisioned()
    base = bench_base_dn(server)
    admin = server.admin_connection(timeout=600)
    admin.add(base, ["top", "organizationalUnit"], {"ou": OU_NAME})
    for ou in range(OUS):
        admin.add(f"OU=ou-{ou:03d},{base}", ["top", "organizationalUnit"], {"ou": f"ou-{ou:03d}"})

    def attributes(n: int) -> tuple[str, dict]:
        sam = f"b20k-{n:05d}"
        given, sn = f"First{n}", f"Last{n}"
        dn = user_dn(base, n)
        # Enabled without a password (PASSWD_NOTREQD): the portal never logs users in against AD, and
        # skipping the server's password hashing makes seeding several times faster.
        return dn, {"sAMAccountName": sam, "userPrincipalName": f"{sam}@{server.domain}", "givenName": given,
                    "sn": sn, "displayName": f"{given} {sn}", "mail": f"user{n}@bench.example.test",
                    "userAccountControl": int(UserAccountControl.NORMAL_ACCOUNT | UserAccountControl.PASSWD_NOTREQD)}

    errors: list[str] = []

    def add_share(share: int) -> None:
        # Any failure is recorded, never lost with the thread: a seed that lost users must not be kept.
        try:
            conn = Connection(admin.server, server.admin_bind_dn, server.admin_password, client_strategy=ASYNC,
                              auto_bind=True, receive_timeout=600)
            numbers = list(range(share, USERS, SEED_CONNECTIONS))
            for start_at in range(0, len(numbers), SEED_WINDOW):
                ids = []
                for n in numbers[start_at:start_at + SEED_WINDOW]:
                    dn, attrs = attributes(n)
                    ids.append(conn.add(dn, ["top", "person", "organizationalPerson", "user"], attrs))
                for message_id in ids:
                    _, result = conn.get_response(message_id, timeout=600)
                    if result["result"] != 0:
                        errors.append(f"{result['description']}: {result['message']}")
            conn.unbind()
        except Exception as exc:  # reported below, with the seed refused
            errors.append(f"seeding connection {share} stopped: {type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=add_share, args=(s,)) for s in range(SEED_CONNECTIONS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise SystemExit(f"seeding {base} failed ({len(errors)} errors; nothing saved), first: {errors[0]}")
    users, ous = count_seeded(admin, base)
    if (users, ous) != (USERS, OUS + 1):
        raise SystemExit(f"seeding {base} left {users} users and {ous} OUs, expected {USERS} and {OUS + 1}: "
                         "nothing saved, the next bench run seeds again")
    admin.modify(base, {"description": [(MODIFY_REPLACE, [SEED_MARK])]})
    admin.unbind()


def user_dn(base: str, n: int) -> str:
    return f"CN=First{n} Last{n},OU=ou-{n % OUS:03d},{base}"


# ---------------------------------------------------------------- the groups (seeded once, beside the users)


def groups_base_dn(server) -> str:
    return f"OU={GROUPS_OU},{server.base_dn}"


def group_name(g: int) -> str:
    return f"{GROUP_PREFIX}{g:03d}"


def child_group(g: int) -> int | None:
    """The group nested in group g: the next one of its chain of CHAIN (the last group of a chain holds none)."""
    return g + 1 if g % CHAIN != CHAIN - 1 and g + 1 < GROUPS else None


def expected_groups() -> dict:
    """What the seeded groups must hold, and what a read of them through nesting must give."""
    parent = {child: g for g in range(GROUPS) if (child := child_group(g)) is not None}

    def depth(g: int) -> int:  # how many groups a direct member of g is in, g included
        return 1 + (depth(parent[g]) if g in parent else 0)

    return {
        "groups": GROUPS,
        "member_values": USERS + len(parent),  # every user once, and each nested group in its parent
        "memberships": sum(USERS_PER_GROUP * depth(g) for g in range(GROUPS)),  # user x group, through nesting
        "deepest": max(depth(g) for g in range(GROUPS)),
    }


def groups_seeded(server) -> bool:
    from ldap3 import BASE
    from ldap3.core.exceptions import LDAPNoSuchObjectResult

    conn = server.admin_connection(timeout=60)
    try:
        conn.search(groups_base_dn(server), "(objectClass=organizationalUnit)", BASE, attributes=["description"])
        entries = list(conn.entries)
        if not entries or GROUPS_SEED_MARK not in (entries[0].description.values or []):
            return False
        counted = count_groups(conn, groups_base_dn(server))
    except LDAPNoSuchObjectResult:
        return False
    finally:
        conn.unbind()
    wanted = expected_groups()
    if counted != (wanted["groups"], wanted["member_values"], wanted["groups"]):
        print(f"the seeded copy holds {counted} (groups, member values, security groups), expected "
              f"{wanted['groups']}, {wanted['member_values']}, {wanted['groups']}: seeding the groups again",
              file=sys.stderr)
        return False
    return True


def seed_groups(server) -> None:
    """OU=bench-groups with GROUPS security groups in chains of CHAIN, each holding 100 users directly.

    A partial OU=bench-groups (a seed cut off) is tree-deleted first: 201 objects, unlike the users' 20,000.
    Raises (and nothing is saved) when the groups or their member values counted afterwards are off.
    """
    from ldap3 import MODIFY_REPLACE
    from ldap3.core.exceptions import LDAPNoSuchObjectResult

    base, users_base = groups_base_dn(server), bench_base_dn(server)
    admin = server.admin_connection(timeout=600)
    with contextlib.suppress(LDAPNoSuchObjectResult):
        admin.delete(base, controls=[(TREE_DELETE_OID, True, None)])
    admin.add(base, ["top", "organizationalUnit"], {"ou": GROUPS_OU})
    for g in reversed(range(GROUPS)):  # a chain's inner group first: its parent names it as a member
        members = [user_dn(users_base, n) for n in range(g * USERS_PER_GROUP, (g + 1) * USERS_PER_GROUP)]
        if (child := child_group(g)) is not None:
            members.append(f"CN={group_name(child)},{base}")
        admin.add(f"CN={group_name(g)},{base}", ["top", "group"],
                  {"sAMAccountName": group_name(g), "groupType": GROUP_TYPE_GLOBAL_SECURITY, "member": members})
    counted = count_groups(admin, base)
    wanted = expected_groups()
    if counted != (wanted["groups"], wanted["member_values"], wanted["groups"]):
        raise SystemExit(f"seeding {base} left {counted} (groups, member values, security groups), expected "
                         f"{wanted['groups']}, {wanted['member_values']}, {wanted['groups']}: nothing saved, "
                         "the next bench run seeds the groups again")
    admin.modify(base, {"description": [(MODIFY_REPLACE, [GROUPS_SEED_MARK])]})
    admin.unbind()


def count_groups(conn, base: str) -> tuple[int, int, int]:
    """(groups, member values, security groups) under base, by a paged read."""
    from ldap3 import SUBTREE

    from adread.groups import SECURITY_ENABLED

    found = values = security = 0
    for item in conn.extend.standard.paged_search(base, "(objectClass=group)", SUBTREE,
                                                  attributes=["member", "groupType"], paged_size=PAGE_SIZE,
                                                  generator=True):
        if item.get("type") != "searchResEntry":
            continue
        found += 1
        values += len(item["raw_attributes"].get("member", []))
        group_type = item["raw_attributes"].get("groupType", [b"0"])[0]
        security += bool(int(group_type) & SECURITY_ENABLED)
    return found, values, security


def count_seeded(conn, base: str) -> tuple[int, int]:
    """(users, OUs) under base, counted by a paged read: what a seed must have before it is kept."""
    from ldap3 import SUBTREE

    counts = []
    for search_filter in ("(&(objectCategory=person)(objectClass=user))", "(objectClass=organizationalUnit)"):
        found = 0
        for item in conn.extend.standard.paged_search(base, search_filter, SUBTREE, attributes=["objectGUID"],
                                                      paged_size=PAGE_SIZE, generator=True):
            found += item.get("type") == "searchResEntry"
        counts.append(found)
    return counts[0], counts[1]


def ensure_seeded() -> None:
    """Seed in a process of its own, so the case's peak memory is the case's alone."""
    result = subprocess.run([sys.executable, __file__, "seed", "{}"], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"seeding the bench OU failed:\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}")
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    if outcome.get("seeded"):
        print(f"seeded {USERS} users under OU={OU_NAME} in {outcome['seconds']:.0f} s (kept for later runs)",
              file=sys.stderr)
    if outcome.get("groups_seeded"):
        print(f"seeded {GROUPS} groups under OU={GROUPS_OU} ({outcome['seconds']:.0f} s with saving the copy)",
              file=sys.stderr)


# ---------------------------------------------------------------- the cases


def setup() -> object:
    """A fresh database with an AD integration whose 200 OUs are recorded and mapped."""
    ensure_seeded()
    server = dc()
    setup_django(fresh=True)
    from bench.e2e import make_client, map_folders
    from directory.models import Integration
    from provisioning import sync

    integration = Integration.objects.create(
        client=make_client(), name="Bench AD", kind="ad", ad_mode="direct", ldap_urls=server.ldaps_url,
        base_dn=bench_base_dn(server), bind_dn=server.admin_bind_dn, bind_password=server.admin_password,
        tls_mode="ldaps", tls_ca_pem=server.ca_pem, page_size=PAGE_SIZE, disable_threshold_percent=100,
    )
    sync.run_sync(integration, "command")  # nothing mapped yet: records the folder tree (R19)
    child_ous = integration.folders.exclude(path=OU_NAME).values_list("external_id", flat=True)
    if map_folders(integration, child_ous) != OUS:
        raise SystemExit(f"expected {OUS} OUs under {integration.base_dn}, found {len(child_ous)}")
    return integration


def case_initial(params: dict) -> dict:
    integration = setup()
    result: dict = {}
    timed_run(integration, result)
    if result["counts"].get("created") != USERS:
        raise SystemExit(f"expected {USERS} users created, got {result['counts']}")
    return result


def case_after_initial(params: dict) -> dict:
    """Not timed: the initial run the no-change case follows, in a process of its own."""
    integration = setup()
    result: dict = {}
    timed_run(integration, result)
    if result["counts"].get("created") != USERS:
        raise SystemExit(f"expected {USERS} users created, got {result['counts']}")
    return result


def case_nochange(params: dict) -> dict:
    """A worker's no-change run: a fresh process, after the initial run made in another one."""
    done = subprocess.run([sys.executable, __file__, "after_initial", "{}"], capture_output=True, text=True,
                          check=False)
    if done.returncode != 0:
        raise SystemExit(f"the initial run before the no-change run failed:\n{done.stdout[-2000:]}\n"
                         f"{done.stderr[-4000:]}")
    setup_django(fresh=False)
    from directory.models import Integration

    integration = Integration.objects.get(name="Bench AD")
    result: dict = {}
    timed_run(integration, result)
    if result["counts"]:
        raise SystemExit(f"a run with nothing changed changed something: {result['counts']}")
    return result


def case_floor(params: dict) -> dict:
    """Connect, bind and page through the same OUs and users with ldap3 alone, keeping the raw entries."""
    ensure_seeded()
    server = dc()
    setup_django(fresh=False)
    from ldap3 import NONE, SUBTREE, Connection, Server

    from directory.connectors.ldap import OU_ATTRIBUTES, OU_FILTER, USER_ATTRIBUTES, USER_FILTER

    base = bench_base_dn(server)
    result: dict = {}
    with measured(result):
        conn = Connection(Server(HOST, port=636, use_ssl=True, tls=server.tls(), get_info=NONE),
                          server.admin_bind_dn, server.admin_password, auto_bind=True, raise_exceptions=True,
                          read_only=True)
        entries = []
        for search_filter, attributes in ((OU_FILTER, OU_ATTRIBUTES), (USER_FILTER, USER_ATTRIBUTES)):
            for item in conn.extend.standard.paged_search(base, search_filter, SUBTREE, attributes=list(attributes),
                                                          paged_size=PAGE_SIZE, generator=True):
                if item.get("type") == "searchResEntry":
                    entries.append((item["dn"], item["raw_attributes"]))
        conn.unbind()
    result["entries"] = len(entries)
    if len(entries) != USERS + OUS + 1:
        raise SystemExit(f"the floor read {len(entries)} entries, expected {USERS} users and {OUS + 1} OUs")
    return result


if __name__ == "__main__":
    from bench.ad_attributes import case_attributes, case_attributes_floor  # issue 19: the query's weight
    from bench.ad_changes import case_changes_1pct, case_changes_none  # issue 19: runs that read what changed
    from bench.ad_groups import case_groups, case_groups_floor  # issue 16: the group read

    dispatch({"changes_none": case_changes_none, "changes_1pct": case_changes_1pct,
              "seed": case_seed, "initial": case_initial, "after_initial": case_after_initial,
              "nochange": case_nochange, "floor": case_floor, "groups": case_groups,
              "groups_floor": case_groups_floor, "attributes": case_attributes,
              "attributes_floor": case_attributes_floor})
