"""The passes of one planning, in the order `provisioning.planner.plan` runs them, over one shared `Context`.

Each pass reads what the ones before it found (the context) and adds its decisions to `Context.result`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from directory.connectors.base import Snapshot, UserRecord

from .cleaning import EMAIL_MAX, clean_email, clean_name, display, shown, storable
from .data import (
    Adoption,
    Current,
    Disable,
    Issue,
    LinkState,
    MappingRule,
    NewUser,
    Plan,
    Reenable,
    Seen,
    Threshold,
    Update,
    UserState,
)
from .emails import Owner, lost_email_reason, lowered, resolve_email_owners
from .reasons import DisableReason, IssueReason
from .scope import Grants, Vias, fingerprint, link_state, live_mapped_folders, removed_from


@dataclass
class Context:
    """What the passes of one planning share: the inputs, what the first passes found, and the plan."""

    snapshot: Snapshot
    mappings: Mapping[str, MappingRule]
    current: Current
    result: Plan
    records: dict[str, UserRecord]  # every user the read listed, by id (the first listing of a duplicate)
    removed: frozenset[str]  # ids the directory reports deleted and did not list
    live_folders: frozenset[str]
    grants: Grants
    vias: Vias
    in_scope: dict[str, UserRecord]  # listed users in a live mapped folder
    # In-scope id -> its trimmed email, only where trimming changed it: a map of every email weighed ~10 MB at
    # 300,000 users, and nearly every email is stored as the directory gives it. Read through `email()`.
    trimmed: dict[str, str] = field(default_factory=dict)
    email_problem: dict[str, IssueReason] = field(default_factory=dict)  # in-scope id -> NO_EMAIL or INVALID_EMAIL
    owners: dict[str, Owner] = field(default_factory=dict)  # lowercased email -> who holds it (R4)
    raised: set[tuple[str, str]] = field(default_factory=set)  # (external id, reason) raised this run

    def email(self, record: UserRecord) -> str | None:
        """An in-scope user's valid, trimmed email; None when it has none or an invalid one (`email_problem`)."""
        if record.id in self.email_problem:
            return None
        return self.trimmed.get(record.id, record.email)

    def valid_emails(self) -> Iterator[tuple[str, str]]:
        """(id, email) of each in-scope user with a valid email."""
        for record in self.in_scope.values():
            email = self.email(record)
            if email is not None:
                yield record.id, email

    @property
    def may_change_enabled_state(self) -> bool:
        return self.snapshot.complete  # R21: a read that did not cover what it meant to decides no disable

    def raise_issue(self, record: UserRecord, reason: IssueReason, message: str) -> None:
        """R7: a creation issue for this user, opened unless it is open already (it stays open either way)."""
        key = (record.id, reason)
        self.raised.add(key)
        if key in self.current.open_issues:
            return
        folder = next(iter(sorted(record.folder_ids & self.live_folders)), None)
        where = self.mappings[folder].folder_path if folder and folder in self.mappings else ""
        self.result.issues_open.append(Issue(
            external_id=record.id, reason=reason, user_name=storable(display(record)),
            email=storable((record.email or "").strip())[:EMAIL_MAX], folder_id=folder,
            message=storable(f"{display(record)}{f' in {where}' if where else ''}: {message}"),
        ))


# ---------------------------------------------------------------- the passes


def match_identities(snapshot: Snapshot, mappings: Mapping[str, MappingRule], current: Current,
                     result: Plan) -> Context:
    """Which users the read listed, which it reports deleted, and which of the listed ones are in scope."""
    live_folders = live_mapped_folders(snapshot, mappings)
    records = _unique_records(snapshot.users, result)
    everyone = all(not r.folder_ids.isdisjoint(live_folders) for r in records.values())
    return Context(
        snapshot=snapshot, mappings=mappings, current=current, result=result, records=records,
        removed=frozenset(snapshot.removed_user_ids) - frozenset(records), live_folders=live_folders,
        grants=Grants(live_folders, mappings), vias=Vias(live_folders, mappings),
        # The same map when every listed user is in scope (a read of the mapped folders only: the usual case),
        # never a second one of 300,000 entries, even for a moment; neither is changed once built.
        in_scope=records if everyone else {r.id: r for r in records.values() if r.folder_ids & live_folders},
    )


def find_email_owners(ctx: Context) -> None:
    """R4, R7: each in-scope user's email checked, and who holds each claimed email."""
    _check_emails(ctx)
    ctx.owners = resolve_email_owners(ctx.in_scope, ctx.valid_emails(), ctx.current)


def _check_emails(ctx: Context) -> None:
    """R7: each in-scope user's email, valid and trimmed, or its problem (the email a linked identity's portal user
    holds already was checked when stored: no set of every stored email is built for it)."""
    users, links = ctx.current.users, ctx.current.links
    for record in ctx.in_scope.values():
        link = links.get(record.id)
        user = users.get(link.user_id) if link is not None else None
        email, problem = clean_email(record.email, user.email if user is not None else "")
        if problem:
            ctx.email_problem[record.id] = problem
        elif email != record.email:
            ctx.trimmed[record.id] = email


