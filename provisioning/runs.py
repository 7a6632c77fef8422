"""The run queue: request a run, claim it, keep its heartbeat and progress, fail it, retry it once.

R23 is enforced by the database: at most one running and one queued (non-dry) run per integration
(partial unique constraints on SyncRun). A trigger while a run is queued folds into that run; a
trigger while one runs becomes its single follow-up.
"""

from __future__ import annotations

import functools
import logging
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, TextField, Value
from django.db.models.functions import Concat
from django.utils import timezone

from directory.models import Integration
from notifications.models import NotificationKind
from notifications.services import notify

from . import agent_runs, topics
from .models import SyncRun, SyncStatus

log = logging.getLogger(__name__)


def stale_after() -> timedelta:
    return timedelta(seconds=getattr(settings, "SYNC_STALE_AFTER_SECONDS", settings.Q_CLUSTER["timeout"]))


def request_sync(
    integration: Integration, trigger: str, *, full: bool = True, started_by=None, enqueue: bool = True
) -> SyncRun:
    """Queue a run, or fold into the one already waiting (R23). Returns the run that will do the work.

    A Force Re-sync or single-user resync of an agent integration, handed to the workers (`enqueue`), waits for
    the agent's fresh read instead; `run_sync`, which executes at once in this process, uses the last upload.
    """
    if enqueue and trigger in agent_runs.FRESH_READ_TRIGGERS and agent_runs.is_agent(integration):
        return agent_runs.ask_agent(integration, trigger, full=full, started_by=started_by)
    for _ in range(3):
        waiting = SyncRun.objects.filter(integration=integration, status=SyncStatus.QUEUED, dry_run=False).first()
        if waiting is not None:
            if full and not waiting.full:
                SyncRun.objects.filter(pk=waiting.pk).update(full=True)
                waiting.full = True
            if enqueue and orphaned(waiting):
                # Nobody alive will pick the waiting run up (its delivery found a run that has died since, or
                # was lost): deliver it again. Executing is idempotent, so a spare delivery is harmless.
                transaction.on_commit(functools.partial(enqueue_run, waiting.pk))
            return waiting
        try:
            with transaction.atomic():
                run = SyncRun.objects.create(integration=integration, trigger=trigger, full=full, started_by=started_by)
        except IntegrityError:
            continue  # another trigger queued one between our check and insert: fold into it
        if enqueue:
            transaction.on_commit(functools.partial(enqueue_run, run.pk))
        return run
    raise RuntimeError(f"could not queue a sync for {integration}")


def enqueue_run(run_id: int) -> None:
    from django_q.tasks import async_task

    async_task("provisioning.tasks.execute_run_task", run_id,
               sync=getattr(settings, "TASKS_RUN_INLINE", False), task_name=f"sync-run-{run_id}")


def orphaned(waiting: SyncRun) -> bool:
    """A queued run nobody will execute: the run it waits for died (no heartbeat), or it waited too long.

    A live run enqueues its follow-up when it ends (execute_run), and a fresh queued run has its own delivery.
    """
    limit = timezone.now() - stale_after()
    running = SyncRun.objects.filter(integration_id=waiting.integration_id, status=SyncStatus.RUNNING, dry_run=False)
    if running.filter(heartbeat_at__gte=limit).exists():
        return False
    return running.exists() or waiting.requested_at < limit


def fail_stale_runs(integration_id: int) -> None:
    """A run whose worker died (no heartbeat) must not block the integration for ever (R23)."""
    limit = timezone.now() - stale_after()
    SyncRun.objects.filter(
        integration_id=integration_id, status=SyncStatus.RUNNING, heartbeat_at__lt=limit
    ).update(status=SyncStatus.FAILED, finished_at=timezone.now(), error=Concat(
        Value("The worker running this sync stopped while "), F("phase"),
        Value(" (no heartbeat); a later run took over and completes the work."), output_field=TextField()))


def claim(run_id: int) -> bool:
    now = timezone.now()
    try:
        with transaction.atomic():
            # A run waiting for the on-prem agent's fresh read starts only once that read has arrived.
            return SyncRun.objects.filter(pk=run_id, status=SyncStatus.QUEUED).exclude(
                phase=agent_runs.WAITING_FOR_AGENT).update(
                status=SyncStatus.RUNNING, started_at=now, heartbeat_at=now, phase="starting"
            ) == 1
    except IntegrityError:
        return False  # another run of this integration is running; it picks this one up when done


# A run's progress counts its steps (read, plan, apply): the apply writes every user in one transaction, so a
# count of users applied could not be seen from outside it before the end; the steps can.
STEPS = 3


def progress(run: SyncRun, phase: str, done: int = 0, total: int = 0) -> None:
    """Record the step a run has reached (`done` steps of `total` finished), for its page and the API."""
    run.phase, run.progress_done, run.progress_total = phase, done, total
    SyncRun.objects.filter(pk=run.pk).update(
        phase=phase, progress_done=done, progress_total=total, heartbeat_at=timezone.now()
    )
    log.debug("sync run %s: %s (step %s of %s)", run.pk, phase, done + 1, total)


def retry_once(run: SyncRun) -> None:
    """A run that failed for a reason that is not the directory's is tried again, once."""
    previous = (SyncRun.objects.filter(integration_id=run.integration_id, dry_run=False, pk__lt=run.pk)
                .order_by("-pk").values_list("status", "error").first())
    if previous and previous[0] == SyncStatus.FAILED and previous[1].startswith("Could not save"):
        return  # this run was already the retry: the next schedule or staff take it from here
    request_sync(run.integration, run.trigger, full=run.full, started_by=run.started_by)


def finish_failed(run: SyncRun, message: str, *, permanent: bool = False, cause: str = "") -> None:
    """R21: a run that could not read the whole directory changes nobody and says why."""
    SyncRun.objects.filter(pk=run.pk).update(
        # The phase stays as it was: the run's page shows where it stopped.
        status=SyncStatus.FAILED, finished_at=timezone.now(), error=message
    )
    integration = run.integration
    kind = cause or ("credentials refused" if permanent else "directory unreachable")
    notify(
        NotificationKind.SYNC_FAILED, integration=integration,
        title=f"{integration.client.name} / {integration.name}: sync failed ({kind})",
        message=f"{message}\nNobody's enabled state was changed.",
        url=f"/admin/provisioning/syncrun/{run.pk}/change/", topic=topics.sync_failed(integration.pk),
    )
