"""R20: the bell counts only what still needs someone.

Opening a notification marks it read; a creation issue's notification settles by itself when the issue closes
(and a held run's when staff decide, a failed sync's when the directory is read again).
"""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from directory.models import Integration
from notifications.models import Notification, NotificationKind
from notifications.services import needing_someone, notify
from provisioning import actions
from provisioning.applier import ISSUE_NOTIFICATIONS_PER_RUN
from provisioning.models import CreationIssue
from provisioning.sync import run_sync, sync_snapshot
from tests.engine_helpers import folders, integration_with, map_folder, site_level, snapshot, user
from tests.fixtures_browser import staff_user

SALES, IT = folders("Sales", "IT")


@pytest.fixture
def corp(client_org):
    integration = integration_with(client_org, (SALES, IT))
    map_folder(integration, SALES, site_level("Site User"))
    map_folder(integration, IT, site_level("Site User"))
    return integration


def sync(integration, *users):
    return sync_snapshot(integration, snapshot((SALES, IT), users), "command")


def bell_count(client) -> int:
    match = re.search(r'data-unread-count="(\d+)"', client.get(reverse("admin:index")).content.decode())
    assert match, "no bell on the page"
    return int(match.group(1))


# ---------------------------------------------------------------- opening marks read


def test_r20_opening_a_notification_from_the_bell_marks_it_read_and_goes_where_it_points(staff_client, client_org):
    note = notify(NotificationKind.SYNC_FAILED, title="Sync failed: DC unreachable", client=client_org,
                  url="/admin/provisioning/flow/overview/")
    bell = staff_client.get(reverse("admin:index")).content.decode()
    open_url = reverse("admin:notifications_notification_open", args=[note.pk])
    assert f'href="{open_url}"' in bell and bell_count(staff_client) == 1
    response = staff_client.get(open_url)
    assert response.status_code == 302 and response["Location"] == "/admin/provisioning/flow/overview/"
    note.refresh_from_db()
    assert note.read_at is not None and bell_count(staff_client) == 0


def test_r20_a_notification_with_no_link_or_an_outside_one_opens_its_own_page(staff_client, client_org):
    for url in ("", "//evil.example/", "https://evil.example/"):
        note = notify(NotificationKind.SYNC_FAILED, title="Sync failed", client=client_org, url=url)
        response = staff_client.get(reverse("admin:notifications_notification_open", args=[note.pk]))
        assert response["Location"] == reverse("admin:notifications_notification_change", args=[note.pk])


def test_r20_viewing_a_notifications_own_page_marks_it_read(staff_client, client_org):
    note = notify(NotificationKind.SYNC_FAILED, title="Sync failed", client=client_org)
    page = staff_client.get(reverse("admin:notifications_notification_change", args=[note.pk]))
    assert page.status_code == 200
    note.refresh_from_db()
    assert note.read_at is not None


def test_r20_the_list_links_through_the_open_view(staff_client, client_org):
    note = notify(NotificationKind.SYNC_FAILED, title="Sync failed", client=client_org, url="/admin/")
    page = staff_client.get(reverse("admin:notifications_notification_changelist")).content.decode()
    assert f'href="{reverse("admin:notifications_notification_open", args=[note.pk])}"' in page


def test_r20_opening_needs_the_view_permission(client, client_org):
    note = notify(NotificationKind.SYNC_FAILED, title="Sync failed", client=client_org)
    client.force_login(staff_user("nobody"))
    response = client.get(reverse("admin:notifications_notification_open", args=[note.pk]))
    assert response.status_code == 403
    note.refresh_from_db()
    assert note.read_at is None


# ---------------------------------------------------------------- settling by itself


def test_r7_r20_a_creation_issues_notification_settles_when_the_issue_closes(staff_client, corp):
    sync(corp, user(1, SALES, email=""), user(2, SALES, email=""))
    assert CreationIssue.objects.filter(closed_at__isnull=True).count() == 2
    assert bell_count(staff_client) == 2
    sync(corp, user(1, SALES), user(2, SALES, email=""))  # user1's email arrives in the directory
    settled = Notification.objects.get(title__contains="First1 Last1")
    assert settled.resolved_at is not None and settled.read_at is None
    assert bell_count(staff_client) == 1
    bell = staff_client.get(reverse("admin:index")).content.decode().split('id="notification-bell"')[1]
    assert "First1 Last1" not in bell.split("</details>")[0] and "First2 Last2" in bell


def test_r7_r20_the_more_issues_summary_settles_when_all_of_its_runs_issues_close(corp):
    count = ISSUE_NOTIFICATIONS_PER_RUN + 3
    first = sync(corp, *(user(n, SALES, email="") for n in range(1, count + 1)))
    summary = Notification.objects.get(title__endswith="3 more creation issues")
    assert summary.resolved_at is None and needing_someone().count() == ISSUE_NOTIFICATIONS_PER_RUN + 1
    sync(corp, *(user(n, SALES) for n in range(1, count)), user(count, SALES, email=""))
    summary.refresh_from_db()
    assert summary.resolved_at is None, "one issue of that run is still open"
    assert CreationIssue.objects.filter(opened_by_run=first, closed_at__isnull=True).count() == 1
    sync(corp, *(user(n, SALES) for n in range(1, count + 1)))
    summary.refresh_from_db()
    assert summary.resolved_at is not None and not needing_someone().exists()


def test_r7_a_reopened_issue_raises_a_new_notification_that_needs_someone(corp):
    sync(corp, user(1, SALES, email=""))
    sync(corp, user(1, SALES))
    sync(corp, user(1, SALES, email=""))
    notes = Notification.objects.filter(kind=NotificationKind.CREATION_ISSUE).order_by("pk")
    assert [n.resolved_at is None for n in notes] == [False, True]


def test_r22_r20_a_held_runs_notification_settles_when_staff_decide(corp):
    corp.disable_threshold_minimum = 1
    corp.save()
    sync(corp, user(1, SALES), user(2, IT))
    held = sync(corp, user(2, IT))
    note = Notification.objects.get(kind=NotificationKind.DISABLES_HELD)
    assert held.status == "held" and note.resolved_at is None
    actions.discard_held_disables(held, by=None)
    note.refresh_from_db()
    assert note.resolved_at is not None and not needing_someone().exists()


def test_r21_r20_a_failed_syncs_notification_settles_when_the_directory_is_read_again(client_org):
    broken = Integration.objects.create(client=client_org, name="Corp AD", kind="ad", ad_mode="direct",
                                        ldap_urls="ldaps://127.0.0.1:9", base_dn="DC=corp,DC=test",
                                        bind_dn="svc@corp.test", bind_password="x", tls_mode="ldaps")
    failed = run_sync(broken, "command")
    assert failed.status == "failed"
    note = Notification.objects.get(kind=NotificationKind.SYNC_FAILED)
    assert note.resolved_at is None
    sync_snapshot(broken, snapshot((), ()), "command")
    note.refresh_from_db()
    assert note.resolved_at is not None


def test_r20_settled_notifications_stay_in_the_list_filtered_apart(staff_client, corp):
    sync(corp, user(1, SALES, email=""))
    sync(corp, user(1, SALES))
    url = reverse("admin:notifications_notification_changelist")
    settled = staff_client.get(url + "?settled=yes").content.decode()
    still_open = staff_client.get(url + "?settled=no").content.decode()
    assert "First1 Last1 not created" in settled and "First1 Last1 not created" not in still_open
