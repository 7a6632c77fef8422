"""Adding an Entra integration: tenant resolution, one tenant per client (R5), credential errors, secrets (R25)."""

from __future__ import annotations

import logging
import uuid

import pytest
from django.core.exceptions import ValidationError

from directory.connectors.base import DirectoryAuthError, DirectoryError
from directory.entra_tenant import check_entra_integration, resolve_tenant
from directory.models import Integration
from directory.sources import entra_connector
from notifications.models import Notification, NotificationKind
from passportal.models import Client
from testing.fake_entra import FakeEntraServer

from .fixtures_entra import entra_connector_for, entra_integration_values, entra_settings_for


def _linked(server: FakeEntraServer, client: Client, name: str, **overrides) -> Integration:
    integration = Integration(client=client, name=name, **entra_integration_values(server, **overrides))
    check_entra_integration(integration)
    integration.save()
    return integration


def _message(failure: pytest.ExceptionInfo[ValidationError]) -> str:
    return " ".join(failure.value.messages)


def test_resolve_tenant_gives_the_guid_name_and_verified_domains(fake_entra: FakeEntraServer):
    info = resolve_tenant(entra_settings_for(fake_entra, tenant="contoso.com"))

    assert info.guid == fake_entra.tenant.guid
    assert info.display_name == "Contoso"
    assert info.domains == ("contoso.onmicrosoft.com", "contoso.com")


@pytest.mark.django_db
def test_check_sets_tenant_guid_and_domains_on_an_unsaved_integration(fake_entra: FakeEntraServer,
                                                                         client_org: Client):
    integration = Integration(client=client_org, name="Contoso", **entra_integration_values(fake_entra))

    check_entra_integration(integration)

    assert integration.pk is None
    assert integration.tenant_guid == fake_entra.tenant.guid
    assert integration.tenant_domains == ["contoso.onmicrosoft.com", "contoso.com"]


@pytest.mark.django_db
def test_r5_the_same_tenant_through_a_second_domain_is_refused(fake_entra: FakeEntraServer, client_org: Client):
    _linked(fake_entra, client_org, "Contoso primary", tenant="contoso.onmicrosoft.com")
    second = Integration(client=client_org, name="Contoso mail domain",
                         **entra_integration_values(fake_entra, tenant="contoso.com", entra_role="additional"))

    with pytest.raises(ValidationError) as failure:
        check_entra_integration(second)

    guid = fake_entra.tenant.guid
    assert _message(failure) == (f"{guid} (contoso.onmicrosoft.com, contoso.com) is already linked to this client "
                                 "through Contoso primary")
    assert failure.value.error_list[0].code == "tenant_already_linked"
    assert second.tenant_guid == ""  # nothing set on a refused integration
    note = Notification.objects.get(kind=NotificationKind.TENANT_LINKED)
    assert note.client == client_org and guid in note.message and "Contoso mail domain" in note.message


@pytest.mark.django_db
def test_r5_the_same_tenant_by_its_guid_is_refused(fake_entra: FakeEntraServer, client_org: Client):
    _linked(fake_entra, client_org, "Contoso primary")
    again = Integration(client=client_org, name="By GUID",
                        **entra_integration_values(fake_entra, tenant=fake_entra.tenant.guid.upper(),
                                                   entra_role="additional"))

    with pytest.raises(ValidationError, match="already linked to this client through Contoso primary"):
        check_entra_integration(again)


@pytest.mark.django_db
def test_r5_rechecking_the_linked_integration_itself_is_fine(fake_entra: FakeEntraServer, client_org: Client):
    integration = _linked(fake_entra, client_org, "Contoso primary")
    integration.tenant = "contoso.com"

    info = check_entra_integration(integration)

    assert info.guid == integration.tenant_guid


