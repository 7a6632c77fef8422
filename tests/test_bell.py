"""The bell (R20): unread count and latest notifications on every admin page; the list; mark read."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client as BrowserClient
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from notifications.models import Notification, NotificationKind
from notifications.services import notify

CHANGELIST = "admin:notifications_notification_changelist"
MARK_ALL = "admin:notifications_notification_mark_all_read"


@pytest.fixture
def staff(db):
    return get_user_model().objects.create_superuser("root", "root@msp.test", "a-long-test-password")


@pytest.fixture
def browser(staff) -> BrowserClient:
    """A browser that, like a real one, must send the CSRF token with every POST."""
    browser = BrowserClient(enforce_csrf_checks=True)
    browser.force_login(staff)
    return browser


@pytest.fixture
def notes(vault, client_org):
    made = {
        "issue": notify(NotificationKind.CREATION_ISSUE, title="Creation issue: Bob (Sales OU): no email",
                        client=client_org, url="/admin/passportal/portaluser/"),
        "sync": notify(NotificationKind.SYNC_FAILED, title="Sync failed: DC unreachable", client=client_org),
        "email": notify(NotificationKind.EMAIL_FAILED, title="Email to tom@msp.test could not be delivered",
                        client=vault),
        "old": notify(NotificationKind.DISABLES_HELD, title="30 disables held", client=client_org),
    }
    Notification.objects.filter(pk=made["old"].pk).update(read_at=timezone.now())
    return made


def unread_count_in(html: str) -> int:
    match = re.search(r'data-unread-count="(\d+)"', html)
    assert match, "no bell on the page"
    return int(match.group(1))


def result_list(html: str) -> str:
    return html.split('id="result_list"')[1].split("</table>")[0]


def csrf_token(browser: BrowserClient) -> str:
    browser.get(reverse("admin:index"))
    return browser.cookies["csrftoken"].value


@pytest.mark.parametrize(
    "url", ["admin:index", "admin:passportal_portaluser_changelist", "admin:password_change", CHANGELIST]
)
def test_r20_the_bell_shows_the_unread_count_on_admin_pages(browser, notes, url):
    html = browser.get(reverse(url)).content.decode()
    assert unread_count_in(html) == 3
    bell = html[html.index('id="notification-bell"'):]
    assert "Creation issue: Bob (Sales OU): no email" in bell and "Sync failed: DC unreachable" in bell
    assert "30 disables held" not in bell.split("</details>")[0], "read notifications are not in the bell"
    assert "Contoso Ltd" in bell


def test_r20_the_bell_lists_only_the_latest_few(browser, client_org):
    for number in range(8):
        notify(NotificationKind.CREATION_ISSUE, title=f"Issue number {number}", client=client_org)
    bell = browser.get(reverse("admin:index")).content.decode().split('id="notification-bell"')[1]
    bell = bell.split("</details>")[0]
    assert unread_count_in(bell) == 8
    assert "Issue number 7" in bell and "Issue number 3" in bell and "Issue number 2" not in bell


def test_r20_no_bell_for_visitors_and_no_query_outside_the_admin(client, notes):
    assert 'id="notification-bell"' not in client.get(reverse("admin:login")).content.decode()
    with CaptureQueriesContext(connection) as queries:
        client.get(reverse("activation-set-password"))
    assert not [q for q in queries.captured_queries if "notifications_notification" in q["sql"]]


def test_r20_the_list_filters_by_read_state_kind_and_client(browser, notes, vault):
    url = reverse(CHANGELIST)
    unread = result_list(browser.get(url + "?read=unread").content.decode())
    assert "Sync failed: DC unreachable" in unread and "30 disables held" not in unread
    read = result_list(browser.get(url + "?read=read").content.decode())
    assert "30 disables held" in read and "Sync failed: DC unreachable" not in read
    by_kind = result_list(browser.get(url + "?kind=email_failed").content.decode())
    assert "tom@msp.test" in by_kind and "Sync failed" not in by_kind
    by_client = result_list(browser.get(url + f"?client__id__exact={vault.pk}").content.decode())
    assert "tom@msp.test" in by_client and "Creation issue" not in by_client


def test_r20_mark_selected_read_needs_csrf_and_lowers_the_count(browser, notes):
    url = reverse(CHANGELIST)
    form = {"action": "mark_read", "_selected_action": [notes["issue"].pk, notes["sync"].pk]}
    assert browser.post(url, form).status_code == 403
    assert Notification.objects.filter(read_at__isnull=True).count() == 3

    response = browser.post(url, {**form, "csrfmiddlewaretoken": csrf_token(browser)}, follow=True)
    assert response.status_code == 200
    assert "2 notification(s) marked as read." in response.content.decode()
    assert unread_count_in(response.content.decode()) == 1
    assert set(Notification.objects.filter(read_at__isnull=True)) == {notes["email"]}


def test_r20_mark_all_read(browser, notes):
    url = reverse(MARK_ALL)
    assert browser.get(url).status_code == 405
    assert browser.post(url).status_code == 403
    response = browser.post(url, {"csrfmiddlewaretoken": csrf_token(browser)}, follow=True)
    assert response.redirect_chain[-1][0] == reverse(CHANGELIST)
    assert "3 notification(s) marked as read." in response.content.decode()
    assert unread_count_in(response.content.decode()) == 0
    assert not Notification.objects.filter(read_at__isnull=True).exists()


def test_r20_mark_all_read_is_for_staff_only(client, notes):
    response = client.post(reverse(MARK_ALL))
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
    assert Notification.objects.filter(read_at__isnull=True).count() == 3


def test_r20_a_notification_opens_read_only(browser, notes):
    page = browser.get(reverse("admin:notifications_notification_change", args=[notes["sync"].pk]))
    assert page.status_code == 200
    assert b"Sync failed: DC unreachable" in page.content and b'name="title"' not in page.content
    assert browser.get(reverse("admin:notifications_notification_add")).status_code == 403


def test_r18_the_outbox_is_listed_by_status_without_the_link(browser, client_org):
    from notifications.activation import queue_activation_emails
    from notifications.models import OutboxEmail
    from passportal.models import PortalUser
    from passportal.tokens import token_from_nonce

    user = PortalUser.objects.create(client=client_org, email="ann@contoso.test", first_name="Ann")
    queue_activation_emails([user.pk])
    row = OutboxEmail.objects.get()
    token = token_from_nonce(row.context["nonce"])
    listing = browser.get(reverse("admin:notifications_outboxemail_changelist") + "?status=queued").content.decode()
    assert "ann@contoso.test" in listing and token not in listing
    detail = browser.get(reverse("admin:notifications_outboxemail_change", args=[row.pk])).content.decode()
    assert "ann@contoso.test" in detail and token not in detail and "/activate/" not in detail
    assert "ann@contoso.test" not in browser.get(
        reverse("admin:notifications_outboxemail_changelist") + "?status=sent"
    ).content.decode()
