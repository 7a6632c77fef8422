"""Scale-out: 20 agent integrations of 5,000 users each, synced by real `manage.py qcluster` processes.

Each integration gets a committed agent upload through the real upload service (directory/upload_*.py)
and its 50 OUs mapped. Then the qcluster processes are started (Q_WORKERS=1 each, ORM broker on the
bench database, tasks never inline) and the clock runs from enqueueing the 20 runs
(`request_sync(..., "command")`, which enqueues `execute_run_task` on commit) until all 20 SyncRuns
have finished. Case `two`: two qcluster processes; its floor is case `one`: the same with one.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import dispatch, measured, setup_django  # noqa: E402

INTEGRATIONS = 20
USERS_EACH = 5_000
OUS_EACH = 50
CHUNK = 2000  # the upload API's largest chunk
DEADLINE_SECONDS = 900


def guid(*parts: int) -> str:
    return str(uuid.UUID(int=(parts[0] << 64) | parts[1]))


def setup() -> list:
    """Fresh database; 20 clients, each with an agent integration whose upload is committed and OUs mapped."""
    setup_django(fresh=True)
    from django.core.management import call_command
    from django_q.models import OrmQ

    call_command("createcachetable")  # the clusters report their state through the database cache

    from bench.e2e import make_client, map_folders
    from directory import upload_chunks, upload_start
    from directory.models import Integration
    from provisioning import agent_uploads
    from provisioning.models import SyncRun

    integrations = []
    for i in range(INTEGRATIONS):
        integration = Integration.objects.create(
            client=make_client(f"Bench Client {i:02d}"), name=f"Bench agent {i:02d}", kind="ad", ad_mode="agent",
            disable_threshold_percent=100)
        domain = f"corp{i:02d}.example.test"
        upload = upload_start.start_upload(integration, directory_id=domain, agent_version="bench")
        ous = [{"id": guid(i, 1_000_000 + f), "name": f"OU {f}", "path": f"Corp/OU {f}", "parent_id": None}
               for f in range(OUS_EACH)]
        upload_chunks.add_folders(upload, ous)
        users = [{"id": guid(i, n + 1), "first_name": f"First{n}", "last_name": f"Last{n}",
                  "email": f"user{n}@{domain}", "enabled": True, "folder_ids": [ous[n % OUS_EACH]["id"]],
                  "display_name": f"First{n} Last{n}", "upn": f"user{n}@{domain}", "dn": ""}
                 for n in range(USERS_EACH)]
        for start in range(0, USERS_EACH, CHUNK):
            upload_chunks.add_users(upload, users[start:start + CHUNK])
        agent_uploads.commit_upload(upload, folder_count=OUS_EACH, user_count=USERS_EACH)
        map_folders(integration, [ou["id"] for ou in ous])
        integrations.append(integration)
    # A commit starts its integration's run (R17): drop those, the measured runs are requested below.
    OrmQ.objects.all().delete()
    SyncRun.objects.all().delete()
    return integrations


def start_clusters(count: int) -> list[subprocess.Popen]:
    env = dict(os.environ, Q_WORKERS="1", TASKS_RUN_INLINE="false",
               EMAIL_URL="dummymail://")  # the activation-email tasks the runs queue send nowhere
    log = open(os.devnull, "w")  # noqa: SIM115 - closed with the process
    clusters = [subprocess.Popen([sys.executable, "manage.py", "qcluster"], cwd=ROOT, env=env, stdout=log,
                                 stderr=subprocess.STDOUT, start_new_session=True) for _ in range(count)]
    from django_q.status import Stat

    try:
        deadline = time.monotonic() + 60
        while len([s for s in Stat.get_all() if s.status in ("Idle", "Working")]) < count:
            if time.monotonic() > deadline or any(c.poll() is not None for c in clusters):
                raise SystemExit(f"{count} qcluster process(es) did not start within 60 s")
            time.sleep(0.2)
    except BaseException:
        stop_clusters(clusters)
        raise
    return clusters


def stop_clusters(clusters: list[subprocess.Popen]) -> None:
    """SIGTERM, then SIGKILL the process group (a cluster's pusher, workers and monitor are its children)."""
    for cluster in clusters:
        if cluster.poll() is None:
            cluster.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 5  # a worker busy sending activation emails would finish its task first
    for cluster in clusters:
        with contextlib.suppress(subprocess.TimeoutExpired):
            cluster.wait(timeout=max(0.1, deadline - time.monotonic()))
        with contextlib.suppress(ProcessLookupError):
            os.killpg(cluster.pid, signal.SIGKILL)
        cluster.wait()


def sync_with(clusters_count: int) -> dict:
    began = time.monotonic()
    integrations = setup()
    print(f"set-up {time.monotonic() - began:.0f} s", file=sys.stderr)
    from django.db import transaction

    from provisioning import runs
    from provisioning.models import SyncRun, SyncStatus

    clusters = start_clusters(clusters_count)
    result: dict = {}
    try:
        with measured(result):
            with transaction.atomic():  # the tasks are enqueued when this commits
                for integration in integrations:
                    runs.request_sync(integration, "command")
            deadline = time.monotonic() + DEADLINE_SECONDS
            while SyncRun.objects.filter(status__in=[SyncStatus.QUEUED, SyncStatus.RUNNING]).exists():
                if time.monotonic() > deadline:
                    raise SystemExit(f"the 20 runs did not finish within {DEADLINE_SECONDS} s")
                time.sleep(0.05)
    finally:
        stopping = time.monotonic()
        stop_clusters(clusters)
        print(f"clusters stopped in {time.monotonic() - stopping:.0f} s", file=sys.stderr)
    statuses = list(SyncRun.objects.values_list("status", flat=True))
    created = sum(run.counts.get("created", 0) for run in SyncRun.objects.all())
    if statuses != [SyncStatus.SUCCEEDED] * INTEGRATIONS or created != INTEGRATIONS * USERS_EACH:
        raise SystemExit(f"expected {INTEGRATIONS} succeeded runs creating {INTEGRATIONS * USERS_EACH} users, "
                         f"got {statuses} creating {created}")
    result["clusters"] = clusters_count
    result.pop("statements")  # this process only polls; the work happens in the clusters
    return result


def case_one(params: dict) -> dict:
    return sync_with(1)


def case_two(params: dict) -> dict:
    return sync_with(2)


if __name__ == "__main__":
    dispatch({"one": case_one, "two": case_two})
