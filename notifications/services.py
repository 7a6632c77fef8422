"""Raise notifications. Callers decide what is wrong; this module only records it (ARCHITECTURE)."""

from __future__ import annotations

from .models import Notification, NotificationKind


def notify(kind: str, *, title: str, message: str = "", client=None, integration=None, url: str = "") -> Notification:
    if integration is not None and client is None:
        client = integration.client
    return Notification.objects.create(
        kind=kind, title=title[:300], message=message, client=client, integration=integration, url=url
    )


__all__ = ["Notification", "NotificationKind", "notify"]
