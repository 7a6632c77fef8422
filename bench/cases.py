"""The benchmark's cases, their floors and targets (issue: Performance)."""

from __future__ import annotations

import os

USERS = int(os.environ.get("BENCH_USERS", "100000"))
FOLDERS = int(os.environ.get("BENCH_FOLDERS", "1000"))
PORTAL = {"users": USERS, "folders": FOLDERS}

CASES: dict[str, list[dict]] = {
    "portal": [
        {"label": f"portal: initial run, {USERS:,} users created", "case": "initial", "floor": "floor",
         "floor_label": "COPY of the same rows", "params": PORTAL, "target": "<= 2x floor, < 500 MB"},
        {"label": "portal: run with nothing changed", "case": "nochange", "params": PORTAL, "target": "< 2 s"},
        {"label": "portal: run with 1% renamed", "case": "renamed", "params": PORTAL,
         "target": "<= 50 + 5/1,000 changed stmts"},
        {"label": "portal: run with 10% disabled", "case": "disabled", "params": PORTAL,
         "target": "<= 50 + 5/1,000 changed stmts"},
    ],
}
