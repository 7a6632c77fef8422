"""R2, R11: Site-Users get Site-User levels and Pro-Users get Pro-User levels, wherever staff choose one.

The admin, the mapping form and the API refuse a level of the wrong kind with the same sentence, on the level's field.
"""

from __future__ import annotations

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from passportal.models import Client, PermissionLevel, PortalUser, wrong_kind_message
from provisioning.api.authentication import issue_api_token
from provisioning.models import Mapping, SyncRun
from tests.fixtures_browser import activated_site_admin, agent_integration, ou, person, staff_user

SALES = ou(1, "Sales")


def level(kind: str, name: str) -> PermissionLevel:
    return PermissionLevel.objects.get(user_kind=kind, name=name)


def admin_form_data(user: PortalUser, level_pk: int | None) -> dict:
    return {"client": user.client_id, "first_name": user.first_name, "last_name": user.last_name,
            "email": user.email, "disabled_by_staff": "", "permission_level": level_pk or "",
            "memberships-TOTAL_FORMS": "0", "memberships-INITIAL_FORMS": "0",
            # What the page carried when it was opened (a save over a newer row is refused).
            "seen_version": user.updated_at.isoformat() if user.pk else ""}


@pytest.fixture
def api(db) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {issue_api_token(staff_user('boss', superuser=True))}")
    return client


# ---------------------------------------------------------------- the rule itself


@pytest.mark.django_db
def test_r11_the_rule_says_which_kind_fits_and_why(vault, client_org):
    administrator, site_user = level("pro", "Administrator"), level("site", "Site User")
    assert wrong_kind_message(site_user, client_org) is None
    assert wrong_kind_message(administrator, vault) is None
    assert wrong_kind_message(None, client_org) is None
    assert wrong_kind_message(administrator, client_org) == (
        "Administrator is a Pro-User level, but the users of Contoso Ltd are Site-Users: choose a Site-User level.")
    assert wrong_kind_message(site_user, vault) == (
        "Site User is a Site-User level, but the users of Acme MSP are Pro-Users: choose a Pro-User level.")


# ---------------------------------------------------------------- the admin


def test_r11_site_user_cannot_get_pro_user_level_in_the_admin(staff_client, client_org):
    user = PortalUser.objects.create(client=client_org, email="ann@contoso.test", first_name="Ann")
    response = staff_client.post(reverse("admin:passportal_portaluser_change", args=[user.pk]),
                                 admin_form_data(user, level("pro", "Administrator").pk))
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert list(errors) == ["permission_level"]
    assert "Administrator is a Pro-User level" in errors["permission_level"][0]
    user.refresh_from_db()
    assert user.permission_level is None


def test_r11_pro_user_cannot_get_site_user_level_in_the_admin(staff_client, vault):
    response = staff_client.post(
        reverse("admin:passportal_portaluser_add"),
        admin_form_data(PortalUser(client=vault, email="tom@msp.test", first_name="Tom"),
                        level("site", "Site Admin").pk),
    )
    assert response.status_code == 200
    assert "Site Admin is a Site-User level" in response.context["adminform"].form.errors["permission_level"][0]
    assert not PortalUser.objects.filter(email="tom@msp.test").exists()


def test_r11_a_level_of_the_right_kind_is_saved_in_the_admin(staff_client, vault):
    tom = PortalUser.objects.create(client=vault, email="tom@msp.test", first_name="Tom")
    response = staff_client.post(reverse("admin:passportal_portaluser_change", args=[tom.pk]),
                                 admin_form_data(tom, level("pro", "Technician").pk))
    assert response.status_code == 302
    tom.refresh_from_db()
    assert tom.permission_level.name == "Technician" and tom.permission_level_set_by_hand


# ---------------------------------------------------------------- the mapping form


@pytest.fixture
def corp(client_org) -> object:
    activated_site_admin(client_org)
    return agent_integration(client_org, [SALES], [person(1, SALES)])


