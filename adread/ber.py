"""One LDAP searchResEntry message decoded straight to (DN bytes, [(attribute name bytes, [values])]).

ldap3's fast decoder is generic: it walks every BER element through a table of decoders and builds a tuple for
each (17 elements for a user of 7 attributes), then ldap3 turns them into dicts; that was 60% of a 20,000-user
read's CPU on our side. A searchResEntry has one fixed shape (RFC 4511 4.5.2), read here with slices:

    LDAPMessage ::= SEQUENCE { messageID INTEGER, protocolOp [APPLICATION 4] SEQUENCE {
        objectName OCTET STRING, attributes SEQUENCE OF SEQUENCE { type OCTET STRING, vals SET OF OCTET STRING } },
        controls [0] OPTIONAL }

Anything else (another tag, a length running past its element, an empty set of values) raises NotAnEntry, and
the caller decodes that message with ldap3 instead: nothing is guessed at.
"""

from __future__ import annotations

_SEQUENCE, _SET, _INTEGER, _OCTET_STRING, _SEARCH_RESULT_ENTRY = 0x30, 0x31, 0x02, 0x04, 0x64

RawEntry = tuple[bytes, list[tuple[bytes, list[bytes]]]]


class NotAnEntry(ValueError):
    """The message is not a searchResEntry of the expected shape."""


def _element(raw: bytes, at: int, tag: int, end: int) -> tuple[int, int]:
    """(start, end) of the value of the element at `at`, which must carry `tag` and end by `end`."""
    if at + 1 >= end or raw[at] != tag:
        raise NotAnEntry(f"tag {raw[at] if at < len(raw) else None} at {at}, expected {tag}")
    first = raw[at + 1]
    if first < 0x80:
        start, length = at + 2, first
    else:
        count = first & 0x7F
        if count == 0 or count > 4:  # indefinite, or beyond any message size
            raise NotAnEntry(f"length of {count} bytes at {at}")
        start, length = at + 2 + count, int.from_bytes(raw[at + 2:at + 2 + count], "big")
    if start + length > end:
        raise NotAnEntry(f"element at {at} runs past its end")
    return start, start + length


def search_result_entry(raw: bytes) -> RawEntry:
    """The DN and the attributes (name, values; in the order sent) of one searchResEntry message."""
    start, message_end = _element(raw, 0, _SEQUENCE, len(raw))
    _, at = _element(raw, start, _INTEGER, message_end)  # messageID: the caller has checked it
    start, op_end = _element(raw, at, _SEARCH_RESULT_ENTRY, message_end)
    dn_start, at = _element(raw, start, _OCTET_STRING, op_end)
    dn = raw[dn_start:at]
    at, attributes_end = _element(raw, at, _SEQUENCE, op_end)
    attributes = []
    while at < attributes_end:
        start, attribute_end = _element(raw, at, _SEQUENCE, attributes_end)
        name_start, name_end = _element(raw, start, _OCTET_STRING, attribute_end)
        at, values_end = _element(raw, name_end, _SET, attribute_end)
        values = []
        while at < values_end:
            value_start, at = _element(raw, at, _OCTET_STRING, values_end)
            values.append(raw[value_start:at])
        if not values or values_end != attribute_end:
            raise NotAnEntry("an attribute without values, or with more than its values")
        attributes.append((raw[name_start:name_end], values))
        at = attribute_end
    if attributes_end != op_end:
        raise NotAnEntry("more in the entry than its name and attributes")
    return dn, attributes
