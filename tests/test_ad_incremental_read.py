"""Reading only what changed in AD (adread.incremental) against the real Samba AD DC.

Each test's base DN is its own OU (samba_ou): other processes write elsewhere in the shared DC at the same time,
and a read of changes must not be disturbed by them (their OUs and groups are outside the base DN).
"""

from __future__ import annotations

import contextlib
import dataclasses
from types import SimpleNamespace

import pytest
from ldap3.core.exceptions import LDAPException

from adread.connection import LdapSettings
from adread.incremental import CHANGE_ATTRIBUTES, ReadMark, read_changes
from adread.ldap import LdapConnector

pytestmark = pytest.mark.samba


def connector(dc, base_dn: str) -> LdapConnector:
    return LdapConnector(LdapSettings(urls=(dc.ldaps_url,), base_dn=base_dn, bind_dn=dc.admin_bind_dn,
                                      bind_password=dc.admin_password, ca_pem=dc.ca_pem, connect_timeout=3,
                                      receive_timeout=10))


@pytest.fixture
def directory(samba_dc, samba_ou):
    """Staff (mapped) and Other (not) under the test's OU, Ann in Staff, and a first full read's mark."""
    staff, other = samba_dc.make_ou("Staff", samba_ou), samba_dc.make_ou("Other", samba_ou)
    ann = samba_dc.add_user(staff, samba_dc.unique_sam("ann"), "Ann", "Lee", "ann@corp.example.test")
    reader = connector(samba_dc, samba_ou)
    first = read_changes(reader, [samba_dc.guid_of(staff)], None)
    assert first.full_because == "no earlier read to start from" and not first.snapshot.incremental
    return SimpleNamespace(staff=staff, other=other, ann=ann, reader=reader, mark=first.mark,
                           mapped=[samba_dc.guid_of(staff)])


def changes(d, *, linked=None):
    """A read of the changes since the fixture's mark; Ann is linked unless said otherwise."""
    return read_changes(d.reader, d.mapped, d.mark, known_user_ids=[d.ann] if linked is None else linked)


def test_r9_change_read_with_nothing_changed_reads_no_entry(samba_dc, directory):
    read = changes(directory)

    assert read.changes_only and read.full_because == ""
    snap = read.snapshot
    assert snap.incremental and snap.complete and not snap.folders_complete
    assert snap.users == () and snap.removed_user_ids == frozenset()
    # rootDSE, NTDS settings, OUs and groups changed, users changed, tombstones: no page of users.
    assert directory.reader.last_read.search_requests == 5
    assert read.mark.usn >= directory.mark.usn and read.mark.invocation_id == directory.mark.invocation_id


def test_r2_change_read_sees_a_new_user(samba_dc, directory):
    bob = samba_dc.add_user(directory.staff, samba_dc.unique_sam("bob"), "Bob", "Ray", "bob@corp.example.test")

    read = changes(directory)

    assert read.changes_only
    assert [(u.id, u.email, u.folder_ids) for u in read.snapshot.users] == [
        (bob, "bob@corp.example.test", frozenset(directory.mapped))]


def test_r6_change_read_sees_a_rename(samba_dc, directory):
    samba_dc.set_names(directory.ann, given="Anna", sn="Berg")
    samba_dc.rename_user(directory.ann, "Anna Berg")

    (user,) = changes(directory).snapshot.users

    assert (user.id, user.first_name, user.last_name) == (directory.ann, "Anna", "Berg")
    assert user.dn.startswith("CN=Anna Berg,OU=Staff,")


def test_r8_change_read_sees_a_disable(samba_dc, directory):
    samba_dc.disable_user(directory.ann)

    (user,) = changes(directory).snapshot.users

    assert user.id == directory.ann and user.enabled is False


def test_r9_change_read_sees_a_move_out_of_a_mapped_ou(samba_dc, directory):
    samba_dc.move_user(directory.ann, directory.other)

    read = changes(directory)

    assert read.changes_only
    (user,) = read.snapshot.users
    assert user.id == directory.ann and user.folder_ids == frozenset({samba_dc.guid_of(directory.other)})
    assert user.folder_ids.isdisjoint(directory.mapped)


def test_r9_change_read_sees_a_move_out_of_the_base_dn(samba_dc, samba_ou, directory):
    outside = samba_dc.unique_ou("outside")
    try:
        samba_dc.move_user(directory.ann, outside)

        (user,) = changes(directory).snapshot.users
        assert user.id == directory.ann and user.folder_ids == frozenset()  # in no folder of the read: out of scope
        # A stranger outside the base DN (not linked) is none of the read's business.
        samba_dc.add_user(outside, samba_dc.unique_sam("eve"), "Eve", "Out", "eve@corp.example.test")
        assert changes(directory, linked=[]).snapshot.users == ()
    finally:
        with contextlib.suppress(LDAPException, OSError):
            samba_dc.delete_tree(outside)


