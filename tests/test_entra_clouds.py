"""Entra in every cloud: a cloud sets login host, Graph URL and token scope together; Custom takes all three.

Microsoft's own clouds cannot be reached from here, so what they set is checked where it is decided (the
validators, the admin form, the connector's settings); Custom is driven end to end against the Graph stand-in,
whose tenants each belong to one cloud and whose Graph also answers under a host that is no Graph resource.
"""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from directory import validators
from directory.clouds import CLOUDS
from directory.connectors.base import DirectoryAuthError
from directory.connectors.entra import EntraConnector
from directory.forms import IntegrationForm
from directory.models import Folder, Integration
from directory.sources import entra_settings
from provisioning import sync
from provisioning.api.authentication import issue_api_token
from provisioning.models import Mapping
from testing.fake_entra import FakeEntraServer
from tests.engine_helpers import site_level
from tests.fixtures_browser import staff_user

from .fixtures_entra import entra_settings_for

pytestmark = pytest.mark.django_db

# Microsoft's published values ("Microsoft Graph national cloud deployments"), written out here on purpose.
PUBLISHED = {
    "global": ("login.microsoftonline.com", "https://graph.microsoft.com/v1.0", "https://graph.microsoft.com/.default"),
    "usgov": ("login.microsoftonline.us", "https://graph.microsoft.us/v1.0", "https://graph.microsoft.us/.default"),
    "usgov_dod": ("login.microsoftonline.us", "https://dod-graph.microsoft.us/v1.0",
                  "https://dod-graph.microsoft.us/.default"),
    "china": ("login.chinacloudapi.cn", "https://microsoftgraph.chinacloudapi.cn/v1.0",
              "https://microsoftgraph.chinacloudapi.cn/.default"),
}


@pytest.fixture
def us_tenant(fake_entra: FakeEntraServer, settings):
    """A tenant in the US Government cloud, its Graph reached through a host that is not the Graph resource."""
    settings.ENTRA_ALLOWED_HOSTS = ["127.0.0.1", "localhost"]  # the operator allows the proxy's host
    tenant = fake_entra.add_tenant("Fabrikam Gov", ["fabrikamgov.onmicrosoft.us"], cloud="usgov")
    app = fake_entra.add_app(tenant)
    au = fake_entra.add_au("Agency", tenant=tenant)
    fake_entra.add_user("Gail", "Gov", mail="gail@fabrikam.us", aus=[au], tenant=tenant)
    return {"tenant": tenant, "app": app, "au": au}


def boss_api() -> APIClient:
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {issue_api_token(staff_user('boss', superuser=True))}")
    return api


def custom_body(fake_entra: FakeEntraServer, client, us_tenant, **overrides) -> dict:
    body = {"client": client.pk, "name": "Fabrikam Gov", "kind": "entra", "entra_role": "primary",
            "tenant": us_tenant["tenant"].domains[0], "app_client_id": us_tenant["app"].client_id,
            "client_secret": us_tenant["app"].secret, "tls_ca_pem": fake_entra.ca_pem, "entra_cloud": "custom",
            "login_host": fake_entra.login_host, "graph_base_url": fake_entra.proxy_graph_base_url,
            "graph_scope": "https://graph.microsoft.us/.default"}
    return {**body, **overrides}


@pytest.mark.parametrize("cloud", sorted(PUBLISHED))
def test_r26_each_microsoft_cloud_sets_login_host_graph_and_scope_together(cloud):
    login_host, graph, scope = PUBLISHED[cloud]
    assert validators.cloud_endpoints(cloud, {}, {}) == {"login_host": login_host, "graph_base_url": graph,
                                                         "graph_scope": scope}
    assert CLOUDS[cloud].label in dict(Integration._meta.get_field("entra_cloud").choices).values()
    # The connector asks for the cloud's scope whatever was stored in the scope field.
    integration = Integration(kind="entra", entra_cloud=cloud, tenant="contoso.com", app_client_id="app",
                              login_host=login_host, graph_base_url=graph, graph_scope="https://x.test/.default")
    settings = entra_settings(integration)
    assert (settings.login_host, settings.graph_base_url, settings.graph_scope) == (login_host, graph, scope)


