"""The database is busy: an agent's request that waited too long for a lock is answered 503 with Retry-After.

A large run's apply holds SQLite's single write lock (PostgreSQL: row and advisory locks) for seconds. A push
that cannot get it within the wait (SQLite's busy timeout, DATABASES OPTIONS "timeout"; on PostgreSQL the
lock_timeout set here for the agent's requests) stored nothing, so the agent may send it again: it waits as
long as Retry-After asks. Any other database error stays a 500.
"""

from __future__ import annotations

from django.conf import settings
from django.db import OperationalError, connection

# Seconds an agent is asked to wait before sending a refused request again.
RETRY_AFTER_SECONDS = 15

# SQLSTATEs of a lock wait PostgreSQL gave up: lock_not_available (lock_timeout), query_canceled.
_PG_BUSY = {"55P03", "57014"}


def is_busy(exc: BaseException) -> bool:
    """Whether a database error means "waited for a lock too long", not a fault a retry would repeat."""
    if not isinstance(exc, OperationalError):
        return False
    if connection.vendor == "sqlite":
        return "database is locked" in str(exc) or "database table is locked" in str(exc)
    return getattr(exc.__cause__, "sqlstate", None) in _PG_BUSY


def limit_lock_waits() -> None:
    """PostgreSQL: an agent's statement waits at most AGENT_DB_LOCK_TIMEOUT_SECONDS for a lock (SQLite's
    busy timeout does the same there); the session setting is put back by restore_lock_waits()."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config('lock_timeout', %s, false)",
                           [f"{int(settings.AGENT_DB_LOCK_TIMEOUT_SECONDS * 1000)}ms"])


def restore_lock_waits() -> None:
    if connection.vendor == "postgresql" and connection.connection is not None and not connection.needs_rollback:
        with connection.cursor() as cursor:
            cursor.execute("RESET lock_timeout")


def answer() -> tuple[dict, dict]:
    """The body and headers of the 503."""
    return ({"detail": "The portal's database is busy (a run is saving its changes). Nothing from this request "
                       f"was stored: send it again in {RETRY_AFTER_SECONDS} seconds.",
             "retry_after": RETRY_AFTER_SECONDS},
            {"Retry-After": str(RETRY_AFTER_SECONDS)})
