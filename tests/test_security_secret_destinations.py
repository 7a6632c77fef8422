"""R25, R26: a stored secret goes only where it was typed for, and never over plain LDAP.

Every "never sent" is observed on a real listener on 127.0.0.1 (tests/listeners.py) standing where an
attacker would, and every change goes through both doors staff have: the admin form and the staff API.
"""

from __future__ import annotations

from urllib.parse import quote_plus

import pytest
import trustme
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse
from msal.authority import WELL_KNOWN_AUTHORITY_HOSTS
from rest_framework.test import APIClient

from directory import validators
from directory.connectors.base import DirectoryAuthError, DirectoryUnavailable
from directory.connectors.entra import EntraConnector, EntraSettings
from directory.connectors.ldap import LdapConnector, LdapSettings
from directory.forms import SECRET_INPUTS, IntegrationForm
from directory.models import AdMode, Integration, IntegrationKind
from provisioning.api.authentication import issue_api_token
from tests.fixtures_browser import staff_user

from .fixtures_entra import entra_integration_values
from .listeners import ByteTrap, LoginTrap

pytestmark = pytest.mark.django_db

BIND_PASSWORD = "Bind-S3cret-0f-the-DC-7731"
TYPE_IT_AGAIN = "type it again"


# ---------------------------------------------------------------------------------------------- helpers

def _as_page(integration: Integration, changes: dict) -> dict:
    """The integration's change page as a browser submits it, with these fields changed."""
    data = {name: getattr(integration, name) for name in IntegrationForm.Meta.fields if name != "client"}
    data |= {"client": integration.client_id, "new_bind_password": "", "new_client_secret": "",
             "folders-TOTAL_FORMS": "0", "folders-INITIAL_FORMS": "0"}
    data |= {SECRET_INPUTS.get(name, name): value for name, value in changes.items()}
    return {name: "on" if value is True else value for name, value in data.items() if value not in (False, None)}


class Staff:
    """A superuser changing integrations through one door; `change` gives the errors by field ({} = saved)."""

    def __init__(self, door: str) -> None:
        boss = staff_user("boss", superuser=True)
        self.door = door
        self.browser = Client()
        self.browser.force_login(boss)
        self.api = APIClient()
        self.api.credentials(HTTP_AUTHORIZATION=f"Token {issue_api_token(boss)}")

    def change(self, integration: Integration, **changes) -> dict[str, str]:
        if self.door == "api":
            response = self.api.patch(f"/api/integrations/{integration.pk}/", changes, format="json")
            if response.status_code == 200:
                return {}
            assert response.status_code == 400, response.content
            return {field: " ".join(map(str, problems)) for field, problems in response.json().items()}
        url = reverse("admin:directory_integration_change", args=[integration.pk])
        response = self.browser.post(url, _as_page(integration, changes))
        if response.status_code == 302:
            return {}
        inputs = {box: secret for secret, box in SECRET_INPUTS.items()}
        return {inputs.get(field, field): " ".join(problems)
                for field, problems in response.context["adminform"].form.errors.items()}

    def test_connection(self, integration: Integration) -> str:
        url = reverse("admin:directory_integration_test_connection", args=[integration.pk])
        return self.browser.post(url, follow=True).content.decode()


@pytest.fixture(params=["admin", "api"])
def staff(request, db) -> Staff:
    return Staff(request.param)


@pytest.fixture
def entra(client_org, fake_entra) -> Integration:
    return Integration.objects.create(client=client_org, name="Contoso Entra", tenant_guid=fake_entra.tenant.guid,
                                      tenant_domains=fake_entra.tenant.domains, **entra_integration_values(fake_entra))


def _direct_ad(client_org, samba_dc, base_dn: str) -> Integration:
    return Integration.objects.create(
        client=client_org, name="Corp AD", kind=IntegrationKind.ACTIVE_DIRECTORY, ad_mode=AdMode.DIRECT,
        ldap_urls=samba_dc.ldaps_url, base_dn=base_dn, bind_dn=samba_dc.admin_bind_dn,
        bind_password=samba_dc.admin_password, tls_ca_pem=samba_dc.ca_pem,
    )


def _sent(secret: str, received: bytes) -> bool:
    return secret.encode() in received or quote_plus(secret).encode() in received


# ------------------------------------------------------- 1. changing where a secret goes clears it (R26)

def test_r26_changing_login_host_clears_client_secret(staff, entra, fake_entra):
    stored = fake_entra.app.secret
    with LoginTrap() as trap:
        errors = staff.change(entra, login_host=trap.host, tls_ca_pem=trap.ca_pem)
        assert trap.connections == 0 and b"client_secret" not in trap.received
        assert TYPE_IT_AGAIN in errors["client_secret"]
        entra.refresh_from_db()
        assert entra.login_host == fake_entra.login_host and entra.client_secret == stored

        # Typed again in the same change, the new secret goes to the new host: that one, never the stored one.
        assert staff.change(entra, login_host=trap.host, tls_ca_pem=trap.ca_pem, client_secret="typed-for-the-trap")
        assert _sent("typed-for-the-trap", trap.received) and not _sent(stored, trap.received)


