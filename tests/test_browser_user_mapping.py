"""The seed's steps, click by click, in a real chromium against the real Samba AD DC.

Site-Users from a client (refused first: no site, no Site Admin), Pro-Users from the Company Vault
(Cancel first, then Yes), and a held run's disables applied from the overview.
"""

from __future__ import annotations

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import Select, WebDriverWait

from directory.models import Integration
from passportal.models import Client, PortalUser
from provisioning import sync
from provisioning.models import Mapping, SyncRun
from tests.fixtures_browser import STAFF_PASSWORD, activated_site_admin, staff_user

pytestmark = [pytest.mark.browser, pytest.mark.samba,
              pytest.mark.django_db(transaction=True)]


@pytest.fixture
def inline(settings):
    settings.TASKS_RUN_INLINE = True


class Page:
    """The browser as staff use it: open, click, tick, read."""

    def __init__(self, driver, base_url: str) -> None:
        self.driver, self.base_url = driver, base_url

    def open(self, path: str) -> None:
        self.driver.get(self.base_url + path)

    def wait(self, css: str, timeout: float = 20):
        return WebDriverWait(self.driver, timeout).until(ec.presence_of_element_located((By.CSS_SELECTOR, css)))

    def click(self, css: str) -> None:
        element = WebDriverWait(self.driver, 10).until(ec.element_to_be_clickable((By.CSS_SELECTOR, css)))
        self.driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", element)
        element.click()

    def click_text(self, text: str) -> None:
        self.click_xpath(f"//a[normalize-space()='{text}'] | //button[normalize-space()='{text}'] | "
                         f"//input[@type='submit' and @value='{text}']")

    def click_xpath(self, xpath: str) -> None:
        element = WebDriverWait(self.driver, 10).until(ec.element_to_be_clickable((By.XPATH, xpath)))
        self.driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", element)
        element.click()

    def text(self, css: str = "body") -> str:
        return self.wait(css).text

    def login(self, username: str) -> None:
        self.driver.delete_all_cookies()
        self.open("/admin/login/")
        self.wait("#id_username").send_keys(username)
        self.driver.find_element(By.ID, "id_password").send_keys(STAFF_PASSWORD)
        self.click("input[type=submit]")
        self.wait("#user-tools")

    def tick_folder(self, name: str) -> None:
        self.click(f"input[data-folder-name='{name}']")

    def counts(self) -> dict[str, int]:
        rows = self.driver.find_elements(By.CSS_SELECTOR, "#preview-counts tr.count-row")
        return {r.find_element(By.TAG_NAME, "th").text.strip().lower(): int(r.find_element(By.TAG_NAME, "td").text)
                for r in rows}

    def bell_count(self) -> int:
        return int(self.wait("#notification-bell .bell-count").get_attribute("data-unread-count"))

    def wait_for_run_done(self) -> str:
        WebDriverWait(self.driver, 30).until(
            lambda d: d.find_element(By.ID, "run-status").get_attribute("data-status") in ("succeeded", "held",
                                                                                             "failed"))
        return self.driver.find_element(By.ID, "run-status").get_attribute("data-status")


@pytest.fixture
def browser(chromium, live_server, inline) -> Page:
    return Page(chromium, live_server.url)


def samba_integration(client: Client, samba_dc, base_dn: str, name: str = "Corp AD") -> Integration:
    return Integration.objects.create(
        client=client, name=name, kind="ad", ad_mode="direct", ldap_urls=samba_dc.ldaps_url, base_dn=base_dn,
        bind_dn=samba_dc.admin_bind_dn, bind_password=samba_dc.admin_password, tls_mode="ldaps",
        tls_ca_pem=samba_dc.ca_pem,
    )


