"""R17 schedules, created idempotently by name (django-q2's Schedule.name is not unique)."""

from __future__ import annotations

from datetime import datetime, time, timedelta

from django.utils import timezone

AGENT_CHECK_SCHEDULE_NAME = "provisioning: on-prem agents that do not answer or push, every 5 minutes"


def next_local(at: time) -> datetime:
    now = timezone.localtime()
    candidate = now.replace(hour=at.hour, minute=at.minute, second=0, microsecond=0)
    return candidate if candidate > now else candidate + timedelta(days=1)


def ensure_schedules() -> list[str]:
    from django_q.models import Schedule

    wanted = [
        ("provisioning: Active Directory (direct) every 6 hours", "'ad_direct'", Schedule.MINUTES, 360, None),
        ("provisioning: demo directories every 6 hours", "'demo'", Schedule.MINUTES, 360, None),
        ("provisioning: Entra ID incremental every 5 minutes", "'entra', False", Schedule.MINUTES, 5, None),
        ("provisioning: Entra ID full every night at 02:00", "'entra', True, 'nightly'", Schedule.DAILY, None,
         next_local(time(2, 0))),
    ]
    names = []
    for name, args, schedule_type, minutes, next_run in wanted:
        existing = Schedule.objects.filter(name=name).first()
        defaults = {
            "func": "provisioning.tasks.sync_scheduled", "args": args, "schedule_type": schedule_type,
            "minutes": minutes, "repeats": -1,
        }
        if existing is None:
            Schedule.objects.create(name=name, next_run=next_run or timezone.now(), **defaults)
        else:
            # Keep next_run as it is: a Force Re-sync or a restart must not move the nightly run (R17).
            Schedule.objects.filter(pk=existing.pk).update(**defaults)
        names.append(name)
    # On-prem agents are not read by the portal: it checks that they answer and push (agent_runs).
    Schedule.objects.update_or_create(name=AGENT_CHECK_SCHEDULE_NAME, defaults={
        "func": "provisioning.tasks.check_agents_task", "schedule_type": Schedule.MINUTES, "minutes": 5,
        "repeats": -1})
    names.append(AGENT_CHECK_SCHEDULE_NAME)
    return names