@pytest.mark.parametrize("field", ["entra_cloud", "login_host", "graph_base_url", "graph_scope", "tenant",
                                   "tls_verify", "tls_ca_pem"])
def test_r26_each_field_that_decides_where_the_client_secret_goes_clears_it(staff, entra, fake_entra, field,
                                                                          settings):
    elsewhere = {
        "entra_cloud": "usgov",  # Microsoft's US Government cloud: its own login host, Graph and scope
        "graph_scope": "https://graph.microsoft.us/.default",
        "login_host": f"localhost:{fake_entra.port}",
        "graph_base_url": f"https://127.0.0.1:{fake_entra.port}/beta",
        "tenant": fake_entra.tenant.domains[1],
        "tls_verify": False,
        "tls_ca_pem": trustme.CA().cert_pem.bytes().decode(),
    }
    # Another name for the same stand-in, allowed by the operator: the stored secret still must not follow it.
    settings.ENTRA_ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
    errors = staff.change(entra, **{field: elsewhere[field]})
    assert fake_entra.requests_seen == []  # no login, no Graph call: nothing was sent anywhere
    assert TYPE_IT_AGAIN in errors["client_secret"]
    entra.refresh_from_db()
    assert entra.client_secret == fake_entra.app.secret and getattr(entra, field) != elsewhere[field]


def test_r26_a_change_elsewhere_keeps_the_stored_secret(staff, entra, fake_entra):
    assert staff.change(entra, name="Contoso (renamed)", app_client_id=fake_entra.app.client_id) == {}
    entra.refresh_from_db()
    assert entra.name == "Contoso (renamed)" and entra.client_secret == fake_entra.app.secret


def test_r26_changing_ldap_urls_clears_a_stored_bind_password(staff, client_org):
    # Agent mode needs no bind password, so the change is saved: without the password typed for the old servers.
    agent = Integration.objects.create(client=client_org, name="Branch AD", kind=IntegrationKind.ACTIVE_DIRECTORY,
                                       ad_mode=AdMode.AGENT, ldap_urls="ldaps://dc1.corp.test",
                                       bind_password=BIND_PASSWORD)
    assert staff.change(agent, ldap_urls="ldaps://dc1.corp.test\nldaps://dc2.corp.test") == {}
    agent.refresh_from_db()
    assert agent.bind_password == "" and agent.ldap_urls.endswith("dc2.corp.test")


@pytest.mark.samba
@pytest.mark.parametrize("tls", [False, True], ids=["plain-ldap", "ldaps-unverified"])
def test_r26_changing_where_the_bind_password_goes_never_sends_it_there(staff, client_org, samba_dc, samba_ou, tls):
    integration = _direct_ad(client_org, samba_dc, samba_ou)
    with ByteTrap(tls=tls) as trap:
        moved = ({"ldap_urls": f"ldaps://127.0.0.1:{trap.port}", "tls_verify": False} if tls
                 else {"ldap_urls": f"ldap://127.0.0.1:{trap.port}", "tls_mode": "none"})
        errors = staff.change(integration, **moved)
        report = staff.test_connection(integration)
    assert trap.connections == 0 and not _sent(samba_dc.admin_password, trap.received)
    assert TYPE_IT_AGAIN in errors["bind_password"]
    assert "Connected to ldaps://127.0.0.1:636" in report  # still the DC it was typed for


@pytest.mark.samba
def test_r26_a_bind_password_typed_again_goes_to_the_new_servers(staff, client_org, samba_dc, samba_ou):
    integration = _direct_ad(client_org, samba_dc, samba_ou)
    assert staff.change(integration, ldap_urls=samba_dc.starttls_url, tls_mode="starttls",
                        bind_password=samba_dc.admin_password) == {}
    assert "Connected to ldap://127.0.0.1:389" in staff.test_connection(integration)


# ----------------------------------------------- 2. Entra hosts: Microsoft's, or the operator's list (R26)

def test_r26_login_host_only_from_microsofts_hosts_or_the_operators_list(settings):
    settings.ENTRA_ALLOWED_HOSTS = []
    national = ["login.microsoftonline.com", "login.microsoftonline.us", "login.chinacloudapi.cn",
                "login.partner.microsoftonline.cn", "login.microsoftonline.de"]
    assert set(national) <= WELL_KNOWN_AUTHORITY_HOSTS  # msal's own list is the one used
    for host in national:
        assert validators.clean_login_host(host) == host
    for host in ["127.0.0.1:8443", "evil.example", "login.microsoftonline.com.evil.example",
                 "https://login.microsoftonline.com", "login.microsoftonline.com/common",
                 "me@login.microsoftonline.com", "login.microsoftonline.com:8443"]:
        with pytest.raises(ValidationError):
            validators.clean_login_host(host)

    settings.ENTRA_ALLOWED_HOSTS = ["login.proxy.msp.example", "127.0.0.1:8443"]
    for host in ["login.proxy.msp.example", "login.proxy.msp.example:4443", "127.0.0.1:8443"]:
        assert validators.clean_login_host(host) == host
    with pytest.raises(ValidationError, match="is not a Microsoft login host"):
        validators.clean_login_host("127.0.0.1:8444")


