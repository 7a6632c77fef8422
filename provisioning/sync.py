"""A run's pipeline: read the directory, plan from the portal's state, apply; and dry runs (previews, R15).

The queue and the one-at-a-time claim are in `runs`; this module executes what `runs` hands it.
"""

from __future__ import annotations

import copy
import gc
import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeGuard

from django.db import connection, transaction
from django.utils import timezone

from directory.connectors import DirectoryError, DirectoryUnavailable
from directory.connectors.base import Connector, FindsDeletedUsers, Snapshot
from directory.folders import record_folders
from directory.models import Integration
from directory.sources import connector_for
from notifications.services import resolve
from passportal.actors import Actor
from passportal.models import PermissionLevel, SecurityGroup

from . import ad_reads, agent_marks, agent_runs, topics
from .applier import apply_plan
from .client_lock import client_apply_lock, client_state_version
from .models import DirectoryLink, SyncRun, SyncStatus, SyncTrigger
from .planner import Current, MappingRule, Plan, Threshold, plan
from .runs import STEPS, Recorder, RunBusy, claim, enqueue_run, request_sync, retry_once
from .state import Loaded, inputs_digest, load_current, load_mappings, replans_to_nothing

log = logging.getLogger(__name__)

CHANGE_LIST_LIMIT = 500  # per kind, on the run page; counts are always complete


def run_sync(integration: Integration, trigger: str, *, full: bool = True, started_by: Actor = None) -> SyncRun:
    """Queue and execute now, in this process (commands with --wait, tests). Returns the finished run."""
    run = request_sync(integration, trigger, full=full, started_by=started_by, enqueue=False)
    return execute_run(run.pk)



_gc = {"pauses": 0, "resume": False}
_gc_lock = threading.Lock()


@contextmanager
def _cyclic_gc_paused() -> Iterator[None]:
    """No cyclic garbage collection while a run executes.

    A run holds a few objects per user (records, states, plan entries) until it ends; the cyclic collector
    would walk them again and again and find nothing to free (measured: a third or more of a no-change run
    at 100,000 users). Reference counting still frees everything as usual; collection resumes after the run.
    Counted, so runs in several threads of one process resume it only when the last one ends.
    """
    with _gc_lock:
        if _gc["pauses"] == 0:
            _gc["resume"] = gc.isenabled()
            gc.disable()
        _gc["pauses"] += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc["pauses"] -= 1
            if _gc["pauses"] == 0 and _gc["resume"]:
                gc.enable()


def execute_run(run_id: int) -> SyncRun:
    """Run a queued sync (idempotent: a second delivery of the same task finds it no longer queued)."""
    with _cyclic_gc_paused():
        return _execute_run(run_id)


def _execute_run(run_id: int) -> SyncRun:
    recorder = claim(run_id)
    if recorder is None:  # not queued any more, waiting for the agent, or another run is running
        return SyncRun.objects.select_related("integration__client").get(pk=run_id)
    run = recorder.run
    try:
        _execute(run)
    except Exception as exc:  # recorded on the run and raised to the bell; the task itself must not retry
        log.exception("sync run %s of integration %s failed", run.pk, run.integration_id)
        stage = SyncRun.objects.filter(pk=run.pk).values_list("phase", flat=True).first() or "starting"
        recorder.fail(f"Could not save the changes (while {stage}): {type(exc).__name__}: {exc}",
                      cause="could not save")
        retry_once(run)
    follow_up = SyncRun.objects.filter(
        integration_id=run.integration_id, status=SyncStatus.QUEUED, dry_run=False
    ).first()
    if follow_up is not None:
        enqueue_run(follow_up.pk)
    run.refresh_from_db()
    return run


