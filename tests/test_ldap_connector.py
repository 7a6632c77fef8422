"""The LDAP connector against a real Samba AD DC: each test reads only its own OU (base DN = samba_ou)."""

from __future__ import annotations

import dataclasses
import uuid

import pytest

from directory.connectors.base import DirectoryAuthError, DirectoryUnavailable
from directory.connectors.ldap import LdapConnector, LdapSettings, guid_filter
from directory.folders import record_folders
from directory.models import AdMode, Integration, IntegrationKind
from directory.sources import connector_for

pytestmark = pytest.mark.samba


def ldap_settings(dc, base_dn: str, **overrides) -> LdapSettings:
    settings = LdapSettings(urls=(dc.ldaps_url,), base_dn=base_dn, bind_dn=dc.admin_bind_dn,
                            bind_password=dc.admin_password, ca_pem=dc.ca_pem, page_size=500,
                            connect_timeout=3, receive_timeout=10)
    return dataclasses.replace(settings, **overrides)


def connector(dc, base_dn: str, **overrides) -> LdapConnector:
    return LdapConnector(ldap_settings(dc, base_dn, **overrides))


def by_id(records):
    return {r.id: r for r in records}


def test_nested_ous_are_discovered_with_their_parents_and_paths(samba_dc, samba_ou):
    sales = samba_dc.make_ou("Sales", samba_ou)
    emea = samba_dc.make_ou("EMEA, North", sales)
    nordics = samba_dc.make_ou("Nordics", emea)
    samba_dc.make_ou("IT", samba_ou)

    folders = connector(samba_dc, samba_ou).read_folders()

    ou_name = samba_ou.split(",")[0][3:]
    paths = {f.path: f for f in folders}
    assert set(paths) == {ou_name, f"{ou_name}/Sales", f"{ou_name}/Sales/EMEA, North",
                          f"{ou_name}/Sales/EMEA, North/Nordics", f"{ou_name}/IT"}
    assert paths[f"{ou_name}/Sales/EMEA, North/Nordics"].id == samba_dc.guid_of(nordics)
    assert paths[f"{ou_name}/Sales/EMEA, North/Nordics"].parent_id == samba_dc.guid_of(emea)
    assert paths[f"{ou_name}/Sales/EMEA, North"].name == "EMEA, North"
    assert paths[f"{ou_name}/Sales"].parent_id == paths[ou_name].id
    assert paths[ou_name].parent_id is None  # the base OU's parent is outside the read
    assert all(f.kind == "ou" for f in folders)


def test_r6_user_attributes_are_read_and_the_folder_is_the_parent_ou(samba_dc, samba_ou):
    sales = samba_dc.make_ou("Sales", samba_ou)
    sam = samba_dc.unique_sam("ann")
    guid = samba_dc.add_user(sales, sam, "Ann", "Lee", "ann.lee@corp.example.test", display_name="Lee, Ann (Sales)")

    snapshot = connector(samba_dc, samba_ou).read_snapshot(())

    user = by_id(snapshot.users)[guid]
    assert (user.first_name, user.last_name, user.email) == ("Ann", "Lee", "ann.lee@corp.example.test")
    assert user.display_name == "Lee, Ann (Sales)"  # read, but never used for names (R6)
    assert user.upn == f"{sam}@corp.example.test"
    assert user.enabled is True
    assert user.folder_ids == frozenset({samba_dc.guid_of(sales)})
    assert user.dn.startswith("CN=Ann Lee,OU=Sales,")
    assert snapshot.directory_id == "corp.example.test"
    assert snapshot.complete and not snapshot.incremental



def test_r3_r6_the_user_query_asks_for_nothing_a_record_is_not_built_of(samba_dc, samba_ou):
    """Every attribute the reader asks for changes the user's record when it is missing (the DN comes unasked), and
    an attribute it no longer asks for (sAMAccountName, distinguishedName, whenChanged, uSNChanged) is read by
    nothing: a record built with them is the record built without them."""
    from adread.build import user_record
    from adread.search import USER_ATTRIBUTES, USER_FILTER, Entry

    sam = samba_dc.unique_sam("lean")
    samba_dc.add_user(samba_ou, sam, "Lea", "Nash", "lea.nash@corp.example.test", enabled=False,
                      display_name="Nash, Lea")
    reader = connector(samba_dc, samba_ou)
    extra = ("sAMAccountName", "distinguishedName", "whenChanged", "uSNChanged")
    [entry] = reader._with_connection(lambda conn: list(reader._search(
        conn, f"(&{USER_FILTER}(sAMAccountName={sam}))", USER_ATTRIBUTES + extra)))
    assert set(extra) <= set(entry.attributes), "the DC sends the attributes that are no longer asked for"
    ou_ids = {}
    asked = Entry(entry.dn, {k: v for k, v in entry.attributes.items() if k not in extra})
    record = user_record(asked, ou_ids)
    assert record is not None and not record.enabled and record.dn == entry.dn
    assert user_record(entry, ou_ids) == record
    for name in USER_ATTRIBUTES:
        without = Entry(entry.dn, {k: v for k, v in asked.attributes.items() if k != name})
        assert user_record(without, ou_ids) != record, f"{name} is asked for and read by nothing"


