"""Decide what a sync changes: a pure function over plain data (no ORM, no clock, no I/O).

Every rule of docs/rules.md that decides *what* happens lives here and in `provisioning.planning`: R2-R13,
R19, R21, R22, G1-G6. The applier writes the resulting `Plan`; the planner never touches the database.
This is the planner's public module: callers import its names from here, its parts live in `planning/`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from directory.connectors.base import Snapshot

from .planning import passes
from .planning.data import (
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
from .planning.reasons import DisableReason, IssueReason
from .planning.scope import NAMED_GROUP_KINDS, fingerprint, link_state, unreadable_groups

__all__ = [
    "NAMED_GROUP_KINDS", "SOURCES", "Adoption", "Current", "Disable", "DisableReason", "Issue", "IssueReason",
    "LinkState", "MappingRule", "NewUser", "Plan", "Reenable", "Seen", "Threshold", "Update", "UserState",
    "fingerprint", "link_state", "plan",
]

# The planner's source files: a digest of them says "the rules changed" (the run short cut must not skip then).
SOURCES: tuple[Path, ...] = (Path(__file__), *sorted(Path(passes.__file__).parent.glob("*.py")))

DEFAULT_THRESHOLD = Threshold()  # frozen, so one shared default is safe


def plan(
    snapshot: Snapshot,
    mappings: Mapping[str, MappingRule],
    current: Current,
    *,
    link_enabled: bool = True,
    threshold: Threshold = DEFAULT_THRESHOLD,
) -> Plan:
    """What this read changes for the integration's users, as a `Plan`; see `Snapshot` for what a read says."""
    result = Plan()
    if not link_enabled:
        passes.plan_link_off(current, result)
        return result
    result.failure = unreadable_groups(snapshot, mappings)
    if result.failure:
        return result
    ctx = passes.match_identities(snapshot, mappings, current, result)
    passes.find_email_owners(ctx)
    passes.follow_linked(ctx)
    passes.create_or_adopt(ctx)
    passes.close_settled_issues(ctx)
    passes.hold_if_over_threshold(ctx, threshold)
    return result
