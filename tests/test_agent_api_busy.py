"""An agent's request that finds the database busy (a run's apply holding the lock) is answered 503 with
Retry-After as JSON, stores nothing, and succeeds when sent again (R23). The agent honours Retry-After.

The lock is really held, from a second connection to the test database: SQLite's write lock (BEGIN IMMEDIATE on
the same file), PostgreSQL's lock on the integration's row. The wait is shortened through settings only: SQLite's
busy timeout (DATABASES OPTIONS "timeout", then a new connection), PostgreSQL's AGENT_DB_LOCK_TIMEOUT_SECONDS.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time

import pytest
from django.conf import settings as django_settings
from django.db import connection, connections

from directory.models import AgentUpload
from tests.test_agent_api import Agent, agent_integration

WAIT_SECONDS = 0.5


@pytest.fixture
def short_lock_waits(settings, monkeypatch):
    """The portal gives up waiting for a lock after WAIT_SECONDS instead of 30."""
    if connection.vendor == "sqlite":
        options = django_settings.DATABASES["default"]["OPTIONS"]
        assert connection.settings_dict is django_settings.DATABASES["default"]
        monkeypatch.setitem(options, "timeout", WAIT_SECONDS)
        connection.close()  # the next query connects with the shorter busy timeout
        with connection.cursor() as cursor:
            assert cursor.execute("PRAGMA busy_timeout").fetchone()[0] == WAIT_SECONDS * 1000
        yield
        monkeypatch.undo()
        connection.close()
    else:
        settings.AGENT_DB_LOCK_TIMEOUT_SECONDS = WAIT_SECONDS
        yield


@contextlib.contextmanager
def database_held(integration_id: int):
    """What a run's apply does to an agent's writes: a lock held by another connection until the block ends."""
    if connection.vendor == "sqlite":
        other = sqlite3.connect(connection.settings_dict["NAME"], isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # the database's one write lock
        try:
            yield
        finally:
            other.execute("ROLLBACK")
            other.close()
    else:
        other = connections.create_connection("default")
        other.ensure_connection()
        try:
            other.connection.execute("BEGIN")
            other.connection.execute("SELECT id FROM directory_integration WHERE id = %s FOR UPDATE", [integration_id])
            yield
        finally:
            other.connection.execute("ROLLBACK")
            other.close()


def assert_busy(response) -> None:
    assert response.status_code == 503, response.content
    assert response["Content-Type"].startswith("application/json")
    retry_after = int(response["Retry-After"])
    assert retry_after > 0 and response.json()["retry_after"] == retry_after
    assert "database is busy" in response.json()["detail"] and "send it again" in response.json()["detail"]


@pytest.mark.django_db(transaction=True)
def test_r23_an_agent_request_that_finds_the_database_busy_is_answered_503_with_retry_after(
        client_org, short_lock_waits):
    integration, token = agent_integration(client_org)
    agent = Agent(token)
    with database_held(integration.pk):
        started = time.monotonic()
        assert_busy(agent.post("poll/", {"agent_version": "test 1"}))
        assert_busy(agent.post("uploads/", {"directory_id": "corp.test", "agent_version": "test 1"}))
        assert time.monotonic() - started < 10 * WAIT_SECONDS, "each waited about the configured time, no more"
    assert not AgentUpload.objects.exists(), "a refused request stores nothing"
    integration.refresh_from_db()
    assert integration.agent_last_contact is None

    # Lock released (the apply committed): the same requests, sent again, succeed.
    assert agent.post("poll/", {"agent_version": "test 1"}).status_code == 200
    assert agent.post("uploads/", {"directory_id": "corp.test", "agent_version": "test 1"}).status_code == 201
    assert AgentUpload.objects.count() == 1