def _execute(run: SyncRun) -> None:
    integration = run.integration
    if not integration.link_enabled:
        Recorder(run).progress("link off: disabling", 0, 1)
        loaded = load_current(integration)
        result = plan(_empty_snapshot(integration), {}, loaded.current, link_enabled=False)
        apply_and_record(run, integration, result, loaded, integration.directory_id)
        return

    Recorder(run).progress("reading the directory", 0, STEPS)
    upload = agent_marks.latest_upload(integration)
    read_digest = upload.read_digest if upload is not None else None
    if read_digest is not None and _finish_if_unchanged(run, integration, read_digest):
        return
    try:
        snapshot, _connector, ad_read = _read(integration, full=run.full)
    except DirectoryError as exc:
        Recorder(run).fail(str(exc), permanent=exc.permanent)  # an AD read's mark stays as it was (R21)
        return
    finished_as = _plan_and_apply(run, snapshot, read_digest=read_digest, ad_read=ad_read)
    if ad_read is not None:
        # Keeps its mark if the run succeeded; no mark to drop is known from the upload's query.
        ad_reads.record(run, ad_read, finished_as=finished_as, mark_kept=upload is None or upload.mark_kept)
    if snapshot.delta_state is not None:
        Integration.objects.filter(pk=integration.pk).update(delta_state=dict(snapshot.delta_state))


def _plan_and_apply(run: SyncRun, snapshot: Snapshot, *, read_digest: str | None = None,
                    ad_read: ad_reads.AdRead | None = None) -> str | None:
    """Plan and apply; returns the status the run finished with, its changes saying `ad_read` (None: it failed)."""
    integration = run.integration
    said = {"read": ad_reads.said(ad_read)} if ad_read is not None else {}
    if snapshot.incremental and not (snapshot.users or snapshot.removed_user_ids or snapshot.notes):
        # A partial read with no news: the planner would plan nothing for it (it plans only whom a partial read
        # mentions), so the portal's state is not even loaded. What a run with nothing changed costs is the read.
        status = apply_and_record(run, integration, Plan(), Loaded(Current(users={}, links={})),
                                  snapshot.directory_id, said=said)
        resolve([topics.sync_failed(integration.pk)])
        return status
    if snapshot.folders_complete and snapshot.complete:
        record_folders(integration, snapshot.folders)
    recorder = Recorder(run)
    recorder.progress("planning", 1, STEPS)
    with _one_view_of_the_tables():
        loaded = load_current(integration, listed=snapshot.users)
        rules = load_mappings(integration)
        result = plan(snapshot, rules, loaded.current, link_enabled=True, threshold=_threshold(integration))
        # A run the next one may stand for is remembered with the state it leaves (the short cut); its check
        # that nobody wrote while it planned is then the inputs digest, a stronger one than the version.
        remember = read_digest is not None and replans_to_nothing(snapshot, result)
        planned_from = inputs_digest(integration) if remember else client_state_version(integration.client_id)
    recorder.progress("applying the changes", 2, STEPS)
    with client_apply_lock(integration.client_id):
        if (inputs_digest(integration) if remember else client_state_version(integration.client_id)) != planned_from:
            # Another run of this client (or staff) wrote while this one planned: plan again, under the lock.
            loaded = load_current(integration, listed=snapshot.users)
            result = plan(snapshot, rules, loaded.current, link_enabled=True, threshold=_threshold(integration))
            remember = False  # planned from a state no digest taken here describes: not remembered
        if result.failure:
            recorder.fail(result.failure)  # G4: a mapped group the read did not see changes nobody
            return None
        status = apply_and_record(run, integration, result, loaded, snapshot.directory_id, said=said,
                                  digests={"read": read_digest, "inputs": planned_from} if remember else None)
    if snapshot.complete:
        resolve([topics.sync_failed(integration.pk)])  # the directory was read again: earlier failures are settled
    return status


def sync_snapshot(integration: Integration, snapshot: Snapshot, trigger: str, *,
                  started_by: Actor = None) -> SyncRun:
    """Plan and apply a snapshot already in hand, as one recorded run, claimed as every run is (R23)."""
    queued = request_sync(integration, trigger, started_by=started_by, enqueue=False)
    recorder = claim(queued.pk)
    if recorder is None:
        raise RunBusy(f"another sync of {integration} is running; run {queued.pk} waits for it")
    run = recorder.run
    try:
        _plan_and_apply(run, snapshot)
    except Exception as exc:
        recorder.fail(f"Unexpected error: {type(exc).__name__}: {exc}")
        raise
    run.refresh_from_db()
    return run


@contextmanager
def _one_view_of_the_tables() -> Iterator[None]:
    """Reads inside see one snapshot of the database (PostgreSQL: REPEATABLE READ), so what a run plans from
    is one state, never half of a staff edit made meanwhile. Inside an outer transaction (tests), as it is."""
    if connection.in_atomic_block:
        yield
        return
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        yield