def populate(samba_dc, base_dn: str) -> dict[str, str]:
    """Sales (2 users, 1 disabled in AD), IT (2 users, one without email), Other (1 user): name -> guid."""
    sales, it, other = (samba_dc.make_ou(n, base_dn) for n in ("Sales", "IT", "Other"))
    users = {
        "ann": samba_dc.add_user(sales, samba_dc.unique_sam("ann"), "Ann", "Lee", "ann@corp.test"),
        "bob": samba_dc.add_user(sales, samba_dc.unique_sam("bob"), "Bob", "Ray", "bob@corp.test"),
        "cid": samba_dc.add_user(sales, samba_dc.unique_sam("cid"), "Cid", "Off", "cid@corp.test", enabled=False),
        "dee": samba_dc.add_user(it, samba_dc.unique_sam("dee"), "Dee", "Kay", "dee@corp.test"),
        "eve": samba_dc.add_user(it, samba_dc.unique_sam("eve"), "Eve", "Nomail"),
        "fay": samba_dc.add_user(other, samba_dc.unique_sam("fay"), "Fay", "Out", "fay@corp.test"),
    }
    return users


def test_r14_r15_r16_site_users_from_a_client_click_by_click(browser, samba_dc, samba_ou):
    staff_user("tech", superuser=True)
    client = Client.objects.create(name="Contoso Ltd", site_enabled=False)
    integration = samba_integration(client, samba_dc, samba_ou)
    users = populate(samba_dc, samba_ou)
    browser.login("tech")

    # 1. Edit Client; 3. Configure User Mapping before the site is on: refused, saying what is missing (R14)
    browser.open(f"/admin/passportal/client/{client.pk}/change/")
    browser.click("#configure-user-mapping")
    refusal = browser.text("#mapping-refused")
    assert "The site is not enabled" in refusal and "no activated Site Admin" in refusal

    # 2. Enable Site, Save, Edit Client again: still refused while no Site Admin is activated
    browser.open(f"/admin/passportal/client/{client.pk}/change/")
    browser.click("#id_site_enabled")
    browser.click("input[name=_save]")
    browser.wait("#changelist")
    browser.open(f"/admin/passportal/client/{client.pk}/change/")
    browser.click("#configure-user-mapping")
    refusal = browser.text("#mapping-refused")
    assert "no activated Site Admin" in refusal and "not enabled" not in refusal
    activated_site_admin(client)

    # 3.-4. Configure User Mapping, then Primary On-Prem Agent: Setup Auto-Provisioning
    browser.open(f"/admin/passportal/client/{client.pk}/change/")
    browser.click("#configure-user-mapping")
    browser.wait("#section-on-prem")
    browser.click(f"#integration-{integration.pk} a.setup")

    # 5. the domain's OUs on the left, level and groups on the right
    browser.wait("#folder-tree input[data-folder-name='Sales']")
    browser.wait("#folder-filter").send_keys("sal")
    assert not browser.driver.find_element(By.CSS_SELECTOR, "input[data-folder-name='IT']").is_displayed()
    browser.driver.find_element(By.ID, "folder-filter").clear()
    browser.driver.execute_script("document.getElementById('folder-filter').dispatchEvent(new Event('input'))")
    browser.tick_folder("Sales")
    browser.tick_folder("IT")
    Select(browser.driver.find_element(By.ID, "id_permission_level")).select_by_visible_text("Site Manager (Site-User)")
    browser.driver.find_element(By.ID, "id_new_group").send_keys("Contoso staff")

    # 6. Apply: the confirmation counts what the directory holds now (R15)
    browser.click("#apply")
    browser.wait("#preview-counts")
    counts = browser.counts()
    assert counts["to create"] == 3 and counts["creation issues"] == 1 and counts["to disable"] == 0
    assert "ann@corp.test" in browser.text("#preview-changes")

    # 7. Yes; the run page follows the sync to its end (R16)
    browser.click("#confirm-yes")
    assert browser.wait_for_run_done() == "succeeded"
    assert "ann@corp.test" in browser.text("#run-changes")

    # 8. the Site-Users are there, with the level and the new group
    created = PortalUser.objects.filter(client=client).exclude(email="siteadmin@client.test")
    assert sorted(created.values_list("email", flat=True)) == ["ann@corp.test", "bob@corp.test", "dee@corp.test"]
    assert {u.kind for u in created} == {"site"}
    assert {u.permission_level.name for u in created} == {"Site Manager"}
    assert set(created.values_list("security_groups__name", flat=True)) == {"Contoso staff"}

    # R22: a run that would disable too many holds them; staff apply them from the overview's link
    Integration.objects.filter(pk=integration.pk).update(disable_threshold_minimum=1)
    samba_dc.disable_user(users["ann"])
    samba_dc.disable_user(users["bob"])
    held = sync.run_sync(Integration.objects.get(pk=integration.pk), "schedule")
    assert held.status == "held"
    browser.open("/admin/")
    assert browser.bell_count() == 2  # Eve's creation issue and the held disables
    browser.open("/admin/provisioning/flow/overview/")
    browser.click(f"tr[data-integration='{integration.pk}'] td.held a")
    assert "ann@corp.test" in browser.text("#held-disables")
    browser.click("#apply-held")
    assert "Held disables applied by tech on " in browser.text("#held-resolution")
    assert set(PortalUser.objects.filter(email__in=["ann@corp.test", "bob@corp.test"])
               .values_list("status", flat=True)) == {"disabled"}

    # ... and afterwards the run no longer waits, wherever it is shown, and says who decided
    assert browser.wait("#run-status").get_attribute("data-status") == "succeeded"
    assert browser.text("#run-status").startswith("Succeeded; held disables applied by tech on ")
    assert not browser.driver.find_elements(By.ID, "apply-held")
    browser.open("/admin/provisioning/flow/overview/")
    row = browser.wait(f"tr[data-integration='{integration.pk}']")
    assert "Succeeded; held disables applied by tech on " in row.find_element(By.CSS_SELECTOR, "td.outcome").text
    assert row.find_element(By.CSS_SELECTOR, "td.held").text == "0"
    browser.open(f"/admin/provisioning/flow/clients/{client.pk}/user-mapping/")
    assert "Succeeded; held disables applied by tech on " in browser.text(f"#integration-{integration.pk}")

    # R20: the decision settled the held notification; opening the creation issue from the bell reads it
    assert browser.bell_count() == 1
    browser.click("#notification-bell summary")
    browser.click_xpath("//li[contains(@class, 'bell-creation_issue')]/a")
    browser.wait("#result_list")  # the creation issues it points at
    assert browser.bell_count() == 0