def test_r8_disabled_through_user_account_control_and_enabled_again(samba_dc, samba_ou):
    on = samba_dc.add_user(samba_ou, samba_dc.unique_sam("on"), "On", "User", "on@corp.example.test")
    off = samba_dc.add_user(samba_ou, samba_dc.unique_sam("off"), "Off", "User", "off@corp.example.test",
                            enabled=False)
    reader = connector(samba_dc, samba_ou)
    users = by_id(reader.read_users(()))
    assert users[on].enabled is True and users[off].enabled is False

    samba_dc.disable_user(on)
    samba_dc.enable_user(off)
    users = by_id(reader.read_users(()))
    assert users[on].enabled is False and users[off].enabled is True


def test_r7_a_user_without_email_is_read_with_an_empty_email(samba_dc, samba_ou):
    guid = samba_dc.add_user(samba_ou, samba_dc.unique_sam("nomail"), "No", "Mail")
    other = samba_dc.add_user(samba_ou, samba_dc.unique_sam("mail"), "Has", "Mail", "has@corp.example.test")
    samba_dc.set_mail(other, None)

    users = by_id(connector(samba_dc, samba_ou).read_users(()))
    assert users[guid].email == "" and users[other].email == ""


def test_r3_a_rename_and_a_move_keep_the_users_identity(samba_dc, samba_ou):
    sales = samba_dc.make_ou("Sales", samba_ou)
    it = samba_dc.make_ou("IT", samba_ou)
    guid = samba_dc.add_user(sales, samba_dc.unique_sam("bob"), "Bob", "Stone", "bob@corp.example.test")
    reader = connector(samba_dc, samba_ou)
    before = by_id(reader.read_users(()))[guid]

    samba_dc.rename_user(guid, "Robert Stone")
    samba_dc.set_names(guid, given="Robert")
    samba_dc.move_user(guid, it)
    after = by_id(reader.read_users(()))

    assert set(after) == {guid}  # the same id, not a new user plus a gone one
    assert after[guid].first_name == "Robert"
    assert after[guid].dn != before.dn and after[guid].dn.startswith("CN=Robert Stone,OU=IT,")
    assert after[guid].folder_ids == frozenset({samba_dc.guid_of(it)})


@pytest.mark.django_db
def test_r19_a_renamed_or_moved_ou_keeps_its_folder(samba_dc, samba_ou, client_org):
    integration = Integration.objects.create(
        client=client_org, name="Corp AD", kind=IntegrationKind.ACTIVE_DIRECTORY, ad_mode=AdMode.DIRECT,
        ldap_urls=samba_dc.ldaps_url, base_dn=samba_ou, bind_dn=samba_dc.admin_bind_dn,
        bind_password=samba_dc.admin_password, tls_ca_pem=samba_dc.ca_pem,
    )
    sales = samba_dc.make_ou("Sales", samba_ou)
    emea = samba_dc.make_ou("EMEA", sales)
    it = samba_dc.make_ou("IT", samba_ou)
    reader = connector_for(integration)
    assert isinstance(reader, LdapConnector)
    record_folders(integration, reader.read_folders())
    folder = integration.folders.get(name="EMEA")
    assert folder.parent.name == "Sales"

    emea = samba_dc.rename_ou(emea, "Europe")
    samba_dc.move_ou(emea, it)
    changes = record_folders(integration, reader.read_folders())

    folder.refresh_from_db()
    assert folder.name == "Europe" and folder.path.endswith("/IT/Europe") and folder.parent.name == "IT"
    assert changes.created == 0 and changes.renamed_or_moved == 1 and changes.gone == 0
    assert integration.folders.count() == 4

    samba_dc.delete_tree(f"OU=Europe,{it}")
    record_folders(integration, reader.read_folders())
    folder.refresh_from_db()
    assert folder.gone is True


def test_r8_a_deleted_user_is_gone_from_the_snapshot(samba_dc, samba_ou):
    stays = samba_dc.add_user(samba_ou, samba_dc.unique_sam("stays"), "Stays", "Here", "stays@corp.example.test")
    leaves = samba_dc.add_user(samba_ou, samba_dc.unique_sam("leaves"), "Leaves", "Soon", "leaves@corp.example.test")
    reader = connector(samba_dc, samba_ou)
    assert set(by_id(reader.read_snapshot(()).users)) == {stays, leaves}

    samba_dc.delete_user(leaves)
    snapshot = reader.read_snapshot(())
    assert set(by_id(snapshot.users)) == {stays} and snapshot.complete
    assert reader.read_user(leaves) is None


