"""Active Directory groups as folders (G1-G5), direct mode, against the real Samba AD DC."""

from __future__ import annotations

import pytest

from directory.models import AdMode, Folder, Integration, IntegrationKind
from passportal.models import PermissionLevel, PortalUser, SecurityGroup
from provisioning import sync
from provisioning.models import Mapping, SyncStatus, SyncTrigger

from .test_ldap_connector import connector

pytestmark = pytest.mark.samba


def _people(dc, ou):
    ann_guid = dc.add_user(ou, dc.unique_sam("ann"), "Ann", "Lee", "ann@corp.test")
    bob_guid = dc.add_user(ou, dc.unique_sam("bob"), "Bob", "Smith", "bob@corp.test")
    return (ann_guid, dc.dn_of(ann_guid)), (bob_guid, dc.dn_of(bob_guid))


def _nested(dc, ou):
    """Sales-Team > EMEA > Paris, Ann in Paris (three deep), Bob directly in Sales-Team."""
    (ann, ann_dn), (bob, bob_dn) = _people(dc, ou)
    paris = dc.add_security_group(ou, "Paris", members=[ann_dn])
    emea = dc.add_security_group(ou, "EMEA", members=[paris])
    sales = dc.add_security_group(ou, "Sales-Team", members=[emea, bob_dn])
    return sales, emea, paris, ann, bob


def _group_id(reader, name):
    return next(f.id for f in reader.read_folders() if f.name == name and f.kind == "gr")


def test_g1_security_groups_are_folders_distribution_groups_are_not(samba_dc, samba_ou):
    samba_dc.add_security_group(samba_ou, "Staff")
    samba_dc.add_security_group(samba_ou, "Newsletter", security=False)

    kinds = {f.name: f.kind for f in connector(samba_dc, samba_ou).read_folders()}

    assert "Newsletter" not in kinds and kinds["Staff"] == "gr"


def test_g2_nested_member_is_in_scope(samba_dc, samba_ou):
    _sales, _emea, _paris, ann, bob = _nested(samba_dc, samba_ou)
    reader = connector(samba_dc, samba_ou)
    sales_id = _group_id(reader, "Sales-Team")

    snapshot = reader.read_snapshot([sales_id])

    users = {u.id: u for u in snapshot.users}
    assert set(users) == {ann, bob}
    assert sales_id in users[ann].folder_ids
    assert users[ann].chains == ((sales_id, "Sales-Team", "EMEA", "Paris"),)
    # One search for all groups' members, whatever their number: never a search per user or per group.
    assert reader.last_read.search_requests <= 5


def test_g2_a_membership_cycle_terminates(samba_dc, samba_ou):
    (ann, ann_dn), _ = _people(samba_dc, samba_ou)
    a = samba_dc.add_security_group(samba_ou, "A", members=[ann_dn])
    b = samba_dc.add_security_group(samba_ou, "B", members=[a])
    samba_dc.add_group_member(a, b)  # A in B, B in A
    reader = connector(samba_dc, samba_ou)

    snapshot = reader.read_snapshot([_group_id(reader, "B")])

    assert [u.id for u in snapshot.users] == [ann]


def test_g2_a_computer_and_a_contact_in_a_mapped_group_are_ignored(samba_dc, samba_ou):
    (ann, ann_dn), _ = _people(samba_dc, samba_ou)
    pc = samba_dc.dn_of(samba_dc.add_computer(samba_ou, "PC01"))
    contact = samba_dc.dn_of(samba_dc.add_contact(samba_ou, "Outside", "Supplier", "sales@supplier.test"))
    samba_dc.add_security_group(samba_ou, "Staff", members=[ann_dn, pc, contact])
    reader = connector(samba_dc, samba_ou)

    snapshot = reader.read_snapshot([_group_id(reader, "Staff")])

    assert [u.id for u in snapshot.users] == [ann]


# ---------------------------------------------------------------- through the engine


def _integration(dc, ou, client) -> Integration:
    integration = Integration.objects.create(
        client=client, name="Corp AD", kind=IntegrationKind.ACTIVE_DIRECTORY, ad_mode=AdMode.DIRECT,
        ldap_urls=dc.ldaps_url, base_dn=ou, bind_dn=dc.admin_bind_dn, bind_password=dc.admin_password,
        tls_ca_pem=dc.ca_pem,
    )
    sync.run_sync(integration, SyncTrigger.FORCE)  # discovers OUs and groups
    return integration


