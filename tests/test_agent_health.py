"""The portal hears about an agent's trouble: a read that fails on the agent's side, an agent gone quiet, a request
no agent picks up (R20, R21, R24). The agent runs as its own process, against the real Samba DC and the live portal.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from directory.models import Folder
from notifications.models import Notification
from passportal.models import PermissionLevel, PortalUser
from provisioning import runs
from provisioning.agent_outcomes import check_agents
from provisioning.agent_runs import quiet_topic
from provisioning.models import Mapping, SyncRun, SyncTrigger
from tests import agent_env, test_agent_end_to_end
from tests.fixtures_browser import agent_integration as pushed_agent_integration
from tests.fixtures_browser import ou, person
from tests.test_agent_end_to_end import agent_integration, run_agent

agent_python = agent_env.agent_python  # fixtures: the agent's own environment, the live portal behind TLS
https_portal = test_agent_end_to_end.https_portal


def statuses(client) -> dict[str, str]:
    return dict(PortalUser.objects.filter(client=client).values_list("email", "status"))


@pytest.mark.samba
@pytest.mark.django_db(transaction=True)
def test_r21_agent_read_failure_is_recorded_as_a_failed_run(agent_python, samba_dc, samba_ou, https_portal,
                                                             client_org, tmp_path, settings):
    settings.TASKS_RUN_INLINE = True  # the run an upload starts is applied before the commit is answered
    samba_dc.add_user(samba_ou, samba_dc.unique_sam("hf"), "Hanna", "Fail", "hanna@corp.example.test")
    integration, token = agent_integration(client_org)
    assert run_agent(agent_python, samba_dc, samba_ou, https_portal, token, tmp_path).returncode == 0
    Mapping.objects.create(folder=Folder.objects.get(integration=integration, parent__isnull=True),
                           permission_level=PermissionLevel.objects.get(user_kind="site", name="Site User"))
    assert run_agent(agent_python, samba_dc, samba_ou, https_portal, token, tmp_path).returncode == 0
    before = statuses(client_org)
    assert before == {"hanna@corp.example.test": "pending"}

    with samba_dc.stopped():
        result = run_agent(agent_python, samba_dc, samba_ou, https_portal, token, tmp_path)

    assert result.returncode == 1 and "Could not read" in result.stderr
    run = SyncRun.objects.filter(integration=integration).order_by("-pk").first()
    assert (run.status, run.trigger) == ("failed", SyncTrigger.AGENT)
    assert run.error.startswith("The on-prem agent on ") and "could not read Active Directory" in run.error
    assert "cannot connect" in run.error
    note = Notification.objects.get(kind="sync_failed", integration=integration)
    assert note.title == f"{client_org.name} / {integration.name}: sync failed (directory unreachable)"
    assert "Nobody's enabled state was changed" in note.message
    assert statuses(client_org) == before
    for secret in (token, samba_dc.admin_password):
        assert secret not in run.error + note.message

    # The DC is back: the next push settles the failure.
    assert run_agent(agent_python, samba_dc, samba_ou, https_portal, token, tmp_path).returncode == 0
    note.refresh_from_db()
    assert note.resolved_at is not None


@pytest.mark.samba
@pytest.mark.django_db(transaction=True)
def test_r20_an_agent_that_has_not_pushed_for_the_set_hours_raises_a_notification_that_settles_when_it_returns(
        agent_python, samba_dc, samba_ou, https_portal, client_org, tmp_path, settings):
    settings.AGENT_QUIET_AFTER_HOURS = 2  # "shortened": the check is run as if hours had passed
    samba_dc.add_user(samba_ou, samba_dc.unique_sam("qa"), "Quinn", "Quiet", "quinn@corp.example.test")
    integration, token = agent_integration(client_org)
    assert run_agent(agent_python, samba_dc, samba_ou, https_portal, token, tmp_path).returncode == 0
    assert check_agents()["quiet"] == 0  # it has just pushed

    later = timezone.now() + timedelta(hours=3)
    assert check_agents(now=later)["quiet"] == 1
    assert check_agents(now=later)["quiet"] == 0  # said once per quiet spell
    note = Notification.objects.get(topic=quiet_topic(integration.pk))
    assert note.title == f"{client_org.name} / {integration.name}: the on-prem agent has not sent a read for 2 hours"
    assert "It last contacted the portal 3 hours" in note.message and note.needs_someone

    assert run_agent(agent_python, samba_dc, samba_ou, https_portal, token, tmp_path).returncode == 0
    note.refresh_from_db()
    assert note.resolved_at is not None and not note.needs_someone  # closed by itself when the agent came back


def test_r24_a_force_resync_no_agent_answers_fails_as_agent_not_responding(client_org, settings):
    settings.AGENT_REQUEST_TIMEOUT_MINUTES = 15
    sales = ou(1, "Sales")
    integration = pushed_agent_integration(client_org, [sales], [person(1, sales)])
    run = runs.request_sync(integration, SyncTrigger.FORCE)
    assert (run.status, run.phase) == ("queued", "waiting for the on-prem agent")

    assert check_agents(now=timezone.now() + timedelta(minutes=10))["not_answered"] == 0  # still within the time
    assert check_agents(now=timezone.now() + timedelta(minutes=16))["not_answered"] == 1
    run.refresh_from_db()
    assert run.status == "failed" and run.error.startswith("Agent not responding: the on-prem agent did not pick up")
    assert run.counts == {}  # nothing was applied from the older upload
    assert Notification.objects.filter(kind="sync_failed", integration=integration).count() == 1


def test_r21_a_read_failure_reported_while_a_force_resync_waits_fails_that_run(client_org):
    from provisioning.agent_outcomes import read_failed

    sales = ou(1, "Sales")
    integration = pushed_agent_integration(client_org, [sales], [person(1, sales)])
    waiting = runs.request_sync(integration, SyncTrigger.FORCE)

    failed = read_failed(integration, "dc1: cannot connect", permanent=False, host="agent-host")

    assert failed.pk == waiting.pk and failed.status == "failed"
    assert failed.error == "The on-prem agent on agent-host could not read Active Directory: dc1: cannot connect"


def test_r20_the_portal_checks_its_agents_every_5_minutes(db):
    from django_q.models import Schedule

    from passportal.schedules import SCHEDULES, ensure_schedules

    ensure_schedules()
    schedule = Schedule.objects.get(name=SCHEDULES["agent_check"].name)
    assert (schedule.func, schedule.minutes) == ("provisioning.tasks.check_agents_task", 5)
