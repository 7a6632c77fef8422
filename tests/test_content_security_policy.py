"""Content-Security-Policy: every response carries it, and the main pages work under it in chromium.

The policy allows our own origin only and no inline script or style (passportal/csp.py, SECURE_CSP).
The browser test opens each main page in a real chromium and fails on any console error (a CSP
violation, a script error, a 404 such as a missing favicon) and on any address of another origin,
whether in the page or among what it loaded: the pages, the API docs included, must work offline.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from html.parser import HTMLParser
from urllib.parse import urlsplit

import pytest
from django.contrib.staticfiles import finders
from django.templatetags.static import static
from django.urls import reverse
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from passportal.csp import policy_header
from passportal.models import Client, PortalUser
from provisioning.models import SyncRun
from tests.fixtures_browser import STAFF_PASSWORD, agent_integration, headless_chromium, ou, person, staff_user

# ---------------------------------------------------------------- the header, on every kind of response


def test_policy_header_joins_directives_and_their_sources():
    assert policy_header({"default-src": ["'self'"], "img-src": ["'self'", "data:"], "upgrade-insecure-requests": []}) \
        == "default-src 'self'; img-src 'self' data:; upgrade-insecure-requests"


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/admin/login/", "/admin/", "/api/clients/", "/api/docs/", "/no-such-page/",
                                  f"/activate/{uuid.uuid4().hex}/"])
def test_every_response_carries_the_policy(client, path):
    policy = client.get(path)["Content-Security-Policy"]

    directives = dict(part.strip().split(" ", 1) for part in policy.split(";"))
    assert directives["default-src"] == "'self'"
    assert directives["script-src"] == "'self'", "no inline script, no other origin"
    assert directives["style-src"] == "'self'", "no inline style, no other origin"
    assert directives["frame-ancestors"] == "'none'"
    assert directives["object-src"] == "'none'"


@pytest.mark.django_db
def test_the_favicon_is_served_at_the_root(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 302 and response["Location"] == static("favicon.ico")
    with open(finders.find("favicon.ico"), "rb") as icon:
        assert icon.read(4) == b"\x00\x00\x01\x00", "an ICO file (the browser test loads it through the server)"


# ---------------------------------------------------------------- the browser


@pytest.fixture(scope="module")
def chromium_with_console() -> Iterator:
    """A headless chromium whose console messages the test can read (goog:loggingPrefs browser ALL)."""
    with headless_chromium(console=True) as driver:
        yield driver


# The attributes whose address the browser fetches by itself. A link (<a href>) is only followed when a person
# clicks it, and the admin shows a URL field's value as one (an integration's Graph URL): it loads nothing.
FETCHED = {"src", "href", "srcset", "poster", "data", "action", "formaction"}


class AddressesInPage(HTMLParser):
    """(tag, attribute, address) of every address the page would fetch, and every javascript: link."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, str, str]] = []

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if not value or name not in FETCHED:
                continue
            if (tag == "a" and name == "href") and not value.strip().lower().startswith("javascript:"):
                continue
            for address in value.split(",") if name == "srcset" else [value]:
                self.found.append((tag, name, address.strip().split(" ")[0]))


class Visit:
    """Open pages in chromium and collect what went wrong on each: console errors, other origins."""

    def __init__(self, driver, base_url: str) -> None:
        self.driver, self.base_url = driver, base_url
        self.origin = "{0.scheme}://{0.netloc}".format(urlsplit(base_url))
        self.problems: list[str] = []
        self.driver.get_log("browser")  # drop what an earlier test left

    def open(self, path: str, ready_css: str = "body") -> None:
        self.driver.get(self.base_url + path)
        WebDriverWait(self.driver, 20).until(ec.presence_of_element_located((By.CSS_SELECTOR, ready_css)))

    def check(self, label: str) -> None:
        """Record this page's console errors and any address of another origin in its HTML or its loads."""
        for entry in self.driver.get_log("browser"):
            if entry["level"] == "SEVERE":
                self.problems.append(f"{label}: console: {entry['message']}")
        parser = AddressesInPage()
        parser.feed(self.driver.page_source)
        for tag, attribute, address in parser.found:
            if self.is_other_origin(address):
                self.problems.append(f"{label}: <{tag} {attribute}> names another origin: {address}")
        loaded = self.driver.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
        for address in filter(self.is_other_origin, loaded):
            self.problems.append(f"{label}: loaded from another origin: {address}")

    def is_other_origin(self, address: str) -> bool:
        """An absolute (http://x, //x) address of another host; relative paths and data: are our own."""
        parts = urlsplit(address.strip())
        if parts.scheme in ("data", "blob", "about", "javascript", "mailto"):
            return parts.scheme == "javascript"  # a javascript: link would be inline script
        if not parts.netloc:
            return False
        return f"{parts.scheme or urlsplit(self.base_url).scheme}://{parts.netloc}" != self.origin

    def sign_in(self, username: str) -> None:
        self.driver.delete_all_cookies()
        self.open("/admin/login/", "#id_username")
        self.check("login page")
        self.driver.find_element(By.ID, "id_username").send_keys(username)
        self.driver.find_element(By.ID, "id_password").send_keys(STAFF_PASSWORD)
        self.driver.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
        WebDriverWait(self.driver, 20).until(ec.presence_of_element_located((By.ID, "user-tools")))