# ---------------------------------------------------------------- the short cut of a run that changes nothing


def _finish_if_unchanged(run: SyncRun, integration: Integration, read_digest: str) -> bool:
    """Finish the run without reading or planning when that could change nothing; True if it did.

    The latest complete run remembered (read digest, inputs digest) only if its plan was empty. The planner
    is a pure function of the read and of the state the inputs digest covers, so the same pair now plans the
    same empty plan: the run records exactly what a full run would (no change, folders seen), reading
    nothing. Anything else (a new upload, a mapping, level, group, link, issue or staff edit) runs in full.
    """
    last = (SyncRun.objects.filter(integration=integration, dry_run=False, finished_at__isnull=False,
                                   status__in=[SyncStatus.SUCCEEDED, SyncStatus.HELD])
            .exclude(pk=run.pk).order_by("-finished_at", "-pk").values_list("changes", flat=True).first())
    remembered = (last or {}).get("digests") or {}
    if remembered.get("read") != read_digest:
        return False
    if remembered.get("inputs") != inputs_digest(integration):
        return False
    now = timezone.now()
    # What record_folders does with the same folder list over the same tree: only "last seen" moves.
    integration.folders.filter(gone=False).update(last_seen=now)
    ad_read = agent_marks.latest_read(integration)  # the upload's read: said, and its mark kept, as in full
    empty = Plan()
    Recorder(run).finish(counts=empty.counts, changes={
        **describe(empty, Loaded(Current(users={}, links={}))), "digests": remembered,
        **({"read": ad_reads.said(ad_read)} if ad_read is not None else {})})
    if ad_read is not None:
        ad_reads.record(run, ad_read, finished_as=SyncStatus.SUCCEEDED)
    resolve([topics.sync_failed(integration.pk)])  # the directory was read again: earlier failures are settled
    return True


def _read(integration: Integration, *, full: bool) -> tuple[Snapshot, object, ad_reads.AdRead | None]:
    connector = connector_for(integration)
    # Gone folders too: a folder a read did not see (an OU deleted, or hidden from the bind account) is read
    # again, so it comes back when it is there again; the planner puts the users of an unseen one out of scope.
    mapped = list(integration.folders.filter(mapping__isnull=False).values_list("external_id", flat=True))
    incremental = not full and bool(integration.delta_state)
    if not mapped and not incremental:
        # Nothing configured: read the folder tree only (R19), no users are in scope.
        folders = connector.read_folders()
        snapshot = Snapshot(directory_id=connector.directory_id, folders=tuple(folders), users=(), complete=True)
        return snapshot, connector, None
    if agent_marks.reads_uploads(connector):  # AD read by the on-prem agent: its latest upload, partial or full
        snapshot, ad_read = agent_marks.agent_read(integration, connector, mapped)
        return snapshot, connector, ad_read
    if ad_reads.reads_changes(connector):  # AD read by the portal: the changes since the last good run's mark
        ad_read = ad_reads.read(integration, connector, mapped, full=full)
        return ad_read.read.snapshot, connector, ad_read
    return read_snapshot(connector, integration, mapped, incremental=incremental), connector, None


def read_snapshot(connector: Connector, integration: Integration, folder_ids: list[str], *,
                  incremental: bool) -> Snapshot:
    """The connector's snapshot; a full read is told which users are linked, where it can tell deleted from moved.

    Only such connectors (AD) get the ids: the portal keeps the links, the connector never reads models.
    """
    if not incremental and finds_deleted_users(connector):
        known = list(DirectoryLink.objects.filter(integration=integration).values_list("external_id", flat=True))
        return connector.read_snapshot(folder_ids, incremental=False, known_user_ids=known)
    return connector.read_snapshot(folder_ids, incremental=incremental)


def finds_deleted_users(connector: Connector) -> TypeGuard[FindsDeletedUsers]:
    return bool(getattr(connector, "finds_deleted_users", False))


def _empty_snapshot(integration: Integration) -> Snapshot:
    return Snapshot(directory_id=integration.directory_id, folders=(), users=(), complete=False,
                    folders_complete=False)


def _threshold(integration: Integration) -> Threshold:
    return Threshold(percent=integration.disable_threshold_percent, minimum=integration.disable_threshold_minimum)


