"""What the planner takes (the directory's mappings, the portal as it is) and what it returns (a `Plan`).

Plain frozen data: no ORM, so the planner stays a pure function and the tests build these by hand.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

from .reasons import IssueReason

# ---------------------------------------------------------------- input


@dataclass(frozen=True, slots=True)
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
    # For the applier, which rewrites only links whose state changed (here, not in a second map: one tuple per link).
    row_id: int = 0  # the link's row
    state_hash: str = ""  # the fingerprint of what the directory said when the link was last written


@dataclass(frozen=True, slots=True)
class Threshold:
    """R22: hold the disables when more than `percent`% of provisioned users and at least `minimum`."""

    percent: int = 10
    minimum: int = 25


@dataclass(frozen=True, slots=True)
class Current:
    users: Mapping[int, UserState]  # every portal user of the client, by id
    links: Mapping[str, LinkState]  # this integration's links, by external id
    open_issues: frozenset[tuple[str, str]] = frozenset()  # (external_id, reason)
    # Portal users an identity of ANOTHER integration of the client holds -> that integration's name.
    # One person is one portal user across all of a client's directories (R4): these are never adopted.
    held_elsewhere: Mapping[int, str] = field(default_factory=dict)


# ---------------------------------------------------------------- output


@dataclass(frozen=True, slots=True)
class NewUser:
    external_id: str
    first_name: str
    last_name: str
    email: str
    level_id: int | None
    group_ids: frozenset[int]
    folder_ids: frozenset[str]
    via: tuple[str, ...] = ()  # through which folders, and for groups which chain, the user is in scope (G5)


@dataclass(frozen=True, slots=True)
class Adoption:
    """R4: an existing portal user with this email becomes this identity's user."""

    external_id: str
    user_id: int
    keeps_level: bool  # R11: an adopted user keeps the level it had


@dataclass(frozen=True, slots=True)
class Update:
    user_id: int
    external_id: str
    changes: Mapping[str, tuple[object, object]]  # field -> (old, new)


@dataclass(frozen=True, slots=True)
class Disable:
    user_id: int
    external_id: str
    reason: str  # a DisableReason (held disables come back from the run's JSON as plain text)
    # Disabled by staff already: the directory's reason is recorded (it still holds once staff lift
    # theirs), but nobody's state changes, so it is not counted or listed as a disable.
    already_disabled: bool = False
    detail: str = ""  # what a person reads beside the reason: "removed from group Sales-Team" (G4)


@dataclass(frozen=True, slots=True)
class Reenable:
    user_id: int
    external_id: str
    previous_reason: str
    stays_disabled_by_staff: bool  # R8: only staff lift a manual disable


@dataclass(frozen=True, slots=True)
class Issue:
    external_id: str
    reason: IssueReason
    message: str
    user_name: str
    email: str
    folder_id: str | None


@dataclass(frozen=True, slots=True)
class Seen:
    """What the directory said about a linked (or about to be linked) identity, for the link row: listed for a
    linked identity only when it differs from what its link stored (`LinkState.state_hash`)."""

    external_id: str
    folder_ids: frozenset[str]
    in_scope: bool
    state: Mapping[str, object]
    digest: str = ""  # its fingerprint (scope.fingerprint), when the planner worked it out already


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
    # G5: through which folders (and chains of nested groups) each existing portal user with a change in scope
    # is in scope, by portal user id: what the preview and the run page say beside an update, a group change, a
    # re-enable or an adoption. Creations carry theirs (NewUser.via).
    vias: dict[int, tuple[str, ...]] = field(default_factory=dict)
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
