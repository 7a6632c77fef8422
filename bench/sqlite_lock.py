"""SQLite: how long a 25,000-user agent upload and its run take, and how long the run holds the write lock.

    DEBUG=true .venv/bin/python bench/sqlite_lock.py [--users 25000] [--folders 100]

A fresh SQLite file (var/bench-sqlite-lock.sqlite3) is migrated; the upload goes through the real upload
service in the API's chunks and is committed (timed), then the run a worker would execute (timed) while a
second connection, as another writer would (the agent's next push, a staff save, django-q's broker), takes the
write lock every 50 ms and records how long each attempt waited: the longest wait is how long a writer is
kept out. Then the agent pushes the same directory twice more, and the runs after each push are timed: the
first plans every user and changes nothing, the second finishes at the run short cut. Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sqlite3
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
FILE = ROOT / "var" / "bench-sqlite-lock.sqlite3"


class WriterProbe(threading.Thread):
    """Another writer: BEGIN IMMEDIATE (waiting up to 120 s), then ROLLBACK, every 50 ms."""

    def __init__(self, path: Path) -> None:
        super().__init__(daemon=True)
        self.path, self.waits, self.stopped = path, [], threading.Event()

    def run(self) -> None:
        conn = sqlite3.connect(self.path, timeout=120, isolation_level=None)
        while not self.stopped.is_set():
            started = time.monotonic()
            conn.execute("BEGIN IMMEDIATE")
            self.waits.append(time.monotonic() - started)
            conn.execute("ROLLBACK")
            time.sleep(0.05)
        conn.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=25_000)
    parser.add_argument("--folders", type=int, default=100)
    args = parser.parse_args()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{FILE}{suffix}").unlink(missing_ok=True)
    os.environ["DATABASE_URL"] = f"sqlite:///{FILE}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "passportal.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from bench import portal
    from provisioning import sync

    params = {"users": args.users, "folders": args.folders}
    result: dict = {"users": args.users, "folders": args.folders}
    started = time.monotonic()
    portal.prepare_base(params)  # clients, the upload pushed in 2,000-user chunks and committed, every OU mapped
    result["upload_and_commit_seconds"] = round(time.monotonic() - started, 2)

    probe = WriterProbe(FILE)
    probe.start()
    started = time.monotonic()
    run = sync.run_sync(portal.integration(), "agent")
    result["run_seconds"] = round(time.monotonic() - started, 2)
    probe.stopped.set()
    probe.join()
    result["run_status"] = run.status
    result["counts"] = {k: v for k, v in run.counts.items() if v}
    result["longest_writer_wait_seconds"] = round(max(probe.waits), 2)
    result["writer_waits_over_1s"] = sum(w > 1 for w in probe.waits)
    result["writer_attempts"] = len(probe.waits)
    result.update(later_runs(params))
    result["process_peak_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    print(json.dumps(result, indent=2))


def later_runs(params: dict) -> dict:
    """The agent pushes the same directory again: the run plans every user and changes nothing (no-change); once
    more: the run finishes at the short cut (steady state). Each timed from request to finish, as a worker runs it."""
    from bench import portal
    from provisioning import sync

    times = {}
    for name in ("nochange", "steady"):
        portal.push(portal.integration(), portal.people(params["users"], params["folders"]),
                    portal.folders(params["folders"]))
        started = time.monotonic()
        run = sync.run_sync(portal.integration(), "agent")
        times[f"{name}_run_seconds"] = round(time.monotonic() - started, 2)
        portal.check(run, {}, name)
    return times


if __name__ == "__main__":
    main()
