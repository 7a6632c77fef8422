"""Reads a person waits for, carried out by the on-prem agent (issue 15 item 3): Apply's preview, `resync --dry-run`
and the API's dry run ask the agent to read AD now and plan against what it read; the folder tree's refresh asks it
for the folders; an agent that does not answer is "not responding", and the last upload is shown only when asked.

The agent runs as a service (its own process and environment, polling twice a second) against the real Samba DC and
the live portal behind TLS, as in tests/test_agent_parity.py, whose fixtures these tests share.
"""

from __future__ import annotations

import re
import time
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse
from rest_framework.test import APIClient

from directory.models import Folder
from passportal.models import PermissionLevel, PortalUser
from provisioning import sync
from provisioning.models import Mapping, SyncRun, SyncTrigger
from tests import agent_env, test_agent_end_to_end, test_agent_parity
from tests.fixtures_browser import staff_user
from tests.test_agent_end_to_end import agent_integration
from tests.test_agent_parity import until

agent_python = agent_env.agent_python  # fixtures: the agent's own environment, the live portal, the agent service
https_portal = test_agent_end_to_end.https_portal
agent_service = test_agent_parity.agent_service

pytestmark = [pytest.mark.samba, pytest.mark.django_db(transaction=True)]
CHANGES = ("created", "updated", "disabled")


@pytest.fixture
def staff(client, settings):
    settings.TASKS_RUN_INLINE = True
    settings.AGENT_REQUESTS_PER_MINUTE = 10_000  # the agent polls twice a second here
    client.force_login(staff_user("boss", superuser=True))
    return client


def pro_level() -> PermissionLevel:
    return PermissionLevel.objects.filter(user_kind="pro").order_by("rank").first()


def counts_on(page: str) -> dict[str, int]:
    found = re.findall(r'<tr class="count-row" data-count="\d+"><th>([^<]+)</th><td class="count">(\d+)</td>', page)
    return {label.strip().lower(): int(n) for label, n in found}


def changes_of(counts: dict) -> dict[str, int]:
    return {key: counts.get(key, 0) for key in CHANGES}


def changes_on(page: str) -> dict[str, int]:
    """The confirmation's figures for creations, updates and disables, keyed as a run's counts are."""
    shown = counts_on(page)
    return {key: shown.get(f"to {key[:-1]}", 0) for key in CHANGES}  # "created" is shown as "to create"


def confirm_page(staff, response, timeout: float = 60) -> tuple[str, str]:
    """Follow Apply to its confirmation and reload it (as its refresh does) until the agent's read is shown."""
    assert response.status_code == 302, response.content[:500]
    url = response.url
    first = staff.get(url, follow=True).content.decode()
    deadline = time.monotonic() + timeout
    page = first
    while 'id="agent-waiting"' in page:
        assert time.monotonic() < deadline, "the agent's preview did not arrive"
        time.sleep(0.3)
        page = staff.get(url, follow=True).content.decode()
    return first, page


def test_r15_r16_the_agent_reads_ad_for_the_preview_and_the_run_after_it_matches(
        agent_service, samba_dc, samba_ou, vault, staff):
    sales = samba_dc.make_ou("Sales", samba_ou)
    ann = samba_dc.add_user(sales, samba_dc.unique_sam("ann"), "Ann", "Lee", "ann@corp.example.test")
    carl = samba_dc.add_user(sales, samba_dc.unique_sam("carl"), "Carl", "Moe", "carl@corp.example.test")
    dan = samba_dc.add_user(sales, samba_dc.unique_sam("dan"), "Dan", "Poe", "dan@corp.example.test")
    integration, token = agent_integration(vault)
    agent = agent_service(token)
    until(lambda: agent.pushes() == 1, what="the push at start")
    level = pro_level()
    Mapping.objects.create(folder=Folder.objects.get(integration=integration, name="Sales"), permission_level=level)
    assert sync.run_sync(integration, SyncTrigger.FORCE).counts["created"] == 3  # from the push at start
    last_upload = integration.agent_uploads.get(status="committed").pk

    # AD changes after the agent's last upload: one user new, one renamed, one disabled; a new OU to map.
    samba_dc.add_user(sales, samba_dc.unique_sam("bob"), "Bob", "Ray", "bob@corp.example.test")
    samba_dc.set_names(carl, given="Carlos")
    samba_dc.disable_user(dan)
    emea = samba_dc.make_ou("EMEA", samba_ou)
    samba_dc.add_user(emea, samba_dc.unique_sam("eve"), "Eve", "Sun", "eve@corp.example.test")
    staff.post(reverse("provisioning:setup", args=[integration.pk]), {"refresh": "1"})  # the agent reads the folders
    until(lambda: integration.folders.filter(name="EMEA").exists(), what="the folder read")
    expected = {"created": 2, "updated": 1, "disabled": 1}

    # resync --dry-run waits for the agent's read and prints the preview planned against it.
    out = StringIO()
    call_command("resync", "--integration", str(integration.pk), "--dry-run", "--timeout", "60", stdout=out)
    assert "to create: 1, to update: 1, to disable: 1" in out.getvalue(), out.getvalue()
    assert "not Active Directory as it is now" not in out.getvalue()

    # Apply's confirmation: asks the agent, says so, then shows the preview of AD as it is now.
    data = {"folders": [integration.folders.get(name="EMEA").pk], "permission_level": level.pk, "apply": "Apply"}
    first, page = confirm_page(staff, staff.post(reverse("provisioning:setup", args=[integration.pk]), data))
    assert "Asking the on-prem agent to read Active Directory now" in first
    assert '<meta http-equiv="refresh"' in first and "<script>" not in first
    assert changes_on(page) == expected, counts_on(page)
    assert "against the directory as it is" in page and "last upload" not in page
    assert integration.agent_uploads.filter(status="committed").get().pk == last_upload  # not the last read

    # Yes: the run waits for the agent's fresh read and applies exactly what the preview showed.
    yes = staff.post(page_url(staff, integration), {"yes": "1"})
    run = SyncRun.objects.get(pk=int(yes.url.rstrip("/").split("/")[-1]))
    until(lambda: SyncRun.objects.get(pk=run.pk).status == "succeeded", what="the run after Yes")
    run.refresh_from_db()
    assert changes_of(run.counts) == expected
    assert PortalUser.objects.get(email="carl@corp.example.test").first_name == "Carlos"
    assert PortalUser.objects.get(email="dan@corp.example.test").status == "disabled"
    assert PortalUser.objects.filter(email__in=["bob@corp.example.test", "eve@corp.example.test"]).count() == 2
    del ann