def apply_and_record(run: SyncRun, integration: Integration, result: Plan, loaded: Loaded, directory_id: str, *,
                     digests: dict | None = None, said: dict | None = None) -> str:
    """Write the plan and end the run with what it did: the one way a run's result is recorded.

    `digests` (the read's and the inputs' the plan was made from, checked unchanged under the client's lock): the
    next run with the same read may finish at once (the short cut). A plan that changed nothing leaves the state
    it was made from; one that changed something leaves that state and its own writes, digested here, in the
    apply's transaction, after them. Not when the applier left users as staff set them meanwhile: their links
    are written to be planned again. `said`: more of the run's changes (which read it made). Returns the status.
    """
    applied = apply_plan(run, integration, result, loaded, directory_id=directory_id)
    changes = {**describe(result, loaded), **(said or {})}
    if digests is not None and not applied.counts.get("left_as_staff_set"):
        changes["digests"] = digests if result.is_empty else {**digests, "inputs": inputs_digest(integration)}
    held = bool(result.held_disables)
    Recorder(run).finish(
        held=held, counts=applied.counts, changes=changes,
        held_disables=[{"user_id": d.user_id, "external_id": d.external_id, "reason": d.reason,
                        **({"detail": d.detail} if d.detail else {})} for d in result.held_disables],
        error=("Disables held: " + result.hold_reason) if result.held_disables else "",
    )
    return SyncStatus.HELD if held else SyncStatus.SUCCEEDED


def describe(result: Plan, loaded: Loaded) -> dict:
    """The plan's changes for people: counts are complete, lists are cut at CHANGE_LIST_LIMIT per kind."""
    users = loaded.current.users

    def who(user_id: int) -> str:
        u = users.get(user_id)
        return f"{u.first_name} {u.last_name} <{u.email}>".strip() if u else str(user_id)

    cut = CHANGE_LIST_LIMIT
    level_name, group_names = _grant_names(result)
    via = _via_of(result)

    def value(field: str, raw: object) -> str:
        # Levels by name, as they were named at the time of the run; other fields as they are.
        if field == "permission_level_id" and isinstance(raw, int):
            return level_name.get(raw, str(raw))
        return str(raw or "")

    return {
        "create": [{"user": f"{c.first_name} {c.last_name} <{c.email}>", "level": level_name.get(c.level_id or 0, ""),
                    "groups": group_names(c.group_ids), **({"via": list(c.via)} if c.via else {})}
                   for c in result.creates[:cut]],
        "adopt": [who(a.user_id) for a in result.adoptions[:cut]],
        "update": [
            {"user": who(u.user_id), "user_id": u.user_id,
             "changes": {k: [value(k, v[0]), value(k, v[1])] for k, v in u.changes.items()},
             **(via(u.user_id) if "permission_level_id" in u.changes else {})}
            for u in result.updates[:cut]
        ],
        "groups": [
            {"user": who(user_id), "user_id": user_id, "added": group_names(added), "removed": group_names(removed),
             **via(user_id)}
            for user_id, (added, removed) in list(_group_changes_by_user(result).items())[:cut]
        ],
        "disable": [{"user": who(d.user_id), "user_id": d.user_id, "reason": d.reason,
                     **({"detail": d.detail} if d.detail else {})} for d in result.changing_disables[:cut]],
        "reenable": [
            {"user": who(r.user_id), "user_id": r.user_id, "stays_disabled_by_staff": r.stays_disabled_by_staff,
             **via(r.user_id)}
            for r in [r for r in result.reenables if not r.stays_disabled_by_staff][:cut]
        ],
        "issues": [{"user": i.user_name, "reason": i.reason, "message": i.message} for i in result.issues_open[:cut]],
        "held": [{"user": who(d.user_id), "user_id": d.user_id, "reason": d.reason,
                  **({"detail": d.detail} if d.detail else {})} for d in result.held_disables[:cut]],
        "hold_reason": result.hold_reason,
        "notes": result.notes[:cut],
    }


def _via_of(result: Plan) -> Callable[[int], dict[str, list[str]]]:
    """G5: where scope matters (a level or groups changed, a re-enable), through which folders and chains of
    nested groups the user is in scope, as the plan found it; nothing for a user it said nothing of."""
    return lambda user_id: {"via": list(result.vias[user_id])} if result.vias.get(user_id) else {}


