"""Schedules of the directory app, created idempotently (Schedule.name is not unique: update_or_create)."""

from __future__ import annotations

from django.db import DEFAULT_DB_ALIAS

UPLOAD_EXPIRY_SCHEDULE_NAME = "directory: expire idle agent uploads every 15 minutes"


def ensure_schedules(using: str = DEFAULT_DB_ALIAS) -> None:
    """Open agent uploads idle past AGENT_UPLOAD_EXPIRE_MINUTES lose their records within 15 minutes more."""
    from django_q.models import Schedule

    Schedule.objects.using(using).update_or_create(
        name=UPLOAD_EXPIRY_SCHEDULE_NAME,
        defaults={
            "func": "directory.uploads.expire_uploads",
            "schedule_type": Schedule.MINUTES,
            "minutes": 15,
            "repeats": -1,
        },
    )
