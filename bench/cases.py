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

# End to end and the rest (bench/ad.py, entra.py, email.py, scaleout.py): sizes are fixed in each module.
CASES["ad"] = [
    {"label": "AD: initial run, 20,000 users / 200 OUs created", "case": "initial", "floor": "floor",
     "floor_label": "raw ldap3 paged read, same attrs", "target": "<= 1.3x floor"},
    {"label": "AD: run with nothing changed", "case": "nochange", "floor": "floor",
     "floor_label": "raw ldap3 paged read, same attrs", "target": "<= 1.3x floor"},
]
CASES["entra"] = [
    {"label": "Entra: initial run, 20,000 users / 200 AUs created", "case": "initial", "floor": "floor",
     "floor_label": "raw paged fetch of the same pages", "target": "<= 1.3x floor"},
    {"label": "Entra: run with nothing changed", "case": "nochange", "floor": "floor",
     "floor_label": "raw paged fetch of the same pages", "target": "<= 1.3x floor"},
]
CASES["email"] = [
    {"label": "email: 10,000 activation emails sent by the outbox", "case": "outbox", "floor": "floor",
     "floor_label": "send_messages, one connection", "target": ">= 80% of floor rate (<= 1.25x)"},
]
CASES["scaleout"] = [
    {"label": "scale-out: 20 x 5,000 users, 2 qcluster procs", "case": "two", "floor": "one",
     "floor_label": "the same with 1 qcluster proc", "target": "<= 0.6x floor"},
]