SALES, EMEA, IT = ou(1, "Sales"), ou(2, "EMEA", parent=1, path="Corp/Sales/EMEA"), ou(3, "IT")


@pytest.fixture
def portal(db):
    """What the main pages show: the Company Vault with an agent integration and its run, a client, a user."""
    staff_user("boss", superuser=True)
    vault = Client.objects.create(name="Acme MSP", is_company_vault=True, site_enabled=True)
    integration = agent_integration(vault, [SALES, EMEA, IT], [person(1, SALES), person(2, EMEA), person(3, IT)])
    contoso = Client.objects.create(name="Contoso Ltd", site_enabled=True)
    user = PortalUser.objects.create(client=contoso, email="ann@contoso.test", first_name="Ann", last_name="Lee")
    return {"vault": vault, "integration": integration, "client": contoso, "user": user,
            "run": SyncRun.objects.filter(integration=integration).latest("pk")}


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_main_pages_work_under_the_policy_with_no_console_error_and_nothing_from_another_origin(
        chromium_with_console, live_server, portal):
    visit = Visit(chromium_with_console, live_server.url)

    # Anonymous: the favicon, an activation link that is not valid (the neutral page), the end users' sign-in.
    visit.open("/favicon.ico", "img")
    visit.check("favicon")
    visit.open(f"/activate/{uuid.uuid4().hex}{uuid.uuid4().hex}/")
    visit.check("activation link not valid")
    visit.open(reverse("account-sign-in"), "form")
    visit.check("end-user sign-in")

    visit.sign_in("boss")
    integration, run = portal["integration"], portal["run"]
    pages = [
        ("admin index", reverse("admin:index"), "#provisioning-start"),
        ("clients", reverse("admin:passportal_client_changelist"), "#changelist"),
        ("client change form", reverse("admin:passportal_client_change", args=[portal["client"].pk]), "#id_name"),
        ("portal user change form", reverse("admin:passportal_portaluser_change", args=[portal["user"].pk]),
         "#id_email"),
        ("integration change form", reverse("admin:directory_integration_change", args=[integration.pk]),
         "#id_name"),
        ("notifications", reverse("admin:notifications_notification_changelist"), "#changelist"),
        ("provisioning overview", reverse("provisioning:overview"), "body"),
        ("user mapping", reverse("provisioning:user-mapping", args=[portal["vault"].pk]), "body"),
        ("setup", reverse("provisioning:setup", args=[integration.pk]), "#folder-tree"),
        ("run", reverse("provisioning:run", args=[run.pk]), "#run"),
    ]
    for label, path, ready in pages:
        visit.open(path, ready)
        visit.check(label)
        if label == "admin index":  # its links, styled from admin.css, stay on one line (not one letter a line)
            link = chromium_with_console.find_element(By.LINK_TEXT, "Provisioning overview")
            assert link.size["width"] > 3 * link.size["height"], link.size

    # The setup page's script runs under the policy: it indents the tree and filters it.
    visit.open(reverse("provisioning:setup", args=[integration.pk]), "#folder-tree")
    emea = chromium_with_console.find_element(By.CSS_SELECTOR, "li[data-name='corp/sales/emea']")
    assert emea.value_of_css_property("margin-left") != "0px", "setup.js indents a child folder"
    chromium_with_console.find_element(By.ID, "folder-filter").send_keys("emea")
    WebDriverWait(chromium_with_console, 5).until(
        lambda d: not d.find_element(By.CSS_SELECTOR, "li[data-name='corp/it']").is_displayed())
    visit.check("setup, filtered")

    # The bell opens (a <details>, no script) and is styled by its stylesheet, not an inline block.
    bell = chromium_with_console.find_element(By.CSS_SELECTOR, "#notification-bell summary")
    bell.click()
    panel = chromium_with_console.find_element(By.CSS_SELECTOR, "#notification-bell .bell-panel")
    assert panel.is_displayed() and panel.value_of_css_property("position") == "absolute"
    visit.check("bell")

    # The API docs: Swagger UI from our own static files, rendering the API's operations.
    visit.open(reverse("api:docs"), "#swagger-ui")
    WebDriverWait(chromium_with_console, 30).until(
        ec.presence_of_element_located((By.CSS_SELECTOR, "#swagger-ui .opblock")))
    operations = chromium_with_console.find_elements(By.CSS_SELECTOR, "#swagger-ui .opblock-summary-path")
    assert "/api/clients/" in {op.get_attribute("data-path") for op in operations}
    visit.check("API docs")

    assert visit.problems == [], "\n".join(visit.problems)