def test_r8_a_full_read_names_deleted_known_users_and_not_moved_ones(samba_dc, samba_ou):
    """Known users the read did not see: a tombstone or nowhere is deleted; alive elsewhere in the domain is not."""
    sales = samba_dc.make_ou("Sales", samba_ou)
    child = samba_dc.make_ou("EMEA", sales)
    elsewhere = samba_dc.unique_ou("away")
    try:
        sam = samba_dc.unique_sam
        stays = samba_dc.add_user(sales, sam("stays"), "Stays", "Here", "stays@corp.example.test")
        deleted = samba_dc.add_user(sales, sam("gone"), "Gone", "Away", "gone@corp.example.test")
        moved_out = samba_dc.add_user(sales, sam("out"), "Moved", "Out", "out@corp.example.test")
        moved_down = samba_dc.add_user(sales, sam("down"), "Moved", "Down", "down@corp.example.test")
        never = str(uuid.uuid4())  # no such object, not even a tombstone (older than the tombstone lifetime)
        samba_dc.delete_user(deleted)
        samba_dc.move_user(moved_out, elsewhere)  # outside the base DN, still in the domain
        samba_dc.move_user(moved_down, child)  # under the base DN, in an OU that was not asked for
        reader = connector(samba_dc, samba_ou, page_size=500)

        known = [stays, deleted.upper(), moved_out, moved_down, never, "*)(objectClass=*"]
        snapshot = reader.read_snapshot([samba_dc.guid_of(sales)], known_user_ids=known)
    finally:
        samba_dc.delete_tree(elsewhere)

    assert [u.id for u in snapshot.users] == [stays]
    assert snapshot.removed_user_ids == frozenset({deleted, never})
    assert snapshot.complete and not snapshot.incremental
    # OUs, groups, users, then one lookup for the three unseen ids (the text that is no GUID is never searched for).
    assert reader.last_read.search_requests == 4
    reader.read_snapshot([samba_dc.guid_of(sales)], known_user_ids=[stays, moved_down])
    assert reader.last_read.search_requests == 3, "users seen anywhere under the base DN need no lookup"


def test_only_user_objects_count_not_computers_contacts_or_groups(samba_dc, samba_ou):
    person = samba_dc.add_user(samba_ou, samba_dc.unique_sam("person"), "Real", "Person", "real@corp.example.test")
    samba_dc.add_computer(samba_ou, f"WS{uuid.uuid4().hex[:8]}")
    samba_dc.add_contact(samba_ou, "Outside", "Contact", "contact@elsewhere.test")
    samba_dc.add_group(samba_ou, f"g-{uuid.uuid4().hex[:8]}")

    assert set(by_id(connector(samba_dc, samba_ou).read_users(()))) == {person}


def test_users_are_read_only_from_the_folders_asked_for(samba_dc, samba_ou):
    sales = samba_dc.make_ou("Sales", samba_ou)
    it = samba_dc.make_ou("IT", samba_ou)
    seller = samba_dc.add_user(sales, samba_dc.unique_sam("sell"), "Sam", "Seller", "sam@corp.example.test")
    samba_dc.add_user(it, samba_dc.unique_sam("tech"), "Tia", "Tech", "tia@corp.example.test")
    sales_id = samba_dc.guid_of(sales)

    snapshot = connector(samba_dc, samba_ou).read_snapshot([sales_id.upper()])

    assert [u.id for u in snapshot.users] == [seller]
    assert snapshot.read_folder_ids == frozenset({sales_id})
    assert len(snapshot.folders) == 3  # the whole tree is always read (R19)


def test_a_wrong_password_is_an_auth_error_naming_the_cause(samba_dc, samba_ou):
    reader = connector(samba_dc, samba_ou, bind_password="not-the-password")
    with pytest.raises(DirectoryAuthError) as refused:
        reader.read_snapshot(())
    message = str(refused.value)
    assert "wrong password" in message and samba_dc.admin_bind_dn in message and "127.0.0.1" in message
    assert "not-the-password" not in message


def test_a_disabled_bind_account_is_an_auth_error_saying_so(samba_dc, samba_ou):
    sam = samba_dc.unique_sam("svc")
    guid = samba_dc.add_user(samba_ou, sam, "Service", "Account", enabled=False)
    reader = connector(samba_dc, samba_ou, bind_dn=f"{sam}@corp.example.test", bind_password=samba_dc.user_password)
    with pytest.raises(DirectoryAuthError, match="account disabled"):
        reader.test()
    samba_dc.enable_user(guid)
    assert "bound as" in reader.test()