def test_r2_change_read_sees_a_move_into_a_mapped_ou(samba_dc, directory):
    cid = samba_dc.add_user(directory.other, samba_dc.unique_sam("cid"), "Cid", "Moe", "cid@corp.example.test")
    directory.mark = read_changes(directory.reader, directory.mapped, directory.mark).mark
    samba_dc.move_user(cid, directory.staff)

    (user,) = changes(directory).snapshot.users

    assert user.id == cid and user.folder_ids == frozenset(directory.mapped)


def test_r8_change_read_names_a_deleted_user_removed(samba_dc, directory):
    samba_dc.delete_user(directory.ann)

    read = changes(directory)

    assert read.changes_only and read.snapshot.users == ()
    assert read.snapshot.removed_user_ids == frozenset({directory.ann})


def test_r19_an_ou_renamed_makes_the_read_a_full_one(samba_dc, directory):
    samba_dc.rename_ou(directory.staff, "Staff-Renamed")

    read = changes(directory)

    assert not read.changes_only and "an OU changed" in read.full_because
    snap = read.snapshot
    assert not snap.incremental and snap.folders_complete
    assert [u.id for u in snap.users] == [directory.ann]  # the users did not change, their DNs did
    assert snap.users[0].dn.startswith("CN=Ann Lee,OU=Staff-Renamed,")


def test_g2_a_group_membership_change_makes_the_read_a_full_one(samba_dc, samba_ou, directory):
    group = samba_dc.add_security_group(samba_ou, "Sales-Team")
    directory.mark = read_changes(directory.reader, directory.mapped, directory.mark).mark
    samba_dc.add_group_member(group, samba_dc.dn_of(directory.ann))

    read = changes(directory)

    assert not read.changes_only and "a group changed" in read.full_because


def test_g2_a_changed_user_keeps_the_mapped_groups_it_is_in(samba_dc, samba_ou, directory):
    inner = samba_dc.add_security_group(samba_ou, "EMEA", members=[samba_dc.dn_of(directory.ann)])
    outer = samba_dc.add_security_group(samba_ou, "Sales-Team", members=[inner])
    mapped = [samba_dc.guid_of(outer)]
    mark = read_changes(directory.reader, mapped, directory.mark).mark
    samba_dc.set_names(directory.ann, given="Anna")

    read = read_changes(directory.reader, mapped, mark, known_user_ids=[directory.ann])

    assert read.changes_only
    (user,) = read.snapshot.users
    assert user.first_name == "Anna" and samba_dc.guid_of(outer) in user.folder_ids
    assert user.chains == ((samba_dc.guid_of(outer), "Sales-Team", "EMEA"),)


def test_r21_a_mark_of_another_dc_incarnation_makes_the_read_a_full_one(samba_dc, directory):
    restored = dataclasses.replace(directory.mark, invocation_id="00000000-0000-4000-8000-000000000001")
    moved = dataclasses.replace(directory.mark, host="dc2.corp.example.test")
    ahead = dataclasses.replace(directory.mark, usn=directory.mark.usn + 10**9)

    for mark, why in ((restored, "restored or rebuilt"), (moved, "another domain controller answered"),
                      (ahead, "is behind the last read")):
        read = read_changes(directory.reader, directory.mapped, mark, known_user_ids=[directory.ann])
        assert not read.changes_only and why in read.full_because
        assert [u.id for u in read.snapshot.users] == [directory.ann] and not read.snapshot.incremental


def test_r21_the_mark_is_the_dcs_usn_from_before_the_read(samba_dc, directory):
    before = samba_dc.highest_usn()

    read = changes(directory)

    assert before <= read.mark.usn <= samba_dc.highest_usn()
    assert read.mark.host and len(read.mark.invocation_id) == 36


def test_a_change_read_asks_only_for_what_the_planner_uses():
    assert set(CHANGE_ATTRIBUTES) == {"objectGUID", "givenName", "sn", "mail", "userAccountControl", "displayName",
                                      "userPrincipalName"}


@pytest.mark.parametrize("stored", [
    None, {}, [], "x", {"host": "dc", "invocation_id": "i"}, {"host": "", "invocation_id": "i", "usn": 1},
    {"host": "dc", "invocation_id": "i", "usn": -1}, {"host": "dc", "invocation_id": "i", "usn": "12"},
    {"host": "dc", "invocation_id": "i", "usn": True},
])
def test_r21_a_stored_mark_that_is_not_one_means_a_full_read(stored):
    assert ReadMark.from_dict(stored) is None


def test_a_stored_mark_round_trips():
    mark = ReadMark("dc1.corp.example.test", "aacf4ac9-a55c-46a5-aebb-70784cfdba30", 5636)
    assert ReadMark.from_dict(mark.as_dict()) == mark
