"""R8-R10, R22: a disabled portal user's page says what disabled it, when, and links the run or names the staff.

Syncs record the reason, the time and the run on the user (set-based, in the applier); staff disables record who and
when. The user list filters by that reason.
"""

from __future__ import annotations

import html
import re

import pytest
from django.urls import reverse
from django.utils import timezone

from passportal.models import PermissionLevel, PortalUser
from provisioning import actions
from provisioning.models import Mapping, SyncRun
from provisioning.wording import moment
from tests.fixtures_browser import activated_site_admin, agent_integration, ou, person, push_directory

SALES, IT = ou(1, "Sales"), ou(2, "IT")
PEOPLE = [person(1, SALES), person(2, SALES), person(3, IT), person(4, IT)]


@pytest.fixture
def corp(client_org):
    """Sales and IT mapped; four users created and linked."""
    activated_site_admin(client_org)
    integration = agent_integration(client_org, [SALES, IT], PEOPLE)
    level = PermissionLevel.objects.get(user_kind="site", name="Site User")
    for folder in integration.folders.all():
        Mapping.objects.create(folder=folder, permission_level=level)
    push_directory(integration, [SALES, IT], PEOPLE)
    assert PortalUser.objects.filter(email__endswith="@corp.test").count() == 4
    return integration


def user(n: int) -> PortalUser:
    return PortalUser.objects.select_related("disabled_by_run").get(email=f"user{n}@corp.test")


def user_page(client, n: int) -> str:
    return client.get(reverse("admin:passportal_portaluser_change", args=[user(n).pk])).content.decode()


def why_on(page: str) -> str:
    text = re.sub(r"<[^>]+>", "", page.split('id="why-disabled">')[1].split("</ul>")[0])
    return re.sub(r"\s+", " ", html.unescape(text))


# ---------------------------------------------------------------- what the applier records


def test_r8_a_sync_disable_records_its_reason_time_and_run(corp):
    before = timezone.now()
    run = push_directory(corp, [SALES, IT], [person(1, SALES, enabled=False), *PEOPLE[1:]])
    ann = user(1)
    assert ann.status == "disabled" and ann.disabled_reason == "directory"
    assert ann.disabled_by_run == run and before <= ann.disabled_at <= timezone.now()
    assert user(2).disabled_at is None and user(2).disabled_by_run is None


def test_r8_enabled_again_in_the_directory_clears_the_time_and_run(corp):
    push_directory(corp, [SALES, IT], [person(1, SALES, enabled=False), *PEOPLE[1:]])
    push_directory(corp, [SALES, IT], PEOPLE)
    ann = user(1)
    assert ann.status == "pending" and ann.disabled_reason == ""
    assert ann.disabled_at is None and ann.disabled_by_run is None


def test_r22_held_disables_applied_by_staff_record_the_run_that_held_them(corp):
    corp.disable_threshold_minimum = 1
    corp.save()
    held = push_directory(corp, [SALES, IT], PEOPLE[2:])
    assert held.status == "held"
    actions.apply_held_disables(held, by=None)
    assert user(1).disabled_reason == "out_of_scope" and user(1).disabled_by_run == held


def test_r8_a_staff_disable_records_who_and_when_and_lifting_it_clears_them(staff_client, corp):
    url = reverse("provisioning:user-enabled", args=[user(1).pk])
    staff_client.post(url, {"enabled": "0"})
    ann = user(1)
    assert ann.disabled_by_staff and ann.staff_disabled_by.username == "boss" and ann.staff_disabled_at
    staff_client.post(url, {"enabled": "1"})
    ann = user(1)
    assert not ann.disabled_by_staff and ann.staff_disabled_by is None and ann.staff_disabled_at is None


def test_r8_a_staff_disable_ticked_in_the_admin_form_records_who_and_when(staff_client, corp):
    ann = user(1)
    response = staff_client.post(reverse("admin:passportal_portaluser_change", args=[ann.pk]), {
        "client": ann.client_id, "first_name": ann.first_name, "last_name": ann.last_name, "email": ann.email,
        "disabled_by_staff": "on", "permission_level": ann.permission_level_id,
        "memberships-TOTAL_FORMS": "0", "memberships-INITIAL_FORMS": "0", "seen_version": ann.updated_at.isoformat()})
    assert response.status_code == 302
    ann = user(1)
    assert ann.status == "disabled" and ann.staff_disabled_by.username == "boss" and ann.staff_disabled_at