def test_r26_choosing_a_cloud_in_the_admin_moves_all_three_and_contacts_nobody(client_org, fake_entra):
    integration = Integration.objects.create(client=client_org, name="Contoso", kind="entra", entra_role="primary",
                                             tenant="contoso.com", app_client_id="app")
    data = {"client": client_org.pk, "name": "Contoso", "kind": "entra", "entra_role": "primary",
            "tenant": "contoso.com", "app_client_id": "app", "entra_cloud": "usgov_dod",
            "login_host": integration.login_host, "graph_base_url": integration.graph_base_url, "graph_scope": "",
            "tls_verify": "on", "page_size": 500, "disable_threshold_percent": 10, "disable_threshold_minimum": 25}
    form = IntegrationForm(data=data, instance=integration)
    assert not form.is_valid()
    # Only the missing secret stops it (so no login was tried); the previous cloud's hosts followed the new one.
    assert list(form.errors) == ["new_client_secret"]
    login_host, graph, scope = PUBLISHED["usgov_dod"]
    assert (form.cleaned_data["login_host"], form.cleaned_data["graph_base_url"],
            form.cleaned_data["graph_scope"]) == (login_host, graph, scope)
    assert fake_entra.requests_seen == []


def test_r26_a_microsoft_cloud_refuses_a_host_of_another_on_that_field(client_org, fake_entra):
    api = boss_api()
    body = {"client": client_org.pk, "name": "Gov", "kind": "entra", "entra_role": "primary",
            "tenant": "fabrikam.us", "app_client_id": "app", "client_secret": "s", "entra_cloud": "usgov",
            "login_host": "login.microsoftonline.com"}
    response = api.post("/api/integrations/", body, format="json")
    assert response.status_code == 400
    assert "choose Custom" in str(response.json()["login_host"]) and "login.microsoftonline.us" in str(
        response.json()["login_host"])
    # The cloud's own values, typed out, are accepted as they are (refused later only for the made-up tenant).
    assert set(api.post("/api/integrations/", {**body, "login_host": "login.microsoftonline.us"},
                        format="json").json()) != {"login_host"}


@pytest.mark.parametrize("door", ["admin", "api"])
def test_r26_the_login_host_is_a_bare_host_said_on_its_own_field(client_org, fake_entra, door):
    bad = "https://login.microsoftonline.us"
    if door == "api":
        response = boss_api().post("/api/integrations/", {
            "client": client_org.pk, "name": "Gov", "kind": "entra", "entra_role": "primary", "tenant": "fabrikam.us",
            "app_client_id": "app", "client_secret": "s", "entra_cloud": "custom", "login_host": bad,
            "graph_base_url": "https://graph.microsoft.us/v1.0", "graph_scope": "https://graph.microsoft.us/.default",
        }, format="json")
        errors = response.json()
    else:
        browser = Client()
        browser.force_login(staff_user("boss", superuser=True))
        response = browser.post(reverse("admin:directory_integration_add"), {
            "client": client_org.pk, "name": "Gov", "kind": "entra", "entra_role": "primary", "tenant": "fabrikam.us",
            "app_client_id": "app", "new_client_secret": "s", "entra_cloud": "custom", "login_host": bad,
            "graph_base_url": "https://graph.microsoft.us/v1.0", "graph_scope": "https://graph.microsoft.us/.default",
            "tls_verify": "on", "page_size": 500, "disable_threshold_percent": 10, "disable_threshold_minimum": 25,
            "folders-TOTAL_FORMS": "0", "folders-INITIAL_FORMS": "0",
        })
        errors = response.context["adminform"].form.errors
    assert "is not a host name" in str(errors["login_host"]) and "no https://" in str(errors["login_host"])
    assert "tenant" not in errors
    assert not Integration.objects.exists() and fake_entra.requests_seen == []


