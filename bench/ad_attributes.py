"""What each attribute of the AD user query costs (issue 19, section 2: "the query no heavier than it must be").

On the benchmark's DC (bench/ad.py: 20,000 users under OU=bench20k), one process reads the same 20,000 users with
raw ldap3 paged searches (same filter, base and page size as the connector), each over a fresh LDAPS connection:

- a 6-attribute read, the issue's reference: objectGUID, sAMAccountName, userPrincipalName, mail,
  userAccountControl, distinguishedName;
- that read with the attributes the planner also uses added one at a time (givenName, sn, displayName: names for
  R6 and for people to read);
- the portal's query as it is (adread.search.USER_ATTRIBUTES: what the planner uses, the DN coming with every entry);
- the portal's query with each attribute it once asked for and nobody used added back alone (sAMAccountName,
  distinguishedName, whenChanged, uSNChanged), and with all four (the query before issue 19).

Every read must see 20,000 entries. The reads are interleaved over `rounds` (the same list each round) and the median
of each is reported: wall time, the process's CPU time (ldap3 decoding its answers) and the bytes received.

    .venv/bin/python -m bench.ad_attributes [rounds]     # prints the table
    .venv/bin/python bench/run.py --only ad --case attributes --repeat 3   # the portal's query against the 6
"""

from __future__ import annotations

import statistics
import sys
import time

from bench.ad import HOST, PAGE_SIZE, USERS, bench_base_dn, dc, ensure_seeded

REFERENCE = ("objectGUID", "sAMAccountName", "userPrincipalName", "mail", "userAccountControl", "distinguishedName")
PLANNER_EXTRAS = ("givenName", "sn", "displayName")
DROPPED = ("sAMAccountName", "distinguishedName", "whenChanged", "uSNChanged")  # asked for before, used by nobody


def reads() -> list[tuple[str, tuple[str, ...]]]:
    """(label, attributes) of each read of a round, in order."""
    from adread.search import USER_ATTRIBUTES

    ladder = [("reference (6)", REFERENCE)]
    for name in PLANNER_EXTRAS:
        ladder.append((f"+{name}", ladder[-1][1] + (name,)))
    ladder.append((f"the portal's query ({len(USER_ATTRIBUTES)})", USER_ATTRIBUTES))
    ladder += [(f"query +{name}", (*USER_ATTRIBUTES, name)) for name in DROPPED]
    ladder.append((f"query + all four (before, {len(USER_ATTRIBUTES) + len(DROPPED)})", USER_ATTRIBUTES + DROPPED))
    return ladder


def raw_read(server, attributes: tuple[str, ...]) -> dict:
    """Connect, bind and page through the users with ldap3 alone, keeping the raw entries; checked to be 20,000."""
    from ldap3 import NONE, SUBTREE, Connection, Server

    from adread.search import USER_FILTER

    wall, cpu = time.perf_counter(), time.process_time()
    conn = Connection(Server(HOST, port=636, use_ssl=True, tls=server.tls(), get_info=NONE), server.admin_bind_dn,
                      server.admin_password, auto_bind=True, raise_exceptions=True, read_only=True, collect_usage=True)
    entries = []
    for item in conn.extend.standard.paged_search(bench_base_dn(server), USER_FILTER, SUBTREE,
                                                  attributes=list(attributes), paged_size=PAGE_SIZE, generator=True):
        if item.get("type") == "searchResEntry":
            entries.append((item["dn"], item["raw_attributes"]))
    received = conn.usage.bytes_received
    conn.unbind()
    figures = {"seconds": time.perf_counter() - wall, "cpu_seconds": time.process_time() - cpu, "bytes": received}
    if len(entries) != USERS:
        raise SystemExit(f"the read of {attributes} saw {len(entries)} users, expected {USERS}")
    return figures


def ladder(rounds: int) -> list[dict]:
    ensure_seeded()
    server = dc()
    samples: dict[str, list[dict]] = {}
    plan = reads()
    for _ in range(rounds):
        for label, attributes in plan:
            samples.setdefault(label, []).append(raw_read(server, attributes))
    rows = []
    for label, attributes in plan:
        row = {"read": label, "attributes": len(attributes)}
        for key in ("seconds", "cpu_seconds", "bytes"):
            row[key] = statistics.median(s[key] for s in samples[label])
        rows.append(row)
    reference = rows[0]
    for row in rows:
        row["vs_reference"] = {key: row[key] - reference[key] for key in ("seconds", "cpu_seconds", "bytes")}
    return rows


def case_attributes(params: dict) -> dict:
    """One sample: the portal's query, raw (its floor, case attributes_floor, is the 6-attribute reference)."""
    from adread.search import USER_ATTRIBUTES

    ensure_seeded()
    return raw_read(dc(), USER_ATTRIBUTES)


def case_attributes_floor(params: dict) -> dict:
    ensure_seeded()
    return raw_read(dc(), REFERENCE)


def print_table(rows: list[dict], rounds: int) -> None:
    print(f"{USERS:,} users, raw ldap3 paged reads over LDAPS, page size {PAGE_SIZE}, median of {rounds} rounds")
    print(f"{'read':42} {'attrs':>5} {'wall':>8} {'cpu':>8} {'bytes':>11}   {'vs the 6: wall':>14} {'cpu':>8} "
          f"{'bytes':>11}")
    for r in rows:
        d = r["vs_reference"]
        print(f"{r['read']:42} {r['attributes']:>5} {r['seconds']:>7.2f}s {r['cpu_seconds']:>7.2f}s {r['bytes']:>11,}"
              f"   {d['seconds']:>+13.2f}s {d['cpu_seconds']:>+7.2f}s {d['bytes']:>+11,}")


if __name__ == "__main__":
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    print_table(ladder(count), count)