@pytest.mark.django_db
def test_r5_another_client_or_another_tenant_is_accepted(fake_entra: FakeEntraServer, client_org: Client):
    _linked(fake_entra, client_org, "Contoso primary")
    other_client = Client.objects.create(name="Other Ltd", site_enabled=True)
    fabrikam = fake_entra.add_tenant("Fabrikam", ["fabrikam.onmicrosoft.com", "fabrikam.com"])
    fabrikam_app = fake_entra.add_app(fabrikam)

    _linked(fake_entra, other_client, "Same tenant, other client")
    extra = _linked(fake_entra, client_org, "Fabrikam", tenant="fabrikam.com", entra_role="additional",
                    app_client_id=fabrikam_app.client_id, client_secret=fabrikam_app.secret)

    assert extra.tenant_guid == fabrikam.guid
    assert not Notification.objects.filter(kind=NotificationKind.TENANT_LINKED).exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("change", "expected", "code"),
    [
        ("wrong_secret", "the client secret is wrong", "AADSTS7000215"),
        ("expired_secret", "the client secret has expired", "AADSTS7000222"),
        ("app_not_in_tenant", "is not in tenant", "AADSTS700016"),
        ("unknown_tenant", "tenant fabrikam.example was not found", "AADSTS90002"),
    ],
)
def test_credential_errors_say_which_from_the_error_code(fake_entra: FakeEntraServer, client_org: Client,
                                                         change: str, expected: str, code: str):
    values = entra_integration_values(fake_entra)
    if change == "wrong_secret":
        values["client_secret"] = "not-the-secret"
    elif change == "expired_secret":
        fake_entra.expire_secret()
    elif change == "app_not_in_tenant":
        values["app_client_id"] = str(uuid.uuid4())
    else:
        values["tenant"] = "fabrikam.example"
    integration = Integration(client=client_org, name="Contoso", **values)

    with pytest.raises(ValidationError) as failure:
        check_entra_integration(integration)

    message = _message(failure)
    assert expected in message and code in message
    assert "Trace ID" not in message and "Invalid client secret provided" not in message  # never the description
    assert failure.value.error_list[0].code == "entra_refused"


@pytest.mark.django_db
def test_a_malformed_tenant_is_named(fake_entra: FakeEntraServer, client_org: Client):
    integration = Integration(client=client_org, name="Contoso",
                              **entra_integration_values(fake_entra, tenant="contoso/../common"))

    with pytest.raises(ValidationError, match="is not a tenant GUID or a domain name"):
        check_entra_integration(integration)


@pytest.mark.django_db
def test_an_unreachable_login_host_says_so(fake_entra: FakeEntraServer, client_org: Client):
    integration = Integration(client=client_org, name="Contoso",
                              **entra_integration_values(fake_entra, login_host="127.0.0.1:9"))

    with pytest.raises(ValidationError, match=r"Could not check the Entra ID tenant.*could not be reached") as failure:
        check_entra_integration(integration)
    assert failure.value.error_list[0].code == "entra_unreachable"


def test_a_domain_that_now_resolves_to_another_tenant_stops_the_read(fake_entra: FakeEntraServer):
    connector = entra_connector_for(fake_entra, tenant_guid=str(uuid.uuid4()))

    with pytest.raises(DirectoryAuthError, match="save the integration again"):
        connector.read_snapshot([])


@pytest.mark.django_db
def test_r25_the_client_secret_never_appears_in_logs_or_errors(fake_entra: FakeEntraServer, client_org: Client,
                                                               caplog: pytest.LogCaptureFixture, settings):
    caplog.set_level(logging.DEBUG)
    settings.ENTRA_RETRY_CAP_SECONDS = 0.05
    secret = fake_entra.app.secret
    fake_entra.add_au("Sales")
    fake_entra.throttle("/directory/administrativeUnits?", times=1, retry_after=1)
    integration = _linked(fake_entra, client_org, "Contoso primary")
    integration.refresh_from_db()
    errors: list[str] = []

    entra_connector(integration).read_snapshot([])
    fake_entra.expire_secret()
    try:
        entra_connector(integration).read_snapshot([])
    except DirectoryError as exc:
        errors.append(f"{exc!s} {exc!r} {exc.__cause__!r}")
    try:
        check_entra_integration(Integration(client=client_org, name="x", **entra_integration_values(fake_entra)))
    except ValidationError as exc:
        errors.append(repr(exc))

    assert len(errors) == 2
    assert "expired" in errors[0]
    assert "answered 429 TooManyRequests; waiting" in caplog.text  # the connector logs too, beside msal, urllib3
    assert secret not in caplog.text
    assert all(secret not in text for text in errors)
    assert secret not in repr(entra_settings_for(fake_entra))