def test_r26_custom_cloud_reads_graph_through_a_host_that_is_not_the_scopes_resource(fake_entra, us_tenant,
                                                                                     client_org):
    response = boss_api().post("/api/integrations/", custom_body(fake_entra, client_org, us_tenant), format="json")

    assert response.status_code == 201, response.json()
    assert response.json()["tenant_guid"] == us_tenant["tenant"].guid
    assert (response.json()["entra_cloud"], response.json()["graph_scope"]) == (
        "custom", "https://graph.microsoft.us/.default")
    integration = Integration.objects.get()
    assert sync.run_sync(integration, "force").status == "succeeded"
    Mapping.objects.create(folder=Folder.objects.get(integration=integration, external_id=us_tenant["au"].id),
                           permission_level=site_level())
    run = sync.run_sync(integration, "force")
    assert run.status == "succeeded" and run.counts["created"] == 1, run.error
    # Every token was asked for the US Government Graph, never for the proxy's own host.
    assert fake_entra.issued_scopes and set(fake_entra.issued_scopes) == {"https://graph.microsoft.us/.default"}


def test_r26_a_scope_taken_from_the_proxy_host_is_refused_by_the_login_service(fake_entra, us_tenant):
    """What the scope is for: derived from a proxy's host it names no resource (the issue's AADSTS500011)."""
    connector = EntraConnector(entra_settings_for(
        fake_entra, tenant=us_tenant["tenant"].domains[0], client_id=us_tenant["app"].client_id,
        client_secret=us_tenant["app"].secret, graph_base_url=fake_entra.proxy_graph_base_url))
    with pytest.raises(DirectoryAuthError, match="AADSTS500011"):
        connector.read_folders()


def test_r26_custom_cloud_needs_its_scope_typed_and_asks_nobody_without_it(fake_entra, us_tenant, client_org):
    api = boss_api()
    response = api.post("/api/integrations/", custom_body(fake_entra, client_org, us_tenant, graph_scope=""),
                        format="json")
    assert response.status_code == 400 and "token scope" in str(response.json()["graph_scope"])
    for scope, problem in [("https://graph.microsoft.us/", "is not a token scope"),
                           ("https://management.azure.com/.default", "is not a Microsoft Graph resource")]:
        response = api.post("/api/integrations/", custom_body(fake_entra, client_org, us_tenant, graph_scope=scope),
                            format="json")
        assert problem in str(response.json()["graph_scope"])
    assert fake_entra.requests_seen == [] and not Integration.objects.exists()


def test_r26_a_scope_of_another_cloud_is_refused_on_the_scope_field(fake_entra, us_tenant, client_org):
    body = custom_body(fake_entra, client_org, us_tenant, graph_scope="https://graph.microsoft.com/.default")
    response = boss_api().post("/api/integrations/", body, format="json")
    assert response.status_code == 400
    assert "AADSTS500011" in str(response.json()["graph_scope"]) and "cloud" in str(response.json()["graph_scope"])
    assert not Integration.objects.exists()


@pytest.mark.parametrize("kind", ["ad", "entra"])
def test_one_connection_security_section_holds_certificate_checks_for_both_kinds(client_org, kind):
    integration = Integration.objects.create(client=client_org, name="Either", kind=kind, ad_mode="agent")
    browser = Client()
    browser.force_login(staff_user("boss", superuser=True))
    page = browser.get(reverse("admin:directory_integration_change", args=[integration.pk])).content.decode()
    sections = {part.split("</h2>")[0].rsplit(">", 1)[-1]: part for part in page.split("<fieldset")[1:]
                if "</h2>" in part}
    security = sections["Connection security"]
    assert all(f"field-{name}" in security for name in ("tls_verify", "tls_ca_pem", "tls_warning"))
    others = [body for title, body in sections.items() if title != "Connection security"]
    assert not any("field-tls_ca_pem" in body or "field-tls_verify" in body for body in others)
    assert "field-tls_mode" in sections["Active Directory"]  # LDAPS or StartTLS is AD's alone
