"""Looks like one product: readable colours, and the main pages usable on a phone, measured in chromium.

No screenshot diff: the tests ask the browser for widths and colours. At 390 px wide a page must not scroll
sideways (`document.scrollingElement.scrollWidth` within the viewport), every button, input, select and
button-styled link must lie inside the viewport, no button may be broken over lines or too narrow for its words,
and no two controls may overlap. Each page is also checked for console errors: the Content-Security-Policy
refuses inline styles, so a fix made with a style attribute would show up there.
PHONE_SCREENSHOTS=/tmp/dir saves each page as a PNG, to look at what the numbers say.
"""

from __future__ import annotations

import os

import pytest
from django.contrib.auth.hashers import make_password
from django.urls import reverse
from django.utils import timezone
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import Select, WebDriverWait

from directory.models import Folder
from passportal.models import PermissionLevel, PortalUser, SecurityGroup
from provisioning.models import Mapping, SyncRun
from tests.fixtures_browser import (
    STAFF_PASSWORD,
    activated_site_admin,
    agent_integration,
    answer_as_the_agent,
    headless_chromium,
    ou,
    person,
    push_directory,
    staff_user,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE_WIDTH, PHONE_HEIGHT = 390, 844
END_USER_PASSWORD = "correct-horse-battery-staple-42"
SCREENSHOTS = os.environ.get("PHONE_SCREENSHOTS", "")  # a directory: save each page there, to look at

# What overflows: the page's own sideways scroll, and any control whose box leaves the viewport.
MEASURE = """
const describe = (el) => el.id ? `#${el.id}`
  : `${el.tagName.toLowerCase()}.${el.className || ""} "${(el.value || el.textContent || "").trim().slice(0, 30)}"`;
const width = document.documentElement.clientWidth;
const problems = [];
const scroll = document.scrollingElement.scrollWidth;
if (scroll > width) problems.push(`the page scrolls sideways: ${scroll} px of content in ${width} px`);
const controls = document.querySelectorAll(
  "button, input:not([type=hidden]), select, textarea, a.button, .button, .submit-row a, .object-tools a");
for (const el of controls) {
  const box = el.getBoundingClientRect();
  if (box.width === 0 && box.height === 0) continue;  // not shown
  if (box.left < -0.5 || box.right > width + 0.5) {
    problems.push(`${describe(el)} spans ${Math.round(box.left)}..${Math.round(box.right)} px of ${width}`);
  }
}
// A button whose words do not fit inside it, and two controls drawn over each other, are broken too.
const shown = Array.from(controls).filter((el) => {
  const box = el.getBoundingClientRect();
  return box.width > 0 && box.height > 0;
});
for (const el of shown) {
  if (el.matches("button, a.button, .button, input[type=submit]") && el.scrollWidth > el.clientWidth + 1) {
    problems.push(`${describe(el)}: its words need ${el.scrollWidth} px, it is ${el.clientWidth} px wide`);
  }
  if (el.getClientRects().length > 1) problems.push(`${describe(el)} is broken over several lines`);
}
shown.forEach((a, i) => shown.slice(i + 1).forEach((b) => {
  if (a.contains(b) || b.contains(a)) return;
  const p = a.getBoundingClientRect(), q = b.getBoundingClientRect();
  const x = Math.min(p.right, q.right) - Math.max(p.left, q.left);
  const y = Math.min(p.bottom, q.bottom) - Math.max(p.top, q.top);
  if (x > 1 && y > 1) problems.push(`${describe(a)} and ${describe(b)} overlap`);
}));
return {width, problems};
"""


@pytest.fixture(scope="module")
def chromium_with_console():
    """A headless chromium whose console messages the test reads."""
    with headless_chromium(console=True) as driver:
        yield driver


@pytest.fixture
def phone(chromium_with_console):
    """A chromium whose console the test reads, as a 390 px phone (a mobile viewport), put back afterwards."""
    chromium_with_console.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
        "width": PHONE_WIDTH, "height": PHONE_HEIGHT, "deviceScaleFactor": 1, "mobile": True})
    try:
        yield chromium_with_console
    finally:
        chromium_with_console.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


