"""Reading a page ahead (adread.pages) against a real Samba AD DC: what ldap3's own paged search gives, sooner."""

from __future__ import annotations

import pytest
from ldap3 import MOCK_SYNC, SUBTREE, Connection, Server
from ldap3.core.exceptions import LDAPNoSuchObjectResult

from adread.groups import GROUP_ATTRIBUTES
from adread.pages import pipelines
from adread.search import OU_ATTRIBUTES, OU_FILTER, USER_ATTRIBUTES, USER_FILTER, Entry, paged
from testing.samba import SambaDC

pytestmark = pytest.mark.samba


def ldap3_paged(conn: Connection, base: str, search_filter: str, attributes: tuple[str, ...], page_size: int
                ) -> list[Entry]:
    """The entries as ldap3's paged_search gives them, in its order."""
    return [Entry(dn=item["dn"], attributes={k: list(v) for k, v in item["raw_attributes"].items()})
            for item in conn.extend.standard.paged_search(base, search_filter, SUBTREE, attributes=list(attributes),
                                                          paged_size=page_size, generator=True)
            if item.get("type") == "searchResEntry"]


def seed(dc: SambaDC, ou: str, count: int) -> None:
    child = dc.make_ou("Sales", ou)
    for i in range(count):
        # Every other user without an email: an attribute asked for and not returned comes back empty.
        dc.add_user(child if i % 2 else ou, dc.unique_sam(f"pg{i}"), f"Page{i}", "User",
                    f"pg{i}@corp.example.test" if i % 2 else None)


def test_a_read_ahead_gives_the_entries_ldap3s_paged_search_gives_in_its_order(samba_dc, samba_ou):
    seed(samba_dc, samba_ou, 7)
    conn = samba_dc.admin_connection()
    try:
        assert pipelines(conn, USER_ATTRIBUTES) and pipelines(conn, OU_ATTRIBUTES)
        for search_filter, attributes in ((OU_FILTER, OU_ATTRIBUTES), (USER_FILTER, USER_ATTRIBUTES)):
            expected = ldap3_paged(conn, samba_ou, search_filter, attributes, 2)
            assert list(paged(conn, samba_ou, search_filter, attributes, 2)) == expected
        assert len(expected) == 7
        assert any(entry.attributes["mail"] == [] for entry in expected)
    finally:
        conn.unbind()


def test_the_next_page_is_asked_for_before_this_page_is_handed_over(samba_dc, samba_ou):
    seed(samba_dc, samba_ou, 5)
    conn = Connection(samba_dc.admin_connection().server, samba_dc.admin_bind_dn, samba_dc.admin_password,
                      auto_bind=True, raise_exceptions=True, collect_usage=True)
    try:
        entries = paged(conn, samba_ou, USER_FILTER, USER_ATTRIBUTES, 2)
        next(entries)
        assert conn.usage.search_operations == 2  # page 1 in hand, page 2 already asked for
        assert len(list(entries)) == 4
        assert conn.usage.search_operations == 3
    finally:
        conn.unbind()


def test_a_read_stopped_half_way_leaves_the_connection_usable(samba_dc, samba_ou):
    seed(samba_dc, samba_ou, 5)
    conn = samba_dc.admin_connection()
    try:
        entries = paged(conn, samba_ou, USER_FILTER, USER_ATTRIBUTES, 2)
        next(entries)
        entries.close()  # type: ignore[attr-defined]  # the page asked for ahead is read off the wire
        assert len(list(paged(conn, samba_ou, USER_FILTER, USER_ATTRIBUTES, 2))) == 5
    finally:
        conn.unbind()


def test_r21_a_search_the_dc_refuses_raises_as_ldap3s_does(samba_dc, samba_ou):
    conn = samba_dc.admin_connection()
    try:
        with pytest.raises(LDAPNoSuchObjectResult):
            list(paged(conn, f"OU=missing,{samba_ou}", USER_FILTER, USER_ATTRIBUTES, 2))
        assert len(list(paged(conn, samba_ou, OU_FILTER, OU_ATTRIBUTES, 2))) == 1  # still usable
    finally:
        conn.unbind()


def test_g2_a_groups_members_are_read_by_ldap3_itself_which_fetches_every_range(samba_dc):
    conn = samba_dc.admin_connection()
    try:
        # AD sends a large group's member in ranges (member;range=0-1499): ldap3's auto range reads the rest.
        assert not pipelines(conn, GROUP_ATTRIBUTES) and conn.auto_range
    finally:
        conn.unbind()


def test_the_demo_directorys_in_memory_server_is_read_by_ldap3_itself():
    conn = Connection(Server("demo"), client_strategy=MOCK_SYNC)
    assert not pipelines(conn, USER_ATTRIBUTES)
