"""Worker faults (R23): a sync task delivered twice, a qcluster killed in the middle of a run, and ten triggers
while two workers serve one integration. Real `manage.py qcluster` processes share this test's database."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from django.db.models import Count

from directory import upload_chunks, upload_records, upload_start
from directory.models import AdMode, Integration, IntegrationKind
from notifications.models import Notification, OutboxEmail
from passportal.models import PortalUser
from provisioning import agent_uploads, tasks
from provisioning.models import Mapping, SyncRun, SyncStatus
from provisioning.runs import request_sync
from tests.engine_helpers import site_level
from tests.test_engine_qcluster import database_url_of_this_test

ROOT = Path(__file__).resolve().parent.parent
STALE_AFTER = 3  # seconds without a heartbeat before a running sync counts as dead (set low for the test)


def agent_directory(client, users: int, *, mapped: bool = True) -> Integration:
    """An agent integration whose committed upload holds one OU with `users` users (fast: no AD needed)."""
    integration = Integration.objects.create(client=client, name="Corp AD", kind=IntegrationKind.ACTIVE_DIRECTORY,
                                             ad_mode=AdMode.AGENT)
    upload = upload_start.start_upload(integration, directory_id="corp.test", agent_version="test")
    ou = {"id": str(uuid.UUID(int=10_000)), "name": "Staff", "path": "Corp/Staff", "parent_id": None}
    upload_chunks.add_folders(upload, [ou])
    people = [{"id": str(uuid.UUID(int=n + 1)), "enabled": True, "folder_ids": [ou["id"]], "first_name": f"U{n}",
               "last_name": "Worker", "email": f"user{n}@corp.test"} for n in range(users)]
    for start in range(0, users, upload_records.MAX_RECORDS_PER_CHUNK):
        upload_chunks.add_users(upload, people[start:start + upload_records.MAX_RECORDS_PER_CHUNK])
    agent_uploads.commit_upload(upload, folder_count=1, user_count=users)  # queues a run (R17): the agent pushed
    if mapped:
        Mapping.objects.create(folder=integration.folders.get(), permission_level=site_level())
    return integration


def snapshot_of_the_portal(client) -> list[tuple]:
    return list(PortalUser.objects.filter(client=client).order_by("pk").values_list(
        "pk", "email", "status", "disabled_reason", "updated_at"))


# ---------------------------------------------------------------- at-least-once delivery


@pytest.mark.django_db
def test_r23_a_sync_task_delivered_twice_changes_nothing_the_second_time(client_org):
    integration = agent_directory(client_org, 20)
    run = SyncRun.objects.get(integration=integration, status=SyncStatus.QUEUED)

    assert tasks.execute_run_task(run.pk) == f"run {run.pk}: succeeded"
    portal = snapshot_of_the_portal(client_org)
    rows = (SyncRun.objects.count(), OutboxEmail.objects.count(), Notification.objects.count())
    finished = SyncRun.objects.get(pk=run.pk)

    assert tasks.execute_run_task(run.pk) == f"run {run.pk}: succeeded"  # django-q2 delivered it again

    assert len(portal) == 20 and snapshot_of_the_portal(client_org) == portal
    assert (SyncRun.objects.count(), OutboxEmail.objects.count(), Notification.objects.count()) == rows
    again = SyncRun.objects.get(pk=run.pk)
    assert (again.finished_at, again.counts) == (finished.finished_at, finished.counts)


# ---------------------------------------------------------------- real clusters


class Cluster:
    """A `manage.py qcluster` process group on this test's database."""

    def __init__(self, workers: int) -> None:
        env = {**os.environ, "DATABASE_URL": database_url_of_this_test(), "Q_WORKERS": str(workers),
               "SYNC_STALE_AFTER_SECONDS": str(STALE_AFTER), "EMAIL_URL": "dummymail://"}
        # A file, not a pipe: a pipe nobody reads fills up and blocks the cluster's logging.
        self.log = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 - lives as long as the cluster object
        self.process = subprocess.Popen([sys.executable, "manage.py", "qcluster"], cwd=ROOT, env=env,
                                        stdout=self.log, stderr=subprocess.STDOUT, text=True,
                                        start_new_session=True)

    @property
    def output(self) -> str:
        self.log.seek(0)
        return self.log.read()

    def dead(self) -> bool:
        return self.process.poll() is not None

    def kill(self) -> None:
        """SIGKILL to the whole group: sentinel, pusher, workers, monitor die at once, mid-task."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()


def wait_for(condition: Callable[[], object], what: str, timeout: float = 90, interval: float = 0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.django_db(transaction=True)
def test_r23_a_qcluster_killed_mid_sync_leaves_no_duplicate_and_no_lost_or_double_email(client_org, settings):
    settings.SYNC_STALE_AFTER_SECONDS = STALE_AFTER
    integration = agent_directory(client_org, 3000)
    first = SyncRun.objects.get(integration=integration, status=SyncStatus.QUEUED)

    cluster = Cluster(workers=1)
    try:
        wait_for(lambda: SyncRun.objects.filter(pk=first.pk, phase__startswith="applying").exists() or cluster.dead(),
                 "the run to be applying")
        assert not cluster.dead(), cluster.output[-3000:]
        cluster.kill()
    finally:
        cluster.stop()
    killed = SyncRun.objects.get(pk=first.pk)
    assert killed.status == SyncStatus.RUNNING, "the worker died before it could record anything"

    time.sleep(STALE_AFTER + 0.5)  # no heartbeat since: the run is dead
    cluster = Cluster(workers=1)
    try:
        follow_up = request_sync(integration, "schedule")
        done = wait_for(lambda: SyncRun.objects.filter(pk=follow_up.pk, status__in=["succeeded", "failed"]).first(),
                        "the next run to finish")
    finally:
        cluster.stop()
    assert done.status == "succeeded", (done.error, cluster.output[-3000:])
    killed.refresh_from_db()
    assert killed.status == "failed" and "no heartbeat" in killed.error

    users = PortalUser.objects.filter(client=client_org)
    assert users.count() == 3000 and users.values("email").distinct().count() == 3000
    emails_per_user = OutboxEmail.objects.values("portal_user").annotate(n=Count("pk")).values_list("n", flat=True)
    assert OutboxEmail.objects.count() == 3000 and set(emails_per_user) == {1}, "each user exactly one email"
    assert set(OutboxEmail.objects.values_list("recipient", flat=True)) == set(users.values_list("email", flat=True))


@pytest.mark.django_db(transaction=True)
def test_r23_two_workers_ten_triggers_one_run_at_a_time_folded_into_one_follow_up(client_org, settings):
    settings.SYNC_STALE_AFTER_SECONDS = 60
    integration = agent_directory(client_org, 2000)
    first = SyncRun.objects.get(integration=integration, status=SyncStatus.QUEUED)

    cluster = Cluster(workers=2)
    try:
        wait_for(lambda: SyncRun.objects.filter(pk=first.pk, status="running").exists(), "the first run to start")
        triggered = {request_sync(integration, "schedule").pk for _ in range(10)}
        wait_for(lambda: not SyncRun.objects.filter(integration=integration,
                                                    status__in=["queued", "running"]).exists(),
                 "every run to finish")
    finally:
        cluster.stop()

    runs = list(SyncRun.objects.filter(integration=integration).order_by("pk"))
    assert len(triggered) == 1 and [r.pk for r in runs] == [first.pk, *triggered], "ten triggers, one follow-up"
    assert [r.status for r in runs] == ["succeeded", "succeeded"], ([r.error for r in runs], cluster.output[-3000:])
    assert runs[0].finished_at <= runs[1].started_at, "one run at a time"
    assert runs[0].counts["created"] == 2000 and not any(runs[1].counts.values())
