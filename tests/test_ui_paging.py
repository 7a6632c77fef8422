"""Every list that can hold thousands of users pages by one page size (settings.LIST_PAGE_SIZE): the admin's
change lists, a run's changes and held disables, a confirmation's changes, and the API's lists."""

from __future__ import annotations

import re

import pytest
from django.conf import settings
from django.contrib import admin
from django.urls import reverse

from directory.models import Folder
from passportal.models import PermissionLevel, PortalUser
from provisioning.models import Mapping, SyncRun
from tests.fixtures_browser import activated_site_admin, agent_integration, ou, person, push_directory

SALES = ou(1, "Sales")
SIZE = settings.LIST_PAGE_SIZE
MORE_THAN_A_PAGE = SIZE + SIZE // 2


def rows_in(page: str, table_id: str) -> int:
    body = page.split(f'id="{table_id}"', 1)[1].split("</tbody>", 1)[0]
    return len(re.findall(r'<tr class="change-', body))


def test_the_one_page_size_is_every_change_lists_and_the_apis():
    assert SIZE == 100
    for model, model_admin in admin.site._registry.items():
        assert model_admin.list_per_page == SIZE, f"{model.__name__}'s change list pages by {model_admin.list_per_page}"
    assert settings.REST_FRAMEWORK["PAGE_SIZE"] == SIZE


def test_the_portal_users_change_list_holds_one_page_size_a_page(staff_client, client_org):
    level = PermissionLevel.objects.get(user_kind="site", name="Site User")
    PortalUser.objects.bulk_create([PortalUser(client=client_org, email=f"u{n}@contoso.test", first_name="U",
                                               last_name=str(n), permission_level=level) for n in range(SIZE + 1)])
    url = reverse("admin:passportal_portaluser_changelist")
    first = staff_client.get(url).content.decode()
    assert first.count('class="action-checkbox"') == SIZE
    assert staff_client.get(url + "?p=2").content.decode().count('class="action-checkbox"') == 1


@pytest.fixture
def sales(client_org):
    activated_site_admin(client_org)
    integration = agent_integration(client_org, [SALES], [person(n, SALES) for n in range(1, MORE_THAN_A_PAGE + 1)])
    return integration


def test_a_confirmations_changes_are_paged_by_the_one_page_size(staff_client, sales):
    folder = Folder.objects.get(integration=sales, external_id=SALES["id"])
    level = PermissionLevel.objects.get(user_kind="site", name="Site User")
    response = staff_client.post(reverse("provisioning:setup", args=[sales.pk]),
                                 {"folders": [folder.pk], "permission_level": level.pk, "apply": "Apply"})
    confirm = response["Location"]
    page = staff_client.get(confirm).content.decode()
    assert rows_in(page, "preview-changes") == SIZE
    assert f"1&ndash;{SIZE} of {MORE_THAN_A_PAGE}" in page
    page = staff_client.get(confirm + "?page=2").content.decode()
    assert rows_in(page, "preview-changes") == MORE_THAN_A_PAGE - SIZE


def test_a_runs_changes_and_held_disables_are_paged_by_the_one_page_size(staff_client, sales):
    Mapping.objects.create(folder=Folder.objects.get(integration=sales, external_id=SALES["id"]),
                           permission_level=PermissionLevel.objects.get(user_kind="site", name="Site User"))
    created = push_directory(sales, [SALES], [person(n, SALES) for n in range(1, MORE_THAN_A_PAGE + 1)])
    assert created.counts["created"] == MORE_THAN_A_PAGE
    page = staff_client.get(reverse("provisioning:run", args=[created.pk])).content.decode()
    assert rows_in(page, "run-changes") == SIZE
    assert rows_in(staff_client.get(reverse("provisioning:run", args=[created.pk]) + "?page=2").content.decode(),
                   "run-changes") == MORE_THAN_A_PAGE - SIZE

    # Everybody leaves the OU: the disables are held (more than the threshold), and listed a page at a time.
    held = push_directory(sales, [SALES], [person(10_000, SALES)])
    assert held.status == "held" and len(held.held_disables) == MORE_THAN_A_PAGE
    url = reverse("provisioning:run", args=[held.pk])
    page = staff_client.get(url).content.decode()
    held_list = page.split('id="held-list"', 1)[1].split("</ul>", 1)[0]
    assert held_list.count("<li>") == SIZE
    # Each list keeps its own page when the other one turns.
    assert 'href="?held_page=2"' in page
    page = staff_client.get(url + "?held_page=2&page=1").content.decode()
    held_list = page.split('id="held-list"', 1)[1].split("</ul>", 1)[0]
    assert held_list.count("<li>") == MORE_THAN_A_PAGE - SIZE
    assert "held_page=2&amp;page=2" in page or "page=2&amp;held_page=2" in page
    assert SyncRun.objects.filter(pk=held.pk, status="held").exists()


def test_the_apis_user_list_pages_by_the_one_page_size(staff_client, client_org):
    PortalUser.objects.bulk_create([PortalUser(client=client_org, email=f"u{n}@contoso.test")
                                    for n in range(SIZE + 1)])
    body = staff_client.get("/api/users/").json()
    assert body["count"] == SIZE + 1 and len(body["results"]) == SIZE
