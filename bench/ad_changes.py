"""AD runs that read only what changed (issue 19, section 2), on the benchmark's DC (bench/ad.py).

Each sample: an initial full run in a process of its own (it keeps the DC's mark, as a worker's run would), then,
in this fresh process, the changes made (not timed) and one scheduled run asked for changes only (timed, as a
worker runs it). Floor: bench/ad.py's raw ldap3 paged read of all the same OUs and users, in the same run.

- changes_none: nothing changed; the run must change nobody and have read the changes only.
- changes_1pct: 1% of the users (200, spread over the OUs) get a new first name; the run must update exactly them.
The changes are made to the seeded users themselves (a fresh first name each sample), so samples never collide
and the OU cases' counts stay as they are. Only users and the mark's DC are touched: the groups case's groups,
outside OU=bench20k, are no concern of this read, so `--case groups` may run beside it.
"""

from __future__ import annotations

import subprocess
import sys
import uuid

from bench.ad import HOST, USERS, bench_base_dn, dc, user_dn
from bench.common import measured, setup_django

CHANGED = USERS // 100  # 1%


def _initial_run_elsewhere() -> None:
    done = subprocess.run([sys.executable, str(sys.modules["bench.ad"].__file__), "after_initial", "{}"],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"the initial run before the incremental run failed:\n{done.stdout[-2000:]}\n"
                         f"{done.stderr[-4000:]}")


def _rename_one_percent(server) -> None:
    """A fresh first name for every 100th user (one connection, pipelined as the seed is)."""
    from ldap3 import MODIFY_REPLACE, Connection, Server
    from ldap3 import NONE as NO_INFO

    conn = Connection(Server(HOST, port=636, use_ssl=True, tls=server.tls(), get_info=NO_INFO),
                      server.admin_bind_dn, server.admin_password, auto_bind=True, raise_exceptions=True)
    tag, base = uuid.uuid4().hex[:8], bench_base_dn(server)
    for n in range(0, USERS, USERS // CHANGED):
        conn.modify(user_dn(base, n), {"givenName": [(MODIFY_REPLACE, [f"First{n}-{tag}"])]})
    conn.unbind()


def _changes_run(expected_updates: int) -> dict:
    setup_django(fresh=False)
    from directory.models import Integration
    from provisioning import sync

    integration = Integration.objects.get(name="Bench AD")
    result: dict = {}
    with measured(result):
        run = sync.run_sync(integration, "schedule", full=False)
    if run.status != "succeeded":
        raise SystemExit(f"sync run ended {run.status}: {run.error}")
    read = run.changes.get("read") or {}
    if not read.get("changes_only"):
        raise SystemExit(f"the run did not read the changes only: {read}")
    counts = {k: v for k, v in run.counts.items() if v}
    if counts != ({"updated": expected_updates} if expected_updates else {}):
        raise SystemExit(f"expected {expected_updates} users updated and nothing else, got {counts}")
    result["counts"] = counts
    result["read_searches"] = _searches_of(run)
    return result


def _searches_of(run) -> int:
    return int((run.changes.get("read") or {}).get("searches", 0))


def case_changes_none(params: dict) -> dict:
    _initial_run_elsewhere()
    return _changes_run(0)


def case_changes_1pct(params: dict) -> dict:
    _initial_run_elsewhere()
    _rename_one_percent(dc())
    return _changes_run(CHANGED)

