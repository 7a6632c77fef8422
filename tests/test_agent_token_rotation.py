"""Rotating an agent token: the token it replaces keeps working for AGENT_TOKEN_GRACE_MINUTES, then stops (R26).

So the agent can be given the new token without a push or poll being refused in between. The end-to-end case runs
the real agent (its own process and environment) against the Samba AD DC and the live portal over HTTPS, with the
grace shortened to seconds; staff rotate on the integration's page as they would.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from directory.models import AgentUpload, Integration, UploadStatus
from tests import agent_env
from tests import test_agent_end_to_end as end_to_end
from tests.test_agent_end_to_end import agent_integration, run_agent

# Fixtures: the agent's own environment, and the live portal behind HTTPS.
agent_python = agent_env.agent_python
https_portal = end_to_end.https_portal


def poll(token: str) -> int:
    agent = APIClient()
    agent.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return agent.post("/api/agent/poll/", {}, format="json").status_code


def latest_upload(integration: Integration) -> AgentUpload:
    return AgentUpload.objects.filter(integration=integration).latest("pk")


def rotate(staff_client, integration: Integration):
    return staff_client.post(reverse("admin:directory_integration_agent_token", args=[integration.pk]))


@pytest.mark.samba
@pytest.mark.django_db(transaction=True)
def test_r26_a_rotated_agent_token_works_for_the_grace_period_then_stops(agent_python, samba_dc, samba_ou,
                                                                         https_portal, client_org, staff_client,
                                                                         settings, tmp_path):
    samba_dc.add_user(samba_ou, samba_dc.unique_sam("rot"), "Rita", "Rotate", "rita@corp.example.test")
    integration, old = agent_integration(client_org)
    settings.AGENT_TOKEN_GRACE_MINUTES = 0.15  # nine seconds: long enough for one push, short enough to wait out

    page = rotate(staff_client, integration)
    new = page.context["token"]
    shown = page.content.decode()
    assert new in shown and "no-store" in page["Cache-Control"]  # shown once, on this page only
    assert "The previous token keeps working until" in shown and "0.15 minutes from now" in shown
    integration.refresh_from_db()
    until = integration.agent_previous_token_until
    assert new.startswith("pat_") and old != new and until is not None

    # Within the grace the agent still on the old token pushes; the one given the new token does too.
    in_grace = run_agent(agent_python, samba_dc, samba_ou, https_portal, old, tmp_path)
    assert timezone.now() < until, "the push took longer than the shortened grace: lengthen it"
    assert in_grace.returncode == 0, in_grace.stderr
    pushed_old = latest_upload(integration)
    assert run_agent(agent_python, samba_dc, samba_ou, https_portal, new, tmp_path).returncode == 0
    pushed_new = latest_upload(integration)
    assert pushed_new.pk > pushed_old.pk and pushed_old.status == pushed_new.status == UploadStatus.COMMITTED

    # After it the old token is refused (401) and pushes nothing; the new one keeps working.
    time.sleep(max((until - timezone.now()).total_seconds(), 0) + 0.5)
    after = run_agent(agent_python, samba_dc, samba_ou, https_portal, old, tmp_path)
    assert after.returncode != 0 and "refused the agent token (401)" in after.stderr
    assert old not in after.stdout + after.stderr
    assert latest_upload(integration) == pushed_new  # nothing pushed
    assert poll(new) == 200 and poll(old) == 401


@pytest.mark.django_db
def test_r26_staff_can_stop_the_replaced_token_at_once_and_a_second_rotation_ends_the_first_token(
        staff_client, client_org):
    integration, first = agent_integration(client_org)
    second = rotate(staff_client, integration).context["token"]
    assert poll(first) == 200 and poll(second) == 200
    change_page = staff_client.get(reverse("admin:directory_integration_change", args=[integration.pk]))
    assert "the token it replaced keeps working until" in change_page.content.decode()
    assert "keeps working for 10 minutes, then stops" in change_page.content.decode()  # the Rotate confirmation

    third = rotate(staff_client, integration).context["token"]  # only the token replaced last has a grace
    assert (poll(first), poll(second), poll(third)) == (401, 200, 200)

    response = staff_client.post(reverse("admin:directory_integration_agent_token", args=[integration.pk]),
                                 {"end_previous": "1"}, follow=True)
    assert "The previous agent token no longer works" in response.content.decode()
    assert (poll(second), poll(third)) == (401, 200)
    integration.refresh_from_db()
    assert integration.agent_previous_token_hash == "" and integration.previous_agent_token_works_until() is None


@pytest.mark.django_db
def test_r26_the_api_says_until_when_the_replaced_agent_token_works(client_org, settings):
    from provisioning.api.authentication import issue_api_token
    from tests.fixtures_browser import staff_user

    integration, old = agent_integration(client_org)
    boss = APIClient()
    boss.credentials(HTTP_AUTHORIZATION=f"Token {issue_api_token(staff_user('api-boss', superuser=True))}")
    before = timezone.now()

    rotated = boss.post(f"/api/integrations/{integration.pk}/agent-token/")

    assert rotated.status_code == 201 and rotated.json()["rotated"] is True
    until = rotated.json()["previous_token_works_until"]
    grace = timedelta(minutes=settings.AGENT_TOKEN_GRACE_MINUTES)
    assert before + grace <= datetime.fromisoformat(until) <= timezone.now() + grace
    assert poll(old) == 200 and poll(rotated.json()["token"]) == 200
    settings.AGENT_TOKEN_GRACE_MINUTES = 0  # no grace: the replaced token stops at once
    again = boss.post(f"/api/integrations/{integration.pk}/agent-token/").json()
    assert again["previous_token_works_until"] is None and poll(rotated.json()["token"]) == 401
