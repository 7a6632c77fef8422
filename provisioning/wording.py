"""How provisioning facts read to a person: runs' outcomes, and who and when.

Pages, messages and the command line take their words from here, so a run reads the same everywhere.
"""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone
from django.utils.formats import date_format

from .models import HeldResolution, SyncRun, SyncStatus


def moment(value: datetime | None) -> str:
    """A point in time in the portal's time zone: "3 May 2025, 14:02"."""
    if value is None:
        return ""
    if timezone.is_aware(value):
        value = timezone.localtime(value)
    return date_format(value, "j M Y, H:i")


def staff_name(user) -> str:
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
