import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from passportal.models import Client, GroupMembership, PermissionLevel, PortalUser, SecurityGroup, UserKind


def test_it_allows_exactly_one_company_vault(vault):
    with pytest.raises(IntegrityError), transaction.atomic():
        Client.objects.create(name="Second vault", is_company_vault=True)
    Client.objects.create(name="A client")
    Client.objects.create(name="Another client")
    assert Client.objects.filter(is_company_vault=True).count() == 1


def test_it_explains_the_second_vault_in_a_form_error(vault):
    second = Client(name="Second vault", is_company_vault=True)
    with pytest.raises(ValidationError, match="already a Company Vault"):
        second.full_clean()


def test_r4_email_is_unique_per_client_ignoring_case(client_org, vault):
    PortalUser.objects.create(client=client_org, email="Ann@Contoso.com")
    with pytest.raises(IntegrityError), transaction.atomic():
        PortalUser.objects.create(client=client_org, email="ann@contoso.COM")
    # The same person may exist in another client.
    PortalUser.objects.create(client=vault, email="ann@contoso.com")


def test_security_group_names_are_unique_per_client_ignoring_case(client_org, vault):
    SecurityGroup.objects.create(client=client_org, name="Finance")
    with pytest.raises(IntegrityError), transaction.atomic():
        SecurityGroup.objects.create(client=client_org, name="finance")
    SecurityGroup.objects.create(client=vault, name="Finance")


def test_default_permission_levels_exist_for_both_kinds(db):
    pro = PermissionLevel.objects.filter(user_kind=UserKind.PRO)
    site = PermissionLevel.objects.filter(user_kind=UserKind.SITE)
    assert pro.count() >= 3 and site.count() >= 3
    assert site.filter(is_site_admin=True).exists()
    assert len({lvl.rank for lvl in pro}) == pro.count(), "ranks must order the levels (R13)"


def test_kind_follows_from_the_client(vault, client_org):
    pro = PortalUser.objects.create(client=vault, email="tech@msp.test")
    site = PortalUser.objects.create(client=client_org, email="user@contoso.test")
    assert pro.kind == UserKind.PRO and pro.get_kind_display() == "Pro-User"
    assert site.kind == UserKind.SITE and site.get_kind_display() == "Site-User"


def test_r8_status_cannot_disagree_with_why_a_user_is_disabled(client_org):
    user = PortalUser.objects.create(client=client_org, email="x@contoso.test")
    with pytest.raises(IntegrityError), transaction.atomic():
        PortalUser.objects.filter(pk=user.pk).update(disabled_by_staff=True)  # still "pending"
    user.disabled_by_staff = True
    user.refresh_status()
    user.save()
    assert user.status == "disabled"
    user.disabled_by_staff = False
    user.disabled_reason = "directory"
    user.refresh_status()
    user.save()
    assert PortalUser.objects.get(pk=user.pk).status == "disabled"


def test_r12_a_group_membership_records_its_source(client_org):
    user = PortalUser.objects.create(client=client_org, email="x@contoso.test")
    group = SecurityGroup.objects.create(client=client_org, name="Sales")
    GroupMembership.objects.create(user=user, group=group, source="mapping")
    GroupMembership.objects.create(user=user, group=group, source="staff")
    with pytest.raises(IntegrityError), transaction.atomic():
        GroupMembership.objects.create(user=user, group=group, source="staff")


def test_portal_user_passwords_are_hashed(client_org):
    user = PortalUser.objects.create(client=client_org, email="x@contoso.test")
    user.set_password("correct horse battery staple")
    user.save()
    stored = PortalUser.objects.get(pk=user.pk)
    assert "correct horse" not in stored.password
    assert stored.check_password("correct horse battery staple")
    assert not stored.check_password("wrong")
