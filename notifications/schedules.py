"""Schedules of the notifications app, created idempotently (Schedule.name is not unique: update_or_create)."""

from __future__ import annotations

from django.db import DEFAULT_DB_ALIAS

OUTBOX_SCHEDULE_NAME = "Send outbox emails"


def ensure_schedules(using: str = DEFAULT_DB_ALIAS) -> None:
    """The outbox sender every minute: a safety net behind the task queued with each batch of emails."""
    from django_q.models import Schedule

    Schedule.objects.using(using).update_or_create(
        name=OUTBOX_SCHEDULE_NAME,
        defaults={
            "func": "notifications.tasks.send_outbox",
            "schedule_type": Schedule.MINUTES,
            "minutes": 1,
            "repeats": -1,
        },
    )
