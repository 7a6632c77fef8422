"""Decide what a sync changes: a pure function over plain data (no ORM, no clock, no I/O).

Every rule of SPEC.md that decides *what* happens lives here: R2-R13, R19, R21, R22. The applier
writes the resulting `Plan`; the planner never touches the database.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from directory.connectors.base import Snapshot, UserRecord

NAME_MAX = 150
EMAIL_MAX = 254

# Reasons a sync disables a user (PortalUser.disabled_reason values).
DIRECTORY = "directory"
DELETED = "deleted"
OUT_OF_SCOPE = "out_of_scope"
LINK_OFF = "link_off"

# Creation issue reasons (CreationIssue.reason values).
NO_EMAIL = "no_email"
INVALID_EMAIL = "invalid_email"
EMAIL_TAKEN = "email_taken"
DUPLICATE_EMAIL = "duplicate_email"

# Folder kinds that are directory groups (G1): AD and Entra security groups, Microsoft 365 groups. A mapped
# group a complete read did not see fails the run (G4): an empty or unreadable group must never look like
# "everybody left", which an OU's users falling out of scope (R19) would. SCIM groups ("sg") are pushed, not
# read, so a deleted one is a gone folder as before; their users' reasons still name them.
GROUP_KINDS = frozenset({"gr", "mg"})
NAMED_GROUP_KINDS = GROUP_KINDS | {"sg"}


# ---------------------------------------------------------------- input


@dataclass(frozen=True)
class MappingRule:
    folder_id: str  # the folder's directory id
    level_id: int
    level_rank: int
    group_ids: frozenset[int] = frozenset()
    folder_path: str = ""
    folder_kind: str = ""  # "ou", "au", "gr", "mg", "sg": groups fail a read that lost them (G4)
    folder_name: str = ""  # how a reason names the group: "removed from group Sales-Team"


class UserState(NamedTuple):
    """A portal user of the client as it is now (a NamedTuple: 100,000 of them are built per run)."""

    id: int
    email: str
    first_name: str = ""
    last_name: str = ""
    disabled_reason: str = ""
    disabled_by_staff: bool = False
    level_id: int | None = None
    level_set_by_hand: bool = False
    mapping_group_ids: frozenset[int] = frozenset()


class LinkState(NamedTuple):
    """A directory identity of this integration already linked to a portal user.

    `folder_ids` (where it was last seen) is loaded only when a group is mapped: a reason names the groups a
    user was removed from (G4).
    """

    external_id: str
    user_id: int
    folder_ids: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Threshold:
    """R22: hold the disables when more than `percent`% of provisioned users and at least `minimum`."""

    percent: int = 10
    minimum: int = 25


@dataclass(frozen=True)
class Current:
    users: Mapping[int, UserState]  # every portal user of the client, by id
    links: Mapping[str, LinkState]  # this integration's links, by external id
    open_issues: frozenset[tuple[str, str]] = frozenset()  # (external_id, reason)
    # Portal users an identity of ANOTHER integration of the client holds -> that integration's name.
    # One person is one portal user across all of a client's directories (R4): these are never adopted.
    held_elsewhere: Mapping[int, str] = field(default_factory=dict)


# ---------------------------------------------------------------- output


@dataclass(frozen=True)
class NewUser:
    external_id: str
    first_name: str
    last_name: str
    email: str
    level_id: int | None
    group_ids: frozenset[int]
    folder_ids: frozenset[str]
    via: tuple[str, ...] = ()  # through which folders, and for groups which chain, the user is in scope (G5)


@dataclass(frozen=True)
class Adoption:
    """R4: an existing portal user with this email becomes this identity's user."""

    external_id: str
    user_id: int
    keeps_level: bool  # R11: an adopted user keeps the level it had


@dataclass(frozen=True)
class Update:
    user_id: int
    external_id: str
    changes: Mapping[str, tuple[object, object]]  # field -> (old, new)


@dataclass(frozen=True)
class Disable:
    user_id: int
    external_id: str
    reason: str
    # Disabled by staff already: the directory's reason is recorded (it still holds once staff lift
    # theirs), but nobody's state changes, so it is not counted or listed as a disable.
    already_disabled: bool = False
    detail: str = ""  # what a person reads beside the reason: "removed from group Sales-Team" (G4)


@dataclass(frozen=True)
class Reenable:
    user_id: int
    external_id: str
    previous_reason: str
    stays_disabled_by_staff: bool  # R8: only staff lift a manual disable