def page_url(staff, integration) -> str:
    """The confirmation waiting for its answer: the last preview run's page."""
    preview = SyncRun.objects.filter(integration=integration, dry_run=True, trigger=SyncTrigger.APPLY).latest("pk")
    return reverse("provisioning:confirm", args=[integration.pk, preview.pk])


def test_r15_the_apis_dry_run_answers_202_and_its_run_carries_the_agents_preview(
        agent_service, samba_dc, samba_ou, vault, staff):
    sales = samba_dc.make_ou("Sales", samba_ou)
    samba_dc.add_user(sales, samba_dc.unique_sam("ann"), "Ann", "Lee", "ann@corp.example.test")
    integration, token = agent_integration(vault)
    agent = agent_service(token)
    until(lambda: agent.pushes() == 1, what="the push at start")
    samba_dc.add_user(sales, samba_dc.unique_sam("bob"), "Bob", "Ray", "bob@corp.example.test")  # after the push
    api = APIClient()
    api.force_login(staff_user("api", superuser=True))

    response = api.post("/api/mappings/apply/", {"integration": integration.pk, "dry_run": True,
                                                 "folders": [integration.folders.get(name="Sales").pk],
                                                 "permission_level": pro_level().pk}, format="json")

    assert response.status_code == 202 and response.json()["phase"] == "waiting for the on-prem agent"
    location = response["Location"]
    until(lambda: api.get(location).json()["status"] == "succeeded", what="the API's preview")
    assert api.get(location).json()["counts"]["created"] == 2  # Bob, whom only a fresh read sees
    assert not PortalUser.objects.exists() and not Mapping.objects.exists()


def test_r15_an_agent_that_does_not_answer_is_not_responding_and_the_last_upload_is_shown_only_when_asked(
        agent_service, samba_dc, samba_ou, vault, staff, settings):
    sales = samba_dc.make_ou("Sales", samba_ou)
    samba_dc.add_user(sales, samba_dc.unique_sam("ann"), "Ann", "Lee", "ann@corp.example.test")
    integration, token = agent_integration(vault)
    agent = agent_service(token)
    until(lambda: agent.pushes() == 1, what="the push at start")
    agent.process.terminate()  # the agent stops
    agent.process.wait(timeout=30)
    settings.AGENT_PREVIEW_TIMEOUT_MINUTES = 0.03  # about 2 s instead of 3 minutes

    data = {"folders": [integration.folders.get(name="Sales").pk], "permission_level": pro_level().pk,
            "apply": "Apply"}
    asked = staff.post(reverse("provisioning:setup", args=[integration.pk]), data)
    assert "Asking the on-prem agent" in staff.get(asked.url).content.decode()
    time.sleep(2.5)
    page = staff.get(asked.url).content.decode()
    assert "The on-prem agent is not responding" in page and 'id="preview-counts"' not in page
    assert 'id="confirm-yes"' not in page  # nothing to say Yes to: never a silent success
    assert "Show the preview from the agent's last upload (read " in page

    fallback = staff.post(asked.url, {"last_upload": "1"}, follow=True).content.decode()
    assert "the on-prem agent&#x27;s last upload, read " in fallback and 'id="preview-counts"' in fallback
    assert counts_on(fallback)["to create"] == 1

    with pytest.raises(CommandError):
        call_command("resync", "--integration", str(integration.pk), "--dry-run", "--timeout", "1",
                     stdout=StringIO(), stderr=(err := StringIO()))
    assert "agent not responding" in err.getvalue().lower()

    refresh = staff.post(reverse("provisioning:setup", args=[integration.pk]), {"refresh": "1"}, follow=True)
    assert "Asking the on-prem agent to read the folders now" in refresh.content.decode()
    time.sleep(2.5)
    later = staff.get(reverse("provisioning:setup", args=[integration.pk])).content.decode()
    assert "The on-prem agent is not responding" in later
