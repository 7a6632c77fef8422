"""A SCIM write's effect on portal users: the changed users go through the same planner and applier.

Each write stores the new directory state first (views), then `push` runs the affected users as one
single-user-style run (trigger "scim", recorded as a SyncRun like every run, R24): an incremental
snapshot of just those users, planned against the integration's mappings by `provisioning.planner.plan`
and written by `provisioning.applier.apply_plan`. Nothing here decides who becomes a portal user.

R22 over a window: SCIM has no "run that disables many at once", it has many small requests. Disables
are counted over the last SCIM_DISABLE_WINDOW_MINUTES (default 60); once that count passes the
integration's threshold (the same percent and minimum as R22), further disables are held in a held run
for staff to apply or discard, and the SCIM client is still answered 200 (so it does not retry).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db.models.functions import Lower
from django.utils import timezone

from directory.connectors.base import Snapshot
from directory.folders import record_folders
from directory.models import Integration
from provisioning.applier import load_current, load_mappings
from provisioning.models import CreationIssue, DirectoryLink, SyncRun, SyncStatus, SyncTrigger
from provisioning.planner import Plan, Threshold, plan
from provisioning.services import _apply  # the one way a run's result is recorded, as resync_user does

from .connector import ScimConnector

NO_HOLD = Threshold(percent=100, minimum=1 << 30)  # the window below decides holds for SCIM


def window() -> timedelta:
    return timedelta(minutes=getattr(settings, "SCIM_DISABLE_WINDOW_MINUTES", 60))


def ensure_folders(integration: Integration) -> None:
    """The folder tree (groups + the all-users folder) as stored now (R19): call after any group change."""
    record_folders(integration, ScimConnector(integration).read_folders())


@dataclass
class Pushed:
    run: SyncRun | None
    plan: Plan | None


def push(integration: Integration, scim_ids: Collection[str]) -> Pushed:
    """Plan and apply these SCIM users (by id) as they are stored now; a deleted or unknown id is removed.

    Call inside the request's transaction, after the stored state was written.
    """
    ids = sorted(set(scim_ids))
    if not ids or not integration.link_enabled:
        return Pushed(None, None)  # link off: users were disabled (R10); they come back with the link
    connector = ScimConnector(integration)
    records = connector.users_by_id(ids)
    present = {r.id for r in records}
    snapshot = Snapshot(
        directory_id=integration.directory_id, folders=tuple(connector.read_folders()), users=tuple(records),
        complete=True, incremental=True, folders_complete=True,
        removed_user_ids=frozenset(i for i in ids if i not in present),
    )
    loaded = load_current(integration, only_external_ids=[*ids, *_email_keepers(integration, records)])
    result = plan(snapshot, load_mappings(integration), loaded.current, threshold=NO_HOLD)
    if result.is_empty and not _seen_changed(result, loaded):
        return Pushed(None, result)
    _hold_over_window(integration, result)
    now = timezone.now()
    run = SyncRun.objects.create(integration=integration, trigger=SyncTrigger.SCIM, full=False,
                                 status=SyncStatus.SUCCEEDED, started_at=now, heartbeat_at=now)
    _apply(run, integration, result, loaded, integration.directory_id)
    run.refresh_from_db()
    return Pushed(run, result)


def _email_keepers(integration: Integration, records) -> list[str]:
    """Identities of this integration linked to the portal users holding the emails these records claim.

    The planner decides who keeps an email (R4) from the links it is given; without these it would take
    a user linked to another SCIM identity for one it may adopt.
    """
    emails = {r.email.strip().lower() for r in records if r.email and r.email.strip()}
    if not emails:
        return []
    return list(DirectoryLink.objects.filter(integration=integration)
                .annotate(email_key=Lower("portal_user__email")).filter(email_key__in=emails)
                .values_list("external_id", flat=True))


def _seen_changed(result: Plan, loaded) -> bool:
    """Whether a linked identity's stored directory state would change (the link row is rewritten)."""
    from provisioning.applier import fingerprint

    return any(s.external_id not in loaded.links or loaded.links[s.external_id][1] != fingerprint(s)
               for s in result.seen)


def _hold_over_window(integration: Integration, result: Plan) -> None:
    if not result.disables:
        return
    since = timezone.now() - window()
    recent = sum(
        counts.get("disabled", 0) for counts in SyncRun.objects.filter(
            integration=integration, trigger=SyncTrigger.SCIM, requested_at__gte=since, counts__disabled__gt=0,
        ).values_list("counts", flat=True)
    )
    provisioned = DirectoryLink.objects.filter(integration=integration).count()
    total = recent + len(result.disables)
    percent, minimum = integration.disable_threshold_percent, integration.disable_threshold_minimum
    if total >= minimum and total * 100 > percent * provisioned:
        result.held_disables, result.disables = result.disables, []
        result.hold_reason = (
            f"{total} of {provisioned} provisioned users would be disabled by SCIM requests within "
            f"{int(window().total_seconds() // 60)} minutes (more than {percent}% and at least {minimum})"
        )


def open_issue_for(integration: Integration, scim_id: str) -> CreationIssue | None:
    """The open creation issue of a SCIM user that has no portal user, if the planner raised one (R7)."""
    if DirectoryLink.objects.filter(integration=integration, external_id=scim_id).exists():
        return None
    return (CreationIssue.objects.filter(integration=integration, external_id=scim_id, closed_at__isnull=True)
            .order_by("-opened_at").first())
