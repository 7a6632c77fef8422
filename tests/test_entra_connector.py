"""Full reads through the real msal and the connector's HTTP code, against the HTTPS stand-in."""

from __future__ import annotations

import time

import pytest

from directory.connectors.base import DirectoryAuthError, DirectoryUnavailable
from directory.sources import entra_connector
from testing.fake_entra import FakeEntraServer

from .fixtures_entra import entra_connector_for


def test_it_lists_every_au_across_pages(fake_entra: FakeEntraServer):
    aus = [fake_entra.add_au(f"Branch {i:02d}", description="office") for i in range(7)]
    fake_entra.page_size = 3

    folders = entra_connector_for(fake_entra).read_folders()

    assert sorted(f.id for f in folders) == sorted(au.id for au in aus)
    assert {f.kind for f in folders} == {"au"}
    assert {f.name for f in folders} == {f"Branch {i:02d}" for i in range(7)}
    pages = fake_entra.requests_to("/v1.0/directory/administrativeUnits")
    assert len(pages) == 3  # 3 + 3 + 1, every @odata.nextLink followed
    assert all("$select=id,displayName,description,visibility" in r.query for r in pages)


def test_it_reads_every_member_page_and_ignores_groups_and_devices(fake_entra: FakeEntraServer):
    au = fake_entra.add_au("Sales")
    users = [fake_entra.add_user(f"User{i}", "Sales", mail=f"u{i}@contoso.com", aus=[au]) for i in range(5)]
    fake_entra.add_group("Sales team", aus=[au])
    fake_entra.add_device("SALES-LAPTOP-01", aus=[au])
    fake_entra.page_size = 2

    snapshot = entra_connector_for(fake_entra).read_snapshot([au.id])

    assert sorted(u.id for u in snapshot.users) == sorted(u.id for u in users)
    member_pages = fake_entra.requests_to(f"/administrativeUnits/{au.id}/members/microsoft.graph.user")
    assert len(member_pages) == 3
    assert "$select=id,givenName,surname,displayName,mail,userPrincipalName,accountEnabled,otherMails" in \
        member_pages[0].query
    assert snapshot.complete and not snapshot.incremental


def test_it_gives_a_user_in_two_aus_both_folders(fake_entra: FakeEntraServer):
    sales, emea = fake_entra.add_au("Sales"), fake_entra.add_au("EMEA")
    other = fake_entra.add_au("Not configured")
    adele = fake_entra.add_user("Adele", "Vance", mail="adele@contoso.com", aus=[sales, emea, other])

    snapshot = entra_connector_for(fake_entra).read_snapshot([sales.id, emea.id])

    (record,) = snapshot.users
    assert record.id == adele.id
    assert record.folder_ids == {sales.id, emea.id}
    assert snapshot.read_folder_ids == {sales.id, emea.id}
    assert {f.id for f in snapshot.folders} == {sales.id, emea.id, other.id}  # every AU for the tree


def test_it_reads_all_aus_when_no_folder_is_named(fake_entra: FakeEntraServer):
    a, b = fake_entra.add_au("A"), fake_entra.add_au("B")
    fake_entra.add_user("In", "A", mail="a@contoso.com", aus=[a])
    fake_entra.add_user("In", "B", mail="b@contoso.com", aus=[b])

    snapshot = entra_connector_for(fake_entra).read_snapshot([])

    assert len(snapshot.users) == 2
    assert snapshot.read_folder_ids == {a.id, b.id}


def test_r3_users_are_known_by_object_id_within_the_tenant_guid(fake_entra: FakeEntraServer):
    au = fake_entra.add_au("Sales")
    user = fake_entra.add_user("Adele", "Vance", mail="adele@contoso.com", aus=[au],
                               user_id="6E8D1C3B-0B45-4C52-9C7A-3D2B1A0F9E8D")
    connector = entra_connector_for(fake_entra, tenant="contoso.com")  # a domain, not the GUID

    snapshot = connector.read_snapshot([au.id])

    assert snapshot.directory_id == fake_entra.tenant.guid
    assert snapshot.users[0].id == user.id.lower()


def test_r6_names_come_from_given_name_and_surname_not_display_name(fake_entra: FakeEntraServer):
    au = fake_entra.add_au("Sales")
    fake_entra.add_user("Adele", "Vance", display_name="VANCE Adele (Sales, contractor)", mail="a@contoso.com",
                        aus=[au])

    (record,) = entra_connector_for(fake_entra).read_snapshot([au.id]).users

    assert (record.first_name, record.last_name) == ("Adele", "Vance")
    assert record.display_name == "VANCE Adele (Sales, contractor)"


def test_r8_a_disabled_user_is_read_as_disabled(fake_entra: FakeEntraServer):
    au = fake_entra.add_au("Sales")
    on = fake_entra.add_user("On", "User", mail="on@contoso.com", aus=[au])
    off = fake_entra.add_user("Off", "User", mail="off@contoso.com", aus=[au], enabled=False)

    records = {u.id: u for u in entra_connector_for(fake_entra).read_snapshot([au.id]).users}

    assert records[on.id].enabled is True
    assert records[off.id].enabled is False


