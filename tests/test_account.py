"""An end user's own sign-in and "My account" page, after activation (R18, R8, R26)."""

from __future__ import annotations

import pytest
from django.test import Client as BrowserClient
from django.urls import reverse
from django.utils import timezone

from passportal.models import DisabledReason, PermissionLevel, PortalUser, SecurityGroup

PASSWORD = "correct-horse-battery-staple-42"


@pytest.fixture(autouse=True)
def _fast_hasher(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def activated(client_org, email: str = "ann@contoso.test", **fields) -> PortalUser:
    user = PortalUser(client=client_org, email=email, first_name="Ann", last_name="Archer",
                      activated_at=timezone.now(), **fields)
    user.set_password(PASSWORD)
    user.refresh_status()
    user.save()
    return user


def sign_in(browser, email: str, password: str = PASSWORD, **extra):
    return browser.post(reverse("account-sign-in"), {"email": email, "password": password, **extra}, follow=True)


def test_r18_an_activated_user_signs_in_and_sees_their_account(client, client_org):
    user = activated(client_org, permission_level=PermissionLevel.objects.get(user_kind="site", name="Site User"))
    group = SecurityGroup.objects.create(client=client_org, name="Finance")
    user.memberships.create(group=group, source="mapping")
    user.memberships.create(group=group, source="staff")

    page = sign_in(client, "ANN@contoso.test")
    assert page.redirect_chain == [(reverse("account"), 302)]
    text = page.content.decode()
    for shown in ("Ann Archer", "ann@contoso.test", "Contoso Ltd", "Site-User", "Site User", "Finance",
                  "Created by your administrator"):
        assert shown in text, shown
    assert text.count("Finance") == 1


def test_r18_the_account_page_says_which_directory_the_account_comes_from(client, client_org):
    from directory.models import Integration
    from provisioning.models import DirectoryLink

    user = activated(client_org)
    integration = Integration.objects.create(client=client_org, name="Contoso AD", kind="ad", ad_mode="agent",
                                             base_dn="DC=contoso,DC=test")
    DirectoryLink.objects.create(integration=integration, directory_id="contoso.test",
                                 external_id="5d7e0c1e-0000-4000-8000-000000000001", portal_user=user)
    text = sign_in(client, "ann@contoso.test").content.decode()
    assert "Active Directory (Contoso AD)" in text and "change them there" in text


def test_r18_a_wrong_password_or_unknown_email_gets_one_answer(client, client_org):
    activated(client_org)
    wrong = sign_in(client, "ann@contoso.test", "not-the-password-at-all")
    unknown = sign_in(client, "nobody@contoso.test", "not-the-password-at-all")
    for page in (wrong, unknown):
        assert page.status_code == 200
        assert "do not match an active account" in page.content.decode()
    assert "_portal_user_id" not in client.session


def test_r18_a_user_who_has_not_activated_cannot_sign_in(client, client_org):
    PortalUser.objects.create(client=client_org, email="new@contoso.test", first_name="New")
    assert "Enter your email address and your password" in sign_in(client, "new@contoso.test", "").content.decode()
    assert "do not match an active account" in sign_in(client, "new@contoso.test", PASSWORD).content.decode()


@pytest.mark.parametrize("disable", [{"disabled_by_staff": True}, {"disabled_reason": DisabledReason.DIRECTORY},
                                     {"disabled_reason": DisabledReason.OUT_OF_SCOPE}],
                         ids=["staff", "directory", "out-of-scope"])
def test_r8_a_disabled_user_cannot_sign_in_and_is_told_neutrally(client, client_org, disable):
    activated(client_org, **disable)
    page = sign_in(client, "ann@contoso.test")
    text = page.content.decode()
    assert "cannot be used to sign in" in text and "administrator" in text
    for reason in ("staff", "directory", "scope", "Active Directory"):
        assert reason not in text.split("<h1>")[1]
    assert "_portal_user_id" not in client.session


def test_r8_a_user_disabled_after_signing_in_is_signed_out(client, client_org):
    user = activated(client_org)
    sign_in(client, "ann@contoso.test")
    assert client.get(reverse("account")).status_code == 200
    PortalUser.objects.filter(pk=user.pk).update(status="disabled", disabled_reason=DisabledReason.DELETED)
    assert client.get(reverse("account"))["Location"] == reverse("account-sign-in")
    assert "_portal_user_id" not in client.session


def test_r26_a_new_password_ends_other_sessions(client, client_org):
    user = activated(client_org)
    sign_in(client, "ann@contoso.test")
    user.set_password("another-long-password-77")
    user.save()
    assert client.get(reverse("account")).status_code == 302


def test_r26_signing_out_ends_the_session_and_needs_a_post(client, client_org):
    activated(client_org)
    sign_in(client, "ann@contoso.test")
    assert client.get(reverse("account-sign-out")).status_code == 405
    assert client.post(reverse("account-sign-out"))["Location"] == reverse("account-sign-in")
    assert client.get(reverse("account")).status_code == 302


def test_r26_an_email_with_accounts_in_two_organisations_chooses_one(client, client_org, vault):
    activated(client_org, "ann@shared.test")
    activated(vault, "ann@shared.test")
    first = sign_in(client, "ann@shared.test")
    text = first.content.decode()
    assert "several organisations" in text and "Contoso Ltd" in text and "Acme MSP" in text
    assert "_portal_user_id" not in client.session
    page = sign_in(client, "ann@shared.test", organisation=vault.pk)
    assert "Acme MSP" in page.content.decode() and "Pro-User" in page.content.decode()


def test_r26_sign_in_is_rate_limited_per_address_and_email(client, client_org, settings):
    settings.ACCOUNT_SIGNIN_RATE_LIMIT = 3
    activated(client_org)
    for _ in range(3):
        sign_in(client, "ann@contoso.test", "wrong-password-guess")
    limited = client.post(reverse("account-sign-in"), {"email": "ann@contoso.test", "password": PASSWORD})
    assert limited.status_code == 429 and "Too many attempts" in limited.content.decode()
    assert "_portal_user_id" not in client.session
    # Someone else, elsewhere, is not held up.
    assert sign_in(BrowserClient(REMOTE_ADDR="10.1.2.3"), "ann@contoso.test").redirect_chain[-1][0] == \
        reverse("account")


@pytest.mark.parametrize("view", ["account-sign-in", "account-sign-out", "activation-set-password"])
def test_r26_every_end_user_form_checks_csrf(view):
    browser = BrowserClient(enforce_csrf_checks=True)
    response = browser.post(reverse(view), {"email": "a@b.test", "password": "x", "password1": "x", "password2": "x"})
    assert response.status_code == 403 and b"CSRF" in response.content


def test_the_account_page_needs_a_signed_in_user(client, db):
    assert client.get(reverse("account"))["Location"] == reverse("account-sign-in")
