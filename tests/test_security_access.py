"""Who can reach what: CSRF on every state-changing view, staff permissions over mappings, non-staff kept out;
TLS verified by default with a warning when it is off; malformed settings refused on their field."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from directory.forms import IntegrationForm
from directory.models import Integration
from notifications.services import NotificationKind, notify
from passportal.models import PermissionLevel, PortalUser
from provisioning.api.authentication import issue_api_token
from provisioning.models import Mapping, SyncRun
from testing.fake_entra import FakeEntraServer
from tests.fixtures_browser import STAFF_PASSWORD, activated_site_admin, agent_integration, ou, person, staff_user

from .fixtures_entra import entra_integration_values

pytestmark = pytest.mark.django_db

SALES = ou(1, "Sales")
NOT_A_CERTIFICATE = "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----"
A_KEY = "-----BEGIN PRIVATE KEY-----\nabc\n-----END PRIVATE KEY-----"


@pytest.fixture
def world(client_org):
    activated_site_admin(client_org)
    integration = agent_integration(client_org, [SALES], [person(1, SALES)])
    folder = integration.folders.get()
    mapping = Mapping.objects.create(folder=folder, permission_level=PermissionLevel.objects.get(
        user_kind="site", name="Site User"))
    run = SyncRun.objects.filter(integration=integration).first()
    note = notify(NotificationKind.SYNC_FAILED, title="t", integration=integration)
    user = PortalUser.objects.get(email="siteadmin@client.test")
    return {"client": client_org, "integration": integration, "folder": folder, "mapping": mapping, "run": run,
            "user": user, "note": note}


def state_changing_views(w) -> list[tuple[str, str]]:
    """Every POST (or DELETE) endpoint of the admin's custom views and of the session-authenticated API."""
    i, c, r, u = w["integration"].pk, w["client"].pk, w["run"].pk, w["user"].pk
    return [
        ("post", reverse("provisioning:link", args=[i])),
        ("post", reverse("provisioning:force-resync", args=[i])),
        ("post", reverse("provisioning:add-domain", args=[c])),
        ("post", reverse("provisioning:setup", args=[i])),
        ("post", reverse("provisioning:confirm", args=[i, r])),
        ("post", reverse("provisioning:held-decision", args=[r])),
        ("post", reverse("provisioning:user-resync", args=[u])),
        ("post", reverse("provisioning:user-enabled", args=[u])),
        ("post", reverse("admin:directory_integration_agent_token", args=[i])),
        ("post", reverse("admin:notifications_notification_mark_all_read")),
        ("post", reverse("admin:directory_integration_change", args=[i])),
        ("post", f"/api/integrations/{i}/resync/"),
        ("post", f"/api/integrations/{i}/link/"),
        ("post", "/api/integrations/"),
        ("patch", f"/api/integrations/{i}/"),
        ("post", "/api/clients/"),
        ("post", "/api/mappings/apply/"),
        ("delete", f"/api/mappings/{w['mapping'].pk}/"),
        ("post", f"/api/runs/{r}/apply-held/"),
        ("post", f"/api/runs/{r}/discard-held/"),
        ("post", f"/api/users/{u}/resync/"),
        ("post", f"/api/users/{u}/enabled/"),
        ("post", f"/api/notifications/{w['note'].pk}/read/"),
    ]


def test_csrf_is_enforced_on_every_state_changing_view(world):
    browser = Client(enforce_csrf_checks=True)
    # force_login: django-axes refuses authenticate() without the request, which Client.login() does not pass.
    browser.force_login(staff_user("boss", superuser=True))
    before = (SyncRun.objects.count(), Integration.objects.get().link_enabled, Mapping.objects.count(),
              world["integration"].agent_token_hash, PortalUser.objects.filter(status="disabled").count())
    for method, url in state_changing_views(world):
        response = getattr(browser, method)(url, {"enabled": "0"}, content_type="application/x-www-form-urlencoded")
        assert response.status_code == 403, (url, response.status_code)
        assert b"CSRF" in response.content, url
    integration = Integration.objects.get()
    assert (SyncRun.objects.count(), integration.link_enabled, Mapping.objects.count(), integration.agent_token_hash,
            PortalUser.objects.filter(status="disabled").count()) == before


def test_staff_without_the_permission_cannot_see_or_change_mappings_in_the_admin_or_the_api(world):
    # Staff may run syncs and read runs, but hold no permission on mappings.
    intern = staff_user("intern", "provisioning.view_syncrun", "provisioning.add_syncrun", "directory.view_integration")
    browser = Client()
    browser.force_login(intern)
    assert browser.get(reverse("admin:provisioning_mapping_changelist")).status_code == 403
    assert browser.get(reverse("admin:provisioning_mapping_change", args=[world["mapping"].pk])).status_code == 403
    assert browser.get(reverse("provisioning:user-mapping", args=[world["client"].pk])).status_code == 403
    assert browser.get(reverse("provisioning:setup", args=[world["integration"].pk])).status_code == 403
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {issue_api_token(intern)}")
    assert api.get("/api/mappings/").status_code == 403
    assert api.get(f"/api/mappings/{world['mapping'].pk}/").status_code == 403
    assert api.delete(f"/api/mappings/{world['mapping'].pk}/").status_code == 403
    apply = {"integration": world["integration"].pk, "folders": [world["folder"].pk],
             "permission_level": PermissionLevel.objects.get(user_kind="site", name="Site Manager").pk}
    assert api.post("/api/mappings/apply/", apply, format="json").status_code == 403
    mapping = Mapping.objects.get()
    assert mapping.permission_level.name == "Site User"

    # With the view permission only: seen, not changed.
    viewer = staff_user("viewer", "provisioning.view_mapping")
    api.credentials(HTTP_AUTHORIZATION=f"Token {issue_api_token(viewer)}")
    assert [m["id"] for m in api.get("/api/mappings/").json()["results"]] == [mapping.pk]
    assert api.post("/api/mappings/apply/", apply, format="json").status_code == 403
    assert api.delete(f"/api/mappings/{mapping.pk}/").status_code == 403
    assert Mapping.objects.get().permission_level.name == "Site User"