def post_setup(client, integration, level_pk: int):
    folder = integration.folders.get(external_id=SALES["id"])
    return client.post(reverse("provisioning:setup", args=[integration.pk]),
                        {"folders": [folder.pk], "permission_level": level_pk, "apply": "Apply"})


def test_r11_site_user_cannot_get_pro_user_level_in_the_mapping_form(staff_client, corp):
    response = post_setup(staff_client, corp, level("pro", "Administrator").pk)
    assert response.status_code == 200
    form = response.context["form"]
    assert list(form.errors) == ["permission_level"]
    assert "Administrator is a Pro-User level" in form.errors["permission_level"][0]
    assert 'class="form-row field-permission_level"' in response.content.decode()
    assert not SyncRun.objects.filter(dry_run=True).exists() and not Mapping.objects.exists()


def test_r11_pro_user_cannot_get_site_user_level_in_the_mapping_form(staff_client, db):
    vault = Client.objects.create(name="Acme MSP", is_company_vault=True, site_enabled=True)
    integration = agent_integration(vault, [SALES], [person(1, SALES)])
    response = post_setup(staff_client, integration, level("site", "Site Admin").pk)
    assert "Site Admin is a Site-User level" in response.context["form"].errors["permission_level"][0]
    assert not SyncRun.objects.filter(dry_run=True).exists()


def test_r11_the_mapping_form_offers_only_levels_that_fit(staff_client, corp):
    page = staff_client.get(reverse("provisioning:setup", args=[corp.pk])).content.decode()
    assert "Site Manager (Site-User)" in page and "(Pro-User)" not in page


# ---------------------------------------------------------------- the API


def test_r11_site_user_cannot_get_pro_user_level_through_the_api_apply(api, corp):
    folder = corp.folders.get(external_id=SALES["id"])
    response = api.post("/api/mappings/apply/", {"integration": corp.pk, "folders": [folder.pk],
                                                 "permission_level": level("pro", "Administrator").pk}, format="json")
    assert response.status_code == 400
    assert "Administrator is a Pro-User level" in response.json()["permission_level"][0]
    assert not Mapping.objects.exists()


def test_r11_site_user_cannot_get_pro_user_level_through_the_users_api(api, client_org):
    user = PortalUser.objects.create(client=client_org, email="ann@contoso.test")
    response = api.patch(f"/api/users/{user.pk}/", {"permission_level": level("pro", "Administrator").pk},
                         format="json")
    assert response.status_code == 400
    assert "Administrator is a Pro-User level" in response.json()["permission_level"][0]
    user.refresh_from_db()
    assert user.permission_level is None


def test_r11_pro_user_cannot_get_site_user_level_through_the_users_api(api, vault):
    tom = PortalUser.objects.create(client=vault, email="tom@msp.test")
    response = api.patch(f"/api/users/{tom.pk}/", {"permission_level": level("site", "Site User").pk},
                         format="json")
    assert response.status_code == 400 and "permission_level" in response.json()


def test_r11_a_level_staff_set_through_the_api_is_kept_from_mappings(api, vault):
    tom = PortalUser.objects.create(client=vault, email="tom@msp.test")
    response = api.patch(f"/api/users/{tom.pk}/", {"permission_level": level("pro", "Manager").pk,
                                                   "email": "changed@msp.test"}, format="json",
                         HTTP_IF_MATCH=api.get(f"/api/users/{tom.pk}/")["ETag"])
    assert response.status_code == 200, response.json()
    tom.refresh_from_db()
    assert tom.permission_level.name == "Manager" and tom.permission_level_set_by_hand
    assert tom.email == "tom@msp.test", "only the level is writable"


def test_r11_changing_a_users_level_through_the_api_needs_change_permission(db, vault):
    tom = PortalUser.objects.create(client=vault, email="tom@msp.test")
    viewer = APIClient()
    token = issue_api_token(staff_user("viewer", "passportal.view_portaluser"))
    viewer.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    response = viewer.patch(f"/api/users/{tom.pk}/", {"permission_level": level("pro", "Manager").pk}, format="json")
    assert response.status_code == 403
