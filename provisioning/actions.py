"""Staff writes: the decision on held disables (R22), the link switch (R10), one user's resync (R28), a staff
disable or enable (R8), and the mappings staff confirmed (R15). Pages and the API call these, never each other."""

from __future__ import annotations

import logging

from django.db import transaction
from django.utils import timezone

from directory.connectors import DirectoryError
from directory.connectors.base import Snapshot
from directory.models import Integration
from directory.sources import connector_for
from notifications.services import resolve
from passportal.actors import Actor, stored
from passportal.models import PermissionLevel, PortalUser, SecurityGroup

from . import agent_runs, topics
from .applier import disable_users
from .models import DirectoryLink, HeldResolution, Mapping, SyncRun, SyncStatus, SyncTrigger
from .planner import Disable, Threshold, plan
from .runs import RunBusy, request_sync, start_now
from .state import load_current, load_mappings
from .sync import apply_and_record, run_sync

log = logging.getLogger(__name__)


def _held_run_waiting(run: SyncRun) -> SyncRun:
    run = SyncRun.objects.select_for_update().get(pk=run.pk)
    if run.status != SyncStatus.HELD or run.held_resolution:
        raise ValueError("This run holds no disables waiting for a decision.")
    return run


def _record_decision(run: SyncRun, resolution: str, by: Actor, extra_fields: tuple[str, ...] = ()) -> None:
    """The decision ends the hold: the run is done, and it keeps who decided and when (ARCHITECTURE rule 5)."""
    run.held_resolution = resolution
    run.status = SyncStatus.SUCCEEDED
    run.held_decided_by = stored(by)
    run.held_decided_at = timezone.now()
    run.save(update_fields=["held_resolution", "status", "held_decided_by", "held_decided_at", *extra_fields])
    resolve([topics.held_disables(run.pk)])  # decided: the bell no longer asks anyone


@transaction.atomic
def apply_held_disables(run: SyncRun, *, by: Actor) -> int:
    """R22: staff confirm the disables a run held. Only users still enabled by the directory are touched."""
    run = _held_run_waiting(run)
    disables = [Disable(d["user_id"], d["external_id"], d["reason"]) for d in run.held_disables]
    still_linked = set(
        DirectoryLink.objects.filter(integration_id=run.integration_id).values_list("portal_user_id", flat=True)
    )
    count = disable_users([d for d in disables if d.user_id in still_linked], run_id=run.pk, at=timezone.now())
    run.counts = {**run.counts, "disabled": run.counts.get("disabled", 0) + count}
    _record_decision(run, HeldResolution.APPLIED, by, ("counts",))
    log.info("held disables of run %s applied by %s", run.pk, by)
    return count


@transaction.atomic
def discard_held_disables(run: SyncRun, *, by: Actor) -> None:
    """R22: staff discard the disables a run held; nobody is disabled."""
    run = _held_run_waiting(run)
    _record_decision(run, HeldResolution.DISCARDED, by)
    log.info("held disables of run %s discarded by %s", run.pk, by)


def set_link(integration: Integration, enabled: bool, *, by: Actor) -> SyncRun:
    """R10: off disables every user from the integration at once; on brings them back at the next sync.

    The run that does it keeps who switched the link (its `started_by`). Switching an agent integration's link on
    queues a run that waits for the agent's fresh read, as its preview did (so the run's counts are the preview's);
    every other switch runs at once in this process."""
    Integration.objects.filter(pk=integration.pk).update(link_enabled=enabled)
    integration.link_enabled = enabled
    if enabled and agent_runs.is_agent(integration):
        return request_sync(integration, SyncTrigger.LINK, started_by=by)
    return run_sync(integration, SyncTrigger.LINK, started_by=by)


def resync_user(user: PortalUser, *, by: Actor) -> list[SyncRun]:
    """R28: read this one user from each directory it came from and apply the rules to it alone.

    Each is a run of its own, claimed as every run is (R23): while another run of that integration is running,
    this user's run is recorded as not done, saying so (the running one reads every user anyway).
    """
    return [_resync_from(user, link, by) for link in user.directory_links.select_related("integration__client")]