def test_non_staff_cannot_reach_the_admin_or_the_api(world):
    member = User.objects.create_user("member", "m@x.test", STAFF_PASSWORD)  # active, not staff
    browser = Client()
    browser.force_login(member)
    for url in [reverse("admin:index"), reverse("admin:provisioning_mapping_changelist"),
                reverse("admin:directory_integration_change", args=[world["integration"].pk]),
                reverse("provisioning:overview")]:
        response = browser.get(url)
        assert response.status_code == 302 and "/admin/login/" in response.url, url
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {issue_api_token(member)}")
    for url in ["/api/clients/", "/api/mappings/", "/api/integrations/", "/api/users/", "/api/schema/"]:
        assert api.get(url).status_code == 403, url
    assert api.post("/api/mappings/apply/", {}, format="json").status_code == 403
    assert APIClient().get("/api/mappings/").status_code == 401


def test_tls_is_verified_by_default_and_turning_it_off_shows_a_warning(client_org, fake_entra: FakeEntraServer):
    assert Integration._meta.get_field("tls_verify").default is True
    assert IntegrationForm().fields["tls_verify"].initial is True
    browser = Client()
    browser.force_login(staff_user("boss", superuser=True))
    ad = Integration.objects.create(client=client_org, name="Corp AD", kind="ad", ad_mode="agent")
    entra = Integration.objects.create(client=client_org, name="Contoso", **entra_integration_values(fake_entra))
    for integration in (ad, entra):
        page = browser.get(reverse("admin:directory_integration_change", args=[integration.pk])).content.decode()
        assert "Certificate verification is off" not in page
    Integration.objects.update(tls_verify=False)
    ad_page = browser.get(reverse("admin:directory_integration_change", args=[ad.pk])).content.decode()
    entra_page = browser.get(reverse("admin:directory_integration_change", args=[entra.pk])).content.decode()
    assert "Certificate verification is off" in ad_page and "bind password" in ad_page
    assert "Certificate verification is off" in entra_page and "Graph hosts" in entra_page


@pytest.mark.parametrize("tenant", ["contoso", "contoso.com/../../common", "*)(objectClass=*", "bad tenant.com",
                                    "00000000-0000-0000-0000-00000000000g"])
def test_a_malformed_tenant_is_refused_on_its_field_everywhere(client_org, tenant):
    activated_site_admin(client_org)
    browser = Client()
    browser.force_login(staff_user("boss", superuser=True))
    values = {"name": "Contoso", "tenant": tenant, "app_client_id": "11111111-1111-1111-1111-111111111111",
              "client_secret": "secret", "login_host": "login.microsoftonline.com",
              "graph_base_url": "https://graph.microsoft.com/v1.0"}

    page = browser.post(reverse("provisioning:add-domain", args=[client_org.pk]), values).content.decode()
    assert "is not a tenant" in page.split("field-tenant", 1)[1].split("</div>", 2)[0]
    assert "errorlist" not in page.split("field-client_secret", 1)[1].split("</div>", 1)[0]

    form = IntegrationForm(data={**values, "client": client_org.pk, "kind": "entra", "entra_role": "primary",
                                 "new_client_secret": "secret", "disable_threshold_percent": 10,
                                 "disable_threshold_minimum": 25, "page_size": 500, "tls_mode": "ldaps"})
    assert not form.is_valid() and "is not a tenant" in form.errors["tenant"][0]

    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {issue_api_token(User.objects.get(username='boss'))}")
    response = api.post("/api/integrations/", {**values, "client": client_org.pk, "kind": "entra",
                                               "entra_role": "primary"}, format="json")
    assert response.status_code == 400 and "is not a tenant" in response.json()["tenant"][0], response.json()
    assert not Integration.objects.exists()


@pytest.mark.parametrize("pem", ["hello", NOT_A_CERTIFICATE, A_KEY], ids=["text", "garbage-in-pem", "a-key"])
def test_a_ca_field_that_is_not_a_certificate_is_refused_on_its_field(client_org, pem):
    form = IntegrationForm(data={"client": client_org.pk, "name": "Corp AD", "kind": "ad", "ad_mode": "agent",
                                 "disable_threshold_percent": 10, "disable_threshold_minimum": 25, "page_size": 500,
                                 "tls_mode": "ldaps", "tls_ca_pem": pem})
    assert not form.is_valid() and "not a PEM CA certificate" in form.errors["tls_ca_pem"][0]
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {issue_api_token(staff_user('boss', superuser=True))}")
    response = api.post("/api/integrations/", {"client": client_org.pk, "name": "Corp AD", "kind": "ad",
                                               "ad_mode": "agent", "tls_ca_pem": pem}, format="json")
    assert response.status_code == 400 and "not a PEM CA certificate" in response.json()["tls_ca_pem"][0]
    assert not Integration.objects.exists()
