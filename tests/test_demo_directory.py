"""The demo directory: the real LDAP connector over ldap3's in-memory server, and `manage.py seed_demo`."""

from __future__ import annotations

import io
import json
import uuid

import pytest
from django.core.management import call_command

from directory.connectors.demo import DATA_FILE, organisations
from directory.connectors.ldap import LdapConnector
from directory.management.commands.seed_demo import DEMO_CLIENT_NAME
from directory.models import Integration, IntegrationKind
from directory.sources import connector_for
from passportal.models import Client


def demo_integration(base_dn: str) -> Integration:
    return Integration(name="demo", kind=IntegrationKind.DEMO, base_dn=base_dn)


def test_the_demo_organisation_has_nested_ous_and_about_sixty_users_some_without_email_some_disabled():
    snapshot = connector_for(demo_integration("DC=contoso,DC=demo")).read_snapshot(())

    paths = {f.path for f in snapshot.folders}
    assert {"Contoso", "Contoso/Sales", "Contoso/Sales/EMEA", "Contoso/Head Office/Finance"} <= paths
    by_path = {f.path: f for f in snapshot.folders}
    assert by_path["Contoso/Sales/EMEA"].parent_id == by_path["Contoso/Sales"].id
    assert 55 <= len(snapshot.users) <= 65
    assert sum(not u.email for u in snapshot.users) >= 3
    assert sum(not u.enabled for u in snapshot.users) >= 3
    assert all(len(u.folder_ids) == 1 for u in snapshot.users)
    assert snapshot.directory_id == "contoso.demo" and snapshot.complete


def test_the_demo_is_read_through_paged_searches_like_a_real_dc():
    reader = connector_for(demo_integration("DC=contoso,DC=demo"))
    users = reader.read_users(())
    assert reader.last_read.search_requests > 2  # page size 25: the users alone take three pages
    assert len({u.id for u in users}) == len(users)


def test_computers_and_groups_in_the_demo_never_become_users():
    users = connector_for(demo_integration("DC=contoso,DC=demo")).read_users(())
    assert not [u for u in users if u.upn.startswith("WS-") or u.display_name == "All Staff"]
    assert len(users) == len(organisations()["client"]["users"])


def test_r3_demo_identities_are_the_fixed_guids_of_the_sample_data():
    data = json.loads(DATA_FILE.read_text())["organisations"][0]
    users = {u.id: u for u in connector_for(demo_integration(data["base_dn"])).read_users(())}
    assert set(users) == {u["guid"] for u in data["users"]}
    first = data["users"][0]
    assert users[first["guid"]].first_name == first["given"]


def test_a_single_demo_user_is_read_by_guid():
    reader = connector_for(demo_integration("DC=contoso,DC=demo"))
    someone = reader.read_users(())[5]
    assert reader.read_user(someone.id) == someone
    assert reader.read_user(str(uuid.uuid4())) is None


def test_the_vault_demo_is_a_separate_organisation():
    snapshot = connector_for(demo_integration("DC=acme-msp,DC=demo")).read_snapshot(())
    assert snapshot.directory_id == "acme-msp.demo"
    assert {f.path for f in snapshot.folders} == {"Acme MSP", "Acme MSP/Helpdesk", "Acme MSP/Engineering",
                                                 "Acme MSP/Management"}


@pytest.mark.django_db
def test_seed_demo_links_a_demo_client_and_the_company_vault_and_records_their_folders():
    output = io.StringIO()
    call_command("seed_demo", stdout=output)

    assert "Demo directory: Contoso (sample data) for Demo Client (sample data): 12 OUs" in output.getvalue()
    vault = Client.objects.get(is_company_vault=True)
    demo_client = Client.objects.get(name=DEMO_CLIENT_NAME)
    assert demo_client.site_enabled
    client_link = Integration.objects.get(client=demo_client, kind=IntegrationKind.DEMO)
    vault_link = Integration.objects.get(client=vault, kind=IntegrationKind.DEMO)
    assert isinstance(connector_for(client_link), LdapConnector)
    assert client_link.folders.filter(path="Contoso/Sales/EMEA", parent__path="Contoso/Sales").exists()
    assert client_link.folders.count() == 12 and vault_link.folders.count() == 4
    assert "not a real AD" in client_link.get_kind_display()


@pytest.mark.django_db
def test_seed_demo_is_idempotent_and_keeps_the_existing_vault(vault):
    call_command("seed_demo", stdout=io.StringIO())
    folder_ids = sorted(Integration.objects.values_list("folders__pk", flat=True))
    call_command("seed_demo", stdout=io.StringIO())

    assert Client.objects.filter(is_company_vault=True).get() == vault
    assert Client.objects.filter(name=DEMO_CLIENT_NAME).count() == 1
    assert Integration.objects.filter(kind=IntegrationKind.DEMO).count() == 2
    assert sorted(Integration.objects.values_list("folders__pk", flat=True)) == folder_ids
