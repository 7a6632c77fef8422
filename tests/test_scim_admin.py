"""Staff side of SCIM: the integration's page (endpoint, token shown once, activity), the request log, the command."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.urls import reverse

from scim.models import ScimEvent, ScimToken
from tests.scim_helpers import Scim, entra_user, scim_integration


@pytest.fixture
def staff_client(client, db):
    admin = get_user_model().objects.create_superuser("root", "root@msp.test", "a-long-test-password")
    client.force_login(admin)
    return client


def test_scim_r25_token_created_in_the_admin_is_shown_once_and_works(staff_client, client_org):
    integration = scim_integration(client_org)
    page = staff_client.get(reverse("admin:scim_scimintegration_change", args=[integration.pk])).content.decode()
    assert f"/scim/v2/{integration.pk}/" in page and "Create token" in page
    assert staff_client.get(reverse("admin:scim_scimintegration_token", args=[integration.pk])).status_code == 200
    response = staff_client.post(reverse("admin:scim_scimintegration_token", args=[integration.pk]))
    assert response.status_code == 200 and "no-store" in response["Cache-Control"]
    token = re.search(r'id="scim-token">([^<]+)<', response.content.decode()).group(1)
    assert Scim(integration, token).get("/Users")[0] == 200
    assert token not in staff_client.get(
        reverse("admin:scim_scimintegration_change", args=[integration.pk])).content.decode()
    assert ScimToken.objects.get().created_by.username == "root"


def test_scim_r27_the_list_shows_last_request_and_error_count(staff_client, client_org):
    scim = Scim(scim_integration(client_org))
    scim.post("/Users", entra_user("ada@contoso.com"))
    scim.post("/Users", entra_user("ada@contoso.com"))  # 409
    page = staff_client.get(reverse("admin:scim_scimintegration_changelist")).content.decode()
    assert "Entra provisioning" in page
    assert ScimEvent.objects.filter(status__gte=400).count() == 1
    assert staff_client.get(reverse("admin:scim_scimevent_changelist")).status_code == 200


def test_scim_token_command_prints_a_token_once(client_org, capsys):
    integration = scim_integration(client_org)
    call_command("scim_token", "--integration", str(integration.pk))
    out = capsys.readouterr().out
    token = re.search(r"Token \(shown once\): (\S+)", out).group(1)
    assert Scim(integration, token).get("/Users")[0] == 200
    call_command("scim_token", "--integration", str(integration.pk), "--revoke")
    assert Scim(integration, token).get("/Users")[0] == 401


def test_scim_integration_is_added_from_its_admin_page(staff_client, client_org):
    response = staff_client.post(reverse("admin:scim_scimintegration_add"), {
        "client": client_org.pk, "name": "Okta", "link_enabled": "on", "disable_threshold_percent": 10,
        "disable_threshold_minimum": 25})
    assert response.status_code == 302
    from directory.models import Integration

    assert Integration.objects.get(name="Okta").kind == "scim"