def test_r15_r2_pro_users_from_the_company_vault_cancel_then_yes(browser, samba_dc, samba_ou):
    staff_user("tech", superuser=True)
    vault = Client.objects.create(name="Acme MSP", is_company_vault=True, site_enabled=True)
    integration = samba_integration(vault, samba_dc, samba_ou, name="MSP AD")
    populate(samba_dc, samba_ou)
    browser.login("tech")
    browser.open(f"/admin/passportal/client/{vault.pk}/change/")
    browser.click("#configure-user-mapping")
    browser.click(f"#integration-{integration.pk} a.setup")
    browser.wait("#folder-tree input[data-folder-name='Sales']")

    def choose() -> None:
        browser.tick_folder("Sales")
        browser.tick_folder("IT")
        Select(browser.driver.find_element(By.ID, "id_permission_level")).select_by_visible_text(
            "Technician (Pro-User)")
        browser.click("#apply")
        browser.wait("#preview-counts")

    # Cancel backs out: nothing saved, nobody created
    choose()
    assert browser.counts()["to create"] == 3
    browser.click("#confirm-cancel")
    assert "nothing was changed" in browser.text(".messagelist")
    assert not Mapping.objects.exists() and not PortalUser.objects.exists()

    # Yes creates Pro-Users for every user in the ticked OUs
    browser.wait("#folder-tree input[data-folder-name='Sales']")
    choose()
    browser.click("#confirm-yes")
    assert browser.wait_for_run_done() == "succeeded"
    assert sorted(PortalUser.objects.values_list("email", flat=True)) == ["ann@corp.test", "bob@corp.test",
                                                                          "dee@corp.test"]
    assert {u.kind for u in PortalUser.objects.all()} == {"pro"}
    assert SyncRun.objects.filter(integration=integration, trigger="apply", dry_run=False).count() == 1