@dataclass(frozen=True)
class Issue:
    external_id: str
    reason: str
    message: str
    user_name: str
    email: str
    folder_id: str | None


@dataclass(frozen=True)
class Seen:
    """What the directory said about a linked (or about to be linked) identity, for the link row."""

    external_id: str
    folder_ids: frozenset[str]
    in_scope: bool
    state: Mapping[str, object]


@dataclass
class Plan:
    creates: list[NewUser] = field(default_factory=list)
    adoptions: list[Adoption] = field(default_factory=list)
    updates: list[Update] = field(default_factory=list)
    disables: list[Disable] = field(default_factory=list)
    reenables: list[Reenable] = field(default_factory=list)
    group_adds: list[tuple[int, int]] = field(default_factory=list)  # (user_id, group_id)
    group_removes: list[tuple[int, int]] = field(default_factory=list)
    issues_open: list[Issue] = field(default_factory=list)
    issues_close: list[tuple[str, str]] = field(default_factory=list)
    held_disables: list[Disable] = field(default_factory=list)
    hold_reason: str = ""
    seen: list[Seen] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # Set when the read cannot be trusted to decide anything (a mapped group it could not see, G4): the run
    # fails with this message and changes nobody (R21). Nothing else in the plan is filled then.
    failure: str = ""

    @property
    def counts(self) -> dict[str, int]:
        return {
            "created": len(self.creates),
            "adopted": len(self.adoptions),
            "updated": len(self.updates),
            "disabled": len(self.changing_disables),
            "reenabled": sum(not r.stays_disabled_by_staff for r in self.reenables),
            # Creations get their groups with them: they count as memberships added too.
            "groups_added": len(self.group_adds) + sum(len(c.group_ids) for c in self.creates),
            "groups_removed": len(self.group_removes),
            "issues_opened": len(self.issues_open),
            "issues_closed": len(self.issues_close),
            "held": sum(not d.already_disabled for d in self.held_disables),
        }

    @property
    def changing_disables(self) -> list[Disable]:
        """The disables that turn an enabled user off (not those that only record a reason)."""
        return [d for d in self.disables if not d.already_disabled]

    @property
    def is_empty(self) -> bool:
        return not any(self.counts.values())


# ---------------------------------------------------------------- cleaning directory values


def clean_name(value: str) -> str:
    """Control characters dropped, whitespace trimmed, cut to the column's length: never a crashed run."""
    if value.isprintable() and len(value) <= NAME_MAX and value.strip() == value and "  " not in value:
        return value  # the common case, checked in C
    text = "".join(ch for ch in (value or "") if unicodedata.category(ch)[0] != "C" or ch == " ")
    return " ".join(text.split())[:NAME_MAX]


def clean_email(value: str, known_valid: frozenset[str] | set[str] = frozenset()) -> tuple[str, str | None]:
    """(email, problem): trimmed; invalid ones are reported, never stored (R7).

    `known_valid` are emails the portal already holds (validated when stored): no need to check again.
    """
    email = (value or "").strip()
    if email in known_valid:
        return email, None
    if not email:
        return "", NO_EMAIL
    if len(email) > EMAIL_MAX or any(unicodedata.category(ch)[0] == "C" for ch in email):
        return email, INVALID_EMAIL
    try:
        validate_email(email)
    except ValidationError:
        return email, INVALID_EMAIL
    return email, None


def display(user: UserRecord) -> str:
    name = " ".join(p for p in (clean_name(user.first_name), clean_name(user.last_name)) if p)
    return name or clean_name(user.display_name) or user.upn or user.id


# ---------------------------------------------------------------- the planner


