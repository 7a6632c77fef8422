"""The User Mapping flow in the admin, through Django's test client, against a directory the agent pushed."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from passportal.models import PermissionLevel, PortalUser, SecurityGroup
from provisioning.models import Mapping, SyncRun
from tests.fixtures_browser import activated_site_admin, agent_integration, ou, person, push_directory

SALES, IT, EMEA = ou(1, "Sales"), ou(2, "IT"), ou(3, "EMEA", parent=1, path="Corp/Sales/EMEA")
FOLDERS = [SALES, IT, EMEA]
PEOPLE = [person(1, SALES), person(2, SALES), person(3, IT), person(4, EMEA), person(5, IT, email="")]


@pytest.fixture
def admin_client_logged(staff_client):
    return staff_client


@pytest.fixture
def site_client(client_org):
    activated_site_admin(client_org)
    return client_org


@pytest.fixture
def corp(site_client):
    return agent_integration(site_client, FOLDERS, PEOPLE)


def folder_pk(integration, record) -> int:
    return integration.folders.get(external_id=record["id"]).pk


def site_level(name="Site User") -> PermissionLevel:
    return PermissionLevel.objects.get(user_kind="site", name=name)


def apply(client, integration, records, level, *groups, new_group=""):
    data = {"folders": [folder_pk(integration, r) for r in records], "permission_level": level.pk,
            "security_groups": [g.pk for g in groups], "new_group": new_group, "apply": "Apply"}
    return client.post(reverse("provisioning:setup", args=[integration.pk]), data)


def counts_on(page: str) -> dict[str, int]:
    return {label.strip().lower(): int(n) for label, n in
            re.findall(r'<tr class="count-row" data-count="\d+"><th>([^<]+)</th><td class="count">(\d+)</td>', page)}


# ---------------------------------------------------------------- R14


def test_r14_client_page_shows_configure_user_mapping_and_what_is_missing(admin_client_logged, client_org):
    client_org.site_enabled = False
    client_org.save()
    page = admin_client_logged.get(reverse("admin:passportal_client_change", args=[client_org.pk])).content.decode()
    assert "Configure User Mapping" in page
    assert "The site is not enabled" in page and "no activated Site Admin" in page


def test_r14_mapping_refused_without_enabled_site_names_it(admin_client_logged, vault):
    vault.site_enabled = False
    vault.save()
    response = admin_client_logged.get(reverse("provisioning:user-mapping", args=[vault.pk]))
    assert response.status_code == 403
    text = response.content.decode()
    assert "The site is not enabled" in text and "Site Admin" not in text  # the vault needs no Site Admin


def test_r14_client_without_activated_site_admin_is_refused(admin_client_logged, client_org):
    level = site_level("Site Admin")
    PortalUser.objects.create(client=client_org, email="pending@client.test", permission_level=level)
    response = admin_client_logged.get(reverse("provisioning:user-mapping", args=[client_org.pk]))
    assert response.status_code == 403
    assert "no activated Site Admin" in response.content.decode()


def test_r14_refusal_also_guards_setup_and_apply(admin_client_logged, corp):
    corp.client.site_enabled = False
    corp.client.save()
    assert admin_client_logged.get(reverse("provisioning:setup", args=[corp.pk])).status_code == 403
    response = apply(admin_client_logged, corp, [SALES], site_level())
    assert response.status_code == 403 and not Mapping.objects.exists()


def test_r14_company_vault_with_enabled_site_needs_no_site_admin(admin_client_logged, vault):
    response = admin_client_logged.get(reverse("provisioning:user-mapping", args=[vault.pk]))
    assert response.status_code == 200 and "Pro-Users" in response.content.decode()


# ---------------------------------------------------------------- the User Mapping page


def test_user_mapping_page_shows_the_agent_status_and_setup(admin_client_logged, corp):
    page = admin_client_logged.get(reverse("provisioning:user-mapping", args=[corp.client.pk])).content.decode()
    assert "Primary On-Prem Agent" in page and "Corp AD" in page
    assert "Version: 3.2.1" in page and "Last heard from the agent" in page
    assert reverse("provisioning:setup", args=[corp.pk]) in page
    assert "Additional Entra ID Domains" in page and "Add Domain" in page


def test_setup_shows_ous_as_a_tree_with_configured_folders_marked(admin_client_logged, corp):
    Mapping.objects.create(folder=corp.folders.get(external_id=IT["id"]), permission_level=site_level("Site Manager"))
    page = admin_client_logged.get(reverse("provisioning:setup", args=[corp.pk])).content.decode()
    names = re.findall(r'data-folder-name="([^"]+)"', page)
    assert names == ["IT", "Sales", "EMEA"]  # EMEA under Sales
    assert 'data-depth="1" data-name="corp/sales/emea"' in page  # EMEA one level down (setup.js indents it)
    assert "Site Manager</span>" in page.replace(" &middot; ", "") or "Site Manager" in page
    assert "Remove mapping" in page
    options = re.findall(r'<option value="\d+"[^>]*>([^<]+)</option>', page)
    assert "Site User (Site-User)" in options and not any("Pro-User" in o for o in options)


# ---------------------------------------------------------------- R15 / R16: Apply, confirm, Yes, Cancel


def test_r15_apply_shows_a_preview_with_counts_and_list_and_saves_nothing(admin_client_logged, corp):
    response = apply(admin_client_logged, corp, [SALES, IT], site_level())
    assert response.status_code == 302
    page = admin_client_logged.get(response.url).content.decode()
    counts = counts_on(page)
    assert counts["to create"] == 3 and counts["creation issues"] == 1 and counts["to disable"] == 0
    assert "user1@corp.test" in page and "user3@corp.test" in page and "user4@corp.test" not in page
    assert "No email in the directory" in page or "no email" in page.lower()
    assert not Mapping.objects.exists() and not PortalUser.objects.exclude(email="siteadmin@client.test").exists()


def test_r16_yes_saves_the_mappings_and_the_run_creates_the_users(admin_client_logged, corp):
    sales_team = SecurityGroup.objects.create(client=corp.client, name="Sales team")
    confirm = apply(admin_client_logged, corp, [SALES, IT], site_level(), sales_team, new_group="Everyone").url
    response = admin_client_logged.post(confirm, {"yes": "1"})
    run = SyncRun.objects.filter(dry_run=False, trigger="apply").get()
    assert response.url == reverse("provisioning:run", args=[run.pk])
    assert run.status == "succeeded" and run.counts["created"] == 3
    mappings = Mapping.objects.filter(folder__integration=corp)
    assert mappings.count() == 2 and {m.created_by.username for m in mappings} == {"boss"}
    user = PortalUser.objects.get(email="user1@corp.test")
    assert user.kind == "site" and user.permission_level.name == "Site User"
    assert sorted(user.security_groups.values_list("name", flat=True)) == ["Everyone", "Sales team"]
    page = admin_client_logged.get(response.url).content.decode()
    assert "Succeeded" in page and reverse("admin:passportal_portaluser_change", args=[user.pk]) in page
    # the confirmation is used up: answering it again changes nothing
    assert admin_client_logged.post(confirm, {"yes": "1"}).status_code == 302
    assert SyncRun.objects.filter(dry_run=False, trigger="apply").count() == 1


def test_r15_cancel_changes_nothing(admin_client_logged, corp):
    confirm = apply(admin_client_logged, corp, [SALES], site_level(), new_group="Never made").url
    response = admin_client_logged.post(confirm, {"cancel": "1"})
    assert response.url == reverse("provisioning:setup", args=[corp.pk])
    assert not Mapping.objects.exists() and not SecurityGroup.objects.filter(name="Never made").exists()
    assert not SyncRun.objects.filter(dry_run=False, trigger="apply").exists()
    assert PortalUser.objects.count() == 1  # only the Site Admin


def test_r15_more_than_100_folders_in_one_apply_is_refused(admin_client_logged, site_client):
    many = [ou(100 + n, f"Team {n:03}") for n in range(101)]
    integration = agent_integration(site_client, many, [])
    response = apply(admin_client_logged, integration, many, site_level())
    assert response.status_code == 200
    assert "You ticked 101 folders: one apply takes at most 100" in response.content.decode()
    assert not SyncRun.objects.filter(dry_run=True).exists()


def test_r15_bad_input_gets_a_message_on_the_field(admin_client_logged, corp):
    response = admin_client_logged.post(reverse("provisioning:setup", args=[corp.pk]), {"apply": "Apply"})
    page = response.content.decode()
    assert "Tick at least one folder" in page and "Choose the permission level" in page
    pro = PermissionLevel.objects.get(user_kind="pro", name="Technician")
    page = apply(admin_client_logged, corp, [SALES], pro).content.decode()
    assert "Technician is a Pro-User level" in page  # refused on the field, saying why (R11)


def test_r15_preview_list_is_paged(admin_client_logged, site_client, settings):
    size = settings.LIST_PAGE_SIZE  # the one page size of every list of users (tests/test_ui_paging.py)
    big = ou(1, "Big")
    integration = agent_integration(site_client, [big], [person(n, big) for n in range(1, 2 * size + 11)])
    confirm = apply(admin_client_logged, integration, [big], site_level()).url
    first = admin_client_logged.get(confirm).content.decode()
    assert counts_on(first)["to create"] == 2 * size + 10 and "page 1 of 3" in first
    third = admin_client_logged.get(confirm + "?page=3").content.decode()
    assert third.count('class="change-create"') == 10


def test_r9_removing_a_mapping_previews_who_is_disabled_then_disables_them(admin_client_logged, corp):
    admin_client_logged.post(apply(admin_client_logged, corp, [SALES, IT], site_level()).url, {"yes": "1"})
    sales = corp.folders.get(external_id=SALES["id"])
    response = admin_client_logged.get(reverse("provisioning:remove-mapping", args=[corp.pk, sales.pk]))
    page = admin_client_logged.get(response.url).content.decode()
    assert counts_on(page)["to disable"] == 2 and "user1@corp.test" in page and "Remove the mapping" in page
    assert Mapping.objects.filter(folder=sales).exists()  # nothing yet
    admin_client_logged.post(response.url, {"yes": "1"})
    assert not Mapping.objects.filter(folder=sales).exists()
    assert PortalUser.objects.get(email="user1@corp.test").disabled_reason == "out_of_scope"
    assert PortalUser.objects.get(email="user3@corp.test").status == "pending"


# ---------------------------------------------------------------- R10: the link


def test_r10_link_off_confirmation_counts_the_users_it_disables(admin_client_logged, corp):
    admin_client_logged.post(apply(admin_client_logged, corp, [SALES, IT], site_level()).url, {"yes": "1"})
    url = reverse("provisioning:link", args=[corp.pk])
    page = admin_client_logged.get(url + "?enabled=0").content.decode()
    assert 'id="affected-count">3<' in page
    assert corp.links.count() == 3
    assert corp.runs.filter(dry_run=True, trigger="link").get().counts["disabled"] == 3


def test_r10_r15_link_on_confirmation_shows_the_planners_figures(admin_client_logged, corp):
    admin_client_logged.post(apply(admin_client_logged, corp, [SALES, IT], site_level()).url, {"yes": "1"})
    url = reverse("provisioning:link", args=[corp.pk])
    admin_client_logged.post(url, {"enabled": "0"})
    # The agent is asked for a fresh read (the suite's stand-in answers as the agent would): the page follows it.
    page = admin_client_logged.get(url + "?enabled=1", follow=True).content.decode()
    assert "To re-enable</th><td>3<" in page and "To disable" not in page
    response = admin_client_logged.post(url, {"enabled": "0"})
    corp.refresh_from_db()
    assert not corp.link_enabled
    assert set(PortalUser.objects.filter(directory_links__integration=corp).values_list("disabled_reason", flat=True)) \
        == {"link_off"}
    assert "Succeeded" in admin_client_logged.get(response.url).content.decode()
    admin_client_logged.post(url, {"enabled": "1"})
    corp.refresh_from_db()
    assert corp.link_enabled
    assert PortalUser.objects.get(email="user1@corp.test").status == "pending"


# ---------------------------------------------------------------- R16 run page, R22 held disables


def test_r16_run_status_json_reports_status_phase_and_counts(admin_client_logged, corp):
    run = SyncRun.objects.filter(integration=corp, dry_run=False).first()
    state = admin_client_logged.get(reverse("provisioning:run-status", args=[run.pk])).json()
    assert state["status"] == "succeeded" and state["finished"] and state["phase"] == "done"
    assert "created" in state["counts"]


def test_r22_held_disables_are_listed_and_applied_by_staff(admin_client_logged, corp):
    corp.disable_threshold_minimum = 1
    corp.save()
    admin_client_logged.post(apply(admin_client_logged, corp, [SALES, IT], site_level()).url, {"yes": "1"})
    run = push_directory(corp, FOLDERS, [p for p in PEOPLE if p["folder_ids"] != [SALES["id"]]])
    assert run.status == "held" and len(run.held_disables) == 2
    page = admin_client_logged.get(reverse("provisioning:run", args=[run.pk])).content.decode()
    assert "Apply these disables" in page and "user1@corp.test" in page
    admin_client_logged.post(reverse("provisioning:held-decision", args=[run.pk]), {"action": "applied"})
    assert PortalUser.objects.get(email="user1@corp.test").status == "disabled"
    run.refresh_from_db()
    assert run.held_resolution == "applied"


def test_r22_held_disables_can_be_discarded(admin_client_logged, corp):
    corp.disable_threshold_minimum = 1
    corp.save()
    admin_client_logged.post(apply(admin_client_logged, corp, [SALES, IT], site_level()).url, {"yes": "1"})
    run = push_directory(corp, FOLDERS, [p for p in PEOPLE if p["folder_ids"] != [SALES["id"]]])
    admin_client_logged.post(reverse("provisioning:held-decision", args=[run.pk]), {"action": "discarded"})
    assert PortalUser.objects.get(email="user1@corp.test").status == "pending"
    run.refresh_from_db()
    assert run.held_resolution == "discarded"
    page = admin_client_logged.get(reverse("provisioning:run", args=[run.pk])).content.decode()
    assert "Apply these disables" not in page and "Held disables discarded by boss on" in page


def test_force_resync_starts_a_full_run(admin_client_logged, corp):
    response = admin_client_logged.post(reverse("provisioning:force-resync", args=[corp.pk]))
    run = SyncRun.objects.filter(trigger="force").get()
    # An agent integration: the full run waits for the agent's fresh read, which the suite's stand-in for the agent
    # answers at once here (test_agent_parity.py shows it waiting for the real agent).
    assert response.url == reverse("provisioning:run", args=[run.pk]) and run.full
    assert run.status == "succeeded"


def test_notification_links_to_a_run_open_the_run_page(admin_client_logged, corp):
    run = SyncRun.objects.filter(integration=corp, dry_run=False).first()
    response = admin_client_logged.get(f"/admin/provisioning/syncrun/{run.pk}/change/")
    assert response.url == reverse("provisioning:run", args=[run.pk])


# ---------------------------------------------------------------- R27: the overview


def test_r27_overview_shows_every_integration_with_last_run_issues_and_next_run(admin_client_logged, corp, vault):
    admin_client_logged.post(apply(admin_client_logged, corp, [SALES, IT], site_level()).url, {"yes": "1"})
    other = agent_integration(vault, [ou(50, "Techs")], [], name="MSP AD")
    page = admin_client_logged.get(reverse("provisioning:overview")).content.decode()
    rows = re.findall(r'<tr class="overview-row" data-integration="(\d+)">', page)
    assert {int(r) for r in rows} == {corp.pk, other.pk}
    last = SyncRun.objects.filter(integration=corp, dry_run=False).first()
    assert reverse("provisioning:run", args=[last.pk]) in page
    assert "when the agent pushes" in page
    assert re.search(r'<td class="issues"[^>]*><a [^>]+>1</a></td>', page)  # user5 has no email
    by_issues = admin_client_logged.get(reverse("provisioning:overview") + "?o=-issues").content.decode()
    assert re.findall(r'data-integration="(\d+)"', by_issues)[0] == str(corp.pk)
    by_client = admin_client_logged.get(reverse("provisioning:overview") + "?o=client").content.decode()
    assert re.findall(r'data-integration="(\d+)"', by_client)[0] == str(other.pk)  # "Acme MSP" < "Contoso"


# ---------------------------------------------------------------- the portal user page: R28, R11, R8


def test_r28_portal_user_page_shows_origin_and_resyncs_the_user(admin_client_logged, corp):
    admin_client_logged.post(apply(admin_client_logged, corp, [SALES, IT], site_level()).url, {"yes": "1"})
    user = PortalUser.objects.get(email="user1@corp.test")
    page = admin_client_logged.get(reverse("admin:passportal_portaluser_change", args=[user.pk])).content.decode()
    assert "Corp AD" in page and "Corp/Sales" in page and "Resync this user" in page
    changed = [dict(p, first_name="Renamed") if p["id"] == PEOPLE[0]["id"] else p for p in PEOPLE]
    run = push_directory(corp, FOLDERS, changed)  # the agent pushed, and that run renamed them already
    assert run.counts["updated"] == 1
    PortalUser.objects.filter(pk=user.pk).update(first_name="Drifted")
    response = admin_client_logged.post(reverse("provisioning:user-resync", args=[user.pk]), follow=True)
    assert "Resynced from Corp AD" in response.content.decode()
    user.refresh_from_db()
    assert user.first_name == "Renamed"
    assert SyncRun.objects.filter(trigger="user", portal_user=user).exists()


def test_r11_a_level_changed_on_the_user_page_is_marked_hand_set(admin_client_logged, corp):
    admin_client_logged.post(apply(admin_client_logged, corp, [SALES], site_level()).url, {"yes": "1"})
    user = PortalUser.objects.get(email="user1@corp.test")
    url = reverse("admin:passportal_portaluser_change", args=[user.pk])
    data = {"client": user.client_id, "first_name": user.first_name, "last_name": user.last_name,
            "email": user.email, "permission_level": site_level("Site Manager").pk,
            "memberships-TOTAL_FORMS": "0", "memberships-INITIAL_FORMS": "0", "_save": "Save",
            "seen_version": user.updated_at.isoformat()}  # the version the page showed
    assert admin_client_logged.post(url, data).status_code == 302
    user.refresh_from_db()
    assert user.permission_level_set_by_hand and user.permission_level.name == "Site Manager"
    admin_client_logged.post(reverse("provisioning:force-resync", args=[corp.pk]))
    user.refresh_from_db()
    assert user.permission_level.name == "Site Manager"
    assert "permission level set by hand" in admin_client_logged.get(url).content.decode()


def test_r8_staff_disable_is_kept_until_staff_enable(admin_client_logged, corp):
    admin_client_logged.post(apply(admin_client_logged, corp, [SALES], site_level()).url, {"yes": "1"})
    user = PortalUser.objects.get(email="user1@corp.test")
    url = reverse("provisioning:user-enabled", args=[user.pk])
    admin_client_logged.post(url, {"enabled": "0"})
    admin_client_logged.post(reverse("provisioning:force-resync", args=[corp.pk]))
    user.refresh_from_db()
    assert user.status == "disabled" and user.disabled_by_staff
    admin_client_logged.post(url, {"enabled": "1"})
    user.refresh_from_db()
    assert user.status == "pending" and not user.disabled_by_staff
