"""Counters of refused attempts (activation links, end-user sign-in), shared by every process.

A counter is one row, incremented by one UPDATE (`count = count + 1`), so parallel requests never
lose a count the way a cache's get-then-set does. A window starts with the first refused attempt and
is not extended by later ones.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from .models import RateCounter


def _key(*parts: str) -> str:
    # Keys hold addresses and emails: only their digest is stored.
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


def count(*parts: str, window_seconds: int) -> int:
    """How many refused attempts this key had in its current window."""
    now = timezone.now()
    row = RateCounter.objects.filter(key=_key(*parts)).values_list("count", "window_started_at").first()
    if row is None or now - row[1] >= timedelta(seconds=window_seconds):
        return 0
    return row[0]


def record(*parts: str, window_seconds: int) -> int:
    """Count one refused attempt for this key; returns the count in the window, this one included."""
    key = _key(*parts)
    now = timezone.now()
    window_start_after = now - timedelta(seconds=window_seconds)
    with transaction.atomic():
        if RateCounter.objects.filter(key=key, window_started_at__gt=window_start_after).update(
            count=F("count") + 1
        ):
            return RateCounter.objects.get(key=key).count
        # No live window: restart an expired one (only an expired one: a row another request created
        # since the UPDATE above is live, and resetting it would lose its count), or start one.
        if RateCounter.objects.filter(key=key, window_started_at__lte=window_start_after).update(
            count=1, window_started_at=now
        ):
            return 1
        try:
            with transaction.atomic():
                RateCounter.objects.create(key=key, count=1, window_started_at=now)
            return 1
        except IntegrityError:
            RateCounter.objects.filter(key=key).update(count=F("count") + 1)
            return RateCounter.objects.get(key=key).count


def clear(*parts: str) -> None:
    RateCounter.objects.filter(key=_key(*parts)).delete()


def purge_expired(window_seconds: int) -> int:
    """Delete counters whose window ended; returns how many."""
    cutoff = timezone.now() - timedelta(seconds=window_seconds)
    return RateCounter.objects.filter(window_started_at__lte=cutoff).delete()[0]