def plan(
    snapshot: Snapshot,
    mappings: Mapping[str, MappingRule],
    current: Current,
    *,
    link_enabled: bool = True,
    threshold: Threshold = Threshold(),  # frozen, so a shared default is safe
) -> Plan:
    result = Plan()
    if not link_enabled:
        _plan_link_off(current, result)
        return result

    failure = unreadable_groups(snapshot, mappings)
    if failure:
        result.failure = failure
        return result

    live_folders = _live_mapped_folders(snapshot, mappings)
    grants = _Grants(live_folders, mappings)
    vias = _Vias(live_folders, mappings)
    records = _unique_records(snapshot.users, result)
    removed = set(snapshot.removed_user_ids) - set(records)
    may_change_enabled_state = snapshot.complete

    # Which directory users are in scope, and which of them claim which email.
    in_scope: dict[str, UserRecord] = {}
    for record in records.values():
        if record.folder_ids & live_folders:
            in_scope[record.id] = record

    emails: dict[str, str] = {}
    email_problem: dict[str, str] = {}
    known_valid = {u.email for u in current.users.values()}
    for record in in_scope.values():
        email, problem = clean_email(record.email, known_valid)
        if problem:
            email_problem[record.id] = problem
        else:
            emails[record.id] = email

    owners = _resolve_email_owners(in_scope, emails, current)
    raised: set[tuple[str, str]] = set()

    def raise_issue(record: UserRecord, reason: str, message: str) -> None:
        key = (record.id, reason)
        raised.add(key)
        if key not in current.open_issues:
            folder = next(iter(sorted(record.folder_ids & live_folders)), None)
            where = mappings[folder].folder_path if folder and folder in mappings else ""
            result.issues_open.append(Issue(
                external_id=record.id, reason=reason, user_name=_storable(display(record)),
                email=_storable((record.email or "").strip())[:EMAIL_MAX], folder_id=folder,
                message=_storable(f"{display(record)}{f' in {where}' if where else ''}: {message}"),
            ))

    # Linked identities: follow the directory.
    for external_id, link in current.links.items():
        user = current.users.get(link.user_id)
        if user is None:
            continue
        record = records.get(external_id)
        if record is None:
            if external_id in removed:
                _want_disabled(user, external_id, DELETED, result, may_change_enabled_state)
            elif not snapshot.incremental and snapshot.complete:
                # A full read that did not list a known user: moved out of every mapped folder, or gone.
                _want_disabled(user, external_id, OUT_OF_SCOPE, result, may_change_enabled_state,
                               detail=_removed_from(link.folder_ids, frozenset(), mappings))
                _plan_groups(user, frozenset(), result)
            continue
        scoped = external_id in in_scope
        result.seen.append(Seen(external_id, record.folder_ids, scoped, _state(record, vias)))
        if not scoped:
            _want_disabled(user, external_id, OUT_OF_SCOPE, result, may_change_enabled_state,
                           detail=_removed_from(link.folder_ids, record.folder_ids, mappings))
            _plan_groups(user, frozenset(), result)
            continue
        _, level, groups = grants(record)
        if (
            record.enabled and not user.disabled_reason and groups == user.mapping_group_ids
            and record.first_name == user.first_name and record.last_name == user.last_name
            and emails.get(external_id) == user.email
            and (level is None or level == user.level_id or user.level_set_by_hand)
        ):
            continue  # in step with the directory (stored names are clean, so equal means unchanged)
        _plan_attributes(user, record, level, emails, email_problem, owners, result, raise_issue)
        _plan_groups(user, groups, result)
        if record.enabled:
            _want_enabled(user, external_id, result, may_change_enabled_state)
        else:
            _want_disabled(user, external_id, DIRECTORY, result, may_change_enabled_state)

    # New identities in scope: create, adopt, or report why not (R2, R4, R7).
    for external_id in sorted(ext for ext in in_scope if ext not in current.links):
        record = in_scope[external_id]
        if not record.enabled:
            continue  # R2 creates enabled users only; a disabled one is created when enabled
        problem = email_problem.get(external_id)
        if problem == NO_EMAIL:
            raise_issue(record, NO_EMAIL, "no email in the directory; the user is created once it has one")
            continue
        if problem == INVALID_EMAIL:
            raise_issue(record, INVALID_EMAIL, f"the email '{_shown(record.email)}' is not valid")
            continue
        email = emails[external_id]
        owner = owners.get(email.lower())
        if owner is None or owner.external_id != external_id:
            reason, why = _lost_email_reason(email, owner)
            raise_issue(record, reason, why)
            continue
        _, level, groups = grants(record)
        result.seen.append(Seen(external_id, record.folder_ids, True, _state(record, vias)))
        if owner.user_id is not None:
            user = current.users[owner.user_id]
            result.adoptions.append(Adoption(external_id, user.id, keeps_level=user.level_id is not None))
            _plan_attributes(user, record, level, emails, email_problem, owners, result, raise_issue, adopted=True)
            _plan_groups(user, groups, result)
            _want_enabled(user, external_id, result, may_change_enabled_state)
        else:
            result.creates.append(NewUser(
                external_id=external_id, first_name=clean_name(record.first_name),
                last_name=clean_name(record.last_name), email=email, level_id=level,
                group_ids=groups, folder_ids=record.folder_ids, via=vias(record),
            ))

    # Issues whose cause is gone close by themselves (R7).
    considered = set(records) if (snapshot.incremental or not snapshot.complete) else None
    for key in current.open_issues:
        if key in raised:
            continue
        if considered is not None and key[0] not in considered and key[0] not in removed:
            continue  # an incremental read says nothing about users it did not list
        result.issues_close.append(key)

    # Any mapping counts, even of a folder this read did not see: a bind account that can read nothing
    # sees no folders either, and that must not pass for "nothing is mapped" (R21, R22).
    _hold_if_over_threshold(snapshot, current, threshold, result, expected_users=bool(mappings))
    return result


