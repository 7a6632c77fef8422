"""How provisioning facts read to a person: durations, counts, reasons, changes, runs' outcomes.

Pages, messages, the admin and the command line take their words from here, so a run reads the same
everywhere and no internal code (out_of_scope, permission_level_id, a timedelta) reaches a person.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta

from django.contrib.auth.models import User
from django.utils import timezone
from django.utils.formats import date_format

from passportal.reasons import DisableReason

from .models import HeldResolution, SyncRun, SyncStatus


def moment(value: datetime | None) -> str:
    """A point in time in the portal's time zone: "3 May 2025, 14:02"."""
    if value is None:
        return ""
    if timezone.is_aware(value):
        value = timezone.localtime(value)
    return date_format(value, "j M Y, H:i")


def staff_name(user: User | None) -> str:
    """A staff member as colleagues know them: full name, else username."""
    if user is None:
        return "a staff member"
    return user.get_full_name() or user.get_username()


def _decision(run: SyncRun) -> str:
    verb = "applied" if run.held_resolution == HeldResolution.APPLIED else "discarded"
    when = f" on {moment(run.held_decided_at)}" if run.held_decided_at else ""
    return f"held disables {verb} by {staff_name(run.held_decided_by)}{when}"


def held_decision(run: SyncRun) -> str:
    """What staff decided about a run's held disables: "Held disables applied by Tom on 3 May 2025, 14:02"."""
    if not run.held_resolution:
        return ""
    text = _decision(run)
    return text[:1].upper() + text[1:]


def run_outcome(run: SyncRun) -> str:
    """A run's status as one phrase, with the staff decision once a held run has one."""
    if run.held_resolution:
        return f"{run.get_status_display()}; {_decision(run)}"
    if run.status == SyncStatus.HELD:
        return "Held: disables wait for a staff decision"
    return run.get_status_display()


# ---------------------------------------------------------------- durations


def duration(value: timedelta | float | None) -> str:
    """"0.2 s", "42 s", "3 min 4 s", "1 h 5 min"; "" when there is nothing to measure."""
    if value is None:
        return ""
    seconds = value.total_seconds() if isinstance(value, timedelta) else float(value)
    if seconds < 0.1:
        return "under 0.1 s"
    if seconds < 9.95:
        return f"{seconds:.1f} s"
    whole = round(seconds)
    if whole < 60:
        return f"{whole} s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


# ---------------------------------------------------------------- counts

# What a preview says it will do, and what a run did: the same figures (Plan.counts keys), in two tenses.
PREVIEW_COUNT_LABELS = [
    ("created", "to create"), ("adopted", "to adopt (existing users linked)"), ("updated", "to update"),
    ("disabled", "to disable"), ("reenabled", "to re-enable"), ("issues_opened", "creation issues"),
    ("held", "disables held for a staff decision"), ("groups_added", "group memberships to add"),
    ("groups_removed", "group memberships to remove"),
]
RUN_COUNT_LABELS = [
    ("created", "created"), ("adopted", "adopted (existing users linked)"), ("updated", "updated"),
    ("disabled", "disabled"), ("reenabled", "re-enabled"), ("issues_opened", "creation issues opened"),
    ("issues_closed", "creation issues closed"), ("held", "disables held"),
    ("groups_added", "group memberships added"), ("groups_removed", "group memberships removed"),
    ("left_as_staff_set", "users changed by staff during the run, left as staff set them"),
]


def labelled_counts(counts: Mapping[str, int], *, preview: bool = False, nonzero: bool = False
                    ) -> list[tuple[str, int]]:
    """(label, figure) in a fixed order; a preview shows every figure, a run those it recorded."""
    labels = PREVIEW_COUNT_LABELS if preview else RUN_COUNT_LABELS
    rows = [(label, counts.get(key, 0)) for key, label in labels if preview or key in counts]
    return [(label, n) for label, n in rows if n] if nonzero else rows


def counts_in_words(counts: Mapping[str, int], *, preview: bool = False) -> str:
    """"created: 3, disabled: 1", or that nothing changes."""
    shown = labelled_counts(counts, preview=preview, nonzero=True)
    if not shown:
        return "nothing to change" if preview else "nothing changed"
    return ", ".join(f"{label}: {n}" for label, n in shown)


# ---------------------------------------------------------------- Entra ID

# The application permissions (admin-consented) an Entra ID app registration needs: users, administrative units
# and their members, and /organization (the tenant check). The Add Domain page lists these; the README names the
# same list, and a test holds them together (docs/notes/entra-graph.md, "Permissions").
# GroupMember.Read.All: the groups a staff member maps as folders, with their nested members.
ENTRA_APP_PERMISSIONS = ("User.Read.All", "AdministrativeUnit.Read.All", "Organization.Read.All",
                         "GroupMember.Read.All")


# ---------------------------------------------------------------- reasons

DIRECTORY_NAMES = {"ad": "Active Directory", "entra": "Entra ID", "demo": "the demo directory",
                   "scim": "the identity provider"}
FOLDER_WORDS = {"ad": "OU", "entra": "AU", "demo": "OU", "scim": "group"}
STAFF = "staff"  # not a sync reason: a staff disable is kept apart (PortalUser.disabled_by_staff)


def disable_reason(reason: str, directory_kind: str = "") -> str:
    """Why a user is (to be) disabled, as a sentence: "Deleted in Active Directory"."""
    directory = DIRECTORY_NAMES.get(directory_kind, "the directory")
    folder = FOLDER_WORDS.get(directory_kind, "folder")
    sentences = {
        DisableReason.DIRECTORY: f"Disabled in {directory}",
        DisableReason.DELETED: f"Deleted in {directory}",
        DisableReason.OUT_OF_SCOPE: f"Moved out of every mapped {folder}",
        DisableReason.LINK_OFF: "The integration's link was switched off",
        STAFF: "Disabled by staff",
    }
    return sentences.get(reason, reason)


# ---------------------------------------------------------------- field changes

FIELD_LABELS = {"first_name": "First name", "last_name": "Last name", "email": "Email",
                "permission_level_id": "Permission level", "permission_level": "Permission level"}


def field_change(field: str, old: object, new: object) -> str:
    """"Permission level: Site User -> Site Manager" (values as the preview recorded them: names, not ids)."""
    label = FIELD_LABELS.get(field, field.replace("_", " ").capitalize())
    return f"{label}: {old or '(none)'} -> {new or '(none)'}"


def names(items: Iterable[str]) -> str:
    return ", ".join(sorted(items, key=str.lower))


def grants(level: str, groups: Iterable[str]) -> str:
    """What a new user gets: "Site Manager; groups Sales, IT"."""
    groups = list(groups)
    parts = [level] if level else []
    if groups:
        parts.append(f"group{'s' if len(groups) > 1 else ''} {names(groups)}")
    return "; ".join(parts)


def group_change(added: Iterable[str], removed: Iterable[str]) -> str:
    """"Groups: adds Sales; removes IT"."""
    parts = []
    if added := list(added):
        parts.append(f"adds {names(added)}")
    if removed := list(removed):
        parts.append(f"removes {names(removed)}")
    return "Groups: " + "; ".join(parts) if parts else ""


def via_chains(via: list[str], name: str) -> list[str]:
    """Each folder or chain of groups a user is in scope through, ending with the user: "Sales-Team > EMEA > Ann"."""
    return [f"{v} > {name}" if name else v for v in via]