def _map(integration, name, level, group):
    mapping = Mapping.objects.create(folder=Folder.objects.get(integration=integration, name=name),
                                     permission_level=PermissionLevel.objects.get(user_kind="site", name=level))
    mapping.security_groups.add(SecurityGroup.objects.get_or_create(client=integration.client, name=group)[0])


@pytest.mark.django_db
def test_g3_an_ou_and_a_group_mapping_combine_highest_level_and_union_of_groups(samba_dc, samba_ou, client_org):
    london = samba_dc.make_ou("London", samba_ou)
    ann = samba_dc.add_user(london, samba_dc.unique_sam("ann"), "Ann", "Lee", "ann@corp.test")
    paris = samba_dc.add_security_group(samba_ou, "Paris", members=[samba_dc.dn_of(ann)])
    emea = samba_dc.add_security_group(samba_ou, "EMEA", members=[paris])
    samba_dc.add_security_group(samba_ou, "Sales-Team", members=[emea])
    integration = _integration(samba_dc, samba_ou, client_org)
    _map(integration, "London", "Site User", "Office")
    _map(integration, "Sales-Team", "Site Admin", "Sales")

    run = sync.run_sync(integration, SyncTrigger.FORCE)

    assert run.status == SyncStatus.SUCCEEDED, run.error
    user = PortalUser.objects.get(email="ann@corp.test")
    assert user.permission_level.name == "Site Admin"
    assert sorted(user.security_groups.values_list("name", flat=True)) == ["Office", "Sales"]
    assert sorted(user.directory_links.get().directory_state["via"]) == [
        "Sales-Team > EMEA > Paris", london_path(samba_ou)]


def london_path(ou_dn):
    return f"{ou_dn.split(',')[0].split('=')[1]}/London"


@pytest.mark.django_db
def test_g4_removed_from_the_group_is_out_of_scope_naming_it(samba_dc, samba_ou, client_org):
    _sales, _emea, paris, ann, _bob = _nested(samba_dc, samba_ou)
    integration = _integration(samba_dc, samba_ou, client_org)
    _map(integration, "Sales-Team", "Site User", "Sales")
    assert sync.run_sync(integration, SyncTrigger.FORCE).status == SyncStatus.SUCCEEDED
    samba_dc.remove_group_member(paris, samba_dc.dn_of(ann))

    run = sync.run_sync(integration, SyncTrigger.FORCE)

    assert run.status == SyncStatus.SUCCEEDED, run.error
    assert PortalUser.objects.get(email="ann@corp.test").status == "disabled"
    assert [(d["reason"], d["detail"]) for d in run.changes["disable"]] == [
        ("out_of_scope", "removed from group Sales-Team")]


@pytest.mark.django_db
def test_g1_a_renamed_group_keeps_its_mapping(samba_dc, samba_ou, client_org):
    sales, *_ = _nested(samba_dc, samba_ou)
    integration = _integration(samba_dc, samba_ou, client_org)
    _map(integration, "Sales-Team", "Site User", "Sales")
    samba_dc.rename_group(sales, "Sales-Global")

    run = sync.run_sync(integration, SyncTrigger.FORCE)

    assert run.status == SyncStatus.SUCCEEDED, run.error
    assert Mapping.objects.get(folder__integration=integration).folder.name == "Sales-Global"
    assert PortalUser.objects.filter(client=client_org, status="disabled").count() == 0


@pytest.mark.django_db
def test_g4_a_deleted_mapped_group_fails_the_run_and_disables_nobody(samba_dc, samba_ou, client_org):
    sales, *_ = _nested(samba_dc, samba_ou)
    integration = _integration(samba_dc, samba_ou, client_org)
    _map(integration, "Sales-Team", "Site User", "Sales")
    assert sync.run_sync(integration, SyncTrigger.FORCE).status == SyncStatus.SUCCEEDED
    samba_dc.conn.delete(sales)

    run = sync.run_sync(integration, SyncTrigger.FORCE)

    assert run.status == SyncStatus.FAILED and "Sales-Team" in run.error
    assert PortalUser.objects.filter(client=client_org, status="disabled").count() == 0