def follow_linked(ctx: Context) -> None:
    """Linked identities follow the directory: those the read listed, then the sweep of those it did not."""
    for external_id, link in ctx.current.links.items():
        user = ctx.current.users.get(link.user_id)
        if user is None:
            continue
        record = ctx.records.get(external_id)
        if record is None:
            _sweep_unseen(ctx, link, user)
        else:
            _follow_listed(ctx, record, link, user)


def _sweep_unseen(ctx: Context, link: LinkState, user: UserState) -> None:
    """A linked identity the read did not list: deleted (R8) if the directory says so; out of scope (R9) if
    a full read did not list it; left alone by an incremental read, which lists only what changed."""
    if link.external_id in ctx.removed:
        _want_disabled(ctx, user, link.external_id, DisableReason.DELETED)
    elif not ctx.snapshot.incremental and ctx.snapshot.complete:
        _want_disabled(ctx, user, link.external_id, DisableReason.OUT_OF_SCOPE,
                       detail=removed_from(link.folder_ids, frozenset(), ctx.mappings))
        _plan_groups(ctx, user, frozenset())


def _follow_listed(ctx: Context, record: UserRecord, link: LinkState, user: UserState) -> None:
    """R3, R6-R9, R11-R13 for a linked identity the read listed."""
    external_id = record.id
    scoped = external_id in ctx.in_scope
    seen = Seen(external_id, record.folder_ids, scoped, link_state(record, ctx.vias))
    digest = fingerprint(seen)
    if digest != link.state_hash:  # only links whose state changed are rewritten: the plan holds no other
        ctx.result.seen.append(Seen(external_id, record.folder_ids, scoped, seen.state, digest))
    if not scoped:
        _want_disabled(ctx, user, external_id, DisableReason.OUT_OF_SCOPE,
                       detail=removed_from(link.folder_ids, record.folder_ids, ctx.mappings))
        _plan_groups(ctx, user, frozenset())
        return
    _, level, groups = ctx.grants(record)
    if (
        record.enabled and not user.disabled_reason and groups == user.mapping_group_ids
        and record.first_name == user.first_name and record.last_name == user.last_name
        and ctx.email(record) == user.email
        and (level is None or level == user.level_id or user.level_set_by_hand)
    ):
        return  # in step with the directory (stored names are clean, so equal means unchanged)
    ctx.result.vias[user.id] = ctx.vias(record)
    _plan_attributes(ctx, user, record, level)
    _plan_groups(ctx, user, groups)
    if record.enabled:
        _want_enabled(ctx, user, external_id)
    else:
        _want_disabled(ctx, user, external_id, DisableReason.DIRECTORY)


def create_or_adopt(ctx: Context) -> None:
    """New identities in scope: create, adopt, or report why not (R2, R4, R7)."""
    for external_id in sorted(ext for ext in ctx.in_scope if ext not in ctx.current.links):
        record = ctx.in_scope[external_id]
        if not record.enabled:
            continue  # R2 creates enabled users only; a disabled one is created when enabled
        email = _email_it_may_have(ctx, record)
        if email is None:
            continue
        _, level, groups = ctx.grants(record)
        ctx.result.seen.append(Seen(external_id, record.folder_ids, True, link_state(record, ctx.vias)))
        owner_id = ctx.owners[lowered(email)].user_id
        if owner_id is not None:
            user = ctx.current.users[owner_id]
            ctx.result.adoptions.append(Adoption(external_id, user.id, keeps_level=user.level_id is not None))
            ctx.result.vias[user.id] = ctx.vias(record)
            _plan_attributes(ctx, user, record, level, adopted=True)
            _plan_groups(ctx, user, groups)
            _want_enabled(ctx, user, external_id)
        else:
            ctx.result.creates.append(NewUser(
                external_id=external_id, first_name=clean_name(record.first_name),
                last_name=clean_name(record.last_name), email=email, level_id=level,
                group_ids=groups, folder_ids=record.folder_ids, via=ctx.vias(record),
            ))


def _email_it_may_have(ctx: Context, record: UserRecord) -> str | None:
    """The email a new identity is created or adopted with, or None after raising the issue that says why not."""
    email = ctx.email(record)
    if email is None:
        if ctx.email_problem[record.id] == IssueReason.NO_EMAIL:
            ctx.raise_issue(record, IssueReason.NO_EMAIL,
                            "no email in the directory; the user is created once it has one")
        else:
            ctx.raise_issue(record, IssueReason.INVALID_EMAIL, f"the email '{shown(record.email)}' is not valid")
        return None
    owner = ctx.owners.get(lowered(email))
    if owner is None or owner.external_id != record.id:
        ctx.raise_issue(record, *lost_email_reason(email, owner))
        return None
    return email


def close_settled_issues(ctx: Context) -> None:
    """R7: issues whose cause is gone close by themselves; an incremental read judges only whom it mentions."""
    partial = ctx.snapshot.incremental or not ctx.snapshot.complete
    for key in ctx.current.open_issues:
        if key in ctx.raised:
            continue
        if partial and key[0] not in ctx.records and key[0] not in ctx.removed:
            continue  # a partial read says nothing about users it did not list
        ctx.result.issues_close.append(key)


