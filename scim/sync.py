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

from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.db.models.functions import Lower
from django.utils import timezone

from directory.connectors.base import Snapshot, UserRecord
from directory.folders import record_folders
from directory.models import Integration
from passportal.models import GroupMembership, MembershipSource, PortalUser
from provisioning.models import CreationIssue, DirectoryLink, SyncRun, SyncTrigger
from provisioning.planner import Current, LinkState, Plan, Threshold, UserState, plan
from provisioning.runs import RunBusy, start_beside, start_now
from provisioning.state import Loaded, load_mappings
from provisioning.sync import apply_and_record  # the one way a run's result is recorded, as resync_user does

from .connector import ScimConnector

NO_HOLD = Threshold(percent=100, minimum=1 << 30)  # the window below decides holds for SCIM


def window() -> timedelta:
    return timedelta(minutes=settings.SCIM_DISABLE_WINDOW_MINUTES)


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
    loaded = load_for(integration, ids, records)
    result = plan(snapshot, load_mappings(integration), loaded.current, threshold=NO_HOLD)
    # `seen` lists a linked identity only when its stored directory state changes, and a new one always.
    if result.is_empty and not result.seen:
        return Pushed(None, result)
    _hold_over_window(integration, result)
    try:
        run = start_now(integration, SyncTrigger.SCIM, full=False).run
    except RunBusy:
        # A SCIM client is answered at once and does not retry, and its change is stored already: a push while a
        # full run holds the integration is applied beside it, as its own run (the client's apply lock orders
        # their writes). The one run that does not wait for the claim.
        run = start_beside(integration, SyncTrigger.SCIM, full=False)
    apply_and_record(run, integration, result, loaded, integration.directory_id)
    run.counts = result.counts  # what apply_and_record recorded on the row
    return Pushed(run, result)


def load_for(integration: Integration, ids: list[str], records: list[UserRecord]) -> Loaded:
    """What the planner needs to decide for these identities alone, as `load_current` shapes it.

    `load_current` reads every user of the client and every link of the integration (a full run needs
    them); one SCIM request needs only: the portal users these identities are linked to, the ones that hold
    the emails they claim (R4: adopt, or refuse), this integration's links to those users (the planner
    decides who keeps an email from them) and which of them another integration holds (never adopted).
    The planner reads nothing else of `Current` for an incremental
    snapshot (its threshold is not used here), so its decisions are the same, at a cost that does not
    grow with the client.
    """
    emails = {r.email.strip().lower() for r in records if r.email and r.email.strip()}
    holders: set[int] = set()
    if emails:
        holders = set(PortalUser.objects.filter(client_id=integration.client_id).annotate(email_key=Lower("email"))
                      .filter(email_key__in=emails).values_list("pk", flat=True))
    link_rows = list(DirectoryLink.objects.filter(integration=integration)
                     .filter(Q(external_id__in=ids) | Q(portal_user_id__in=holders))
                     .values_list("pk", "external_id", "portal_user_id", "state_hash"))
    user_ids = holders | {uid for _, _, uid, _ in link_rows}
    groups: dict[int, set[int]] = defaultdict(set)
    for user_id, group_id in GroupMembership.objects.filter(
            user_id__in=user_ids, source=MembershipSource.MAPPING).values_list("user_id", "group_id"):
        groups[user_id].add(group_id)
    users = {
        uid: UserState(uid, email, first, last, reason, staff, level, by_hand, frozenset(groups.get(uid, ())))
        for uid, email, first, last, reason, staff, level, by_hand in PortalUser.objects.filter(
            pk__in=user_ids, client_id=integration.client_id).values_list(
            "pk", "email", "first_name", "last_name", "disabled_reason", "disabled_by_staff", "permission_level_id",
            "permission_level_set_by_hand")
    }
    links = {ext: LinkState(ext, uid, frozenset(), pk, digest) for pk, ext, uid, digest in link_rows}
    open_issues = frozenset(CreationIssue.objects.filter(integration=integration, closed_at__isnull=True,
                                                         external_id__in=ids).values_list("external_id", "reason"))
    # R4 across directories: a portal user another integration of the client holds is never adopted.
    held_elsewhere = dict(DirectoryLink.objects.filter(integration__client_id=integration.client_id,
                                                       portal_user_id__in=user_ids)
                          .exclude(integration_id=integration.pk).values_list("portal_user_id", "integration__name"))
    return Loaded(Current(users=users, links=links, open_issues=open_issues, held_elsewhere=held_elsewhere))



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
