"""What an agent's reads lead to: a committed upload starts its run, a failed read fails it, and the scheduled check
fails the fresh reads no agent answered in time and notices agents gone quiet (R20, R21, R24).

Above both `agent_runs` (asking the agent) and `runs` (the queue and its bookkeeping), so neither imports the other
back.
"""

from __future__ import annotations

import functools
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from directory.models import Integration
from notifications.services import resolve

from .agent_runs import WAITING_FOR_AGENT, notify_quiet, quiet_topic
from .models import SyncRun, SyncStatus, SyncTrigger
from .runs import Recorder, enqueue_run, request_sync


def upload_arrived(integration: Integration) -> SyncRun:
    """A committed upload: the run that waited for it (or a new one) applies it now."""
    resolve([quiet_topic(integration.pk)])
    run = request_sync(integration, SyncTrigger.AGENT, full=True, enqueue=False)
    if run.phase == WAITING_FOR_AGENT:
        SyncRun.objects.filter(pk=run.pk).update(phase="")
    # Delivered even when it folded into a waiting run: executing is idempotent, a spare delivery harmless.
    transaction.on_commit(functools.partial(enqueue_run, run.pk))
    return run


def read_failed(integration: Integration, message: str, *, permanent: bool, host: str = "") -> SyncRun:
    """The agent could not read AD: a failed run (the one that waited for it, if any) and the bell's notification.

    Nobody's enabled state changes (R21): nothing is planned from a read that did not complete.
    """
    where = f" on {host}" if host else ""
    text = f"The on-prem agent{where} could not read Active Directory: {message}"
    now = timezone.now()
    waiting = SyncRun.objects.filter(integration=integration, status=SyncStatus.QUEUED, dry_run=False,
                                     phase=WAITING_FOR_AGENT).first()
    if waiting is not None:
        SyncRun.objects.filter(pk=waiting.pk).update(started_at=now)
        run = waiting
    else:
        # A run of its own, recorded as it ends: a failed read takes no slot another run might be waiting for.
        run = SyncRun.objects.create(integration=integration, trigger=SyncTrigger.AGENT, status=SyncStatus.FAILED,
                                     started_at=now, finished_at=now)
    run.integration = integration
    Recorder(run).fail(text, permanent=permanent)
    run.refresh_from_db()
    return run




def check_agents(now: datetime | None = None) -> dict[str, int]:
    """Fail fresh-read requests no agent answered in time; raise or settle the "not heard from" notifications."""
    now = now or timezone.now()
    return {"not_answered": _fail_unanswered(now), "quiet": notify_quiet(now)}


def _fail_unanswered(now: datetime) -> int:
    timeout = timedelta(minutes=settings.AGENT_REQUEST_TIMEOUT_MINUTES)
    stale = SyncRun.objects.select_related("integration__client").filter(
        status=SyncStatus.QUEUED, dry_run=False, phase=WAITING_FOR_AGENT, requested_at__lt=now - timeout)
    count = 0
    for run in stale:
        # Only a run still waiting: one the agent's upload has just started is left to finish.
        if SyncRun.objects.filter(pk=run.pk, status=SyncStatus.QUEUED, phase=WAITING_FOR_AGENT).update(
                started_at=now) != 1:
            continue
        minutes = settings.AGENT_REQUEST_TIMEOUT_MINUTES
        Recorder(run).fail(f"Agent not responding: the on-prem agent did not pick up this request within "
                           f"{minutes:g} minutes, so Active Directory was not read. Check that the agent runs and "
                           "can reach the portal.")
        count += 1
    return count
