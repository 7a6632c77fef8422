"""A client's first Site Admin, as the seed has it: mapping refused, staff create the Site Admin in the admin,
the Site Admin activates from the real email in chromium, and mapping opens (R14, R18)."""

from __future__ import annotations

import re

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from passportal.models import Client, PortalUser
from tests.fixtures_browser import staff_user, wait_for_heading
from tests.test_browser_user_mapping import Page, populate, samba_integration

pytestmark = [pytest.mark.browser, pytest.mark.samba, pytest.mark.django_db(transaction=True)]

PASSWORD = "site-admin-long-passw0rd"


@pytest.fixture
def browser(chromium, live_server, settings) -> Page:
    settings.TASKS_RUN_INLINE = True
    settings.PORTAL_BASE_URL = live_server.url
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    return Page(chromium, live_server.url)


def test_r14_r18_the_first_site_admin_activates_from_the_email_and_opens_user_mapping(
        browser, smtp, samba_dc, samba_ou):
    staff_user("tech", superuser=True)
    client = Client.objects.create(name="Contoso Ltd", site_enabled=True)
    integration = samba_integration(client, samba_dc, samba_ou)
    populate(samba_dc, samba_ou)
    browser.login("tech")

    browser.open(f"/admin/passportal/client/{client.pk}/change/")
    browser.click("#configure-user-mapping")
    assert "no activated Site Admin" in browser.text("#mapping-refused")

    # Staff add the Site Admin as a portal user of the client.
    browser.open("/admin/passportal/portaluser/add/")
    Select(browser.wait("#id_client")).select_by_visible_text("Contoso Ltd")
    browser.driver.find_element(By.ID, "id_first_name").send_keys("Sam")
    browser.driver.find_element(By.ID, "id_last_name").send_keys("Admin")
    browser.driver.find_element(By.ID, "id_email").send_keys("sam@contoso.test")
    Select(browser.driver.find_element(By.ID, "id_permission_level")).select_by_visible_text(
        "Site Admin (Site-User)")
    browser.click("input[name=_save]")
    assert "Activation email queued for sam@contoso.test" in browser.text(".messagelist")

    # Still refused until the Site Admin has activated.
    browser.open(f"/admin/passportal/client/{client.pk}/change/")
    browser.click("#configure-user-mapping")
    assert "no activated Site Admin" in browser.text("#mapping-refused")

    # The Site Admin, in a browser of their own, follows the link in the email the SMTP server received.
    [mail] = smtp.to("sam@contoso.test")
    link = re.search(r"(http://[^\s]+/activate/[A-Za-z0-9_-]{43}/)", mail.text).group(1)
    assert link.startswith(browser.base_url)
    browser.driver.delete_all_cookies()
    browser.driver.get(link)
    browser.wait("#id_password1").send_keys(PASSWORD)
    browser.driver.find_element(By.ID, "id_password2").send_keys(PASSWORD)
    browser.click("main button[type=submit]")
    wait_for_heading(browser.driver, "Your account is ready")
    assert PortalUser.objects.get(email="sam@contoso.test").status == "active"

    # Staff again: User Mapping opens and the integration can be set up.
    browser.login("tech")
    browser.open(f"/admin/passportal/client/{client.pk}/change/")
    browser.click("#configure-user-mapping")
    browser.wait("#section-on-prem")
    browser.click(f"#integration-{integration.pk} a.setup")
    browser.wait("#folder-tree input[data-folder-name='Sales']")