def test_r21_a_stopped_dc_is_directory_unavailable(samba_dc, samba_ou):
    reader = connector(samba_dc, samba_ou)
    with samba_dc.stopped(), pytest.raises(DirectoryUnavailable) as down:
        reader.read_snapshot(())
    assert "127.0.0.1:636" in str(down.value)
    assert reader.read_snapshot(()).complete  # back up for everyone else


def test_the_next_dc_is_tried_when_the_first_is_down(samba_dc, samba_ou):
    guid = samba_dc.add_user(samba_ou, samba_dc.unique_sam("fo"), "Fail", "Over", "fo@corp.example.test")
    reader = connector(samba_dc, samba_ou, urls=("ldaps://127.0.0.2:636", samba_dc.ldaps_url))

    assert guid in by_id(reader.read_users(()))
    assert reader.last_read.server == "ldaps://127.0.0.1:636"

    both_down = connector(samba_dc, samba_ou, urls=("ldaps://127.0.0.2:636", "ldaps://127.0.0.3:636"))
    with pytest.raises(DirectoryUnavailable) as down:
        both_down.read_users(())
    assert "127.0.0.2:636" in str(down.value) and "127.0.0.3:636" in str(down.value)


def test_ldaps_is_verified_with_the_integrations_ca_and_refused_with_a_wrong_one(samba_dc, samba_ou):
    assert "bound as" in connector(samba_dc, samba_ou).test()

    with pytest.raises(DirectoryUnavailable, match="certificate"):
        connector(samba_dc, samba_ou, ca_pem=samba_dc.wrong_ca_pem).test()
    # No CA given: the system's trust store does not know the test CA either.
    with pytest.raises(DirectoryUnavailable, match="certificate"):
        connector(samba_dc, samba_ou, ca_pem="").test()


def test_starttls_on_389_is_verified_too(samba_dc, samba_ou):
    reader = connector(samba_dc, samba_ou, urls=(samba_dc.starttls_url,), tls_mode="starttls")
    assert "ldap://127.0.0.1:389" in reader.test()
    with pytest.raises(DirectoryUnavailable, match="certificate"):
        connector(samba_dc, samba_ou, urls=(samba_dc.starttls_url,), tls_mode="starttls",
                  ca_pem=samba_dc.wrong_ca_pem).test()


def test_every_search_is_paged_and_every_page_is_read(samba_dc, samba_ou):
    guids = {samba_dc.add_user(samba_ou, samba_dc.unique_sam(f"p{i}"), f"Page{i}", "User", f"p{i}@corp.example.test")
             for i in range(5)}
    reader = connector(samba_dc, samba_ou, page_size=2)

    snapshot = reader.read_snapshot(())

    assert {u.id for u in snapshot.users} == guids
    # 1 OU in one page, no group in one page, then 5 users in pages of 2, 2 and 1: five search requests on the wire.
    assert reader.last_read.search_requests == 5
    reader = connector(samba_dc, samba_ou, page_size=500)
    reader.read_snapshot(())
    assert reader.last_read.search_requests == 3


def test_a_hostile_filter_value_never_widens_the_search(samba_dc, samba_ou):
    guid = samba_dc.add_user(samba_ou, samba_dc.unique_sam("only"), "Only", "One", "only@corp.example.test")
    reader = connector(samba_dc, samba_ou)

    with pytest.raises(ValueError, match="not a GUID"):
        reader.read_user("*)(objectClass=*")
    # A GUID whose bytes are filter syntax: '*', '(', ')', '\' and NUL are sent escaped.
    hostile = str(uuid.UUID(bytes_le=b"*()\\\x00*)(|*\x00\\()*)"))
    assert guid_filter(hostile).count("\\") == 16
    assert reader.read_user(hostile) is None
    assert reader.read_user(guid).email == "only@corp.example.test"


def test_r1_a_full_read_writes_nothing_to_the_directory(samba_dc, samba_ou):
    sales = samba_dc.make_ou("Sales", samba_ou)
    guid = samba_dc.add_user(sales, samba_dc.unique_sam("ro"), "Read", "Only", "ro@corp.example.test")
    before = samba_dc.subtree_state(samba_ou)

    reader = connector(samba_dc, samba_ou, page_size=1)
    reader.test()
    reader.read_snapshot(())
    reader.read_user(guid)

    assert samba_dc.subtree_state(samba_ou) == before


def test_the_test_report_names_server_bind_and_counts(samba_dc, samba_ou):
    samba_dc.make_ou("Sales", samba_ou)
    samba_dc.add_user(samba_ou, samba_dc.unique_sam("rep"), "Rep", "Ort", "rep@corp.example.test")

    report = connector(samba_dc, samba_ou).test()

    assert "ldaps://127.0.0.1:636" in report and samba_dc.admin_bind_dn in report
    assert "2 OUs and 1 users" in report
