"""One user's resync (R28) of a user in scope through a nested group (G2, G4, G5): AD against the Samba DC, Entra
through the real msal and connector against the Graph stand-in."""

from __future__ import annotations

import pytest

from passportal.models import PermissionLevel, PortalUser
from provisioning import actions, sync
from provisioning.models import Mapping, SyncStatus, SyncTrigger
from testing.fake_entra import FakeEntraServer

from . import test_entra_groups as entra
from .fixtures_entra import entra_connector_for
from .test_ldap_connector import connector as ldap_connector
from .test_ldap_groups import _integration, _map, _nested


def _relevel(name: str, level: str) -> None:
    Mapping.objects.filter(folder__name=name).update(
        permission_level=PermissionLevel.objects.get(user_kind="site", name=level))


@pytest.mark.samba
@pytest.mark.django_db
def test_r28_g2_g5_resyncing_one_ad_user_reads_its_groups_through_nesting(samba_dc, samba_ou, client_org):
    _sales, _emea, _paris, _ann, _bob = _nested(samba_dc, samba_ou)  # Ann in Paris, in EMEA, in Sales-Team
    integration = _integration(samba_dc, samba_ou, client_org)
    _map(integration, "Sales-Team", "Site User", "Sales")
    assert sync.run_sync(integration, SyncTrigger.FORCE).status == SyncStatus.SUCCEEDED
    _relevel("Sales-Team", "Site Admin")  # the next run of anyone's gives the group's users this level

    [run] = actions.resync_user(PortalUser.objects.get(email="ann@corp.test"), by=None)

    assert run.status == SyncStatus.SUCCEEDED, run.error
    ann = PortalUser.objects.get(email="ann@corp.test")
    assert ann.status != "disabled" and ann.permission_level.name == "Site Admin"
    assert PortalUser.objects.get(email="bob@corp.test").permission_level.name == "Site User"  # Ann's run alone
    assert ann.directory_links.get().directory_state["via"] == ["Sales-Team > EMEA > Paris"]
    # The run page says through which chain the user whose level changed is in scope.
    [update] = run.changes["update"]
    assert update["via"] == ["Sales-Team > EMEA > Paris"]


@pytest.mark.samba
@pytest.mark.django_db
def test_r28_g4_resyncing_one_ad_user_removed_from_a_nested_group_puts_it_out_of_scope(samba_dc, samba_ou,
                                                                                      client_org):
    _sales, _emea, paris, ann, _bob = _nested(samba_dc, samba_ou)
    integration = _integration(samba_dc, samba_ou, client_org)
    _map(integration, "Sales-Team", "Site User", "Sales")
    assert sync.run_sync(integration, SyncTrigger.FORCE).status == SyncStatus.SUCCEEDED
    samba_dc.remove_group_member(paris, samba_dc.dn_of(ann))

    [run] = actions.resync_user(PortalUser.objects.get(email="ann@corp.test"), by=None)

    assert run.status == SyncStatus.SUCCEEDED, run.error
    assert PortalUser.objects.get(email="ann@corp.test").status == "disabled"
    assert PortalUser.objects.get(email="bob@corp.test").status != "disabled"
    assert [(d["reason"], d["detail"]) for d in run.changes["disable"]] == [
        ("out_of_scope", "removed from group Sales-Team")]


@pytest.mark.django_db
def test_r28_g2_g5_resyncing_one_entra_user_reads_its_groups_through_nesting(fake_entra: FakeEntraServer,
                                                                          client_org):
    _sales, _emea, _paris, _ann, _bob = entra._nested(fake_entra)  # Ann in Paris, in EMEA, in Sales-Team
    fake_entra.add_security_group("Elsewhere", members=[_ann])  # a group of hers nobody mapped
    integration = entra._integration(fake_entra, client_org)
    entra._map(integration, "Sales-Team", "Site User", "Sales")
    assert sync.run_sync(integration, SyncTrigger.FORCE).status == SyncStatus.SUCCEEDED
    _relevel("Sales-Team", "Site Admin")
    fake_entra.page_size = 1  # every membership collection takes several pages
    fake_entra.throttle("/transitiveMemberOf", times=2, retry_after=0)
    asked = len(fake_entra.requests_seen)

    [run] = actions.resync_user(PortalUser.objects.get(email="ann@contoso.com"), by=None)

    assert run.status == SyncStatus.SUCCEEDED, run.error
    ann = PortalUser.objects.get(email="ann@contoso.com")
    assert ann.status != "disabled" and ann.permission_level.name == "Site Admin"
    assert PortalUser.objects.get(email="bob@contoso.com").permission_level.name == "Site User"
    assert ann.directory_links.get().directory_state["via"] == ["Sales-Team > EMEA > Paris"]
    [update] = run.changes["update"]
    assert update["via"] == ["Sales-Team > EMEA > Paris"]
    # Walked up from the user: never a mapped group's (possibly huge) member list, only the links of its chains.
    paths = [r.path for r in fake_entra.requests_seen[asked:]]
    assert not [p for p in paths if "/transitiveMembers" in p or "/members/microsoft.graph.user" in p], paths
    assert fake_entra.requests_to("/transitiveMemberOf/microsoft.graph.group")  # paged, throttled, followed