# ---------------------------------------------------------------- pieces


@dataclass(frozen=True)
class _Owner:
    external_id: str  # "" when the holder is an identity of another integration
    user_id: int | None  # the portal user that will hold the email (None: to be created)
    elsewhere: str = ""  # the other integration whose identity holds it


def unreadable_groups(snapshot: Snapshot, mappings: Mapping[str, MappingRule]) -> str:
    """G4: a mapped group a complete read did not see fails the read, naming it; "" when every one was seen.

    Deleted, or hidden from the account that reads: the read cannot tell which, and neither may empty the
    scope. Staff remove the mapping of a group that is gone for good.
    """
    if not (snapshot.complete and snapshot.folders_complete and not snapshot.incremental):
        return ""
    present = {f.id for f in snapshot.folders}
    missing = sorted((m.folder_name or m.folder_path or m.folder_id for m in mappings.values()
                      if m.folder_kind in GROUP_KINDS and m.folder_id not in present), key=str.lower)
    if not missing:
        return ""
    which = f"group {missing[0]}" if len(missing) == 1 else f"groups {', '.join(missing)}"
    return (f"The mapped {which} could not be read: deleted, or the account the portal reads with can no longer "
            "see it. Nobody was changed. If the group is gone for good, remove its mapping.")


def _removed_from(before: frozenset[str], now: frozenset[str], mappings: Mapping[str, MappingRule]) -> str:
    """G4: "removed from group Sales-Team", for the mapped groups a user was in last time and is in no more."""
    names = sorted({m.folder_name or m.folder_path for f in before - now
                    if (m := mappings.get(f)) is not None and m.folder_kind in NAMED_GROUP_KINDS}, key=str.lower)
    if not names:
        return ""
    return f"removed from group{'s' if len(names) > 1 else ''} {', '.join(names)}"


def _live_mapped_folders(snapshot: Snapshot, mappings: Mapping[str, MappingRule]) -> frozenset[str]:
    """Mapped folders that still exist; a gone folder's users fall out of scope (R19, R9)."""
    if snapshot.folders_complete:
        present = {f.id for f in snapshot.folders}
        return frozenset(fid for fid in mappings if fid in present)
    return frozenset(mappings)


def _unique_records(users, result: Plan) -> dict[str, UserRecord]:
    records: dict[str, UserRecord] = {}
    for record in users:
        if record.id in records:
            result.notes.append(f"directory listed {record.id} twice; the first listing was used")
            continue
        records[record.id] = record
    return records


def _resolve_email_owners(
    in_scope: Mapping[str, UserRecord], emails: Mapping[str, str], current: Current
) -> dict[str, _Owner]:
    """R4: who holds each claimed email, independent of the order the directory lists users."""
    holders = {u.email.lower(): u.id for u in current.users.values()}
    linked_user = {ext: link.user_id for ext, link in current.links.items()}
    claims: dict[str, list[str]] = {}
    for external_id, email in emails.items():
        if in_scope[external_id].enabled or external_id in linked_user:
            key = email.lower()
            if key in claims:
                claims[key].append(external_id)
            else:
                claims[key] = [external_id]

    owners: dict[str, _Owner] = {}
    user_links: dict[int, str] | None = None
    for email, claimants in claims.items():
        holder = holders.get(email)
        if len(claimants) == 1:
            only = claimants[0]
            if holder is not None and linked_user.get(only) == holder:
                owners[email] = _Owner(only, holder)  # the common case: a linked user keeps its email
                continue
        else:
            claimants.sort()
        if holder is None:
            owners[email] = _Owner(claimants[0], linked_user.get(claimants[0]))
            continue
        if holder in current.held_elsewhere:
            # Another directory of this client already brought this person in: it keeps the email.
            owners[email] = _Owner("", holder, elsewhere=current.held_elsewhere[holder])
            continue
        keeper = next((c for c in claimants if linked_user.get(c) == holder), None)
        if keeper is not None:
            owners[email] = _Owner(keeper, holder)
            continue
        if user_links is None:
            user_links = {link.user_id: ext for ext, link in current.links.items()}
        if holder in user_links:
            # Linked to an identity of this integration that no longer claims it: it keeps the
            # email this run; the claimant is an issue until the holder lets go.
            owners[email] = _Owner(user_links[holder], holder)
        else:
            adopter = next((c for c in claimants if c not in linked_user), None)
            if adopter is not None:
                owners[email] = _Owner(adopter, holder)
    return owners


