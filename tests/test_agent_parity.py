"""Agent mode does what direct mode does (issue 15): Force Re-sync and a user's resync reach the agent through its
poll and are carried out with a fresh read; a preview from the agent's last upload (the explicit fallback) says so.

The agent runs as a service (its own process and environment) against the real Samba DC and the live portal.
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Callable, Iterator

import pytest
from django.core.management import call_command
from django.urls import reverse

from directory.models import Folder
from passportal.models import PermissionLevel, PortalUser
from provisioning import actions, runs, sync
from provisioning.models import Mapping, SyncRun, SyncTrigger
from tests import agent_env, test_agent_end_to_end
from tests.fixtures_browser import activated_site_admin, ou, person
from tests.fixtures_browser import agent_integration as pushed_agent_integration
from tests.test_agent_end_to_end import agent_environ, agent_integration

agent_python = agent_env.agent_python  # fixtures: the agent's own environment, the live portal behind TLS
https_portal = test_agent_end_to_end.https_portal


def until(condition: Callable[[], object], timeout: float = 60, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


class AgentService:
    """`python -m agent` as it runs as a service: pushes at start, then polls (every half second here)."""

    def __init__(self, process: subprocess.Popen) -> None:
        self.process = process
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line)

    def pushes(self) -> int:
        return sum(line.startswith("Pushed ") for line in self.lines)


@pytest.fixture
def agent_service(agent_python, samba_dc, samba_ou, https_portal, tmp_path) -> Iterator[Callable[[str], AgentService]]:
    started: list[AgentService] = []

    def start(token: str) -> AgentService:
        ca_file = tmp_path / "ca.pem"
        ca_file.write_text(samba_dc.ca_pem)
        env = agent_environ(AGENT_TOKEN=token, LDAP_BIND_PASSWORD=samba_dc.admin_password, LDAP_CA_FILE=str(ca_file),
                            PORTAL_CA_FILE=str(https_portal.ca_file))
        process = subprocess.Popen(
            [str(agent_python), "-m", "agent", "--portal", https_portal.url, "--ldap-url", samba_dc.ldaps_url,
             "--base-dn", samba_ou, "--bind-dn", samba_dc.admin_bind_dn, "--interval-hours", "100",
             "--poll-seconds", "0.5"],
            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        started.append(AgentService(process))
        return started[-1]

    yield start
    for service in started:
        service.process.terminate()
        service.process.wait(timeout=30)


@pytest.mark.samba
@pytest.mark.django_db(transaction=True)
def test_r28_force_resync_and_a_users_resync_of_an_agent_integration_are_carried_out_by_the_agent(
        agent_service, samba_dc, samba_ou, client_org, settings):
    settings.TASKS_RUN_INLINE = True
    settings.AGENT_REQUESTS_PER_MINUTE = 10_000  # it polls twice a second here
    ann = samba_dc.add_user(samba_ou, samba_dc.unique_sam("ann"), "Ann", "Lee", "ann@corp.example.test")
    integration, token = agent_integration(client_org)
    agent = agent_service(token)
    until(lambda: agent.pushes() == 1, what="the push at start")
    Mapping.objects.create(folder=Folder.objects.get(integration=integration, parent__isnull=True),
                           permission_level=PermissionLevel.objects.get(user_kind="site", name="Site User"))

    # Force Re-sync: the run waits for the agent, which reads AD now (Bob is new there) and pushes it.
    samba_dc.add_user(samba_ou, samba_dc.unique_sam("bob"), "Bob", "Ray", "bob@corp.example.test")
    forced = runs.request_sync(integration, SyncTrigger.FORCE)
    assert (forced.status, forced.phase) == ("queued", "waiting for the on-prem agent")
    until(lambda: SyncRun.objects.get(pk=forced.pk).status == "succeeded", what="the forced run")
    until(lambda: agent.pushes() == 2, what="the agent to say it pushed")
    assert set(PortalUser.objects.filter(client=client_org).values_list("email", flat=True)) == {
        "ann@corp.example.test", "bob@corp.example.test"}

    # A user's resync: applied at once from the last upload (and it says so), the agent asked for a fresh read.
    samba_dc.set_names(ann, given="Annabel")
    portal_ann = PortalUser.objects.get(email="ann@corp.example.test")
    [run] = actions.resync_user(portal_ann, by=None)
    assert run.status == "succeeded" and "not from Active Directory as it is now" in run.changes["source"]
    asked = SyncRun.objects.get(integration=integration, status="queued")
    assert (asked.trigger, asked.phase) == (SyncTrigger.USER, "waiting for the on-prem agent")
    until(lambda: SyncRun.objects.get(pk=asked.pk).status == "succeeded", what="the run the resync asked for")
    until(lambda: agent.pushes() == 3, what="the agent to say it pushed")
    portal_ann.refresh_from_db()
    assert portal_ann.first_name == "Annabel"


def test_r15_an_agent_preview_says_it_shows_the_last_upload_not_ad_as_it_is_now(client_org, staff_client):
    activated_site_admin(client_org)  # the client's mapping pages open only then
    sales = ou(1, "Sales")
    integration = pushed_agent_integration(client_org, [sales], [person(1, sales)])

    preview = sync.preview(integration)
    assert preview.changes["source"].startswith("This shows the on-prem agent's last upload, read ")
    assert "not Active Directory as it is now; a Force Re-sync asks the agent to read it again" in \
        preview.changes["source"]

    out = _resync_dry_run(integration.pk)
    assert "dry run, nothing changed" in out and "not Active Directory as it is now" in out

    # Apply's confirmation asks the agent for a fresh read instead (here the suite's stand-in answers it, as an
    # agent would over an unchanged AD: tests/test_agent_asked_reads.py runs the real one), and shows it as a
    # direct-mode one does; the last upload only as the explicit fallback.
    data = {"folders": [integration.folders.get(external_id=sales["id"]).pk], "apply": "Apply",
            "permission_level": PermissionLevel.objects.get(user_kind="site", name="Site User").pk}
    confirm = staff_client.post(reverse("provisioning:setup", args=[integration.pk]), data, follow=True)
    page = confirm.content.decode()
    assert 'id="preview-source"' not in page and "against the directory as it is" in page


def _resync_dry_run(integration_id: int) -> str:
    from io import StringIO

    out = StringIO()
    call_command("resync", "--integration", str(integration_id), "--dry-run", "--last-upload", stdout=out)
    return out.getvalue()


def test_r15_a_direct_mode_preview_has_no_upload_to_speak_of(client_org):
    from directory.models import Integration

    demo = Integration.objects.filter(kind="demo").first() or Integration.objects.create(
        client=client_org, name="Demo", kind="demo")
    assert "source" not in sync.preview(demo).changes