def hold_if_over_threshold(ctx: Context, threshold: Threshold) -> None:
    """R22 (and R21): too many disables at once, or a full read that saw nobody, waits for staff.

    The share is of the integration's provisioned users (its links in `current`), whatever the read listed:
    an incremental read of 30 deletions out of 100 users is held like a full read that lost 30.
    """
    result, snapshot = ctx.result, ctx.snapshot
    if not result.disables:
        return
    provisioned = len(ctx.current.links)
    count = len(result.changing_disables)
    over = count >= threshold.minimum and count * 100 > threshold.percent * provisioned
    # Any mapping counts, even of a folder this read did not see: a bind account that can read nothing
    # sees no folders either, and that must not pass for "nothing is mapped" (R21, R22).
    saw_nobody = (
        bool(ctx.mappings) and snapshot.complete and not snapshot.incremental and not snapshot.users
        and provisioned > 0
    )
    if over or saw_nobody:
        result.held_disables, result.disables = result.disables, []
        result.hold_reason = (
            "the directory returned no users at all" if saw_nobody else
            f"{count} of {provisioned} provisioned users would be disabled "
            f"(more than {threshold.percent}% and at least {threshold.minimum})"
        )


def plan_link_off(current: Current, result: Plan) -> None:
    """R10: the link is off, so every user that came from it is disabled at once; nothing is read."""
    for external_id, link in current.links.items():
        user = current.users.get(link.user_id)
        # A user the directory disabled keeps that reason: switching the link on again must not
        # count it as a new disable when the directory still says disabled.
        if user is not None and not user.disabled_reason:
            result.disables.append(Disable(user.id, external_id, DisableReason.LINK_OFF,
                                           already_disabled=user.disabled_by_staff))


# ---------------------------------------------------------------- one user's changes


def _unique_records(users: Iterable[UserRecord], result: Plan) -> dict[str, UserRecord]:
    records: dict[str, UserRecord] = {}
    for record in users:
        if record.id in records:
            result.notes.append(f"directory listed {record.id} twice; the first listing was used")
            continue
        records[record.id] = record
    return records


def _plan_attributes(ctx: Context, user: UserState, record: UserRecord, level: int | None, *,
                     adopted: bool = False) -> None:
    """R6 names, R7 email, R11 level: the fields that change, old -> new."""
    changes: dict[str, tuple[object, object]] = {}
    first, last = clean_name(record.first_name), clean_name(record.last_name)
    if first != user.first_name:
        changes["first_name"] = (user.first_name, first)
    if last != user.last_name:
        changes["last_name"] = (user.last_name, last)
    email = ctx.email(record)
    if email is not None and email != user.email:
        owner = ctx.owners.get(lowered(email))
        if owner is not None and owner.external_id == record.id and owner.user_id == user.id:
            changes["email"] = (user.email, email)
        elif email.lower() != user.email.lower():
            _, why = lost_email_reason(email, owner)
            ctx.raise_issue(record, IssueReason.EMAIL_TAKEN, f"{why}; the portal user keeps {user.email}")
        else:
            changes["email"] = (user.email, email)  # only the case changed
    elif record.id in ctx.email_problem and not adopted:
        problem = ctx.email_problem[record.id]
        why = ("no email in the directory" if problem == IssueReason.NO_EMAIL
               else f"the email '{shown(record.email)}' is not valid")
        ctx.raise_issue(record, problem, f"{why}; the portal user keeps {user.email}")
    level_locked = user.level_set_by_hand or (adopted and user.level_id is not None)
    if not level_locked and level is not None and level != user.level_id:
        changes["permission_level_id"] = (user.level_id, level)
    if changes:
        ctx.result.updates.append(Update(user.id, record.id, changes))


def _plan_groups(ctx: Context, user: UserState, wanted: frozenset[int]) -> None:
    """R12: add what the mappings grant, remove mapping grants no mapping gives any more."""
    if wanted == user.mapping_group_ids:
        return
    ctx.result.group_adds.extend((user.id, g) for g in sorted(wanted - user.mapping_group_ids))
    ctx.result.group_removes.extend((user.id, g) for g in sorted(user.mapping_group_ids - wanted))


def _want_disabled(ctx: Context, user: UserState, external_id: str, reason: DisableReason, *,
                   detail: str = "") -> None:
    if not ctx.may_change_enabled_state or user.disabled_reason == reason:
        return
    if user.disabled_reason and user.disabled_reason != DisableReason.LINK_OFF:
        return  # already disabled by the directory; the first reason stands until it is enabled again
    ctx.result.disables.append(Disable(user.id, external_id, reason, already_disabled=user.disabled_by_staff,
                                       detail=detail))


def _want_enabled(ctx: Context, user: UserState, external_id: str) -> None:
    if ctx.may_change_enabled_state and user.disabled_reason:
        ctx.result.reenables.append(Reenable(user.id, external_id, user.disabled_reason, user.disabled_by_staff))