def test_a_user_without_mail_has_no_email_even_with_upn_and_other_mails(fake_entra: FakeEntraServer):
    au = fake_entra.add_au("Sales")
    fake_entra.add_user("No", "Mail", mail=None, upn="no.mail@contoso.com", other_mails=["me@gmail.example"],
                        aus=[au])

    (record,) = entra_connector_for(fake_entra).read_snapshot([au.id]).users

    assert record.email == ""
    assert record.upn == "no.mail@contoso.com"


def test_r19_a_renamed_au_keeps_its_id_and_a_new_au_appears(fake_entra: FakeEntraServer):
    au = fake_entra.add_au("Sales")
    connector = entra_connector_for(fake_entra)
    before = connector.read_folders()

    fake_entra.rename_au(au, "Sales & Marketing")
    new = fake_entra.add_au("Support")
    after = {f.id: f.name for f in connector.read_folders()}

    assert [f.id for f in before] == [au.id]
    assert after == {au.id: "Sales & Marketing", new.id: "Support"}


def test_r21_a_member_with_only_its_id_fails_the_run_naming_user_read_all(fake_entra: FakeEntraServer):
    au = fake_entra.add_au("Sales")
    fake_entra.add_user("Adele", "Vance", mail="adele@contoso.com", aus=[au])
    fake_entra.limited_information = True

    with pytest.raises(DirectoryAuthError, match=r"User\.Read\.All"):
        entra_connector_for(fake_entra).read_snapshot([au.id])


def test_r21_an_au_listed_but_gone_before_its_members_are_read_fails_the_run(fake_entra: FakeEntraServer):
    au = fake_entra.add_au("Sales")
    connector = entra_connector_for(fake_entra)
    connector.read_folders()
    fake_entra.remove_au(au)

    with pytest.raises(DirectoryUnavailable, match=au.id):
        connector.read_users([au.id])


def test_an_au_configured_but_no_longer_in_the_directory_is_read_as_empty(fake_entra: FakeEntraServer):
    au = fake_entra.add_au("Sales")
    gone_id = "0b9a7d5e-1111-4222-8333-944455556666"

    snapshot = entra_connector_for(fake_entra).read_snapshot([au.id, gone_id])

    assert gone_id in snapshot.read_folder_ids  # its users, if any were known, are out of scope (R9)
    assert gone_id not in {f.id for f in snapshot.folders}


def test_read_user_returns_one_user_with_all_its_aus(fake_entra: FakeEntraServer):
    a, b = fake_entra.add_au("A"), fake_entra.add_au("B")
    user = fake_entra.add_user("Adele", "Vance", mail="adele@contoso.com", aus=[a, b])
    connector = entra_connector_for(fake_entra)

    record = connector.read_user(user.id.upper())

    assert record is not None
    assert record.id == user.id and record.folder_ids == {a.id, b.id} and record.email == "adele@contoso.com"


def test_read_user_returns_none_for_a_deleted_user(fake_entra: FakeEntraServer):
    user = fake_entra.add_user("Adele", "Vance", mail="adele@contoso.com")
    connector = entra_connector_for(fake_entra)
    fake_entra.soft_delete_user(user)

    assert connector.read_user(user.id) is None


def test_test_connection_reports_tenant_domains_and_au_count(fake_entra: FakeEntraServer):
    fake_entra.add_au("A")
    fake_entra.add_au("B")

    report = entra_connector_for(fake_entra).test()

    assert "Token OK" in report
    assert fake_entra.tenant.guid in report and "Contoso" in report
    assert "contoso.onmicrosoft.com, contoso.com" in report
    assert "Administrative units: 2" in report


def test_tls_is_verified_by_default(fake_entra: FakeEntraServer):
    connector = entra_connector_for(fake_entra, ca_pem="")  # system CAs only: the throwaway CA is unknown

    with pytest.raises(DirectoryUnavailable, match="certificate"):
        connector.read_folders()
    assert not any(r.path.startswith("/v1.0") for r in fake_entra.requests_seen)


def test_for_integration_reads_the_integration_fields(fake_entra: FakeEntraServer, settings):
    from directory.models import Integration

    settings.ENTRA_RETRY_MAX_ATTEMPTS = 2
    integration = Integration(
        name="Contoso", kind="entra", tenant=fake_entra.tenant.domains[1], app_client_id=fake_entra.app.client_id,
        client_secret=fake_entra.app.secret, login_host=fake_entra.login_host,
        graph_base_url=fake_entra.graph_base_url, tls_ca_pem=fake_entra.ca_pem,
    )

    connector = entra_connector(integration)

    assert connector.settings.retry.max_attempts == 2
    assert connector.read_folders() == []
    assert connector.directory_id == fake_entra.tenant.guid


def test_a_full_read_of_20000_users_over_200_aus_is_quick(fake_entra: FakeEntraServer):
    fake_entra.seed(aus=200, users=20_000)
    started = time.monotonic()

    snapshot = entra_connector_for(fake_entra).read_snapshot([])

    assert len(snapshot.folders) == 200 and len(snapshot.users) == 20_000
    assert time.monotonic() - started < 30  # about 1 s on a laptop; the bound only catches a regression
    assert len(fake_entra.requests_to("/members/microsoft.graph.user")) == 200  # $top=999: one page per AU
