"""Apply's confirmation and the link switch of an agent-mode integration, click by click in a real chromium, with
the on-prem agent as a real running process against the Samba AD DC and the live portal (R10, R15, R16).

The page says it is asking the agent to read Active Directory, reloads by itself until the read arrives and shows
the preview of AD as it is now (a user added in Samba after the agent's last upload among it); Yes starts the run,
which waits for the agent's fresh read and has the preview's counts. With the agent stopped, the page says the agent
is not responding, offers the last upload with its age, and has no Yes. Each page is also measured 390 px wide
(nothing overflows: tests/test_browser_one_product.py's measure) and its message text against its background.
PHONE_SCREENSHOTS=/tmp/dir saves each page (desktop and phone) as a PNG, to look at.
"""

from __future__ import annotations

import os
import signal

import pytest
from django.urls import reverse
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

from passportal.models import PortalUser
from provisioning.models import SyncRun, SyncTrigger
from tests import agent_env, test_agent_end_to_end, test_agent_parity
from tests.fixtures_browser import staff_user
from tests.test_agent_asked_reads import pro_level
from tests.test_agent_end_to_end import agent_integration
from tests.test_agent_parity import until
from tests.test_browser_one_product import CONTRAST, MEASURE, PHONE_HEIGHT, PHONE_WIDTH
from tests.test_browser_user_mapping import Page

agent_python = agent_env.agent_python  # fixtures: the agent's own environment, the live portal, the agent service
https_portal = test_agent_end_to_end.https_portal
agent_service = test_agent_parity.agent_service

pytestmark = [pytest.mark.browser, pytest.mark.samba, pytest.mark.django_db(transaction=True)]

SCREENSHOTS = os.environ.get("PHONE_SCREENSHOTS", "")


class AgentPage(Page):
    """The staff walk, measured on a phone as it goes."""

    def look(self, label: str, *texts: str) -> None:
        """The page as it is now, 390 px wide: nothing overflows, and each of `texts` (CSS) reads at 4.5:1."""
        driver = self.driver
        self.shoot(label)
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
            "width": PHONE_WIDTH, "height": PHONE_HEIGHT, "deviceScaleFactor": 1, "mobile": True})
        try:
            found = driver.execute_script(MEASURE)
            assert found["width"] == PHONE_WIDTH and found["problems"] == [], f"{label}: {found}"
            for css in texts:
                contrast = driver.execute_script(CONTRAST, css)
                assert contrast["ratio"] >= 4.5, f"{label}, {css}: {contrast}"
            self.shoot(label + "-phone")
        finally:
            driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})

    def read(self, css: str, timeout: float = 20) -> str:
        """An element's text, read in one script: a page that reloads itself may replace the node meanwhile."""
        script = "const e = document.querySelector(arguments[0]); return e ? e.innerText : null;"
        return WebDriverWait(self.driver, timeout).until(lambda d: d.execute_script(script, css))

    def shoot(self, label: str) -> None:
        if SCREENSHOTS:
            self.driver.save_screenshot(os.path.join(SCREENSHOTS, f"agent-{label}.png"))


@pytest.fixture
def walk(chromium, live_server, settings) -> AgentPage:
    settings.TASKS_RUN_INLINE = True
    settings.AGENT_REQUESTS_PER_MINUTE = 10_000  # the agent polls twice a second here
    staff_user("tech", superuser=True)
    page = AgentPage(chromium, live_server.url)
    page.login("tech")
    return page


def apply_sales(walk: AgentPage, integration) -> None:
    """User Mapping -> Setup Auto-Provisioning -> tick Sales, choose a level -> Apply."""
    walk.open(reverse("provisioning:user-mapping", args=[integration.client_id]))
    walk.click(f"#integration-{integration.pk} a.setup")
    walk.tick_folder("Sales")
    Select(walk.driver.find_element(By.ID, "id_permission_level")).select_by_value(str(pro_level().pk))
    walk.click("#apply")


def link_counts(walk: AgentPage) -> dict[str, int]:
    rows = walk.driver.find_elements(By.CSS_SELECTOR, "#link-preview-counts tr.count-row")
    return {r.find_element(By.TAG_NAME, "th").text.strip().lower(): int(r.find_element(By.TAG_NAME, "td").text)
            for r in rows}


