"""Active Directory end to end: a Samba AD DC with 20,000 users over 200 OUs, through the LDAP connector.

The DC is the test suite's (tests/samba.py) run a second time on 127.0.0.2, only for the benchmark:
20,000 extra users in the tests' DC would make every test's search tens of milliseconds slower
(Samba answers a subtree search from its objectCategory index, then filters by base DN). Its users are
seeded once per machine, in a process of their own, and the seeded directory is kept as a tarball the
DC is restored from whenever it is not running, so seeding is never timed and rarely repeated.

Cases: initial (every user created) and nochange (a second run over the same directory), each through
the engine with an AD integration in direct mode. Floor: a raw ldap3 paged read of the same OUs and
users (same filters, attributes and page size), in the same run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import dispatch, measured, setup_django  # noqa: E402
from bench.e2e import timed_run  # noqa: E402

OU_NAME = "bench20k"
USERS = 20_000
OUS = 200
PAGE_SIZE = 1000
SEED_MARK = f"bench seed complete: {USERS} users in {OUS} OUs"
HOST = "127.0.0.2"  # the tests' DC has 127.0.0.1
STATE_DIR = Path(os.environ.get("PASSPORTAL_BENCH_SAMBA_DIR", "/tmp/passportal-bench-samba"))  # noqa: S108 - like tests/samba.py
UAC_NORMAL_ACCOUNT = 0x200
UAC_PASSWD_NOTREQD = 0x20
SEED_CONNECTIONS = 3  # Samba's prefork LDAP server gives each connection its own worker
SEED_WINDOW = 200  # adds in flight per connection (pipelined; the server answers in order)


def bench_dc_class():
    from ldap3 import NONE, Connection, Server

    from tests.samba import ADMIN_BIND_DN, ADMIN_PASSWORD, SambaDC

    class _BenchDC(SambaDC):
        """A second Samba AD DC on 127.0.0.2, only for the benchmark, so its 20,000 users never slow the tests.

        Samba binds its fixed ports per address (`bind interfaces only`), so a DC on 127.0.0.2 runs beside
        the test suite's DC on 127.0.0.1. Its seeded directory is kept as a tarball: whenever it is not
        running, it comes back from that copy in seconds instead of being seeded again.
        """

        @property
        def tarball(self) -> Path:
            seeded_copy = self.state_dir / "seeded.tar"
            return seeded_copy if seeded_copy.exists() else self.state_dir / "provisioned.tar"

        def _make_tls(self) -> None:
            if (self.tls_dir / "ca.pem").exists():
                return
            import trustme

            self.tls_dir.mkdir(parents=True, exist_ok=True)
            ca = trustme.CA(organization_name="passportal bench CA")
            leaf = ca.issue_cert(HOST, "localhost", key_type=trustme.KeyType.RSA)
            leaf.private_key_pem.write_to_path(str(self.tls_dir / "server.key"))
            (self.tls_dir / "server.key").chmod(0o600)
            with open(self.tls_dir / "server.pem", "wb") as out:
                for blob in leaf.cert_chain_pems:
                    out.write(blob.bytes())
            ca.cert_pem.write_to_path(str(self.tls_dir / "ca.pem"))

        def _start_daemon(self) -> None:
            # Samba binds only addresses an interface carries: give loopback a second one (root, as Samba).
            shown = subprocess.run(["ip", "-o", "addr", "show", "dev", "lo"], capture_output=True, text=True)
            if f"inet {HOST}/" not in shown.stdout:
                subprocess.run(["ip", "addr", "add", f"{HOST}/8", "dev", "lo"], check=True, capture_output=True)
            (self.dc_dir / "log").mkdir(exist_ok=True)
            # The copy was provisioned like the tests' DC: move every listener to our own address.
            conf = self.smb_conf.read_text().replace("interfaces = 127.0.0.1", f"interfaces = {HOST}")
            self.smb_conf.write_text(conf)
            super()._start_daemon()

        def admin_connection(self, timeout: int = 5) -> Connection:
            server = Server(HOST, port=636, use_ssl=True, tls=self.tls(), connect_timeout=timeout, get_info=NONE)
            return Connection(server, ADMIN_BIND_DN, ADMIN_PASSWORD, auto_bind=True, raise_exceptions=True,
                              receive_timeout=timeout)

        def _port_open(self, port: int) -> bool:
            import socket

            with socket.socket() as sock:
                sock.settimeout(0.5)
                return sock.connect_ex((HOST, port)) == 0

        def reset_to_provisioned(self) -> None:
            """Stop, forget the seeded copy and start again from the provisioned (empty) domain."""
            import shutil

            self._stop_by_pid()
            (self.state_dir / "seeded.tar").unlink(missing_ok=True)
            shutil.rmtree(self.dc_dir, ignore_errors=True)
            self.ensure_running()

        def save_seeded_copy(self) -> None:
            """Stop, keep the seeded directory as the tarball later starts restore, start again."""
            import tarfile

            self._stop_by_pid()
            partial = self.state_dir / "seeded.tar.partial"
            with tarfile.open(partial, "w") as tar:
                tar.add(self.dc_dir, arcname="dc")
            partial.rename(self.state_dir / "seeded.tar")
            self._start_daemon()

    return _BenchDC


def dc():
    server = bench_dc_class()(state_dir=STATE_DIR, ldaps_url=f"ldaps://{HOST}:636", starttls_url=f"ldap://{HOST}:389")
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
    """Create OU=bench20k with 200 OUs of 100 users each, unless a complete seed is already there."""
    from ldap3 import ASYNC, MODIFY_REPLACE, Connection

    server = dc()
    if seeded(server):
        return {"seconds": 0.0, "seeded": False}
    start = time.perf_counter()
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
        dn = f"CN={given} {sn},OU=ou-{n % OUS:03d},{base}"
        # Enabled without a password (PASSWD_NOTREQD): the portal never logs users in against AD, and
        # skipping the server's password hashing makes seeding several times faster.
        return dn, {"sAMAccountName": sam, "userPrincipalName": f"{sam}@{server.domain}", "givenName": given,
                    "sn": sn, "displayName": f"{given} {sn}", "mail": f"user{n}@bench.example.test",
                    "userAccountControl": UAC_NORMAL_ACCOUNT | UAC_PASSWD_NOTREQD}

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
    server.save_seeded_copy()
    return {"seconds": time.perf_counter() - start, "seeded": True}


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


# ---------------------------------------------------------------- the cases


def setup() -> object:
    """A fresh database with an AD integration whose 200 OUs are recorded and mapped."""
    ensure_seeded()
    server = dc()
    setup_django(fresh=True)
    from bench.e2e import make_client, map_folders
    from directory.models import Integration
    from provisioning import services

    integration = Integration.objects.create(
        client=make_client(), name="Bench AD", kind="ad", ad_mode="direct", ldap_urls=server.ldaps_url,
        base_dn=bench_base_dn(server), bind_dn=server.admin_bind_dn, bind_password=server.admin_password,
        tls_mode="ldaps", tls_ca_pem=server.ca_pem, page_size=PAGE_SIZE, disable_threshold_percent=100,
    )
    services.run_sync(integration, "command")  # nothing mapped yet: records the folder tree (R19)
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
    dispatch({"seed": case_seed, "initial": case_initial, "after_initial": case_after_initial,
              "nochange": case_nochange, "floor": case_floor})