def _lost_email_reason(email: str, owner: _Owner | None) -> tuple[str, str]:
    if owner is not None and owner.elsewhere:
        return DUPLICATE_EMAIL, (
            f"the email {email} belongs to a portal user that comes from {owner.elsewhere}"
        )
    if owner is not None and owner.user_id is None:
        return DUPLICATE_EMAIL, (
            f"another directory user ({owner.external_id}) has the email {email}; "
            "the one whose directory id sorts first keeps it"
        )
    if owner is not None:
        # Linked already, or adopting the portal user that holds the email in this very run: the same
        # reason either way, so the issue is not closed and raised again under another name next run (R7).
        return DUPLICATE_EMAIL, f"the email {email} belongs to another directory user ({owner.external_id})"
    return EMAIL_TAKEN, f"the email {email} is already used by another user of this client"


class _Grants:
    """Level and groups per combination of mapped folders, computed once per combination (R13)."""

    def __init__(self, live: frozenset[str], mappings: Mapping[str, MappingRule]) -> None:
        self.live, self.mappings = live, mappings
        self.cache: dict[frozenset[str], tuple[list[MappingRule], int | None, frozenset[int]]] = {}

    def __call__(self, record: UserRecord) -> tuple[list[MappingRule], int | None, frozenset[int]]:
        key = record.folder_ids & self.live
        found = self.cache.get(key)
        if found is None:
            rules = [self.mappings[f] for f in sorted(key)]
            found = self.cache[key] = (rules, _level(rules), _groups(rules))
        return found


def _level(rules: list[MappingRule]) -> int | None:
    """R13: the highest-ranked level of the user's mappings (ties: the lower id, for a stable answer)."""
    if not rules:
        return None
    return max(rules, key=lambda r: (r.level_rank, -r.level_id)).level_id


def _groups(rules: list[MappingRule]) -> frozenset[int]:
    """R13: the union of the user's mappings' groups."""
    return frozenset().union(*(r.group_ids for r in rules)) if rules else frozenset()


class _Vias:
    """G5: through which mapped folders, and for a group which chain of groups, a user is in scope.

    "Corp/Sales" for an OU or AU, "Sales-Team > EMEA" for a group (outer group first, then the group that holds
    the user directly). Users without chains share one answer per combination of folders, computed once.
    """

    def __init__(self, live: frozenset[str], mappings: Mapping[str, MappingRule]) -> None:
        self.live, self.mappings = live, mappings
        self.cache: dict[frozenset[str], tuple[str, ...]] = {}

    def __call__(self, record: UserRecord) -> tuple[str, ...]:
        key = record.folder_ids & self.live
        if not record.chains:
            found = self.cache.get(key)
            if found is None:
                found = self.cache[key] = tuple(sorted((self._name(f) for f in key), key=str.lower))
            return found
        chains = {chain[0]: chain[1:] for chain in sorted(record.chains, key=len, reverse=True) if chain}
        return tuple(sorted((" > ".join(_storable(n) for n in chains[f]) if chains.get(f) else self._name(f)
                             for f in key), key=str.lower))

    def _name(self, folder_id: str) -> str:
        rule = self.mappings[folder_id]
        return rule.folder_path or rule.folder_name or folder_id


def _state(record: UserRecord, vias: _Vias | None = None) -> dict[str, object]:
    # NUL is the one character PostgreSQL cannot store (text or JSON): a directory value holding it must
    # not crash the run, so what the link remembers shows U+FFFD in its place.
    state: dict[str, object] = {
        "first_name": _storable(record.first_name), "last_name": _storable(record.last_name),
        "email": _storable(record.email), "enabled": record.enabled, "upn": _storable(record.upn),
        "display_name": _storable(record.display_name), "dn": _storable(record.dn),
    }
    if record.chains and vias is not None:
        # Only for users in groups: the link of an OU or AU user keeps the fingerprint it always had.
        state["via"] = list(vias(record))
    return state


