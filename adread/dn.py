"""DN and GUID text for LDAP searches: the domain a base DN lives in, DNs in one spelling for comparing, and
objectGUID filters that no value can widen. Pure functions of their text (ldap3's DN parser aside)."""

from __future__ import annotations

import contextlib
import re
import uuid
from collections.abc import Collection

from ldap3.core.exceptions import LDAPInvalidDnError
from ldap3.utils.dn import parse_dn

from .records import canonical_guid

# A DN with none of the characters that escape, quote or join RDNs splits on "," and "=" exactly as ldap3's
# parser reads it; the parser costs ~13 us a DN, and a group read keys every member value and every user's DN.
_PLAIN_DN = re.compile(r"^[^\\\"+#;<>]*$")
_PLAIN_ATTR = re.compile(r"^[A-Za-z][A-Za-z0-9-]*$")


def domain_of(base_dn: str) -> str:
    """The AD domain a base DN lives in: OU=Staff,DC=Corp,DC=Example,DC=Test -> corp.example.test (R3)."""
    try:
        labels = [value for attr, value, _ in parse_dn(base_dn) if attr.lower() == "dc"]
    except LDAPInvalidDnError:
        return base_dn.strip().lower()
    return ".".join(labels).lower() if labels else base_dn.lower()


def domain_root(base_dn: str) -> str:
    """The naming context a base DN lives in: OU=Staff,DC=Corp,DC=Test -> DC=Corp,DC=Test (the base DN if none)."""
    try:
        components = parse_dn(base_dn)
    except LDAPInvalidDnError:
        return base_dn
    dcs = [f"{attr}={value}" for attr, value, _ in components if attr.lower() == "dc"]
    return ",".join(dcs) if dcs else base_dn


def dn_key(dn: str) -> str:
    """A DN in one spelling, for comparing DNs the server wrote: components trimmed, lowercased."""
    plain = _plain_key(dn)
    if plain is not None:
        return plain
    return ",".join(f"{attr.strip()}={value.strip()}" for attr, value, _ in parse_dn(dn)).lower()


def _plain_key(dn: str) -> str | None:
    """dn_key of a DN the fast path can vouch for, read as ldap3's parser reads it; None for any other."""
    if not _PLAIN_DN.match(dn):
        return None
    parts = []
    for component in dn.split(","):
        attr, equals, value = component.partition("=")
        if not equals or not _PLAIN_ATTR.match(attr) or "=" in value or value != value.strip() or not value:
            return None  # not a DN this fast path can vouch for: let the parser say what it is
        parts.append(f"{attr}={value}")
    return ",".join(parts).lower()


def parent_dn(dn: str) -> str:
    components = parse_dn(dn)
    return ",".join(f"{attr}={value}" for attr, value, _ in components[1:])


def parent_key(dn: str) -> str:
    """dn_key(parent_dn(dn)) with one parse instead of two, and none for a plain DN (ldap3's parse_dn was most of a
    user's record: ~0.3 s of an AD read of 20,000 users)."""
    plain = _plain_key(dn)
    if plain is not None:
        return plain.partition(",")[2]
    return ",".join(f"{attr.strip()}={value.strip()}" for attr, value, _ in parse_dn(dn)[1:]).lower()


def unescape(value: str) -> str:
    """An RDN value as people read it: 'Sales\\, EMEA' -> 'Sales, EMEA', '\\2B' -> '+'."""
    out = bytearray()
    i = 0
    while i < len(value):
        char = value[i]
        if char == "\\" and i + 1 < len(value):
            pair = value[i + 1:i + 3]
            if len(pair) == 2 and all(c in "0123456789abcdefABCDEF" for c in pair):
                out.append(int(pair, 16))
                i += 3
                continue
            out.extend(value[i + 1].encode())
            i += 2
            continue
        out.extend(char.encode())
        i += 1
    return out.decode("utf-8", errors="replace")


def guid_filter(guid: str) -> str:
    """(objectGUID=...) for one GUID: its 16 bytes, every one escaped, so no value widens the filter."""
    # Every byte as \xx (stricter than escape_filter_chars, which leaves harmless bytes as they are).
    return "(objectGUID=" + "".join(f"\\{byte:02x}" for byte in uuid.UUID(guid).bytes_le) + ")"


def guids_in(values: Collection[str]) -> frozenset[str]:
    """Canonical objectGUID text of each value; anything that is not a GUID is left out (never put in a filter)."""
    guids = set()
    for value in values:
        with contextlib.suppress(ValueError, AttributeError, TypeError):
            guids.add(canonical_guid(value))
    return frozenset(guids)


__all__ = ["dn_key", "domain_of", "domain_root", "guid_filter", "guids_in", "parent_dn", "parent_key", "unescape"]