def _resync_from(user: PortalUser, link: DirectoryLink, by: Actor) -> SyncRun:
    integration = link.integration
    from_agent = agent_runs.is_agent(integration) and integration.link_enabled
    if from_agent:
        # The portal holds only the agent's last upload: this run applies the rules to the user from it, and the
        # agent is asked to read AD again (a full read, which includes this user); the run says both.
        request_sync(integration, SyncTrigger.USER, started_by=by)
    try:
        recorder = start_now(integration, SyncTrigger.USER, started_by=by, portal_user=user)
    except RunBusy:
        now = timezone.now()
        return SyncRun.objects.create(
            integration=integration, trigger=SyncTrigger.USER, portal_user=user, started_by=stored(by),
            status=SyncStatus.FAILED, started_at=now, finished_at=now,
            error=f"A sync of {integration.name} is running now and reads every user; "
                  "resync this user again once it has finished to read them alone.")
    run = recorder.run
    try:
        if not integration.link_enabled:
            raise DirectoryError(f"The link of {integration.name} is off.")
        record = connector_for(integration).read_user(link.external_id)
    except DirectoryError as exc:
        recorder.fail(str(exc), notify_staff=False)  # said on the user's page at once, not in the bell
        run.refresh_from_db()
        return run
    snapshot = Snapshot(
        directory_id=integration.directory_id, folders=(), users=(record,) if record else (),
        complete=True, incremental=True, folders_complete=False,
        removed_user_ids=frozenset() if record else frozenset({link.external_id}),
    )
    loaded = load_current(integration, only_external_ids=[link.external_id])
    result = plan(snapshot, load_mappings(integration), loaded.current, threshold=Threshold(100, 1 << 30))
    try:
        apply_and_record(run, integration, result, loaded, integration.directory_id)
    except Exception as exc:  # the run must not hold the integration; the caller sees the error
        recorder.fail(f"Could not save the changes: {type(exc).__name__}: {exc}", cause="could not save")
        raise
    if from_agent:
        run.refresh_from_db()
        SyncRun.objects.filter(pk=run.pk).update(
            changes={**run.changes, "source": agent_runs.source_of_user_resync(integration)})
    run.refresh_from_db()
    return run


def staff_set_enabled(user: PortalUser, enabled: bool, *, by: Actor) -> None:
    """R8: a manual disable is kept apart from a directory disable and only staff lift it.

    The user keeps who disabled them and when, and who lifted that disable and when (stored on the user)."""
    user.set_disabled_by_staff(not enabled, by=by)
    user.refresh_status()
    user.save(update_fields=["disabled_by_staff", "staff_disabled_at", "staff_disabled_by", "staff_enabled_at",
                             "staff_enabled_by", "status", "updated_at"])


@transaction.atomic
def save_proposal(integration: Integration, proposal: dict, *, by: Actor) -> None:
    """Yes: write the mappings (who made them is kept), or remove the one asked for."""
    if proposal["remove"]:
        Mapping.objects.filter(folder__integration=integration, folder_id__in=proposal["remove"]).delete()
    if not proposal["folders"]:
        return
    client = integration.client
    group_ids = set(SecurityGroup.objects.filter(client=client, pk__in=proposal["groups"]).values_list("pk", flat=True))
    if proposal["new_group"]:
        group = (SecurityGroup.objects.filter(client=client, name__iexact=proposal["new_group"]).first()
                 or SecurityGroup.objects.create(client=client, name=proposal["new_group"]))
        group_ids.add(group.pk)
    level = PermissionLevel.objects.get(pk=proposal["level"], user_kind=client.user_kind)
    for folder in integration.folders.filter(pk__in=proposal["folders"], gone=False):
        mapping, created = Mapping.objects.get_or_create(folder=folder, defaults={"permission_level": level,
                                                                                  "created_by": stored(by)})
        if not created and mapping.permission_level_id != level.pk:
            mapping.permission_level = level
            mapping.save(update_fields=["permission_level", "updated_at"])
        mapping.security_groups.set(group_ids)