def _storable(value: str) -> str:
    return value.replace("\x00", "\ufffd") if "\x00" in value else value


def _shown(value: str) -> str:
    return "".join(ch if unicodedata.category(ch)[0] != "C" else "?" for ch in (value or "").strip())[:100]


def _plan_attributes(user: UserState, record: UserRecord, level: int | None, emails, email_problem, owners,
                     result: Plan, raise_issue, *, adopted: bool = False) -> None:
    """R6 names, R7 email, R11 level: the fields that change, old -> new."""
    changes: dict[str, tuple[object, object]] = {}
    first, last = clean_name(record.first_name), clean_name(record.last_name)
    if first != user.first_name:
        changes["first_name"] = (user.first_name, first)
    if last != user.last_name:
        changes["last_name"] = (user.last_name, last)

    email = emails.get(record.id)
    if email is not None and email != user.email:
        owner = owners.get(email.lower())
        if owner is not None and owner.external_id == record.id and owner.user_id == user.id:
            changes["email"] = (user.email, email)
        elif email.lower() != user.email.lower():
            _, why = _lost_email_reason(email, owner)
            raise_issue(record, EMAIL_TAKEN, f"{why}; the portal user keeps {user.email}")
        else:
            changes["email"] = (user.email, email)  # only the case changed
    elif record.id in email_problem and not adopted:
        problem = email_problem[record.id]
        why = "no email in the directory" if problem == NO_EMAIL else f"the email '{_shown(record.email)}' is not valid"
        raise_issue(record, problem, f"{why}; the portal user keeps {user.email}")

    level_locked = user.level_set_by_hand or (adopted and user.level_id is not None)
    if not level_locked and level is not None and level != user.level_id:
        changes["permission_level_id"] = (user.level_id, level)
    if changes:
        result.updates.append(Update(user.id, record.id, changes))


def _plan_groups(user: UserState, wanted: frozenset[int], result: Plan) -> None:
    """R12: add what the mappings grant, remove mapping grants no mapping gives any more."""
    if wanted == user.mapping_group_ids:
        return
    result.group_adds.extend((user.id, g) for g in sorted(wanted - user.mapping_group_ids))
    result.group_removes.extend((user.id, g) for g in sorted(user.mapping_group_ids - wanted))


def _want_disabled(user: UserState, external_id: str, reason: str, result: Plan, allowed: bool, *,
                   detail: str = "") -> None:
    if not allowed or user.disabled_reason == reason:
        return
    if user.disabled_reason and user.disabled_reason != LINK_OFF:
        return  # already disabled by the directory; the first reason stands until it is enabled again
    result.disables.append(Disable(user.id, external_id, reason, already_disabled=user.disabled_by_staff,
                                   detail=detail))


def _want_enabled(user: UserState, external_id: str, result: Plan, allowed: bool) -> None:
    if allowed and user.disabled_reason:
        result.reenables.append(Reenable(user.id, external_id, user.disabled_reason, user.disabled_by_staff))


def _plan_link_off(current: Current, result: Plan) -> None:
    """R10: the link is off, so every user that came from it is disabled at once; nothing is read."""
    for external_id, link in current.links.items():
        user = current.users.get(link.user_id)
        # A user the directory disabled keeps that reason: switching the link on again must not
        # count it as a new disable when the directory still says disabled.
        if user is not None and not user.disabled_reason:
            result.disables.append(Disable(user.id, external_id, LINK_OFF, already_disabled=user.disabled_by_staff))


def _hold_if_over_threshold(
    snapshot: Snapshot, current: Current, threshold: Threshold, result: Plan, *, expected_users: bool
) -> None:
    """R22 (and R21): too many disables at once, or a full read that saw nobody, waits for staff."""
    if not result.disables:
        return
    provisioned = len(current.links)
    count = len(result.changing_disables)
    over = count >= threshold.minimum and count * 100 > threshold.percent * provisioned
    saw_nobody = (
        expected_users and snapshot.complete and not snapshot.incremental and not snapshot.users and provisioned > 0
    )
    if over or saw_nobody:
        result.held_disables, result.disables = result.disables, []
        result.hold_reason = (
            "the directory returned no users at all" if saw_nobody else
            f"{count} of {provisioned} provisioned users would be disabled "
            f"(more than {threshold.percent}% and at least {threshold.minimum})"
        )
