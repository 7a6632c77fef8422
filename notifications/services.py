"""Raise, read and resolve notifications. Callers decide what is wrong and when it is settled; this records it."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db.models import QuerySet
from django.utils import timezone

from adread.batches import chunks
from passportal.models import Client

from .models import Notification, NotificationKind

RESOLVE_CHUNK = 1000
NOTIFY_BATCH = 1000


def notification(kind: str, *, title: str, message: str = "", client: Client | None = None, integration: Any = None,
                 url: str = "", topic: str = "") -> Notification:
    """A notification as every raiser's is shaped (the title cut to fit, the integration's client), not saved."""
    if integration is not None and client is None:
        client = integration.client
    return Notification(
        kind=kind, title=title[:300], message=message, client=client, integration=integration, url=url, topic=topic
    )


def notify(kind: str, *, title: str, message: str = "", client: Client | None = None, integration: Any = None,
           url: str = "", topic: str = "") -> Notification:
    """Raise one notification: the one way a notification is written (notify_many for a run's many)."""
    note = notification(kind, title=title, message=message, client=client, integration=integration, url=url,
                        topic=topic)
    note.save()
    return note


def notify_many(notes: Iterable[Notification]) -> int:
    """Raise notifications built with notification() in one statement per NOTIFY_BATCH; returns how many."""
    return len(Notification.objects.bulk_create(list(notes), batch_size=NOTIFY_BATCH))


def needing_someone() -> QuerySet[Notification]:
    """What the bell counts: not read, and not settled by itself."""
    return Notification.objects.filter(read_at__isnull=True, resolved_at__isnull=True)


def mark_read(notification: Notification) -> None:
    if notification.read_at is None:
        notification.read_at = timezone.now()
        Notification.objects.filter(pk=notification.pk, read_at__isnull=True).update(read_at=notification.read_at)


def resolve(topics: Iterable[str]) -> int:
    """The things these topics name are settled: their open notifications need nobody any more (set-based)."""
    wanted = sorted(set(topics))
    now, done = timezone.now(), 0
    for part in chunks(wanted, RESOLVE_CHUNK):
        done += Notification.objects.filter(
            topic__in=part, resolved_at__isnull=True
        ).update(resolved_at=now)
    return done


__all__ = ["Notification", "NotificationKind", "mark_read", "needing_someone", "notification", "notify", "notify_many",
           "resolve"]
