"""The portal's schedules (django-q2), one table: each has a key the code names it by, and the stored name it is
found by again (django-q2's Schedule.name is not unique, and a renamed one would be made anew beside the old).

Created after every migrate (passportal/apps.py), idempotently: a schedule that exists keeps its next run, so a
restart or a Force Re-sync never moves the nightly full read (R17). The overview reads the next runs by key.
The tasks are named by dotted path, so this table imports nothing of the apps whose tasks it runs.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, time, timedelta

from django.db import DEFAULT_DB_ALIAS
from django.utils import timezone


@dataclass(frozen=True)
class PortalSchedule:
    key: str
    name: str
    func: str
    args: str = ""
    every_minutes: int | None = None  # None: daily, at daily_at (local time)
    daily_at: time | None = None


SYNC_TASK = "provisioning.tasks.sync_scheduled"

SCHEDULES: dict[str, PortalSchedule] = {schedule.key: schedule for schedule in [
    # Changes only (provisioning/ad_reads.py): a full read when AD_FULL_READ_EVERY_HOURS have passed, or it must.
    PortalSchedule("ad_direct", "provisioning: Active Directory (direct) every 6 hours", SYNC_TASK,
                   "'ad_direct', False", every_minutes=360),
    PortalSchedule("demo", "provisioning: demo directories every 6 hours", SYNC_TASK, "'demo'", every_minutes=360),
    PortalSchedule("entra_incremental", "provisioning: Entra ID incremental every 5 minutes", SYNC_TASK,
                   "'entra', False", every_minutes=5),
    PortalSchedule("entra_nightly", "provisioning: Entra ID full every night at 02:00", SYNC_TASK,
                   "'entra', True, 'nightly'", daily_at=time(2, 0)),
    # On-prem agents are not read by the portal: it checks that they answer and push (provisioning/agent_outcomes.py).
    PortalSchedule("agent_check", "provisioning: on-prem agents that do not answer or push, every 5 minutes",
                   "provisioning.tasks.check_agents_task", every_minutes=5),
    # Open agent uploads idle past AGENT_UPLOAD_EXPIRE_MINUTES lose their records within 15 minutes more.
    PortalSchedule("upload_expiry", "directory: expire idle agent uploads every 15 minutes",
                   "directory.upload_limits.expire_uploads", every_minutes=15),
    # A safety net behind the sender task queued with each batch of emails.
    PortalSchedule("outbox", "Send outbox emails", "notifications.tasks.send_outbox", every_minutes=1),
]}


def next_local(at: time) -> datetime:
    now = timezone.localtime()
    candidate = now.replace(hour=at.hour, minute=at.minute, second=0, microsecond=0)
    return candidate if candidate > now else candidate + timedelta(days=1)


def _fields(schedule: PortalSchedule) -> dict:
    from django_q.models import Schedule

    daily = schedule.every_minutes is None
    return {"func": schedule.func, "args": schedule.args or None, "repeats": -1,
            "schedule_type": Schedule.DAILY if daily else Schedule.MINUTES, "minutes": schedule.every_minutes}


def ensure_schedules(using: str = DEFAULT_DB_ALIAS) -> list[str]:
    """Create the missing schedules and bring the others in line with the table; returns the names."""
    from django_q.models import Schedule

    stored = Schedule.objects.using(using)
    for schedule in SCHEDULES.values():
        existing = stored.filter(name=schedule.name).order_by("pk").first()
        if existing is None:
            first_run = next_local(schedule.daily_at) if schedule.daily_at else timezone.now()
            stored.create(name=schedule.name, next_run=first_run, **_fields(schedule))
        else:
            # Keep next_run as it is: a Force Re-sync or a restart must not move the nightly run (R17).
            stored.filter(pk=existing.pk).update(**_fields(schedule))
    return [schedule.name for schedule in SCHEDULES.values()]


def next_runs(keys: Iterable[str]) -> dict[str, datetime | None]:
    """When each of these schedules runs next (None: not there, e.g. before the first migrate), one query."""
    from django_q.models import Schedule

    wanted = {SCHEDULES[key].name: key for key in keys}
    found = dict(Schedule.objects.filter(name__in=wanted).values_list("name", "next_run"))
    return {key: found.get(name) for name, key in wanted.items()}
