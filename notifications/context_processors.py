"""The bell (R20) in the admin's top bar: unread count and the latest unread notifications."""

from __future__ import annotations

from dataclasses import dataclass

from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from .models import Notification
from .services import needing_someone

BELL_LATEST = 5


@dataclass(frozen=True)
class Bell:
    visible: bool
    unread_count: int = 0
    latest: tuple[Notification, ...] = ()


def _bell_for(request: HttpRequest) -> Bell:
    user = getattr(request, "user", None)
    if user is None or not (user.is_active and user.is_staff and user.has_perm("notifications.view_notification")):
        return Bell(visible=False)
    unread = needing_someone()  # read ones, and ones settled by themselves, need nobody
    return Bell(
        visible=True,
        unread_count=unread.count(),
        latest=tuple(unread.select_related("client", "integration").order_by("-created_at", "-id")[:BELL_LATEST]),
    )


def bell(request: HttpRequest) -> dict:
    # Lazy: pages that never show the bell (activation pages, the API) never query for it.
    return {"notification_bell": SimpleLazyObject(lambda: _bell_for(request))}
