"""R17: a real `manage.py qcluster` process runs a scheduled sync (no inline task execution)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import connection
from django.utils import timezone
from django_q.models import Schedule

from passportal.models import PortalUser
from provisioning import sync
from provisioning.models import SyncRun
from tests.engine_helpers import site_level
from tests.test_engine_samba import ad_integration, map_ou

ROOT = Path(__file__).resolve().parent.parent


def database_url_of_this_test() -> str:
    settings = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{settings['NAME']}"
    return f"postgres://{settings['USER']}@{settings['HOST']}:{settings['PORT']}/{settings['NAME']}"


def stop(cluster: subprocess.Popen) -> str:
    """SIGTERM to the cluster's sentinel only (it stops its workers); the whole group if it lingers."""
    cluster.send_signal(signal.SIGTERM)
    try:
        return cluster.communicate(timeout=30)[0]
    except subprocess.TimeoutExpired:
        os.killpg(cluster.pid, signal.SIGKILL)
        return cluster.communicate(timeout=10)[0]


@pytest.mark.django_db(transaction=True)
def test_r17_a_real_qcluster_runs_the_scheduled_active_directory_sync(samba_dc, samba_ou, client_org):
    ou = samba_dc.make_ou("Staff", samba_ou)
    samba_dc.add_user(ou, samba_dc.unique_sam("ann"), "Ann", "Lee", "ann@corp.test")
    integration = ad_integration(client_org, samba_dc, samba_ou)
    sync.run_sync(integration, "command")
    map_ou(integration, ou, samba_dc, site_level())
    # Only our schedule is due now; the standing ones keep their times.
    Schedule.objects.exclude(name__startswith="provisioning: Active Directory").update(
        next_run=timezone.now() + timezone.timedelta(days=1))
    Schedule.objects.filter(name__startswith="provisioning: Active Directory").update(next_run=timezone.now())

    env = {**os.environ, "DATABASE_URL": database_url_of_this_test(), "Q_WORKERS": "1"}
    cluster = subprocess.Popen([sys.executable, "manage.py", "qcluster"], cwd=ROOT, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            run = SyncRun.objects.filter(integration=integration, trigger="schedule").first()
            if run and run.status in ("succeeded", "failed"):
                break
            time.sleep(0.5)
    finally:
        output = stop(cluster)
    assert run is not None, output[-3000:]
    assert run.status == "succeeded", (run.error, output[-3000:])
    assert list(PortalUser.objects.values_list("email", flat=True)) == ["ann@corp.test"]