def test_r26_graph_only_over_https_from_microsofts_graph_hosts_or_the_operators_list(settings):
    settings.ENTRA_ALLOWED_HOSTS = []
    for url in ["https://graph.microsoft.com/v1.0", "https://graph.microsoft.us/v1.0",
                "https://dod-graph.microsoft.us/v1.0", "https://microsoftgraph.chinacloudapi.cn/v1.0"]:
        assert validators.clean_graph_base_url(url) == url
    with pytest.raises(ValidationError, match="over https only"):
        validators.clean_graph_base_url("http://graph.microsoft.com/v1.0")
    for url in ["https://evil.example/v1.0", "https://graph.microsoft.com.evil.example/v1.0",
                "https://me@graph.microsoft.com/v1.0", "https://graph.microsoft.com:8443/v1.0"]:
        with pytest.raises(ValidationError):
            validators.clean_graph_base_url(url)
    settings.ENTRA_ALLOWED_HOSTS = ["graph.proxy.msp.example"]
    assert validators.clean_graph_base_url("https://graph.proxy.msp.example/v1.0")


def test_r26_a_host_nobody_allowed_is_refused_on_its_field_and_never_contacted(staff, entra, settings):
    settings.ENTRA_ALLOWED_HOSTS = []
    with LoginTrap() as trap:
        errors = staff.change(entra, login_host=trap.host, tls_ca_pem=trap.ca_pem, client_secret="typed-now",
                              graph_base_url=f"http://{trap.host}/v1.0")
    assert "is not a Microsoft login host" in errors["login_host"]
    assert "over https only" in errors["graph_base_url"]
    assert trap.connections == 0


def test_r26_the_entra_connector_sends_nothing_to_a_host_nobody_allowed(settings):
    # A row saved before these rules existed: the connector checks again before its first request.
    settings.ENTRA_ALLOWED_HOSTS = []
    with LoginTrap() as trap:
        connector = EntraConnector(EntraSettings(tenant="contoso.com", client_id="app", client_secret="stored-secret",
                                                 login_host=trap.host, ca_pem=trap.ca_pem))
        with pytest.raises(DirectoryAuthError, match="is not a Microsoft login host"):
            connector.test()
    assert trap.connections == 0
    plain_graph = EntraConnector(EntraSettings(tenant="contoso.com", client_id="app", client_secret="stored-secret",
                                               graph_base_url="http://graph.microsoft.com/v1.0"))
    with pytest.raises(DirectoryAuthError, match="over https only"):
        plain_graph.test()


# ------------------------------------------------------------- 3. no bind over plain LDAP (R25)

def test_r25_direct_mode_refuses_plain_ldap_in_the_form_and_the_api(staff, client_org):
    integration = Integration.objects.create(
        client=client_org, name="Corp AD", kind=IntegrationKind.ACTIVE_DIRECTORY, ad_mode=AdMode.DIRECT,
        ldap_urls="ldaps://dc1.corp.test", base_dn="DC=corp,DC=test", bind_dn="svc@corp.test",
        bind_password=BIND_PASSWORD)
    errors = staff.change(integration, ldap_urls="ldap://dc1.corp.test", tls_mode="none",
                          bind_password=BIND_PASSWORD)
    assert "use LDAPS or StartTLS" in errors["tls_mode"]
    integration.refresh_from_db()
    assert integration.tls_mode == "ldaps"


def test_r25_direct_mode_refuses_plain_ldap_when_created_through_the_api(client_org):
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {issue_api_token(staff_user('boss', superuser=True))}")
    response = api.post("/api/integrations/", {
        "client": client_org.pk, "name": "Corp AD", "kind": "ad", "ad_mode": "direct", "tls_mode": "none",
        "ldap_urls": "ldap://dc1.corp.test", "base_dn": "DC=corp,DC=test", "bind_dn": "svc@corp.test",
        "bind_password": BIND_PASSWORD}, format="json")
    assert response.status_code == 400 and "use LDAPS or StartTLS" in response.json()["tls_mode"][0]
    assert not Integration.objects.exists()


def test_r25_the_ldap_connector_never_binds_with_a_password_over_plain_ldap():
    with ByteTrap() as trap:
        settings = LdapSettings(urls=(f"ldap://127.0.0.1:{trap.port}",), base_dn="DC=corp,DC=test",
                                bind_dn="svc@corp.test", bind_password=BIND_PASSWORD, tls_mode="none",
                                connect_timeout=2, receive_timeout=2)
        with pytest.raises(DirectoryAuthError, match="plain LDAP would carry it in clear"):
            LdapConnector(settings).test()
        assert trap.connections == 0

        # Only an operator's explicit choice (the agent's --insecure) lets it through: then it is in clear.
        from dataclasses import replace

        with pytest.raises(DirectoryUnavailable):
            LdapConnector(replace(settings, plain_ldap_allowed=True)).test()
        assert _sent(BIND_PASSWORD, trap.received)
