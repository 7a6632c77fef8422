"""An end user's journey in Debian's chromium: the activation email from the real SMTP server, the password,
sign-in and "My account" (R18, R8); over plain HTTP and over HTTPS with DEBUG off and secure cookies."""

from __future__ import annotations

import re

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from directory.models import Folder
from passportal.models import PermissionLevel, PortalUser, SecurityGroup
from provisioning.models import Mapping
from tests.fixtures_browser import agent_integration, headless_chromium, ou, person, push_directory, wait_for_heading
from tests.https_live_server import https_live_server

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "correct-horse-battery-staple-42"


@pytest.fixture(autouse=True)
def _inline_tasks_and_a_fast_hasher(settings):
    settings.TASKS_RUN_INLINE = True
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def provision_ann(client_org, smtp, base_url: str, settings) -> str:
    """A sync from the client's directory creates Ann; returns the link in the email the SMTP server received."""
    settings.PORTAL_BASE_URL = base_url
    sales = ou(1, "Sales")
    integration = agent_integration(client_org, [sales], [], name="Contoso AD")
    mapping = Mapping.objects.create(folder=Folder.objects.get(integration=integration, external_id=sales["id"]),
                                     permission_level=PermissionLevel.objects.get(user_kind="site", name="Site User"))
    mapping.security_groups.add(SecurityGroup.objects.create(client=client_org, name="Sales team"))
    # The committed upload starts its run (inline here, as a worker would run it).
    push_directory(integration, [sales], [person(1, sales, first="Ann", last="Archer", email="ann@contoso.test")])
    assert PortalUser.objects.get(email="ann@contoso.test").status == "pending"
    [mail] = smtp.to("ann@contoso.test")
    match = re.search(r"(https?://[^\s/]+/activate/[A-Za-z0-9_-]{43}/)", mail.text)
    assert match and match.group(1).startswith(base_url + "/"), mail.text
    return match.group(1)


def wait(driver, css: str, timeout: float = 15):
    return WebDriverWait(driver, timeout).until(ec.presence_of_element_located((By.CSS_SELECTOR, css)))


def submit(driver) -> None:
    driver.find_element(By.CSS_SELECTOR, "main button[type=submit]").click()


def activate_sign_in_and_see_account(driver, link: str) -> None:
    driver.delete_all_cookies()
    driver.get(link)
    assert "/activate/set-password/" in driver.current_url, "the token leaves the address bar"
    assert "ann@contoso.test" in wait(driver, "main").text
    wait(driver, "#id_password1").send_keys(PASSWORD)
    driver.find_element(By.ID, "id_password2").send_keys(PASSWORD)
    submit(driver)
    # Wait for the next page itself: the form page has an <h1> too.
    wait_for_heading(driver, "Your account is ready")

    driver.find_element(By.LINK_TEXT, "Sign in").click()
    email = wait(driver, "#id_email")
    assert email.get_attribute("value") == "ann@contoso.test"
    driver.find_element(By.ID, "id_password").send_keys(PASSWORD)
    submit(driver)
    details = wait(driver, "#account-details").text
    for shown in ("Ann Archer", "ann@contoso.test", "Contoso Ltd", "Site-User", "Site User", "Sales team",
                  "Active Directory (Contoso AD)"):
        assert shown in details, shown
    user = PortalUser.objects.get(email="ann@contoso.test")
    assert user.status == "active" and user.check_password(PASSWORD)


def test_r18_end_user_activates_from_the_real_email_signs_in_and_sees_the_account(
        chromium, live_server, smtp, client_org, settings):
    link = provision_ann(client_org, smtp, live_server.url, settings)
    activate_sign_in_and_see_account(chromium, link)

    # Signing out ends it; the account page then asks to sign in.
    chromium.find_element(By.CSS_SELECTOR, "form[action$='/account/sign-out/'] button").click()
    wait(chromium, "#id_email")
    chromium.get(live_server.url + "/account/")
    assert "/account/sign-in/" in chromium.current_url


def test_r18_a_used_link_opened_again_gets_the_neutral_page(chromium, live_server, smtp, client_org, settings):
    link = provision_ann(client_org, smtp, live_server.url, settings)
    activate_sign_in_and_see_account(chromium, link)
    chromium.delete_all_cookies()
    chromium.get(link)
    assert wait(chromium, "h1").text == "This link cannot be used"
    assert "ann@contoso.test" not in chromium.page_source


def test_r8_a_disabled_user_is_told_neutrally_in_the_browser(chromium, live_server, smtp, client_org, settings):
    link = provision_ann(client_org, smtp, live_server.url, settings)
    activate_sign_in_and_see_account(chromium, link)
    PortalUser.objects.filter(email="ann@contoso.test").update(status="disabled", disabled_by_staff=True)
    chromium.get(live_server.url + "/account/")
    assert "/account/sign-in/" in chromium.current_url, "a disabled user's session ends"
    wait(chromium, "#id_email").send_keys("ann@contoso.test")
    chromium.find_element(By.ID, "id_password").send_keys(PASSWORD)
    submit(chromium)
    assert "cannot be used to sign in" in wait(chromium, "#sign-in-error").text


@pytest.fixture
def chromium_trusting_any_certificate():
    """A chromium of its own for the HTTPS test: the server's certificate comes from a throwaway CA."""
    with headless_chromium("--ignore-certificate-errors") as driver:
        yield driver


def test_r18_activation_and_sign_in_work_over_https_with_debug_off_and_secure_cookies(
        chromium_trusting_any_certificate, smtp, client_org, settings):
    settings.DEBUG = False
    settings.SESSION_COOKIE_SECURE = settings.CSRF_COOKIE_SECURE = True
    settings.SECURE_SSL_REDIRECT = True
    settings.ALLOWED_HOSTS = ["localhost"]
    with https_live_server() as base_url:
        link = provision_ann(client_org, smtp, base_url, settings)
        activate_sign_in_and_see_account(chromium_trusting_any_certificate, link)
        assert chromium_trusting_any_certificate.current_url == base_url + "/account/"
