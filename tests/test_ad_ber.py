"""adread.ber: a searchResEntry decoded by hand reads as ldap3's own decoder reads it, or not at all."""

from __future__ import annotations

import pytest
from ldap3.protocol.rfc4511 import (
    LDAPDN,
    AttributeDescription,
    AttributeValue,
    LDAPMessage,
    MessageID,
    PartialAttribute,
    PartialAttributeList,
    ProtocolOp,
    SearchResultEntry,
    Vals,
)
from ldap3.utils.asn1 import decode_message_fast
from pyasn1.codec.ber import encoder

from adread.ber import NotAnEntry, search_result_entry


def message(dn: str, attributes: list[tuple[str, list[bytes]]], message_id: int = 7) -> bytes:
    entry = SearchResultEntry()
    entry["object"] = LDAPDN(dn)
    listed = PartialAttributeList()
    for i, (name, values) in enumerate(attributes):
        attribute = PartialAttribute()
        attribute["type"] = AttributeDescription(name)
        vals = Vals()
        for j, value in enumerate(values):
            vals.setComponentByPosition(j, AttributeValue(value))
        attribute["vals"] = vals
        listed.setComponentByPosition(i, attribute)
    entry["attributes"] = listed
    ldap_message = LDAPMessage()
    ldap_message["messageID"] = MessageID(message_id)
    ldap_message["protocolOp"] = ProtocolOp().setComponentByName("searchResEntry", entry)
    return encoder.encode(ldap_message)


def as_ldap3_reads_it(raw: bytes):
    payload = decode_message_fast(raw)["payload"]
    return payload[0][3], [(a[3][0][3], [v[3] for v in a[3][1][3]]) for a in payload[1][3]]


@pytest.mark.parametrize(("dn", "attributes"), [
    ("CN=Ann Lee,OU=Sales,DC=corp,DC=test", [("objectGUID", [bytes(range(16))]), ("mail", [b"ann@corp.test"])]),
    ("CN=Zo\xeb \\2C Jr,OU=\xc9quipe,DC=corp,DC=test", [("displayName", ["Zo\xeb".encode()])]),
    ("CN=Long,DC=corp,DC=test", [("description", [b"x" * 200, b"y" * 70000]), ("objectClass", [b"top", b"user"])]),
    ("CN=Nothing asked,DC=corp,DC=test", []),
])
def test_an_entry_reads_as_ldap3s_decoder_reads_it(dn, attributes):
    raw = message(dn, attributes, message_id=300)  # a two-byte message id, long-form lengths beyond 127 and 65,535
    assert search_result_entry(raw) == as_ldap3_reads_it(raw)


def test_anything_but_an_entry_of_the_expected_shape_is_left_to_ldap3():
    raw = message("CN=Ann,DC=corp,DC=test", [("mail", [b"a@corp.test"])])
    with pytest.raises(NotAnEntry):
        search_result_entry(raw[:-3])  # cut short: a length runs past the end
    with pytest.raises(NotAnEntry):
        search_result_entry(raw.replace(b"\x64", b"\x65", 1))  # another operation (searchResDone's tag)
    with pytest.raises(NotAnEntry):
        search_result_entry(message("CN=Ann,DC=corp,DC=test", [("mail", [])]))  # an attribute without values