@pytest.mark.django_db
def test_r28_g4_resyncing_one_entra_user_removed_from_a_nested_group_puts_it_out_of_scope(
        fake_entra: FakeEntraServer, client_org):
    _sales, _emea, paris, ann, _bob = entra._nested(fake_entra)
    integration = entra._integration(fake_entra, client_org)
    entra._map(integration, "Sales-Team", "Site User", "Sales")
    assert sync.run_sync(integration, SyncTrigger.FORCE).status == SyncStatus.SUCCEEDED
    fake_entra.remove_group_member(paris, ann)

    [run] = actions.resync_user(PortalUser.objects.get(email="ann@contoso.com"), by=None)

    assert run.status == SyncStatus.SUCCEEDED, run.error
    assert PortalUser.objects.get(email="ann@contoso.com").status == "disabled"
    assert PortalUser.objects.get(email="bob@contoso.com").status != "disabled"
    assert [(d["reason"], d["detail"]) for d in run.changes["disable"]] == [
        ("out_of_scope", "removed from group Sales-Team")]


def test_r28_g2_one_entra_users_groups_as_the_stand_in_serves_graphs_contract(fake_entra: FakeEntraServer):
    # transitiveMemberOf uncast lists groups and administrative units, each typed; the group cast only groups.
    sales, emea, paris, ann, bob = entra._nested(fake_entra)
    branch = fake_entra.add_au("Branch")
    fake_entra.add_member(branch, ann)
    graph = entra_connector_for(fake_entra).graph

    everything = graph.get(graph.url(f"/users/{ann.id}/transitiveMemberOf?$select=id"))
    groups_only = graph.get(graph.url(f"/users/{ann.id}/transitiveMemberOf/microsoft.graph.group?$select=id"))
    direct = graph.get(graph.url(f"/users/{ann.id}/memberOf/microsoft.graph.group?$select=id"))

    assert {(i["@odata.type"], i["id"]) for i in everything["value"]} == {
        ("#microsoft.graph.group", sales.id), ("#microsoft.graph.group", emea.id),
        ("#microsoft.graph.group", paris.id), ("#microsoft.graph.administrativeUnit", branch.id)}
    assert {i["id"] for i in groups_only["value"]} == {sales.id, emea.id, paris.id}
    assert [i["id"] for i in direct["value"]] == [paris.id]
    assert [i["id"] for i in graph.get(graph.url(f"/users/{bob.id}/memberOf/microsoft.graph.group"))["value"]] == [
        sales.id]


@pytest.mark.samba
def test_r28_g2_one_ad_user_whose_name_a_filter_must_escape_is_read_with_its_groups(samba_dc, samba_ou):
    # "Lee, Ann (EMEA)*": the DN holds an escaped comma, parentheses and an asterisk, all special in a filter.
    odd = samba_dc.add_user(samba_ou, samba_dc.unique_sam("odd"), "Ann (EMEA)*", "Lee\\", "odd@corp.test")
    inner = samba_dc.add_security_group(samba_ou, "Inner", members=[samba_dc.dn_of(odd)])
    outer = samba_dc.add_security_group(samba_ou, "Outer", members=[inner])
    reader = ldap_connector(samba_dc, samba_ou)

    record = reader.read_user(odd)

    assert record.folder_ids >= {samba_dc.guid_of(inner), samba_dc.guid_of(outer)}
    assert (samba_dc.guid_of(outer), "Outer", "Inner") in record.chains
