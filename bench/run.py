"""`make bench`: sync at scale, each case beside a floor measured in the same run on the same machine.

Every measurement runs in a fresh subprocess (so peak memory is that case's own), at least 3 times;
the table shows medians. Not a test: CI does not run it.

    .venv/bin/python bench/run.py                 # every case
    .venv/bin/python bench/run.py --only portal   # one group: portal, ad, entra, email, scaleout
    .venv/bin/python bench/run.py --only ad --case groups --repeat 1   # one case of a group
    .venv/bin/python bench/run.py --only portal --users 300000 --repeat 1   # the portal group at another size
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DEFAULT_DB = "postgres://postgres@127.0.0.1:5432/portal_bench"
# A group whose script has another name: bench/email.py would shadow the standard library's email package.
MODULES = {"email": "mail"}
DETAILS = ("run_seconds", "read_seconds", "group_read_seconds", "walk_seconds", "join_seconds", "read_searches",
           "group_searches", "searches_per_group", "graph_requests", "graph_429", "max_in_flight", "read_concurrency")


def bench_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("DATABASE_URL", os.environ.get("BENCH_DATABASE_URL", DEFAULT_DB))
    env.setdefault("SECRET_KEY", "bench-only-secret-key-not-for-production-0123456789abcdefgh")
    env.setdefault("FIELD_ENCRYPTION_KEYS", "tWf3bQ8xv0v4b0dQ1Y5pL0xY8cG9w3oJr0e2Q2o6y4E=")
    env.setdefault("DJANGO_SETTINGS_MODULE", "passportal.settings")
    env.setdefault("ENTRA_ALLOWED_HOSTS", "127.0.0.1")  # the Graph stand-in (bench/entra.py) listens there
    env["PYTHONPATH"] = str(ROOT)
    return env


def run_case(group: str, case: str, **params) -> dict:
    """One measurement in its own process: prints one JSON line {seconds, statements, peak_mb, ...}."""
    cmd = [sys.executable, str(ROOT / "bench" / f"{MODULES.get(group, group)}.py"), case, json.dumps(params)]
    result = subprocess.run(cmd, env=bench_env(), capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"bench case {group}/{case} failed:\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def median_of(samples: list[dict], key: str) -> float | None:
    values = [s[key] for s in samples if s.get(key) is not None]
    return statistics.median(values) if values else None


def fmt(value: float | None, unit: str = "") -> str:
    if value is None:
        return "-"
    if unit == "s":
        return f"{value:.2f} s"
    if unit == "MB":
        return f"{value:.0f} MB"
    return f"{value:.0f}"


def verdict(row: dict, samples: list[dict], goal: dict) -> str:
    """met / missed against the case's goal (bench/cases.py), from the medians."""
    misses = []
    if "seconds" in goal and not row["seconds"] <= goal["seconds"]:
        misses.append("time")
    if "ratio" in goal and not (row["ratio"] is not None and row["ratio"] <= goal["ratio"]):
        misses.append("ratio")
    if "peak_mb" in goal and not row["peak_mb"] < goal["peak_mb"]:
        misses.append("memory")
    if "statements" in goal:
        base, per_1000 = goal["statements"]
        changed = statistics.median(sum(s.get("counts", {}).values()) for s in samples)
        if not row["statements"] <= base + per_1000 * changed / 1000:
            misses.append("statements")
    if "searches_per_group" in goal and not median_of(samples, "searches_per_group") <= goal["searches_per_group"]:
        misses.append("searches")
    if "graph_429" in goal and any(s.get("graph_429") is None or s["graph_429"] - s.get("injected_429", 0) >
                                   goal["graph_429"] for s in samples):  # uncounted is a miss too
        misses.append("429s")
    if not goal:
        return "-"
    return "met" if not misses else "MISSED (" + ", ".join(misses) + ")"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", action="append", choices=["portal", "ad", "entra", "email", "scaleout"])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--case", action="append", help="only these cases of the groups (e.g. nochange)")
    parser.add_argument("--users", type=int, help="portal group: users in the upload (default 100,000; the OUs are "
                        "one per 100 users unless BENCH_FOLDERS says otherwise), e.g. 25000 or 300000")
    parser.add_argument("--prepared", action="store_true", help="use the databases a previous run prepared (same "
                        "DATABASE_URL and size) instead of preparing them again")
    args = parser.parse_args()
    groups = args.only or ["portal", "ad", "entra", "email", "scaleout"]
    if args.users:  # read by bench.cases when it is imported, below
        os.environ["BENCH_USERS"] = str(args.users)
        os.environ.setdefault("BENCH_FOLDERS", str(max(1, args.users // 100)))

    import bench.cases as cases

    rows = []
    for group in groups:
        specs = [s for s in cases.CASES[group] if not args.case or s["case"] in args.case]
        if group in cases.PREPARE and specs and not args.prepared:
            prepare = cases.PREPARE[group]
            done = run_case(group, prepare["case"], **prepare.get("params", {}))
            print(f"{group}: prepared in {done['seconds']:.0f} s (not timed)", file=sys.stderr, flush=True)
        for spec in specs:
            rows.append(measure(group, spec, args.repeat))

    print_table(rows)


def measure(group: str, spec: dict, repeat: int) -> dict:
    """One case's samples and its floor's, interleaved so both see the same load on the machine."""
    samples, floor = [], []
    for _ in range(repeat):
        samples.append(run_case(group, spec["case"], **spec.get("params", {})))
        if spec.get("floor"):
            floor.append(run_case(group, spec["floor"], **spec.get("params", {})))
    row = {
        "case": spec["label"],
        "seconds": median_of(samples, "seconds"),
        "statements": median_of(samples, "statements"),
        "copies": median_of(samples, "copies"),
        "peak_mb": median_of(samples, "peak_mb"),
        "floor": spec.get("floor_label", ""),
        "floor_seconds": median_of(floor, "seconds") if floor else None,
        "target": spec.get("target", ""),
        "samples": [round(s["seconds"], 3) for s in samples],
        "floor_samples": [round(s["seconds"], 3) for s in floor],
    }
    # What a case reports beside its figure (the groups case: the whole run, the read, searches).
    for key in DETAILS:
        if any(key in s for s in samples):
            row[key] = median_of(samples, key)
    if any("graph_requests" in f for f in floor):  # the Graph requests the floor made, beside the case's
        row["floor_graph_requests"] = median_of(floor, "graph_requests")
    row["ratio"] = (row["seconds"] / row["floor_seconds"]) if row["floor_seconds"] else None
    row["verdict"] = verdict(row, samples, spec.get("goal", {}))
    print(json.dumps(row), file=sys.stderr, flush=True)
    return row


def print_table(rows: list[dict]) -> None:
    print()
    print(f"{'case':62} {'median':>9} {'stmts':>7} {'peak':>7}  {'floor':38} {'floor t':>9} {'ratio':>6}  "
          "target: verdict")
    for r in rows:
        ratio = f"{r['ratio']:.2f}x" if r["ratio"] else "-"
        print(f"{r['case']:62} {fmt(r['seconds'], 's'):>9} {fmt(r['statements']):>7} {fmt(r['peak_mb'], 'MB'):>7}  "
              f"{r['floor']:38} {fmt(r['floor_seconds'], 's'):>9} {ratio:>6}  {r['target']}: {r['verdict']}")
    print("statements include COPY; times are medians of samples in fresh processes, case and floor interleaved")


if __name__ == "__main__":
    main()
