"""What every bench case process shares: Django set-up on a fresh database, and the measurement."""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from collections.abc import Callable
from contextlib import contextmanager

import django


def setup_django(fresh: bool) -> None:
    """Connect; with fresh=True drop and re-create the bench database (PostgreSQL) and migrate it."""
    url = os.environ["DATABASE_URL"]
    if fresh and url.startswith("postgres"):
        import psycopg

        base, name = url.rsplit("/", 1)
        with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
    django.setup()
    if fresh:
        from django.core.management import call_command

        call_command("migrate", verbosity=0)


class StatementCounter:
    def __init__(self) -> None:
        self.count = 0

    def __call__(self, execute, sql, params, many, context):
        self.count += 1
        return execute(sql, params, many, context)


@contextmanager
def measured(result: dict):
    from django.db import connection

    counter = StatementCounter()
    start = time.perf_counter()
    with connection.execute_wrapper(counter):
        yield
    result["seconds"] = time.perf_counter() - start
    result["statements"] = counter.count


def report(result: dict) -> None:
    result["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(result))


def dispatch(cases: dict[str, Callable[[dict], dict]]) -> None:
    name, params = sys.argv[1], json.loads(sys.argv[2])
    report(cases[name](params))
