"""The link switch of an agent integration (R10, R15): switching the link on previews what the on-prem agent reads
from AD now (asked through its poll, as Apply's confirmation does), the run after Yes waits for the agent's fresh
read so its counts are the preview's, and an agent that does not answer is "not responding" (no Yes) with the last
upload shown only when asked.

The agent runs as a service (its own process and environment, polling twice a second) against the real Samba DC
and the live portal behind TLS, as in tests/test_agent_asked_reads.py, whose fixtures these tests share.
"""

from __future__ import annotations

import re
import time

import pytest
from django.urls import reverse

from directory.models import Folder
from passportal.models import PortalUser
from provisioning import sync
from provisioning.models import Mapping, SyncRun, SyncTrigger
from tests import agent_env, test_agent_end_to_end, test_agent_parity
from tests.test_agent_asked_reads import pro_level, staff  # noqa: F401 (staff: a fixture)
from tests.test_agent_end_to_end import agent_integration
from tests.test_agent_parity import until

agent_python = agent_env.agent_python  # fixtures: the agent's own environment, the live portal, the agent service
https_portal = test_agent_end_to_end.https_portal
agent_service = test_agent_parity.agent_service

pytestmark = [pytest.mark.samba, pytest.mark.django_db(transaction=True)]


def link_counts(page: str) -> dict[str, int]:
    """The link confirmation's figures, keyed as a run's counts are ("To re-enable" -> "reenabled")."""
    found = re.findall(r'<tr class="count-row"><th scope="row">([^<]+)</th><td>(\d+)</td>', page)
    keys = {"to create": "created", "to update": "updated", "to disable": "disabled", "to re-enable": "reenabled"}
    return {keys.get(label.strip().lower(), label.strip().lower()): int(n) for label, n in found}


def switched_off_with_a_change_after_the_last_upload(samba_dc, samba_ou, vault, staff, agent_service):  # noqa: F811
    """Ann and Bob provisioned from the agent's push, the link switched off (both disabled); then, in AD only, Bob
    is renamed and Carl is new: what only a fresh read sees."""
    sales = samba_dc.make_ou("Sales", samba_ou)
    samba_dc.add_user(sales, samba_dc.unique_sam("ann"), "Ann", "Lee", "ann@corp.example.test")
    bob = samba_dc.add_user(sales, samba_dc.unique_sam("bob"), "Bob", "Ray", "bob@corp.example.test")
    integration, token = agent_integration(vault)
    agent = agent_service(token)
    until(lambda: agent.pushes() == 1, what="the push at start")
    Mapping.objects.create(folder=Folder.objects.get(integration=integration, name="Sales"),
                           permission_level=pro_level())
    assert sync.run_sync(integration, SyncTrigger.FORCE).counts["created"] == 2
    off = staff.post(reverse("provisioning:link", args=[integration.pk]), {"enabled": "0"})
    assert off.status_code == 302 and PortalUser.objects.filter(status="disabled").count() == 2
    samba_dc.set_names(bob, given="Robert")
    samba_dc.add_user(sales, samba_dc.unique_sam("carl"), "Carl", "Moe", "carl@corp.example.test")
    integration.refresh_from_db()
    return integration, agent


def test_r10_r15_the_link_on_preview_is_read_by_the_agent_and_the_run_after_yes_matches_it(
        agent_service, samba_dc, samba_ou, vault, staff):  # noqa: F811
    integration, _ = switched_off_with_a_change_after_the_last_upload(samba_dc, samba_ou, vault, staff, agent_service)
    url = reverse("provisioning:link", args=[integration.pk])

    asked = staff.get(url + "?enabled=1")  # asks the agent, and comes back with the waiting preview's id
    assert asked.status_code == 302 and "preview=" in asked.url
    first = staff.get(asked.url).content.decode()
    page = first
    deadline = time.monotonic() + 60
    while 'id="agent-waiting"' in page:
        assert time.monotonic() < deadline, "the agent's read for the link's preview did not arrive"
        time.sleep(0.3)
        page = staff.get(asked.url).content.decode()
    assert "Asking the on-prem agent to read Active Directory now" in first and '<meta http-equiv="refresh"' in first
    assert 'id="confirm-yes"' not in first  # nothing to say Yes to while it waits
    shown = link_counts(page)
    assert shown == {"created": 1, "updated": 1, "reenabled": 2}, shown  # Carl and Robert: only AD as it is now
    assert 'id="preview-fresh"' in page and "last upload" not in page
    assert not integration.runs.filter(dry_run=False, status="queued").exists()  # a preview starts no run

    yes = staff.post(asked.url, {"enabled": "1", "yes": "1"})
    run = SyncRun.objects.get(pk=int(yes.url.rstrip("/").split("/")[-1]))
    assert run.trigger == SyncTrigger.LINK
    until(lambda: SyncRun.objects.get(pk=run.pk).status == "succeeded", what="the run after Yes")
    run.refresh_from_db()
    assert {k: v for k, v in run.counts.items() if k in shown and v} == shown
    assert PortalUser.objects.get(email="bob@corp.example.test").first_name == "Robert"
    assert PortalUser.objects.filter(email="carl@corp.example.test").exists()


def test_r10_r15_the_link_on_preview_says_the_agent_is_not_responding_and_offers_the_last_upload_only_when_asked(
        agent_service, samba_dc, samba_ou, vault, staff, settings):  # noqa: F811
    integration, agent = switched_off_with_a_change_after_the_last_upload(
        samba_dc, samba_ou, vault, staff, agent_service)
    agent.process.terminate()  # the agent stops
    agent.process.wait(timeout=30)
    settings.AGENT_PREVIEW_TIMEOUT_MINUTES = 0.03  # about 2 s instead of 3 minutes
    url = reverse("provisioning:link", args=[integration.pk])

    asked = staff.get(url + "?enabled=1")
    assert "Asking the on-prem agent" in staff.get(asked.url).content.decode()
    time.sleep(2.5)
    page = staff.get(asked.url).content.decode()
    assert "The on-prem agent is not responding" in page and 'id="link-preview-counts"' not in page
    assert 'id="confirm-yes"' not in page and '<meta http-equiv="refresh"' not in page
    assert "Show the preview from the agent's last upload (read " in page
    integration.refresh_from_db()
    assert not integration.link_enabled  # still off: nothing was changed

    fallback = staff.post(asked.url, {"last_upload": "1"}, follow=True).content.decode()
    assert "the on-prem agent&#x27;s last upload, read " in fallback and 'id="preview-source"' in fallback
    assert link_counts(fallback) == {"reenabled": 2}  # the last upload knows neither Carl nor Robert
    integration.refresh_from_db()
    assert not integration.link_enabled  # the fallback shows, it switches nothing

    yes = staff.post(url, {"enabled": "1", "yes": "1"})  # Yes still waits for the agent's fresh read
    run = SyncRun.objects.get(pk=int(yes.url.rstrip("/").split("/")[-1]))
    assert (run.status, run.phase) == ("queued", "waiting for the on-prem agent")
