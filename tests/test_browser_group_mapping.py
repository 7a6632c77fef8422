"""A group mapped from the User Mapping tree, click by click, in chromium against the real Samba AD DC (G1, G5):
the Groups branch beside the OUs, its filter, Apply, the confirmation and the run page saying through which
chain of nested groups each user is in scope, and the user's own page saying it afterwards."""

from __future__ import annotations

import pytest
from django.urls import reverse
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from passportal.models import Client, PortalUser
from provisioning.models import Mapping
from tests.fixtures_browser import staff_user
from tests.test_browser_user_mapping import Page, samba_integration

pytestmark = [pytest.mark.browser, pytest.mark.samba, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def browser(chromium, live_server, settings) -> Page:
    settings.TASKS_RUN_INLINE = True
    return Page(chromium, live_server.url)


def shown_rows(browser: Page) -> set[str]:
    rows = browser.driver.find_elements(By.CSS_SELECTOR, "#folder-tree .folder-row")
    return {r.find_element(By.CSS_SELECTOR, "input").get_attribute("data-folder-name") for r in rows
            if r.is_displayed()}


def test_g1_g5_staff_map_a_nested_group_from_the_groups_branch(browser, samba_dc, samba_ou):
    staff_user("tech", superuser=True)
    vault = Client.objects.create(name="Acme MSP", is_company_vault=True, site_enabled=True)
    integration = samba_integration(vault, samba_dc, samba_ou, name="MSP AD")
    staff_ou = samba_dc.make_ou("Staff", samba_ou)
    ann = samba_dc.add_user(staff_ou, samba_dc.unique_sam("ann"), "Ann", "Lee", "ann@corp.test")
    bob = samba_dc.add_user(staff_ou, samba_dc.unique_sam("bob"), "Bob", "Ray", "bob@corp.test")
    samba_dc.add_user(staff_ou, samba_dc.unique_sam("cid"), "Cid", "Out", "cid@corp.test")
    emea = samba_dc.add_security_group(samba_ou, "EMEA", members=[samba_dc.dn_of(ann)])
    samba_dc.add_security_group(samba_ou, "Sales-Team", members=[emea, samba_dc.dn_of(bob)])
    samba_dc.add_security_group(samba_ou, "Newsletter", security=False)
    browser.login("tech")

    browser.open(reverse("provisioning:setup", args=[integration.pk]))
    browser.wait("#folder-tree input[data-folder-name='Staff']")
    # The groups sit in a branch of their own, named, each shown as a security group; distribution groups are not.
    branch = browser.wait("#groups-branch")
    assert branch.text.startswith("Groups")
    assert {"Staff", "EMEA", "Sales-Team"} <= shown_rows(browser) and "Newsletter" not in shown_rows(browser)
    row = browser.driver.find_element(By.XPATH, "//input[@data-folder-name='Sales-Team']/ancestor::li")
    assert "Security group" in row.find_element(By.CSS_SELECTOR, ".folder-kind").text
    # The same filter: a group that matches keeps its branch in view, the OUs that do not match go.
    browser.wait("#folder-filter").send_keys("sales-t")
    assert shown_rows(browser) == {"Sales-Team"} and branch.is_displayed()
    browser.driver.find_element(By.ID, "folder-filter").send_keys("zzz")
    assert shown_rows(browser) == set() and not branch.is_displayed()
    browser.driver.find_element(By.ID, "folder-filter").clear()
    browser.driver.execute_script("document.getElementById('folder-filter').dispatchEvent(new Event('input'))")

    browser.tick_folder("Sales-Team")
    Select(browser.driver.find_element(By.ID, "id_permission_level")).select_by_visible_text("Technician (Pro-User)")
    browser.click("#apply")
    browser.wait("#preview-counts")
    assert browser.counts()["to create"] == 2
    preview = browser.text("#preview-changes")
    assert "In scope through Sales-Team > EMEA > Ann Lee" in preview
    assert "In scope through Sales-Team > Bob Ray" in preview and "cid@corp.test" not in preview

    browser.click("#confirm-yes")
    assert browser.wait_for_run_done() == "succeeded"
    assert "In scope through Sales-Team > EMEA > Ann Lee" in browser.text("#run-changes")
    assert sorted(PortalUser.objects.values_list("email", flat=True)) == ["ann@corp.test", "bob@corp.test"]
    assert Mapping.objects.get().folder.kind == "gr"

    # The user's page says it too, from what the last sync saw.
    user = PortalUser.objects.get(email="ann@corp.test")
    browser.open(f"/admin/passportal/portaluser/{user.pk}/change/")
    assert "In scope through Sales-Team > EMEA > Ann Lee" in browser.text("#directory-origin")
