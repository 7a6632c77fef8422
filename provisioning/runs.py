"""The run queue: request a run, claim it (the one claim every run takes), record it as it goes, retry it once.

R23 is enforced by the database: at most one running and one queued (non-dry) run per integration
(partial unique constraints on SyncRun). A trigger while a run is queued folds into that run; a
trigger while one runs becomes its single follow-up.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, TextField, Value
from django.db.models.functions import Concat
from django.utils import timezone

from directory.models import Integration
from notifications.models import NotificationKind
from notifications.services import notify
from passportal.actors import Actor, stored
from passportal.models import PortalUser

from . import agent_runs, topics
from .models import SyncRun, SyncStatus

log = logging.getLogger(__name__)


def stale_after() -> timedelta:
    return timedelta(seconds=settings.SYNC_STALE_AFTER_SECONDS)


def request_sync(
    integration: Integration, trigger: str, *, full: bool = True, started_by: Actor = None, enqueue: bool = True
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
                run = SyncRun.objects.create(integration=integration, trigger=trigger, full=full,
                                             started_by=stored(started_by))
        except IntegrityError:
            continue  # another trigger queued one between our check and insert: fold into it
        if enqueue:
            transaction.on_commit(functools.partial(enqueue_run, run.pk))
        return run
    raise RuntimeError(f"could not queue a sync for {integration}")


def enqueue_run(run_id: int) -> None:
    from django_q.tasks import async_task

    async_task("provisioning.tasks.execute_run_task", run_id,
               sync=settings.TASKS_RUN_INLINE, task_name=f"sync-run-{run_id}")


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


class RunBusy(RuntimeError):
    """Another run of this integration holds it (R23): this one did not start."""


def _take_slot(write: Callable[[], int]) -> bool:
    """The one claim every run goes through: a write that makes a run the integration's running one.

    The database decides (the unique constraint on one running run per integration), never a check-then-set;
    stale runs are failed first, so a dead worker's run does not hold the integration for ever.
    """
    try:
        with transaction.atomic():
            return write() == 1
    except IntegrityError:
        return False  # another run of this integration is running; it picks a queued one up when done


def claim(run_id: int) -> Recorder | None:
    """Start a queued run; None if it is not queued any more, waits for the agent, or another run is running."""
    run = SyncRun.objects.select_related("integration__client").get(pk=run_id)
    fail_stale_runs(run.integration_id)
    now = timezone.now()
    # A run waiting for the on-prem agent's fresh read starts only once that read has arrived.
    queued = SyncRun.objects.filter(pk=run_id, status=SyncStatus.QUEUED).exclude(phase=agent_runs.WAITING_FOR_AGENT)
    if not _take_slot(lambda: queued.update(status=SyncStatus.RUNNING, started_at=now, heartbeat_at=now,
                                             phase="starting")):
        return None
    run.refresh_from_db()
    return Recorder(run)


def start_now(integration: Integration, trigger: str, *, full: bool = True, started_by: Actor = None,
              portal_user: PortalUser | None = None) -> Recorder:
    """Start a run that does not wait in the queue (one user's resync, a SCIM push): inserted running, by the
    same claim as a queued run. Raises RunBusy when another run of the integration is running."""
    fail_stale_runs(integration.pk)
    now = timezone.now()
    made: list[SyncRun] = []

    def insert() -> int:
        made.append(SyncRun.objects.create(
            integration=integration, trigger=trigger, full=full, started_by=stored(started_by),
            portal_user=portal_user, status=SyncStatus.RUNNING, started_at=now, heartbeat_at=now, phase="starting"))
        return 1

    if not _take_slot(insert):
        raise RunBusy(f"another sync of {integration.name} is running")
    made[0].integration = integration
    return Recorder(made[0])


def start_beside(integration: Integration, trigger: str, *, full: bool = True) -> SyncRun:
    """A run recorded beside the running one, without the claim: only a SCIM push that found the integration busy
    (its client does not retry). Stored as succeeded, since the running slot is taken; its apply then records what
    it did (Recorder.finish)."""
    now = timezone.now()
    return SyncRun.objects.create(integration=integration, trigger=trigger, full=full, status=SyncStatus.SUCCEEDED,
                                  started_at=now, heartbeat_at=now)


# A run's progress counts its steps (read, plan, apply): the apply writes every user in one transaction, so a
# count of users applied could not be seen from outside it before the end; the steps can.
STEPS = 3


@dataclass
class Recorder:
    """A run's bookkeeping, as NetBox's JobRunner keeps a job's: its step, its end, its failure (R24).

    It writes only the run's own row (and, on failure, the bell's notification); the pipeline does the work.
    """

    run: SyncRun

    def progress(self, phase: str, done: int = 0, total: int = 0) -> None:
        """Record the step the run has reached (`done` steps of `total` finished), for its page and the API."""
        run = self.run
        run.phase, run.progress_done, run.progress_total = phase, done, total
        SyncRun.objects.filter(pk=run.pk).update(
            phase=phase, progress_done=done, progress_total=total, heartbeat_at=timezone.now()
        )
        log.debug("sync run %s: %s (step %s of %s)", run.pk, phase, done + 1, total)

    def finish(self, *, held: bool = False, counts: dict[str, int], changes: dict,
               held_disables: list[dict] | None = None, error: str = "") -> None:
        """The run did its work: succeeded, or held (R22) when it holds disables for staff."""
        now = timezone.now()
        SyncRun.objects.filter(pk=self.run.pk).update(
            status=SyncStatus.HELD if held else SyncStatus.SUCCEEDED, phase="done", finished_at=now,
            heartbeat_at=now, counts=counts, changes=changes, held_disables=held_disables or [], error=error,
        )

    def fail(self, message: str, *, permanent: bool = False, cause: str = "", notify_staff: bool = True) -> None:
        """R21: a run that could not read the whole directory changes nobody and says why (in the bell too,
        unless `notify_staff` is off: a single user's resync answers the staff member who asked, at once)."""
        run = self.run
        SyncRun.objects.filter(pk=run.pk).update(
            # The phase stays as it was: the run's page shows where it stopped.
            status=SyncStatus.FAILED, finished_at=timezone.now(), error=message
        )
        if not notify_staff:
            return
        integration = run.integration
        kind = cause or ("credentials refused" if permanent else "directory unreachable")
        notify(
            NotificationKind.SYNC_FAILED, integration=integration,
            title=f"{integration.client.name} / {integration.name}: sync failed ({kind})",
            message=f"{message}\nNobody's enabled state was changed.",
            url=f"/admin/provisioning/syncrun/{run.pk}/change/", topic=topics.sync_failed(integration.pk),
        )


def retry_once(run: SyncRun) -> None:
    """A run that failed for a reason that is not the directory's is tried again, once."""
    previous = (SyncRun.objects.filter(integration_id=run.integration_id, dry_run=False, pk__lt=run.pk)
                .order_by("-pk").values_list("status", "error").first())
    if previous and previous[0] == SyncStatus.FAILED and previous[1].startswith("Could not save"):
        return  # this run was already the retry: the next schedule or staff take it from here
    request_sync(run.integration, run.trigger, full=run.full, started_by=run.started_by)
