"""Staff UI and API test helpers, and one headless chromium per test session for the browser tests.

Directories for view and API tests come through the real on-prem agent push path (directory/upload_*.py):
folders and users are pushed, committed, and read back by the UploadConnector, as in production.
Browser tests use the real Samba AD DC (tests/fixtures_samba.py).
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import uuid
from collections.abc import Iterator

import pytest
from django.contrib.auth.models import Permission, User
from django.utils import timezone

from directory import upload_chunks, upload_start
from directory.models import Integration
from passportal.models import Client, PermissionLevel, PortalUser
from provisioning import agent_uploads, sync
from provisioning.models import SyncRun, SyncStatus

STAFF_PASSWORD = "Staff-Passw0rd-for-tests"


# ---------------------------------------------------------------- people


def staff_user(username: str = "staff", *perms: str, superuser: bool = False) -> User:
    """A staff member with exactly these permissions ("app_label.codename"), or a superuser."""
    user = User.objects.create_user(username, f"{username}@msp.test", STAFF_PASSWORD, is_staff=True,
                                    is_superuser=superuser)
    for perm in perms:
        app_label, codename = perm.split(".")
        user.user_permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))
    return user


def activated_site_admin(client: Client, email: str = "siteadmin@client.test") -> PortalUser:
    """R14/R18: the first Site Admin, created by staff and activated."""
    level = PermissionLevel.objects.get(user_kind="site", name="Site Admin")
    user = PortalUser(client=client, first_name="Sam", last_name="Admin", email=email, permission_level=level,
                      activated_at=timezone.now())
    user.refresh_status()
    user.save()
    return user


# ---------------------------------------------------------------- directories through the agent push


def guid(n: int) -> str:
    return str(uuid.UUID(int=n))


def ou(n: int, name: str, parent: int | None = None, path: str = "") -> dict:
    return {"id": guid(10_000 + n), "name": name, "path": path or f"Corp/{name}",
            "parent_id": guid(10_000 + parent) if parent is not None else None}


def person(n: int, folder: dict, *, first: str = "", last: str = "", email: str | None = None,
           enabled: bool = True) -> dict:
    return {"id": guid(n), "enabled": enabled, "folder_ids": [folder["id"]], "first_name": first or f"First{n}",
            "last_name": last or f"Last{n}", "email": f"user{n}@corp.test" if email is None else email}


def push_directory(integration: Integration, folders: list[dict], users: list[dict]) -> SyncRun | None:
    """What the on-prem agent does: push a snapshot in chunks and commit it; then run the sync it starts."""
    upload = upload_start.start_upload(integration, directory_id="corp.test", agent_version="3.2.1")
    upload_chunks.add_folders(upload, folders)
    if users:
        upload_chunks.add_users(upload, users)
    agent_uploads.commit_upload(upload, folder_count=len(folders), user_count=len(users))
    queued = SyncRun.objects.filter(integration=integration, status=SyncStatus.QUEUED, dry_run=False).first()
    return sync.execute_run(queued.pk) if queued else None


def agent_integration(client: Client, folders: list[dict], users: list[dict], *, name: str = "Corp AD") -> Integration:
    integration = Integration.objects.create(client=client, name=name, kind="ad", ad_mode="agent",
                                             base_dn="DC=corp,DC=test")
    push_directory(integration, folders, users)
    return integration


# ---------------------------------------------------------------- the browser


CHROME_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               "--no-first-run", "--window-size=1400,1000"]


@contextlib.contextmanager
def headless_chromium(*extra_args: str, console: bool = False) -> Iterator:
    """Debian's chromium and chromedriver, with a fresh profile; `console` keeps its console messages readable."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="portal-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for arg in [*CHROME_ARGS, f"--user-data-dir={profile}", *extra_args]:
        options.add_argument(arg)
    if console:
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver") or "/usr/bin/chromedriver"),
                              options=options)
    driver.implicitly_wait(0)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def wait_for_heading(driver, text: str, timeout: float = 15) -> None:
    """Wait until the page's <h1> says `text`, read in one script: the node may be replaced while a page loads."""
    from selenium.webdriver.support.ui import WebDriverWait

    script = "const h = document.querySelector('h1'); return h ? h.textContent : '';"
    WebDriverWait(driver, timeout).until(lambda d: text in (d.execute_script(script) or ""))


@pytest.fixture(scope="session")
def chromium() -> Iterator:
    """One headless chromium for the whole session."""
    with headless_chromium() as driver:
        yield driver


# ---------------------------------------------------------------- the test client


def run_commit_hooks_per_request(client, capture) -> None:
    """Run each request's on-commit hooks (the queued sync, with TASKS_RUN_INLINE) as the response returns.

    Tests run inside one transaction that never commits; this makes a request behave as it does live.
    """
    original = client.request

    def request(**kwargs):
        with capture(execute=True):
            answer_as_the_agent()
            response = original(**kwargs)
        with capture(execute=True):
            answer_as_the_agent()
        return response

    client.request = request


def answer_as_the_agent() -> None:
    """What a polling on-prem agent does when AD has not changed since its last push (the directory these tests
    pushed): it answers every read asked of it, a preview or the folders, and every run waiting for its fresh read,
    through the same upload path. The agent as a real process does it in tests/test_agent_asked_reads.py."""
    from directory import agent_requests
    from directory.models import AgentRequestKind, UploadRecordKind
    from provisioning.agent_runs import agent_is_asked, last_upload

    for integration in Integration.objects.filter(kind="ad", ad_mode="agent"):
        last = last_upload(integration)
        if last is None:
            continue
        folders = list(last.records.filter(kind=UploadRecordKind.FOLDER).order_by("pk").values_list("data", flat=True))
        users = list(last.records.filter(kind=UploadRecordKind.USER).order_by("pk").values_list("data", flat=True))
        for asked in agent_requests.waiting(integration):
            answer = upload_start.start_upload(integration, directory_id=last.directory_id, agent_version="3.2.1",
                                               request_id=asked.pk)
            if folders:
                upload_chunks.add_folders(answer, folders)
            wanted = users if asked.kind == AgentRequestKind.PREVIEW else []
            if wanted:
                upload_chunks.add_users(answer, wanted)
            agent_uploads.commit_upload(answer, folder_count=len(folders), user_count=len(wanted))
        if agent_is_asked(integration):
            push_directory(integration, folders, users)


@pytest.fixture
def staff_client(client, db, settings, django_capture_on_commit_callbacks):
    """A logged-in superuser's test client whose requests run their syncs inline, as in production."""
    settings.TASKS_RUN_INLINE = True
    client.force_login(staff_user("boss", superuser=True))
    run_commit_hooks_per_request(client, django_capture_on_commit_callbacks)
    return client
