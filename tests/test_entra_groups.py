"""Entra ID groups as folders (G1-G6), through the real msal and connector against the Graph stand-in."""

from __future__ import annotations

import pytest

from directory.connectors.base import DirectoryUnavailable
from directory.entra_tenant import check_entra_integration
from directory.models import Folder, Integration
from passportal.models import PermissionLevel, PortalUser, SecurityGroup
from provisioning import sync
from provisioning.models import Mapping, SyncRun, SyncStatus, SyncTrigger
from testing.fake_entra import FakeEntraServer

from .fixtures_entra import entra_connector_for, entra_integration_values


def _nested(server: FakeEntraServer):
    """Sales-Team > EMEA > Paris, Ann in Paris (three deep), Bob directly in Sales-Team."""
    ann = server.add_user("Ann", "Lee", mail="ann@contoso.com")
    bob = server.add_user("Bob", "Smith", mail="bob@contoso.com")
    paris = server.add_security_group("Paris", members=[ann])
    emea = server.add_security_group("EMEA", members=[paris])
    sales = server.add_security_group("Sales-Team", members=[emea, bob])
    return sales, emea, paris, ann, bob


def test_g1_security_mail_enabled_security_and_microsoft_365_groups_are_folders(fake_entra: FakeEntraServer):
    fake_entra.add_au("Branch")
    fake_entra.add_security_group("Sec")
    fake_entra.add_security_group("MailSec", kind="mail_security")
    fake_entra.add_security_group("Team", kind="m365")
    fake_entra.add_security_group("Newsletter", kind="distribution")

    folders = {f.name: f.kind for f in entra_connector_for(fake_entra).read_folders()}

    assert folders == {"Branch": "au", "Sec": "gr", "MailSec": "gr", "Team": "mg"}


def test_g2_nested_member_is_in_scope(fake_entra: FakeEntraServer):
    sales, _emea, _paris, ann, bob = _nested(fake_entra)

    snapshot = entra_connector_for(fake_entra).read_snapshot([sales.id])

    users = {u.id: u for u in snapshot.users}
    assert set(users) == {ann.id, bob.id}
    assert users[ann.id].folder_ids == {sales.id}
    assert users[ann.id].chains == ((sales.id, "Sales-Team", "EMEA", "Paris"),)
    assert users[bob.id].chains == ((sales.id, "Sales-Team"),)


def test_g2_a_membership_cycle_terminates(fake_entra: FakeEntraServer):
    ann = fake_entra.add_user("Ann", "Lee", mail="ann@contoso.com")
    a = fake_entra.add_security_group("A", members=[ann])
    b = fake_entra.add_security_group("B", members=[a])
    fake_entra.add_group_member(a, b)  # A in B, B in A

    snapshot = entra_connector_for(fake_entra).read_snapshot([b.id])

    (record,) = snapshot.users
    assert record.id == ann.id and record.chains == ((b.id, "B", "A"),)


def test_g2_contacts_devices_and_service_principals_in_a_group_are_not_users(fake_entra: FakeEntraServer):
    ann = fake_entra.add_user("Ann", "Lee", mail="ann@contoso.com")
    others = [fake_entra.add_contact("Supplier"), fake_entra.add_device("LAPTOP-1"),
              fake_entra.add_service_principal("Backup app")]
    group = fake_entra.add_security_group("Staff", members=[ann, *others])

    snapshot = entra_connector_for(fake_entra).read_snapshot([group.id])

    assert [u.id for u in snapshot.users] == [ann.id]


def test_g2_every_membership_page_is_followed_through_throttling(fake_entra: FakeEntraServer):
    users = [fake_entra.add_user(f"U{i}", "Staff", mail=f"u{i}@contoso.com") for i in range(7)]
    group = fake_entra.add_security_group("Staff", members=users)
    fake_entra.page_size = 3
    fake_entra.throttle("/transitiveMembers/microsoft.graph.user", times=2, retry_after=0)

    snapshot = entra_connector_for(fake_entra).read_snapshot([group.id])

    assert sorted(u.id for u in snapshot.users) == sorted(u.id for u in users)
    pages = fake_entra.requests_to(f"/groups/{group.id}/transitiveMembers/microsoft.graph.user")
    assert len(pages) == 3 + 2  # three pages, two of them answered 429 once
    # A flat group costs its member pages and one look for nested groups: never a request per user.
    assert len(fake_entra.requests_to(f"/groups/{group.id}/members")) == 0


def test_g4_a_mapped_group_that_can_no_longer_be_read_fails_the_read(fake_entra: FakeEntraServer):
    sales, *_ = _nested(fake_entra)
    connector = entra_connector_for(fake_entra)
    folders = [f for f in connector.read_folders() if f.id == sales.id]
    fake_entra.delete_group(sales)

    from directory.connectors.entra_groups import read_group_members
    with pytest.raises(DirectoryUnavailable, match="Sales-Team could not be read"):
        read_group_members(connector.graph, folders)


# ---------------------------------------------------------------- through the engine


