"""Write a Plan to the database in bulk, inside one transaction (ARCHITECTURE: the applier).

The number of SQL statements grows with the number of batches, never with the number of users:
rows are created with bulk_create, state changes are set-based UPDATEs grouped by value, and field
updates go through bulk_update in batches. Activation emails are queued in the same transaction as
the users they are for (the outbox rows commit with them; the sender runs after commit).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from adread.batches import chunks
from directory.models import Integration
from notifications.activation import queue_activation_emails, void_tokens_for
from notifications.models import Notification, NotificationKind
from notifications.services import notification, notify, notify_many, resolve
from passportal.bulk import allocate_ids, copy_rows, update_rows, update_rows_where_unchanged, use_copy
from passportal.models import GroupMembership, MembershipSource, PortalUser, UserStatus

from . import topics
from .models import CreationIssue, DirectoryLink, SyncRun
from .planner import Disable, DisableReason, Plan, fingerprint
from .state import Loaded

BATCH = 2000
ISSUE_NOTIFICATIONS_PER_RUN = 100


# ---------------------------------------------------------------- writing


def disable_users(disables: Sequence[Disable], *, run_id: int, at: datetime) -> int:
    """Set-based: one UPDATE per reason and chunk. Each user keeps why, when and by which run (its page says so)."""
    by_reason: dict[str, list[int]] = defaultdict(list)
    for d in disables:
        by_reason[d.reason].append(d.user_id)
    done = 0
    for reason, ids in by_reason.items():
        for part in chunks(ids, BATCH):
            # Compare-and-set: a user another run or a held decision disabled meanwhile keeps that reason.
            still_enabled = PortalUser.objects.filter(pk__in=list(part),
                                                      disabled_reason__in=("", DisableReason.LINK_OFF))
            done += still_enabled.update(
                disabled_reason=reason, status=PortalUser.status_expression(disabled_reason=reason), disabled_at=at,
                disabled_by_run_id=run_id, updated_at=at,
            )
    return done


@dataclass
class Applied:
    counts: dict[str, int]


@transaction.atomic
def apply_plan(run: SyncRun, integration: Integration, plan: Plan, loaded: Loaded, *, directory_id: str) -> Applied:
    now = timezone.now()
    client_id = integration.client_id

    # Creations (R2): users, their links, their mapping groups.
    created_ids = _create_users(plan, client_id, now)
    user_for_external = {c.external_id: uid for c, uid in zip(plan.creates, created_ids, strict=True)}
    memberships = [(uid, g) for c, uid in zip(plan.creates, created_ids, strict=True) for g in sorted(c.group_ids)]

    # Adoptions (R4): an existing user is linked; a level it had is kept and locked (R11).
    for a in plan.adoptions:
        user_for_external[a.external_id] = a.user_id
    keep_levels = [a.user_id for a in plan.adoptions if a.keeps_level]
    for part in chunks(keep_levels, BATCH):
        PortalUser.objects.filter(pk__in=list(part)).update(permission_level_set_by_hand=True)

    _create_links(run, integration, plan, user_for_external, directory_id, now)

    # Field updates (R6, R7, R11), only where staff did not change the row during the run.
    left_as_staff_set = _apply_updates(plan, now)

    # Enabled state (R8-R10) and groups (R12, R13).
    disable_users(plan.disables, run_id=run.pk, at=now)
    _reenable_users(plan, now)
    _create_memberships(memberships, plan.group_adds, now)
    _remove_memberships(plan)

    _record_links_seen(run, integration, plan, loaded, set(user_for_external), now)
    if left_as_staff_set:
        # Their links must not look in step with the directory: the next run plans them again.
        for part in chunks(sorted(left_as_staff_set), BATCH):
            DirectoryLink.objects.filter(portal_user_id__in=list(part)).update(state_hash="")
    _record_issues(run, integration, plan, now)
    if plan.held_disables:
        notify(
            NotificationKind.DISABLES_HELD, integration=integration,
            title=f"{integration.client.name} / {integration.name}: {len(plan.held_disables)} disables held",
            message=f"Held because {plan.hold_reason}. Confirm or discard them on the run page.",
            url=f"/admin/provisioning/syncrun/{run.pk}/change/", topic=topics.held_disables(run.pk),
        )

    if created_ids:
        # In the same transaction as the users (a transactional outbox): a worker killed between the
        # commit and an on-commit hook would otherwise leave created users who never get their email.
        _queue_activation(created_ids)
    counts = plan.counts
    if left_as_staff_set:
        counts = {**counts, "updated": counts["updated"] - len(left_as_staff_set),
                  "left_as_staff_set": len(left_as_staff_set)}
    return Applied(counts=counts)


def _reenable_users(plan: Plan, now: datetime) -> None:
    """Set-based, per previous reason: only users still disabled for that reason are enabled (compare-and-set)."""
    by_reason: dict[str, list[int]] = defaultdict(list)
    for r in plan.reenables:
        by_reason[r.previous_reason].append(r.user_id)
    for reason, part in ((reason, part) for reason, ids in by_reason.items() for part in chunks(ids, BATCH)):
        PortalUser.objects.filter(pk__in=list(part), disabled_reason=reason).update(
            disabled_reason="", disabled_at=None, disabled_by_run_id=None,
            status=PortalUser.status_expression(disabled_reason=""), updated_at=now,
        )


def _remove_memberships(plan: Plan) -> None:
    """The mapping groups users lost (R13): one DELETE per group and chunk; groups staff added stay."""
    removes: dict[int, list[int]] = defaultdict(list)
    for user_id, group_id in plan.group_removes:
        removes[group_id].append(user_id)
    for group_id, user_ids in removes.items():
        for part in chunks(user_ids, BATCH):
            GroupMembership.objects.filter(
                group_id=group_id, user_id__in=list(part), source=MembershipSource.MAPPING
            ).delete()


def _create_users(plan: Plan, client_id: int, now: datetime) -> list[int]:
    if use_copy(len(plan.creates)):
        ids = allocate_ids(PortalUser, len(plan.creates))
        copy_rows(PortalUser, [
            "id", "client_id", "first_name", "last_name", "email", "status", "disabled_reason", "disabled_by_staff",
            "permission_level_id", "permission_level_set_by_hand", "password", "activated_at", "created_at",
            "updated_at",
        ], (  # streamed into the COPY, never held as a list (one tuple per user)
            (uid, client_id, c.first_name, c.last_name, c.email, UserStatus.PENDING, "", False, c.level_id, False,
             "", None, now, now)
            for uid, c in zip(ids, plan.creates, strict=True)
        ))
        return ids
    users = [
        PortalUser(client_id=client_id, first_name=c.first_name, last_name=c.last_name, email=c.email,
                   permission_level_id=c.level_id, status=UserStatus.PENDING)
        for c in plan.creates
    ]
    PortalUser.objects.bulk_create(users, batch_size=BATCH)
    return [u.pk for u in users]


def _create_links(run: SyncRun, integration: Integration, plan: Plan, user_for_external: dict[str, int],
                  directory_id: str, now: datetime) -> None:
    seen = {s.external_id: s for s in plan.seen}
    # A generator: each link's row is made as the COPY (or the batch) takes it, never all of them at once.
    rows = ((ext, user_id, sorted(s.folder_ids) if s else [], dict(s.state) if s else {},
             fingerprint(s) if s else "")
            for ext, user_id, s in ((ext, user_id, seen.get(ext)) for ext, user_id in user_for_external.items()))
    if use_copy(len(user_for_external)):
        from psycopg.types.json import Jsonb

        copy_rows(DirectoryLink, [
            "integration_id", "directory_id", "external_id", "portal_user_id", "folder_ids", "in_scope", "last_seen",
            "last_run_id", "directory_state", "state_hash", "created_at",
        ], (
            (integration.pk, directory_id, ext, uid, Jsonb(folders), True, now, run.pk, Jsonb(state), digest, now)
            for ext, uid, folders, state, digest in rows
        ))
        return
    DirectoryLink.objects.bulk_create([
        DirectoryLink(integration=integration, directory_id=directory_id, external_id=ext, portal_user_id=uid,
                      folder_ids=folders, in_scope=True, last_seen=now, last_run=run, directory_state=state,
                      state_hash=digest)
        for ext, uid, folders, state, digest in rows
    ], batch_size=BATCH)


def _create_memberships(for_new_users: list[tuple[int, int]], adds: list[tuple[int, int]], now: datetime) -> None:
    if use_copy(len(for_new_users)):
        # New users have no memberships yet, so nothing can conflict.
        copy_rows(GroupMembership, ["user_id", "group_id", "source", "created_at"],
                  ((uid, gid, MembershipSource.MAPPING, now) for uid, gid in for_new_users))
        for_new_users = []
    GroupMembership.objects.bulk_create(
        [GroupMembership(user_id=uid, group_id=gid, source=MembershipSource.MAPPING)
         for uid, gid in [*for_new_users, *adds]],
        batch_size=BATCH, ignore_conflicts=True,
    )


def _queue_activation(user_ids: list[int]) -> None:
    queue_activation_emails(user_ids, just_created=True)


def _apply_updates(plan: Plan, now: datetime) -> set[int]:
    """Write the planned field changes where the row still holds what the plan was computed from.

    A user staff edited while the run was planning (a level set by hand, a name corrected) is left as
    staff set it; returns those users' ids, so the run can say so and the next run looks at them again.
    """
    if not plan.updates:
        return set()
    by_fields: dict[tuple[str, ...], list[tuple]] = defaultdict(list)
    for update in plan.updates:
        fields = tuple(sorted(update.changes))
        by_fields[fields].append((update.user_id, *(update.changes[f][1] for f in fields),
                                  *(update.changes[f][0] for f in fields), now))
    written: set[int] = set()
    for fields, rows in by_fields.items():
        where = "NOT permission_level_set_by_hand" if "permission_level_id" in fields else ""
        written |= update_rows_where_unchanged(PortalUser, fields, rows, also_set=["updated_at"], where=where)
    left = {u.user_id for u in plan.updates} - written
    email_changed = [u.user_id for u in plan.updates if "email" in u.changes and u.user_id in written
                     and str(u.changes["email"][0]).lower() != str(u.changes["email"][1]).lower()]
    if email_changed:
        void_tokens_for(email_changed)
    return left


def _record_links_seen(run: SyncRun, integration: Integration, plan: Plan, loaded: Loaded, new_ext: set[str],
                       now: datetime) -> None:
    """Stamp what the directory said, writing only links whose state changed."""
    changed = []
    for s in plan.seen:
        if s.external_id in new_ext:
            continue
        link = loaded.current.links[s.external_id]
        digest = fingerprint(s)
        if link.state_hash != digest:
            changed.append((link.row_id, s, digest))
    if changed:
        fields = ["folder_ids", "in_scope", "directory_state", "state_hash", "last_seen", "last_run"]
        update_rows(DirectoryLink, fields, [
            (pk, sorted(s.folder_ids), s.in_scope, dict(s.state), digest, now, run.pk)
            for pk, s, digest in changed
        ])
    # Unchanged links are not written at all: a link that a complete run did not rewrite was seen by
    # it (one it did not see would have been disabled, which rewrites it). DirectoryLink.seen_at()
    # answers "last seen" from that; stamping 100,000 rows every run costs seconds of MVCC churn.


def _record_issues(run: SyncRun, integration: Integration, plan: Plan, now: datetime) -> None:
    """R7: open each issue once (and tell the bell once); close the ones whose cause is gone."""
    if plan.issues_open:
        # An issue's folder_id may be None (no folder), which finds nothing.
        folder_pks: dict[str | None, int] = dict(integration.folders.values_list("external_id", "pk"))
        folder_paths: dict[str | None, str] = dict(integration.folders.values_list("external_id", "path"))
        CreationIssue.objects.bulk_create([
            CreationIssue(
                integration=integration, external_id=i.external_id, reason=i.reason, user_name=i.user_name[:500],
                email=i.email[:500], folder_id=folder_pks.get(i.folder_id), message=i.message,
                folder_path=(folder_paths.get(i.folder_id) or "")[:2000], opened_by_run=run,
            )
            for i in plan.issues_open
        ], batch_size=BATCH, ignore_conflicts=True)
        shown = plan.issues_open[:ISSUE_NOTIFICATIONS_PER_RUN]
        where = f"{integration.client.name} / {integration.name}"
        notes = [
            notification(NotificationKind.CREATION_ISSUE, integration=integration,
                         title=f"{where}: {i.user_name} not created", message=i.message,
                         url="/admin/provisioning/creationissue/?closed=open",
                         topic=topics.creation_issue(integration.pk, i.external_id, i.reason))
            for i in shown
        ]
        if len(plan.issues_open) > len(shown):
            notes.append(notification(
                NotificationKind.CREATION_ISSUE, integration=integration,
                title=f"{where}: {len(plan.issues_open) - len(shown)} more creation issues",
                url="/admin/provisioning/creationissue/?closed=open", topic=topics.creation_issues_of_run(run.pk),
            ))
        notify_many(notes)
    by_reason: dict[str, list[str]] = defaultdict(list)
    for ext, reason in plan.issues_close:
        by_reason[reason].append(ext)
    for reason, exts in by_reason.items():
        for part in chunks(exts, BATCH):
            CreationIssue.objects.filter(
                integration=integration, reason=reason, external_id__in=list(part), closed_at__isnull=True
            ).update(closed_at=now)
            # A closed issue needs nobody: its notification leaves the bell with it.
            resolve(topics.creation_issue(integration.pk, ext, reason) for ext in part)
    if plan.issues_close:
        _resolve_settled_summaries(integration)


def _resolve_settled_summaries(integration: Integration) -> None:
    """A run's "N more creation issues" notification is settled once none of that run's issues is open."""
    summaries = dict(Notification.objects.filter(
        integration=integration, topic__startswith=topics.CREATION_ISSUES_OF_RUN, resolved_at__isnull=True,
    ).values_list("topic", "pk"))
    if not summaries:
        return
    run_ids = {topics.run_id_of_summary(topic) for topic in summaries}
    still_open = set(CreationIssue.objects.filter(opened_by_run_id__in=run_ids, closed_at__isnull=True)
                     .values_list("opened_by_run_id", flat=True).distinct())
    resolve(topics.creation_issues_of_run(run_id) for run_id in run_ids - still_open)
