import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from passportal.models import GroupMembership, PermissionLevel, PortalUser, SecurityGroup


@pytest.fixture
def staff_client(client, db):
    admin = get_user_model().objects.create_superuser("root", "root@msp.test", "a-long-test-password")
    client.force_login(admin)
    return client


@pytest.fixture
def vault_data(vault, client_org):
    group = SecurityGroup.objects.create(client=client_org, name="Sales")
    user = PortalUser.objects.create(client=client_org, email="ann@contoso.test", first_name="Ann")
    pro = PortalUser.objects.create(client=vault, email="tech@msp.test", first_name="Tom")
    GroupMembership.objects.create(user=user, group=group, source="staff")
    return {"client": client_org, "vault": vault, "group": group, "user": user, "pro": pro,
            "level": PermissionLevel.objects.first()}


@pytest.mark.parametrize("model", ["client", "permissionlevel", "securitygroup", "portaluser"])
def test_every_vault_admin_page_loads_for_a_superuser(staff_client, vault_data, model):
    obj = {"client": vault_data["client"], "permissionlevel": vault_data["level"],
           "securitygroup": vault_data["group"], "portaluser": vault_data["user"]}[model]
    for url in (
        reverse(f"admin:passportal_{model}_changelist"),
        reverse(f"admin:passportal_{model}_add"),
        reverse(f"admin:passportal_{model}_change", args=[obj.pk]),
    ):
        response = staff_client.get(url)
        assert response.status_code == 200, url


def test_pro_users_and_site_users_are_told_apart_in_the_list(staff_client, vault_data):
    page = staff_client.get(reverse("admin:passportal_portaluser_changelist")).content.decode()
    assert "kind-pro" in page and "kind-site" in page
    only_pro = staff_client.get(reverse("admin:passportal_portaluser_changelist") + "?kind=pro").content.decode()
    assert "tech@msp.test" in only_pro and "ann@contoso.test" not in only_pro


def test_the_company_vault_is_marked(staff_client, vault_data):
    page = staff_client.get(reverse("admin:passportal_client_changelist")).content.decode()
    assert "Company Vault</span>" in page


def test_search_finds_users_by_email(staff_client, vault_data):
    page = staff_client.get(reverse("admin:passportal_portaluser_changelist") + "?q=ann@contoso").content.decode()
    assert "ann@contoso.test" in page and "tech@msp.test" not in page


def test_r11_a_level_changed_by_staff_is_marked_hand_set(staff_client, vault_data):
    user = vault_data["user"]
    level = PermissionLevel.objects.get(user_kind="site", name="Site Manager")
    response = staff_client.post(
        reverse("admin:passportal_portaluser_change", args=[user.pk]),
        {"client": user.client_id, "first_name": "Ann", "last_name": "", "email": user.email,
         "disabled_by_staff": "", "permission_level": level.pk, "permission_level_set_by_hand": "",
         "memberships-TOTAL_FORMS": "0", "memberships-INITIAL_FORMS": "0", "seen_version": user.updated_at.isoformat()},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    user.refresh_from_db()
    assert user.permission_level == level and user.permission_level_set_by_hand


def test_non_staff_cannot_reach_the_admin(client, db):
    response = client.get(reverse("admin:passportal_portaluser_changelist"))
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_r18_a_user_staff_create_gets_an_activation_email_and_keeps_its_level(
    staff_client, vault_data, django_capture_on_commit_callbacks
):
    from notifications.models import OutboxEmail

    admin_level = PermissionLevel.objects.get(user_kind="site", name="Site Admin")
    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(
            reverse("admin:passportal_portaluser_add"),
            {"client": vault_data["client"].pk, "first_name": "Sia", "last_name": "Admin",
             "email": "sia@contoso.test", "disabled_by_staff": "", "permission_level": admin_level.pk,
             "memberships-TOTAL_FORMS": "0", "memberships-INITIAL_FORMS": "0"},
        )
    assert response.status_code == 302, response.content.decode()[:2000]
    created = PortalUser.objects.get(email="sia@contoso.test")
    assert created.permission_level_set_by_hand and created.status == "pending"
    assert list(OutboxEmail.objects.values_list("recipient", flat=True)) == ["sia@contoso.test"]