def _grant_names(result: Plan) -> tuple[dict[int, str], Callable[[Iterable[int]], list[str]]]:
    """Names of the levels and groups a plan grants or takes, so people read names and never ids."""
    group_ids = {g for c in result.creates for g in c.group_ids}
    group_ids |= {g for _, g in result.group_adds} | {g for _, g in result.group_removes}
    groups = dict(SecurityGroup.objects.filter(pk__in=group_ids).values_list("pk", "name")) if group_ids else {}
    # Levels only when the plan names one (a creation's, or a level changed): a rename needs no query.
    named = bool(result.creates) or any("permission_level_id" in u.changes for u in result.updates)
    levels = dict(PermissionLevel.objects.values_list("pk", "name")) if named else {}

    def group_names(ids: Iterable[int]) -> list[str]:
        return sorted((groups.get(g, str(g)) for g in ids), key=str.lower)

    return levels, group_names


def _group_changes_by_user(result: Plan) -> dict[int, tuple[list[int], list[int]]]:
    """Existing users' group changes, per user: (added, removed)."""
    by_user: dict[int, tuple[list[int], list[int]]] = {}
    for user_id, group_id in result.group_adds:
        by_user.setdefault(user_id, ([], []))[0].append(group_id)
    for user_id, group_id in result.group_removes:
        by_user.setdefault(user_id, ([], []))[1].append(group_id)
    return by_user


# ---------------------------------------------------------------- previews (R15)


@dataclass
class Preview:
    plan: Plan
    changes: dict
    run: SyncRun


def preview(
    integration: Integration, *, mappings: Mapping[str, MappingRule] | None = None, started_by: Actor = None,
    trigger: str = SyncTrigger.APPLY, connector: Connector | None = None, run: SyncRun | None = None,
) -> Preview:
    """A dry run against the directory as it is now, by the same planner: writes only its own record.

    `mappings` replaces the stored mappings (the User Mapping confirmation shows what applying would do).
    `connector` reads instead of the integration's own (the on-prem agent's fresh read for this preview), and
    `run` is the dry run that waited for it. Raises DirectoryError when the directory cannot be read.
    """
    fresh_from_agent = connector is not None
    if run is None:
        run = SyncRun.objects.create(integration=integration, trigger=trigger, dry_run=True, started_by=started_by,
                                     status=SyncStatus.RUNNING, started_at=timezone.now())
    rules = dict(mappings) if mappings is not None else load_mappings(integration)
    try:
        if integration.link_enabled:
            connector = connector or connector_for(integration)
            snapshot = read_snapshot(connector, integration, list(rules), incremental=False) if rules else Snapshot(
                directory_id=connector.directory_id, folders=tuple(connector.read_folders()), users=(), complete=True
            )
        else:
            snapshot = _empty_snapshot(integration)
    except DirectoryError as exc:
        SyncRun.objects.filter(pk=run.pk).update(status=SyncStatus.FAILED, finished_at=timezone.now(), error=str(exc))
        raise
    loaded = load_current(integration, listed=snapshot.users)
    result = plan(snapshot, rules, loaded.current, link_enabled=integration.link_enabled,
                  threshold=_threshold(integration))
    if result.failure:
        SyncRun.objects.filter(pk=run.pk).update(status=SyncStatus.FAILED, finished_at=timezone.now(),
                                                 error=result.failure)
        raise DirectoryUnavailable(result.failure)
    changes = describe(result, loaded)
    if agent_runs.is_agent(integration) and integration.link_enabled and not fresh_from_agent:
        changes["source"] = agent_runs.source_of_last_upload(integration)  # said plainly: not AD as it is now
    SyncRun.objects.filter(pk=run.pk).update(
        status=SyncStatus.SUCCEEDED, phase="done", finished_at=timezone.now(), counts=result.counts, changes=changes
    )
    run.refresh_from_db()
    return Preview(plan=result, changes=changes, run=run)


def preview_link(integration: Integration, enabled: bool, *, started_by: Actor = None) -> Preview:
    """What switching the link on or off would do, by the same planner as the run that follows (R10, R15).

    Switching it on reads the directory as it is now; switching it off reads nothing.
    """
    switched = copy.copy(integration)
    switched.link_enabled = enabled
    return preview(switched, started_by=started_by, trigger=SyncTrigger.LINK)

