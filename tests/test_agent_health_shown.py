"""Agent health shown (issue 15 item 2): each push and poll says the agent's version, host name and how long its
last read took; the portal keeps them on the integration and shows when the agent was last heard from and its
version on the integration's admin page, the overview (R27) and the staff API."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from directory.models import Integration
from provisioning.api.authentication import issue_api_token
from tests.fixtures_browser import staff_user
from tests.test_agent_api import Agent, agent_integration

pytestmark = pytest.mark.django_db

HEALTH = {"agent_version": "passportal-ad-agent 2.4.0", "host": "dc-agent-01.corp.test", "last_read_seconds": 12.34}


def test_r27_a_poll_keeps_the_agents_version_host_and_last_read_duration(client_org):
    integration, token = agent_integration(client_org)
    response = Agent(token).post("poll/", HEALTH)
    assert response.status_code == 200, response.content
    integration.refresh_from_db()
    assert integration.agent_version == "passportal-ad-agent 2.4.0"
    assert integration.agent_host == "dc-agent-01.corp.test"
    assert integration.agent_last_read_seconds == pytest.approx(12.34)
    assert timezone.now() - integration.agent_last_contact < timedelta(minutes=1)


def test_r27_a_push_keeps_the_agents_version_host_and_last_read_duration(client_org):
    integration, token = agent_integration(client_org)
    agent = Agent(token)
    response = agent.post("uploads/", {"directory_id": "corp.test", **HEALTH, "host": "agent-host-2",
                                       "last_read_seconds": 3.5})
    assert response.status_code == 201, response.content
    integration.refresh_from_db()
    assert (integration.agent_version, integration.agent_host, integration.agent_last_read_seconds) == (
        "passportal-ad-agent 2.4.0", "agent-host-2", 3.5)


def test_r27_a_poll_before_the_agents_first_read_keeps_the_duration_known_so_far(client_org):
    integration, token = agent_integration(client_org)
    agent = Agent(token)
    agent.post("poll/", HEALTH)
    # An agent just restarted has not read yet (null); an older agent says no host.
    response = agent.post("poll/", {"agent_version": "passportal-ad-agent 2.5.0", "last_read_seconds": None})
    assert response.status_code == 200, response.content
    integration.refresh_from_db()
    assert integration.agent_version == "passportal-ad-agent 2.5.0"
    assert integration.agent_host == "dc-agent-01.corp.test"
    assert integration.agent_last_read_seconds == pytest.approx(12.34)


def test_r27_a_negative_read_duration_is_refused_and_named(client_org):
    integration, token = agent_integration(client_org)
    response = Agent(token).post("poll/", {**HEALTH, "last_read_seconds": -1})
    assert response.status_code == 400 and "last_read_seconds" in response.content.decode()
    integration.refresh_from_db()
    assert integration.agent_last_contact is None and integration.agent_host == ""


def test_r27_the_overview_says_when_the_agent_was_last_heard_from(staff_client, client_org):
    integration, token = agent_integration(client_org)
    Agent(token).post("poll/", HEALTH)
    Integration.objects.filter(pk=integration.pk).update(agent_last_contact=timezone.now() - timedelta(hours=3))
    page = staff_client.get(reverse("provisioning:overview")).content.decode()
    row = re.search(rf'<tr class="overview-row" data-integration="{integration.pk}">(.*?)</tr>', page, re.S).group(1)
    text = re.sub(r"<[^>]+>", " ", row)
    assert re.search(r"Last heard from the agent:\s+3\xa0hours ago", text), text
    assert "Version: passportal-ad-agent 2.4.0" in text and "Host: dc-agent-01.corp.test" in text
    assert "Its last read of AD took 12.3 s" in text


def test_r27_the_overview_says_an_agent_never_heard_from_and_nothing_for_other_kinds(staff_client, client_org, vault):
    integration, _ = agent_integration(client_org)
    page = staff_client.get(reverse("provisioning:overview")).content.decode()
    row = re.search(rf'<tr class="overview-row" data-integration="{integration.pk}">(.*?)</tr>', page, re.S).group(1)
    assert re.search(r"Last heard from the agent:\s+never", re.sub(r"<[^>]+>", " ", row))
    assert "Its last read" not in row and "Host:" not in row
    assert page.count("Last heard from the agent") == 1  # only agent integrations say it


def test_r27_the_integrations_admin_page_shows_the_agents_health(staff_client, client_org):
    integration, token = agent_integration(client_org)
    page = staff_client.get(reverse("admin:directory_integration_change", args=[integration.pk])).content.decode()
    assert "Last heard from the agent" in page and "Never" in page and "Not known yet" in page
    Agent(token).post("poll/", HEALTH)
    page = staff_client.get(reverse("admin:directory_integration_change", args=[integration.pk])).content.decode()
    assert re.search(r"Last heard from the agent.*?0\xa0minutes ago \(", page, re.S)
    assert "passportal-ad-agent 2.4.0" in page and "dc-agent-01.corp.test" in page
    assert "12.3 s to read AD" in page


def test_r27_the_staff_api_gives_the_agents_health_read_only(client_org):
    integration, token = agent_integration(client_org)
    Agent(token).post("poll/", HEALTH)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {issue_api_token(staff_user('boss', superuser=True))}")
    body = api.get(f"/api/integrations/{integration.pk}/").json()
    assert body["agent_version"] == "passportal-ad-agent 2.4.0" and body["agent_host"] == "dc-agent-01.corp.test"
    assert body["agent_last_read_seconds"] == pytest.approx(12.34) and body["agent_last_contact"]
    response = api.patch(f"/api/integrations/{integration.pk}/", {"agent_host": "elsewhere",
                                                                  "agent_last_read_seconds": 1}, format="json")
    assert response.status_code in (200, 428), response.content
    integration.refresh_from_db()
    assert integration.agent_host == "dc-agent-01.corp.test" and integration.agent_last_read_seconds == 12.34


def test_r27_the_openapi_schema_describes_the_agents_health(client_org):
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {issue_api_token(staff_user('boss', superuser=True))}")
    schema = api.get("/api/schema/", {"format": "json"}).content.decode()
    assert "The host name the agent runs on." in schema
    assert "Last heard from the agent" in schema
