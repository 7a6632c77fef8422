"""The run page follows a sync while it runs: its progress counter moves from step to step (R16).

A sync reads, plans, then applies every change in one transaction; the run records each step as it reaches it,
and the page polls it. The test pushes a few thousand users through the on-prem agent's upload path, opens the
run page while the run waits, then runs the sync in another thread and watches the page as a person would.

So that each step stays on screen long enough to be seen at the page's one poll a second, the test pauses the
sync for a moment whenever it records a step. It does that from outside: a logging handler of the test's on the
debug line the sync writes at each step (production has no such handler, and nothing in the code is patched).
"""

from __future__ import annotations

import logging
import re
import threading
import time

import pytest
from django.db import connection
from django.urls import reverse
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from directory import upload_chunks, upload_start
from directory.models import Folder
from passportal.models import Client, PermissionLevel, PortalUser
from provisioning import agent_uploads, sync
from provisioning.models import Mapping, SyncRun, SyncStatus
from tests.fixtures_browser import STAFF_PASSWORD, agent_integration, ou, person, staff_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

USERS = 3000
PAUSE_AT_EACH_STEP = 1.5  # seconds; the page polls once a second


class PauseAtEachStep(logging.Handler):
    """Holds the sync a moment each time it records the step it has reached (its debug line names the step)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.steps: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if message.startswith("sync run ") and "(step " in message:
            self.steps.append(message)
            time.sleep(PAUSE_AT_EACH_STEP)


def push_big_upload(integration, folder: dict, count: int) -> SyncRun:
    """What the on-prem agent does for a large OU: chunks of users, then commit, which queues the sync."""
    upload = upload_start.start_upload(integration, directory_id="corp.test", agent_version="3.2.1")
    upload_chunks.add_folders(upload, [folder])
    users = [person(n, folder) for n in range(1, count + 1)]
    for start in range(0, count, 1000):
        upload_chunks.add_users(upload, users[start:start + 1000])
    agent_uploads.commit_upload(upload, folder_count=1, user_count=count)
    return SyncRun.objects.get(integration=integration, status=SyncStatus.QUEUED, dry_run=False)


def test_r16_run_page_progress_counter_moves_during_a_run(chromium, live_server, caplog):
    staff_user("boss", superuser=True)
    vault = Client.objects.create(name="Acme MSP", is_company_vault=True, site_enabled=True)
    sales = ou(1, "Sales")
    integration = agent_integration(vault, [sales], [])
    Mapping.objects.create(folder=Folder.objects.get(integration=integration, external_id=sales["id"]),
                           permission_level=PermissionLevel.objects.get(user_kind="pro", name="Technician"))
    run = push_big_upload(integration, sales, USERS)

    driver = chromium
    driver.delete_all_cookies()
    driver.get(live_server.url + "/admin/login/")
    driver.find_element(By.ID, "id_username").send_keys("boss")
    driver.find_element(By.ID, "id_password").send_keys(STAFF_PASSWORD)
    driver.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    WebDriverWait(driver, 20).until(ec.presence_of_element_located((By.ID, "user-tools")))
    driver.get(live_server.url + reverse("provisioning:run", args=[run.pk]))
    assert WebDriverWait(driver, 20).until(
        ec.presence_of_element_located((By.ID, "run-phase"))).text == "Waiting for a worker"

    # A worker picks the run up (here a thread of this test), while the page polls.
    caplog.set_level(logging.DEBUG, logger="provisioning.runs")
    pause = PauseAtEachStep()
    logging.getLogger("provisioning.runs").addHandler(pause)
    failures: list[BaseException] = []

    def worker() -> None:
        try:
            sync.execute_run(run.pk)
        except BaseException as exc:  # reported by the test below
            failures.append(exc)
        finally:
            connection.close()

    thread = threading.Thread(target=worker)
    try:
        thread.start()
        seen: list[tuple[str, str]] = []  # (counter text, progress bar value), each change once
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                phase = driver.find_element(By.ID, "run-phase")
                shown = (phase.text, driver.find_element(By.ID, "run-progress-bar").get_attribute("value"))
            except (StaleElementReferenceException, WebDriverException):
                shown = None  # the page is reloading to show the result
            if shown and (not seen or seen[-1] != shown):
                seen.append(shown)
            if not thread.is_alive() and driver.find_elements(By.ID, "run-result"):
                break
            time.sleep(0.1)
        thread.join(timeout=60)
    finally:
        logging.getLogger("provisioning.runs").removeHandler(pause)
    assert not failures, failures

    # The counter went through every step, in order, and the progress bar with it; then the page showed the end.
    # One entry per counter text. The bar and the text are read one after the other while the page updates
    # them, so a reading may pair a text with the next step's bar: the bar must only move forward, through
    # every step.
    counters = [text for i, (text, _) in enumerate(seen) if i == 0 or seen[i - 1][0] != text]
    steps = [int(m.group(1)) for text in counters if (m := re.search(r"step (\d) of 3$", text))]
    assert steps == [1, 2, 3], counters
    assert [text.split(":")[0] for text in counters if "step" in text] == [
        "Reading the directory", "Planning", "Applying the changes"], counters
    bars = [int(value) for text, value in seen if "step" in text]
    assert bars == sorted(bars) and {0, 1, 2} <= set(bars), seen
    assert len(pause.steps) == 3, pause.steps

    WebDriverWait(driver, 30).until(ec.presence_of_element_located((By.ID, "run-result")))
    assert driver.find_element(By.ID, "run-phase").text == "Done"
    assert driver.find_element(By.ID, "run-status").get_attribute("data-status") == "succeeded"
    assert PortalUser.objects.filter(client=vault).count() == USERS
