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

    okta = Integration.objects.get(name="Okta")
    assert okta.kind == "scim"
    assert okta.folders.get().name == "All users of this SCIM app"  # mappable before the first push


def test_scim_r15_r16_groups_are_mapped_in_the_same_user_mapping_page_preview_then_yes(
        staff_client, client_org, settings, django_capture_on_commit_callbacks):
    from directory.models import Folder
    from passportal.models import PortalUser
    from provisioning.models import SyncRun
    from tests.engine_helpers import site_level
    from tests.fixtures_browser import activated_site_admin
    from tests.scim_helpers import GROUP

    activated_site_admin(client_org)
    scim = Scim(scim_integration(client_org))
    _, ada = scim.post("/Users", entra_user("ada@contoso.com"))
    _, sales = scim.post("/Groups", {"schemas": [GROUP], "displayName": "Sales", "members": [{"value": ada["id"]}]})
    page = staff_client.get(reverse("provisioning:user-mapping", args=[client_org.pk])).content.decode()
    assert "SCIM 2.0" in page and reverse("provisioning:setup", args=[scim.integration.pk]) in page
    setup = staff_client.get(reverse("provisioning:setup", args=[scim.integration.pk])).content.decode()
    assert "Sales" in setup and "All users of this SCIM app" in setup
    folder = Folder.objects.get(integration=scim.integration, external_id=sales["id"])
    response = staff_client.post(reverse("provisioning:setup", args=[scim.integration.pk]), {
        "folders": [folder.pk], "permission_level": site_level("Site User").pk, "security_groups": [],
        "new_group": "", "apply": "Apply"})
    assert response.status_code == 302
    preview = staff_client.get(response.url).content.decode()
    assert "ada@contoso.com" in preview  # the preview, by the same planner, from the stored SCIM state
    assert not PortalUser.objects.filter(email="ada@contoso.com").exists()
    settings.TASKS_RUN_INLINE = True
    with django_capture_on_commit_callbacks(execute=True):
        staff_client.post(response.url, {"yes": "1"})
    assert SyncRun.objects.get(trigger="apply", dry_run=False).counts["created"] == 1
    assert PortalUser.objects.get(email="ada@contoso.com").permission_level.name == "Site User"


def test_scim_r27_the_overview_shows_the_last_request_and_refusals(staff_client, client_org):
    scim = Scim(scim_integration(client_org))
    page = staff_client.get(reverse("provisioning:overview")).content.decode()
    assert "no request yet" in page
    scim.post("/Users", entra_user("ada@contoso.com"))
    scim.post("/Users", entra_user("ada@contoso.com"))  # 409
    page = staff_client.get(reverse("provisioning:overview")).content.decode()
    assert "last request" in page and "1 refused in 24 h" in page
