"""DN keys (how group members are matched to users, G2): the fast path reads a DN exactly as ldap3's parser does."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from ldap3.core.exceptions import LDAPInvalidDnError
from ldap3.utils.dn import parse_dn

from adread.dn import dn_key, parent_key


def parsed_key(dn: str) -> str:
    return ",".join(f"{attr.strip()}={value.strip()}" for attr, value, _ in parse_dn(dn)).lower()


def parsed_parent_key(dn: str) -> str:
    return ",".join(f"{attr.strip()}={value.strip()}" for attr, value, _ in parse_dn(dn)[1:]).lower()


def assert_same(dn: str) -> None:
    try:
        expected, parent = parsed_key(dn), parsed_parent_key(dn)
    except LDAPInvalidDnError:
        with pytest.raises(LDAPInvalidDnError):
            dn_key(dn)
        with pytest.raises(LDAPInvalidDnError):
            parent_key(dn)  # a user is placed in its parent OU by this key (R9)
        return
    assert dn_key(dn) == expected, dn
    assert parent_key(dn) == parent, dn


@pytest.mark.parametrize("dn", [
    "CN=Ann Lee,OU=Sales,DC=corp,DC=test", "cn=ann lee , ou=Sales EMEA,dc=corp,dc=test", "CN=Lee\\, Ann,OU=S,DC=c",
    "CN=a+SN=b,DC=c", "OU=Sales (EMEA),DC=corp", "CN=Jörg Müller,OU=Zürich,DC=x", "CN=#abc,DC=x", 'CN="q",DC=x',
    "CN=Ann = Lee,DC=x", "CN=a, OU=b,DC=c", "2.5.4.3=Ann,DC=x", "CN=,DC=x", "CN=a,,DC=x",
])
def test_g2_a_dn_key_reads_each_dn_as_the_ldap_parser_does(dn):
    assert_same(dn)


VALUE_CHARS = st.sampled_from(list("abcXYZ019 ()-_.'&éü=,+\\\"#;<>"))


@given(st.lists(st.tuples(st.sampled_from(["CN", "OU", "DC", "cn", " OU", "ou "]),
                          st.text(VALUE_CHARS, min_size=0, max_size=8)), min_size=1, max_size=5))
def test_g2_the_fast_path_agrees_with_the_parser_on_any_dn(components):
    assert_same(",".join(f"{attr}={value}" for attr, value in components))
