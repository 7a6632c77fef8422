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


def database_name() -> str:
    return os.environ["DATABASE_URL"].rsplit("/", 1)[1]


def template_name(case: str) -> str:
    """A prepared database the samples of a case start from (copied, never written by a sample)."""
    return f"{database_name()}_tpl_{case}"


def _admin():
    import psycopg

    base = os.environ["DATABASE_URL"].rsplit("/", 1)[0]
    return psycopg.connect(f"{base}/postgres", autocommit=True)


def copy_database(source: str, target: str) -> None:
    """target := a fresh copy of source (PostgreSQL copies the files: seconds, whatever the rows)."""
    with _admin() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{target}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{target}" TEMPLATE "{source}"')


def setup_django(fresh: bool = False, *, name: str | None = None, template: str | None = None) -> None:
    """Connect to the bench database (or `name`).

    fresh=True drops and re-creates it empty and migrates it; template= makes it a copy of that database.
    Called again in the same process, it switches the connection to the other database.
    """
    url = os.environ["DATABASE_URL"]
    name = name or database_name()
    if url.startswith("postgres") and (fresh or template):
        with _admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
    from django.apps import apps

    if not apps.ready:
        django.setup()
    from django.db import connections

    connections.close_all()
    if url.startswith("postgres"):
        connections["default"].settings_dict["NAME"] = name
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
def counting_copies():
    """COPY goes around Django's cursor wrapper (passportal.bulk uses psycopg's copy): count it here."""
    counter = {"copies": 0}
    try:
        import psycopg
    except ImportError:
        yield counter
        return
    original = psycopg.Cursor.copy

    def copy(self, *args, **kwargs):
        counter["copies"] += 1
        return original(self, *args, **kwargs)

    psycopg.Cursor.copy = copy
    try:
        yield counter
    finally:
        psycopg.Cursor.copy = original


@contextmanager
def measured(result: dict):
    from django.db import connection

    counter = StatementCounter()
    start = time.perf_counter()
    with connection.execute_wrapper(counter), counting_copies() as copies:
        yield
    result["seconds"] = time.perf_counter() - start
    result["copies"] = copies["copies"]
    result["statements"] = counter.count + copies["copies"]


def report(result: dict) -> None:
    result["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(result))


def dispatch(cases: dict[str, Callable[[dict], dict]]) -> None:
    name, params = sys.argv[1], json.loads(sys.argv[2])
    report(cases[name](params))