@pytest.fixture
def portal(db, client_org, settings):
    settings.TASKS_RUN_INLINE = True
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    staff_user("boss", superuser=True)
    activated_site_admin(client_org)
    sales, emea, it = ou(1, "Sales"), ou(2, "EMEA", parent=1, path="Corp/Sales/EMEA"), ou(3, "Information Technology")
    users = [person(n, [sales, emea, it][n % 3]) for n in range(1, 40)]
    integration = agent_integration(client_org, [sales, emea, it], users, name="Contoso Active Directory")
    level = PermissionLevel.objects.get(user_kind="site", name="Site User")
    mapping = Mapping.objects.create(folder=Folder.objects.get(integration=integration, external_id=sales["id"]),
                                     permission_level=level)
    mapping.security_groups.add(SecurityGroup.objects.create(client=client_org, name="Sales team"))
    push_directory(integration, [sales, emea, it], users)
    run = SyncRun.objects.filter(integration=integration, dry_run=False).latest("pk")
    ann = PortalUser.objects.filter(client=client_org, email__startswith="user").order_by("pk").first()
    PortalUser.objects.filter(pk=ann.pk).update(password=make_password(END_USER_PASSWORD),
                                                activated_at=timezone.now(), status="active")
    return {"client": client_org, "integration": integration, "run": run, "user": ann}


class Phone:
    def __init__(self, driver, base_url: str) -> None:
        self.driver, self.base_url = driver, base_url
        self.problems: list[str] = []
        self.driver.get_log("browser")  # drop what an earlier test left

    def open(self, path: str, ready: str) -> None:
        self.driver.get(self.base_url + path)
        WebDriverWait(self.driver, 20).until(ec.presence_of_element_located((By.CSS_SELECTOR, ready)))

    def measure(self, label: str) -> None:
        found = self.driver.execute_script(MEASURE)
        assert found["width"] == PHONE_WIDTH, f"{label}: the viewport is {found['width']} px, not a phone's"
        self.problems += [f"{label}: {problem}" for problem in found["problems"]]
        self.problems += [f"{label}: console: {entry['message']}" for entry in self.driver.get_log("browser")
                          if entry["level"] == "SEVERE"]
        if SCREENSHOTS:
            height = self.driver.execute_script("return document.scrollingElement.scrollHeight")
            self.driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
                "width": PHONE_WIDTH, "height": min(height, 4000), "deviceScaleFactor": 1, "mobile": True})
            self.driver.save_screenshot(os.path.join(SCREENSHOTS, label.replace(" ", "-") + ".png"))
            self.driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
                "width": PHONE_WIDTH, "height": PHONE_HEIGHT, "deviceScaleFactor": 1, "mobile": True})

    def sign_in_staff(self, username: str) -> None:
        self.driver.delete_all_cookies()
        self.open("/admin/login/", "#id_username")
        self.driver.find_element(By.ID, "id_username").send_keys(username)
        self.driver.find_element(By.ID, "id_password").send_keys(STAFF_PASSWORD)
        self.driver.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
        WebDriverWait(self.driver, 20).until(ec.presence_of_element_located((By.ID, "user-tools")))