def _integration(server: FakeEntraServer, client) -> Integration:
    integration = Integration(client=client, name="Contoso", **entra_integration_values(server))
    check_entra_integration(integration)
    integration.save()
    sync.run_sync(integration, SyncTrigger.FORCE)  # discovers the folders
    return integration


def _map(integration: Integration, name: str, level: str, group: str) -> None:
    folder = Folder.objects.get(integration=integration, name=name)
    mapping = Mapping.objects.create(folder=folder, permission_level=PermissionLevel.objects.get(
        user_kind="site", name=level))
    mapping.security_groups.add(SecurityGroup.objects.get_or_create(client=integration.client, name=group)[0])


@pytest.mark.django_db
def test_g3_an_au_and_a_group_mapping_combine_highest_level_and_union_of_groups(fake_entra: FakeEntraServer,
                                                                                 client_org):
    sales, _emea, _paris, ann, _bob = _nested(fake_entra)
    fake_entra.add_member(fake_entra.add_au("London"), ann)
    integration = _integration(fake_entra, client_org)
    assert Folder.objects.get(integration=integration, external_id=sales.id).kind == "gr"
    _map(integration, "London", "Site User", "Office")
    _map(integration, "Sales-Team", "Site Admin", "Sales")

    run = sync.run_sync(integration, SyncTrigger.FORCE)

    assert run.status == SyncStatus.SUCCEEDED, run.error
    user = PortalUser.objects.get(email="ann@contoso.com")
    assert user.permission_level.name == "Site Admin"
    assert sorted(user.security_groups.values_list("name", flat=True)) == ["Office", "Sales"]
    # The user's page reads through which folders and chain the user is in scope (G5).
    assert sorted(user.directory_links.get().directory_state["via"]) == ["London", "Sales-Team > EMEA > Paris"]


@pytest.mark.django_db
def test_g4_removed_from_the_group_is_out_of_scope_naming_it(fake_entra: FakeEntraServer, client_org):
    _sales, _emea, paris, ann, _bob = _nested(fake_entra)
    integration = _integration(fake_entra, client_org)
    _map(integration, "Sales-Team", "Site User", "Sales")
    assert sync.run_sync(integration, SyncTrigger.FORCE).status == SyncStatus.SUCCEEDED
    fake_entra.remove_group_member(paris, ann)  # out of the nested group: out of every mapped one

    run = sync.run_sync(integration, SyncTrigger.FORCE)

    assert run.status == SyncStatus.SUCCEEDED, run.error
    assert PortalUser.objects.get(email="ann@contoso.com").status == "disabled"
    assert [(d["reason"], d["detail"]) for d in run.changes["disable"]] == [
        ("out_of_scope", "removed from group Sales-Team")]


@pytest.mark.django_db
def test_g4_a_deleted_mapped_group_fails_the_run_and_disables_nobody(fake_entra: FakeEntraServer, client_org):
    sales, _emea, _paris, _ann, _bob = _nested(fake_entra)
    integration = _integration(fake_entra, client_org)
    _map(integration, "Sales-Team", "Site User", "Sales")
    assert sync.run_sync(integration, SyncTrigger.FORCE).status == SyncStatus.SUCCEEDED
    fake_entra.delete_group(sales)

    run = sync.run_sync(integration, SyncTrigger.FORCE)

    assert run.status == SyncStatus.FAILED and "Sales-Team" in run.error
    assert set(PortalUser.objects.filter(client=client_org).values_list("status", flat=True)) != {"disabled"}
    assert SyncRun.objects.filter(integration=integration, status=SyncStatus.FAILED).count() == 1


# ---------------------------------------------------------------- incremental (G6)


def test_g6_an_incremental_run_reads_the_groups_in_full_when_a_nested_group_changed(fake_entra: FakeEntraServer):
    sales, _emea, paris, ann, bob = _nested(fake_entra)
    first = entra_connector_for(fake_entra)
    full = first.read_snapshot([sales.id])
    assert "/groups/delta?$deltatoken=" in full.delta_state["groups"]
    fake_entra.remove_group_member(paris, ann)  # a change on the nested group's row only

    connector = entra_connector_for(fake_entra, delta_state=full.delta_state)
    snapshot = connector.read_snapshot([sales.id], incremental=True)

    assert not snapshot.incremental  # whom a nested change reaches is for a full read to say
    assert [u.id for u in snapshot.users] == [bob.id]
    assert any("group" in note for note in snapshot.notes)


def test_g6_a_user_changed_otherwise_comes_with_its_groups_incrementally(fake_entra: FakeEntraServer):
    sales, _emea, _paris, ann, _bob = _nested(fake_entra)
    first = entra_connector_for(fake_entra)
    full = first.read_snapshot([sales.id])
    fake_entra.rename_user(ann, "Anna", "Lee")

    connector = entra_connector_for(fake_entra, delta_state=full.delta_state)
    snapshot = connector.read_snapshot([sales.id], incremental=True)

    assert snapshot.incremental
    (record,) = snapshot.users
    assert record.first_name == "Anna" and sales.id in record.folder_ids
    assert (sales.id, "Sales-Team", "EMEA", "Paris") in record.chains  # the user's page keeps its chain (G5)
    assert snapshot.delta_state["groups"]
