"""Every notification is raised through notifications.services (notify, or notify_many for a run's many), so each
is shaped alike: the title cut to fit, the client of the integration it is about (R20)."""

from __future__ import annotations

import re
from pathlib import Path

from directory.models import Integration
from notifications.models import Notification, NotificationKind
from notifications.services import notification, notify, notify_many

ROOT = Path(__file__).resolve().parent.parent
APPS = ["passportal", "directory", "notifications", "provisioning", "scim"]
WRITES = re.compile(r"Notification\.objects\.(create|bulk_create|get_or_create|update_or_create)\("
                    r"|(?<!class )\bNotification\(")
# Modules that still write notifications themselves; an entry that no longer does must leave the list.
NOT_YET_THROUGH_NOTIFY: set[str] = set()


def test_r20_one_notification_and_many_are_shaped_alike(client_org):
    integration = Integration.objects.create(client=client_org, name="Corp AD", kind="ad", ad_mode="agent",
                                             base_dn="DC=corp,DC=test")
    one = notify(NotificationKind.SYNC_FAILED, title="x" * 400, integration=integration, topic="run:1")
    assert notify_many([
        notification(NotificationKind.CREATION_ISSUE, title="y" * 400, integration=integration, url="/issues/"),
        notification(NotificationKind.CREATION_ISSUE, title="Ann not created", client=client_org),
    ]) == 2
    stored = list(Notification.objects.order_by("pk"))
    assert stored[0].pk == one.pk
    assert [len(n.title) for n in stored] == [300, 300, len("Ann not created")]
    assert {n.client_id for n in stored} == {client_org.pk}
    assert [n.integration_id for n in stored] == [integration.pk, integration.pk, None]


def test_r20_no_module_writes_notifications_but_the_services():
    writers = set()
    for app in APPS:
        for path in (ROOT / app).rglob("*.py"):
            relative = path.relative_to(ROOT).as_posix()
            if "migrations" in path.parts or relative == "notifications/services.py":
                continue
            if WRITES.search(path.read_text()):
                writers.add(relative)
    assert writers - NOT_YET_THROUGH_NOTIFY == set(), "raise notifications through notifications.services"
    assert writers >= NOT_YET_THROUGH_NOTIFY, "these raise through notifications.services now: take them off the list"