def test_main_pages_are_usable_390_px_wide_with_nothing_overflowing(phone, live_server, portal):
    """Every main page, staff's and the end user's, on a 390 px phone: no sideways scroll, no control outside."""
    page = Phone(phone, live_server.url)
    client, integration, run, user = portal["client"], portal["integration"], portal["run"], portal["user"]

    # The end user's pages.
    page.open(reverse("account-sign-in"), "#id_email")
    page.measure("end-user sign-in")
    phone.find_element(By.ID, "id_email").send_keys(user.email)
    phone.find_element(By.ID, "id_password").send_keys(END_USER_PASSWORD)
    phone.find_element(By.CSS_SELECTOR, "main button[type=submit]").click()
    WebDriverWait(phone, 20).until(ec.presence_of_element_located((By.ID, "account-details")))
    page.measure("end-user account")

    # Staff.
    page.open("/admin/login/", "#id_username")
    page.measure("admin sign-in")
    page.sign_in_staff("boss")
    for label, path, ready in [
        ("admin index", reverse("admin:index"), "#provisioning-start"),
        ("client change form", reverse("admin:passportal_client_change", args=[client.pk]), "#id_name"),
        ("portal user change form", reverse("admin:passportal_portaluser_change", args=[user.pk]), "#id_email"),
        ("user mapping", reverse("provisioning:user-mapping", args=[client.pk]), "#user-mapping"),
        ("overview", reverse("provisioning:overview"), "#overview-table"),
        ("run", reverse("provisioning:run", args=[run.pk]), "#run-changes"),
        ("link switch confirmation", reverse("provisioning:link", args=[integration.pk]) + "?enabled=0",
         "#link-confirm"),
        ("add domain", reverse("provisioning:add-domain", args=[client.pk]), "#add-domain-form"),
        ("setup", reverse("provisioning:setup", args=[integration.pk]), "#folder-tree"),
    ]:
        page.open(path, ready)
        page.measure(label)

    # The confirmation, reached as staff reach it: tick a folder, choose a level, Apply.
    phone.execute_script("arguments[0].click()", phone.find_element(By.CSS_SELECTOR, "input[data-folder-name='EMEA']"))
    Select(phone.find_element(By.ID, "id_permission_level")).select_by_visible_text("Site User (Site-User)")
    phone.execute_script("arguments[0].click()", phone.find_element(By.ID, "apply"))
    # An agent integration's confirmation asks the agent to read AD and waits, reloading itself; the suite's
    # stand-in answers as the agent would (tests/test_browser_agent_confirm.py walks it with the real agent).
    WebDriverWait(phone, 20).until(ec.presence_of_element_located((By.ID, "agent-waiting")))
    page.measure("confirmation waiting for the agent")
    answer_as_the_agent()
    WebDriverWait(phone, 20).until(ec.presence_of_element_located((By.ID, "preview-counts")))
    page.measure("confirmation")
    phone.execute_script("arguments[0].click()", phone.find_element(By.ID, "link-confirm-cancel")) if False else None

    assert page.problems == [], "\n".join(page.problems)


# The WCAG 2 contrast ratio of a text's colour against the background it is drawn on (the first ancestor with
# one), from the browser's computed styles.
CONTRAST = """
const parse = (css) => (css.match(/[\\d.]+/g) || []).map(Number);
const linear = (c) => { c /= 255; return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4; };
const luminance = ([r, g, b]) => 0.2126 * linear(r) + 0.7152 * linear(g) + 0.0722 * linear(b);
const el = document.querySelector(arguments[0]);
let at = el, background = null;
while (at) {
  const [r, g, b, a = 1] = parse(getComputedStyle(at).backgroundColor);
  if (a > 0) { background = [r, g, b]; break; }
  at = at.parentElement;
}
background = background || [255, 255, 255];
const text = parse(getComputedStyle(el).color).slice(0, 3);
const [light, dark] = [luminance(text), luminance(background)].sort((x, y) => y - x);
return {ratio: (light + 0.05) / (dark + 0.05), text, background};
"""


def test_link_on_and_link_off_are_readable_with_aa_contrast_in_light_and_dark_theme(
        chromium_with_console, live_server, portal):
    """WCAG AA asks 4.5:1 for normal text; the admin's own success colour (#dfd on white) gave 1.1:1."""
    chromium = chromium_with_console
    page = Phone(chromium, live_server.url)
    page.sign_in_staff("boss")
    client, integration = portal["client"], portal["integration"]
    page.open(reverse("provisioning:user-mapping", args=[client.pk]), ".link-on")
    for theme in ("light", "dark"):
        chromium.execute_script("document.documentElement.dataset.theme = arguments[0]", theme)
        found = chromium.execute_script(CONTRAST, f"#integration-{integration.pk} .link-on")
        assert found["ratio"] >= 4.5, f"Link on, {theme} theme: {found}"
    integration.link_enabled = False
    integration.save(update_fields=["link_enabled"])
    page.open(reverse("provisioning:user-mapping", args=[client.pk]), ".link-off")
    for theme in ("light", "dark"):
        chromium.execute_script("document.documentElement.dataset.theme = arguments[0]", theme)
        found = chromium.execute_script(CONTRAST, f"#integration-{integration.pk} .link-off")
        assert found["ratio"] >= 4.5, f"Link off, {theme} theme: {found}"
    chromium.execute_script("localStorage.removeItem('theme')")
