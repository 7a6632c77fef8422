"""R22: held disables end when staff decide; the run then says so everywhere, with who decided and when."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from passportal.models import PermissionLevel, PortalUser
from provisioning import actions
from provisioning.api.authentication import issue_api_token
from provisioning.models import Mapping, SyncRun
from tests.fixtures_browser import activated_site_admin, agent_integration, ou, person, push_directory, staff_user

SALES, IT = ou(1, "Sales"), ou(2, "IT")
PEOPLE = [person(1, SALES), person(2, SALES), person(3, IT)]


@pytest.fixture
def held_run(client_org) -> SyncRun:
    """Sales and IT mapped, then Sales' two users vanish from the directory with a threshold of 1: held."""
    activated_site_admin(client_org)
    integration = agent_integration(client_org, [SALES, IT], PEOPLE)
    integration.disable_threshold_minimum = 1
    integration.save()
    level = PermissionLevel.objects.get(user_kind="site", name="Site User")
    for folder in integration.folders.all():
        Mapping.objects.create(folder=folder, permission_level=level)
    assert push_directory(integration, [SALES, IT], PEOPLE).status == "succeeded"
    run = push_directory(integration, [SALES, IT], PEOPLE[2:])
    assert run.status == "held" and len(run.held_disables) == 2
    return run


def test_r22_applying_held_disables_ends_the_hold_and_keeps_who_and_when(held_run):
    tom = staff_user("tom", superuser=True)
    tom.first_name, tom.last_name = "Tom", "Tech"
    tom.save()
    before = timezone.now()
    assert actions.apply_held_disables(held_run, by=tom) == 2
    run = SyncRun.objects.get(pk=held_run.pk)
    assert run.status == "succeeded" and run.held_resolution == "applied"
    assert run.held_decided_by == tom and before <= run.held_decided_at <= timezone.now()
    assert PortalUser.objects.filter(status="disabled").count() == 2


def test_r22_discarding_held_disables_ends_the_hold_and_keeps_who_and_when(held_run):
    tom = staff_user("tom", superuser=True)
    actions.discard_held_disables(held_run, by=tom)
    run = SyncRun.objects.get(pk=held_run.pk)
    assert run.status == "succeeded" and run.held_resolution == "discarded"
    assert run.held_decided_by == tom and run.held_decided_at is not None
    assert not PortalUser.objects.filter(status="disabled").exists()


def test_r22_a_decided_run_cannot_be_decided_again(held_run):
    actions.discard_held_disables(held_run, by=None)
    with pytest.raises(ValueError, match="no disables waiting"):
        actions.apply_held_disables(held_run, by=None)


def test_r22_the_decision_shows_on_the_run_page_the_overview_and_user_mapping(staff_client, held_run):
    integration = held_run.integration
    waiting = staff_client.get(reverse("provisioning:run", args=[held_run.pk])).content.decode()
    assert "Held: disables wait for a staff decision" in waiting and 'id="apply-held"' in waiting

    staff_client.post(reverse("provisioning:held-decision", args=[held_run.pk]), {"action": "applied"})
    decided_at = SyncRun.objects.get(pk=held_run.pk).held_decided_at
    when = timezone.localtime(decided_at).strftime("%-d %b %Y, %H:%M")
    decision = f"held disables applied by boss on {when}"

    run_page = staff_client.get(reverse("provisioning:run", args=[held_run.pk])).content.decode()
    assert f"Succeeded; {decision}" in run_page and 'id="apply-held"' not in run_page
    assert 'data-status="succeeded"' in run_page
    overview = staff_client.get(reverse("provisioning:overview")).content.decode()
    row = overview.split(f'data-integration="{integration.pk}"')[1].split("</tr>")[0]
    assert f"Succeeded; {decision}" in row and "Held:" not in row and "would be disabled" not in row
    assert '<td class="held" data-label="Held disables">0</td>' in row
    mapping = staff_client.get(reverse("provisioning:user-mapping", args=[integration.client_id])).content.decode()
    assert f"Succeeded; {decision}" in mapping
    state = staff_client.get(reverse("provisioning:run-status", args=[held_run.pk])).json()
    assert state["status"] == "succeeded" and state["status_display"] == f"Succeeded; {decision}"
    assert not state["held_waiting"]


def test_r22_the_api_shows_who_decided_and_when(db, held_run):
    boss = staff_user("boss", superuser=True)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {issue_api_token(boss)}")
    response = api.post(f"/api/runs/{held_run.pk}/discard-held/")
    assert response.status_code == 200
    body = api.get(f"/api/runs/{held_run.pk}/").json()
    assert body["status"] == "succeeded" and body["held_resolution"] == "discarded"
    assert body["held_decided_by"] == boss.pk
    decided = dt.datetime.fromisoformat(body["held_decided_at"])
    assert abs((timezone.now() - decided).total_seconds()) < 60