# ---------------------------------------------------------------- what the user's page says


def test_r8_the_user_page_says_what_disabled_it_when_and_links_the_run(staff_client, corp):
    run = push_directory(corp, [SALES, IT], [person(1, SALES, enabled=False), *PEOPLE[1:]])
    page = user_page(staff_client, 1)
    why = why_on(page)
    assert why.strip() == f"Disabled in Active Directory on {moment(user(1).disabled_at)}, by run {run.pk} of Corp AD"
    assert f'href="{reverse("provisioning:run", args=[run.pk])}"' in page.split('id="why-disabled"')[1]


def test_r9_out_of_scope_reads_as_moved_out_of_every_mapped_ou(staff_client, corp):
    push_directory(corp, [SALES, IT], [p for p in PEOPLE if p["id"] != PEOPLE[2]["id"]])
    assert "Moved out of every mapped OU on " in why_on(user_page(staff_client, 3))


def test_r10_link_off_says_the_link_was_switched_off(staff_client, corp):
    actions.set_link(corp, False, by=None)
    assert "The integration's link was switched off on " in why_on(user_page(staff_client, 4))


def test_r8_staff_and_directory_disables_show_side_by_side(staff_client, corp):
    staff_client.post(reverse("provisioning:user-enabled", args=[user(1).pk]), {"enabled": "0"})
    push_directory(corp, [SALES, IT], [person(1, SALES, enabled=False), *PEOPLE[1:]])
    why = why_on(user_page(staff_client, 1))
    assert f"Disabled by staff on {moment(user(1).staff_disabled_at)} by boss" in why
    assert "Disabled in Active Directory on " in why


def test_r8_an_enabled_user_has_no_why(staff_client, corp):
    assert 'id="why-disabled"' not in user_page(staff_client, 1)


# ---------------------------------------------------------------- the list


@pytest.mark.parametrize(("because", "emails"), [
    ("directory", ["user1@corp.test"]),
    ("deleted", ["user2@corp.test"]),
    ("out_of_scope", ["user3@corp.test"]),
    ("link_off", ["user4@corp.test"]),
    ("staff", ["siteadmin@client.test"]),
])
def test_r8_the_user_list_filters_by_why_disabled(staff_client, corp, because, emails):
    for n, reason in enumerate(["directory", "deleted", "out_of_scope", "link_off"], start=1):
        PortalUser.objects.filter(email=f"user{n}@corp.test").update(disabled_reason=reason, status="disabled")
    admin = PortalUser.objects.get(email="siteadmin@client.test")
    admin.set_disabled_by_staff(True)
    admin.refresh_status()
    admin.save()
    page = staff_client.get(reverse("admin:passportal_portaluser_changelist") + f"?disabled_because={because}")
    listed = sorted(re.findall(r'class="field-email"><a [^>]*>([^<]+)</a>', page.content.decode()))
    assert listed == emails


def test_r8_the_user_list_says_why_each_user_is_disabled(staff_client, corp):
    push_directory(corp, [SALES, IT], [person(1, SALES, enabled=False), *PEOPLE[1:]])
    page = staff_client.get(reverse("admin:passportal_portaluser_changelist")).content.decode()
    assert "Disabled in Active Directory" in page and "why disabled" in page.lower()


def test_r8_the_api_shows_when_and_which_run(staff_client, corp):
    run = push_directory(corp, [SALES, IT], [person(1, SALES, enabled=False), *PEOPLE[1:]])
    body = staff_client.get(f"/api/users/{user(1).pk}/").json()
    assert body["disabled_reason"] == "directory" and body["disabled_by_run"] == run.pk and body["disabled_at"]
    assert SyncRun.objects.filter(pk=body["disabled_by_run"]).exists()