def test_r15_r16_agent_mode_apply_asks_the_agent_shows_ad_as_it_is_now_and_the_run_after_yes_matches(
        agent_service, samba_dc, samba_ou, vault, walk):
    sales = samba_dc.make_ou("Sales", samba_ou)
    samba_dc.add_user(sales, samba_dc.unique_sam("ann"), "Ann", "Lee", "ann@corp.example.test")
    integration, token = agent_integration(vault)
    agent = agent_service(token)
    until(lambda: agent.pushes() == 1, what="the push at start")
    bob = samba_dc.add_user(sales, samba_dc.unique_sam("bob"), "Bob", "Ray", "bob@corp.example.test")  # after it

    # The agent is held (SIGSTOP: the process as it is, paused) so the page is seen while it waits.
    agent.process.send_signal(signal.SIGSTOP)
    try:
        apply_sales(walk, integration)
        asking = walk.read("#agent-waiting")
        assert asking.startswith("Asking the on-prem agent to read Active Directory now"), asking
        assert "(asked less than a minute ago;" in asking
        assert "Sales" in walk.read("#confirm-waiting")  # what is being confirmed, while it waits
        assert walk.driver.find_elements(By.CSS_SELECTOR, "meta[http-equiv=refresh]")
        assert not walk.driver.find_elements(By.ID, "confirm-yes")
        walk.look("apply-asking", "#agent-waiting")
    finally:
        agent.process.send_signal(signal.SIGCONT)

    # The page reloads by itself until the agent's read arrives: Bob, whom only a fresh read sees, is in it.
    walk.wait("#preview-counts", timeout=60)
    counts = walk.counts()
    assert counts["to create"] == 2 and counts["to update"] == 0 and counts["to disable"] == 0, counts
    assert "bob@corp.example.test" in walk.text("#preview-changes")
    assert "against the directory as it is (read by the on-prem agent just now)" in walk.text("#confirm")
    walk.look("apply-preview", "#confirm p.help")

    # Yes: the run waits for the agent's fresh read and has the preview's counts.
    walk.click("#confirm-yes")
    assert walk.wait_for_run_done() == "succeeded"
    run = SyncRun.objects.filter(integration=integration, dry_run=False, trigger=SyncTrigger.APPLY).latest("pk")
    assert (run.counts["created"], run.counts.get("updated", 0), run.counts.get("disabled", 0)) == (2, 0, 0)
    walk.look("apply-run")

    # The link switch: off (at once), a change in AD, on: its preview is the agent's fresh read too.
    walk.open(reverse("provisioning:user-mapping", args=[integration.client_id]))
    walk.click(f"#integration-{integration.pk} a.link-switch")
    assert walk.text("#affected-count") == "2"
    walk.click("#confirm-yes")
    assert walk.wait_for_run_done() == "succeeded"
    samba_dc.set_names(bob, given="Robert")
    agent.process.send_signal(signal.SIGSTOP)
    try:
        walk.open(reverse("provisioning:user-mapping", args=[integration.client_id]))
        walk.click(f"#integration-{integration.pk} a.link-switch")
        assert walk.read("#agent-waiting").startswith("Asking the on-prem agent to read Active Directory now")
        walk.look("link-asking", "#agent-waiting")
    finally:
        agent.process.send_signal(signal.SIGCONT)
    walk.wait("#link-preview-counts", timeout=60)
    shown = link_counts(walk)
    assert shown == {"to update": 1, "to re-enable": 2}, shown
    walk.look("link-preview", "#preview-fresh")
    walk.click("#confirm-yes")
    assert walk.wait_for_run_done() == "succeeded"
    run = SyncRun.objects.filter(integration=integration, dry_run=False, trigger=SyncTrigger.LINK).latest("pk")
    assert (run.counts.get("updated", 0), run.counts.get("reenabled", 0)) == (1, 2), run.counts
    assert PortalUser.objects.get(email="bob@corp.example.test").first_name == "Robert"


def test_r15_agent_mode_apply_says_the_agent_is_not_responding_and_offers_the_last_upload_with_its_age(
        agent_service, samba_dc, samba_ou, vault, walk, settings):
    sales = samba_dc.make_ou("Sales", samba_ou)
    samba_dc.add_user(sales, samba_dc.unique_sam("ann"), "Ann", "Lee", "ann@corp.example.test")
    integration, token = agent_integration(vault)
    agent = agent_service(token)
    until(lambda: agent.pushes() == 1, what="the push at start")
    agent.process.terminate()  # the agent stops
    agent.process.wait(timeout=30)
    settings.AGENT_PREVIEW_TIMEOUT_MINUTES = 0.05  # 3 s instead of 3 minutes

    apply_sales(walk, integration)
    walk.wait("#agent-waiting")
    # The page reloads by itself; past the timeout it says the agent is not responding, and stops reloading.
    message = walk.read("#agent-not-responding")
    assert message.startswith("The on-prem agent is not responding"), message
    assert "within 3 seconds" in message  # a timeout under a minute is said in seconds
    assert "Check that the agent runs and can reach the portal" in message
    offer = walk.text("#show-last-upload")
    assert offer == "Show the preview from the agent's last upload (read less than a minute ago)", offer
    assert not walk.driver.find_elements(By.ID, "confirm-yes")
    assert not walk.driver.find_elements(By.CSS_SELECTOR, "meta[http-equiv=refresh]")
    walk.look("apply-not-responding", "#agent-not-responding", "#agent-asking p.help")

    # Asked for, the last upload's preview says what it is, and only then is there a Yes.
    walk.click("#show-last-upload")
    walk.wait("#preview-counts")
    assert "last upload, read " in walk.text("#preview-source")
    assert walk.counts()["to create"] == 1
    walk.wait("#confirm-yes")
    walk.look("apply-last-upload", "#preview-source")
