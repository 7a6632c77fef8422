"""Runs of two integrations of one client at once never crash on each other's emails (R4, R23), and a run that
fails for a reason that is not the directory's says so, keeps the stage it stopped in, and is retried once."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection, connections

from directory.models import Folder
from notifications.models import Notification
from passportal.models import PermissionLevel, PortalUser
from provisioning import runs, sync
from provisioning.client_lock import client_apply_lock
from provisioning.models import CreationIssue, Mapping, SyncRun, SyncTrigger
from tests.fixtures_browser import agent_integration, ou, person

SALES = ou(1, "Sales")


def mapped_agent(client, name: str, users: list[dict]):
    integration = agent_integration(client, [SALES], users, name=name)
    Mapping.objects.create(folder=Folder.objects.get(integration=integration, external_id=SALES["id"]),
                           permission_level=PermissionLevel.objects.get(user_kind="site", name="Site User"))
    return integration


@pytest.mark.django_db(transaction=True)
def test_r23_a_run_that_waited_for_another_run_of_its_client_plans_again_and_does_not_crash(client_org, settings):
    settings.TASKS_RUN_INLINE = False
    # Users 1-20 in both directories (same emails, other ids); 21-40 only in A, 41-60 only in B.
    a_users = [person(n, SALES) for n in range(1, 41)]
    b_users = [{**person(n, SALES), "id": f"00000000-0000-4000-8000-{n:012d}"} for n in [*range(1, 21), *range(41, 61)]]
    a = mapped_agent(client_org, "Directory A", a_users)
    b = mapped_agent(client_org, "Directory B", b_users)
    outcome: dict[str, SyncRun] = {}

    def run_a() -> None:
        try:
            outcome["a"] = sync.run_sync(a, SyncTrigger.FORCE)
        finally:
            connections.close_all()

    with client_apply_lock(client_org.pk):
        thread = threading.Thread(target=run_a)
        thread.start()
        if connection.vendor == "postgresql":
            # A reads and plans while B holds the client's lock, then waits for it to apply.
            deadline = time.monotonic() + 30
            while not SyncRun.objects.filter(integration=a, phase__startswith="applying").exists():
                assert time.monotonic() < deadline, "run A never reached its apply"
                time.sleep(0.05)
        outcome["b"] = sync.run_sync(b, SyncTrigger.FORCE)
    thread.join(timeout=60)

    assert outcome["b"].status == "succeeded" and outcome["b"].counts["created"] == 40
    assert outcome["a"].status == "succeeded", outcome["a"].error
    assert outcome["a"].counts["created"] == 20 and outcome["a"].counts["issues_opened"] == 20
    assert PortalUser.objects.filter(client=client_org).count() == 60
    assert CreationIssue.objects.filter(integration=a, reason="duplicate_email", closed_at__isnull=True).count() == 20


def refuse_new_portal_users() -> None:
    """A fault in the database itself (as a full disk would be): every new portal user row is refused."""
    table = PortalUser._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("CREATE FUNCTION refuse_row() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION "
                           "'could not extend file: No space left on device'; END $$ LANGUAGE plpgsql")
            cursor.execute(f"CREATE TRIGGER refuse_users BEFORE INSERT ON {table} "
                           "FOR EACH ROW EXECUTE FUNCTION refuse_row()")
        else:
            cursor.execute(f"CREATE TRIGGER refuse_users BEFORE INSERT ON {table} "
                           "BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END")


@pytest.mark.django_db
def test_r24_a_run_that_could_not_save_says_so_keeps_its_stage_and_is_retried_once(client_org, settings):
    settings.TASKS_RUN_INLINE = False
    a = agent_integration(client_org, [SALES], [person(1, SALES)], name="Directory A")
    refuse_new_portal_users()
    Mapping.objects.create(folder=Folder.objects.get(integration=a, external_id=SALES["id"]),
                           permission_level=PermissionLevel.objects.get(user_kind="site", name="Site User"))
    before = SyncRun.objects.filter(integration=a).count()

    run = sync.execute_run(runs.request_sync(a, SyncTrigger.SCHEDULE, enqueue=False).pk)
    assert run.status == "failed"
    assert run.error.startswith("Could not save the changes (while applying")
    assert run.phase.startswith("applying"), "the run shows the stage it stopped in"
    note = Notification.objects.filter(integration=a).latest("pk")
    assert "could not save" in note.title and "directory unreachable" not in note.title

    retry = SyncRun.objects.get(integration=a, status="queued")
    assert sync.execute_run(retry.pk).status == "failed"
    assert not SyncRun.objects.filter(integration=a, status="queued").exists(), "retried once, not for ever"
    assert SyncRun.objects.filter(integration=a).count() == before + 2
