"""What the reader asks AD for, and how: the filters and attributes of its searches, and the paged search itself.

Every search is paged (Windows AD stops an unpaged search at 1,000 entries; Samba does not, so tests could not
catch a forgotten page), and every connection is made with raise_exceptions=True (adread.connection): without it
ldap3's paged-search generator ends quietly on an error and a partial read would look complete (R21).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from ldap3 import SUBTREE, Connection

from .pages import paged_ahead, pipelines

USER_FILTER = "(&(objectCategory=person)(objectClass=user))"
OU_FILTER = "(objectClass=organizationalUnit)"
# What a user's record is built of (adread.build.user_record) and nothing more: the id (R3), names (R6), email (R7),
# enabled (R8), and the display name and UPN kept for people to read. The DN comes with every entry unasked, so
# distinguishedName is not asked for; nor are sAMAccountName, whenChanged and uSNChanged, which nothing reads
# (bench/ad_attributes.py measures what each would cost: README, Performance).
USER_ATTRIBUTES = (
    "objectGUID", "givenName", "sn", "mail", "userAccountControl", "displayName", "userPrincipalName",
)
OU_ATTRIBUTES = ("objectGUID",)  # an OU's name and place come from its DN
# The show-deleted control: a search that carries it also returns tombstones (deleted objects, isDeleted=TRUE).
# Not critical: a server that ignores it simply returns no tombstones, and "not found" also means deleted.
SHOW_DELETED_OID = "1.2.840.113556.1.4.417"
GUIDS_PER_LOOKUP = 100  # objectGUIDs ORed into one search (about 6 KB of filter, far below AD's limits)

Controls = list[tuple[str, bool, None]]


@dataclass(frozen=True)
class Entry:
    """One entry a search returned: its DN and its attributes' values as the server sent them."""

    dn: str
    attributes: dict[str, list[bytes]]

    def text(self, name: str) -> str:
        values = self.attributes.get(name) or []
        return values[0].decode("utf-8", errors="replace") if values else ""

    def raw(self, name: str) -> bytes | None:
        values = self.attributes.get(name) or []
        return values[0] if values else None


def paged(conn: Connection, base: str, search_filter: str, attributes: Sequence[str], page_size: int,
          scope: str = SUBTREE, controls: Controls | None = None) -> Iterator[Entry]:
    """Every entry matching the filter, page by page. Referrals are skipped; errors raise.

    A real connection reads a page ahead (adread.pages: the DC builds the next page while this one is decoded);
    the demo's in-memory server, attributes that may come in ranges (a group's member) and a base DN the DC refers
    elsewhere go through ldap3's own paged search.
    """
    if pipelines(conn, attributes):
        ahead = paged_ahead(conn, base, search_filter, attributes, page_size, scope, controls)
        if ahead is not None:
            for dn, attributes_read in ahead:
                yield Entry(dn=dn, attributes=attributes_read)
            return
    pages = conn.extend.standard.paged_search(
        base, search_filter, scope, attributes=list(attributes),
        paged_size=page_size, generator=True, controls=controls,
    )
    for item in pages:
        if item.get("type") != "searchResEntry":
            continue
        raw: dict[str, Any] = item.get("raw_attributes") or {}
        yield Entry(dn=item["dn"], attributes={k: list(v) for k, v in raw.items()})


def show_deleted(in_memory: bool) -> Controls | None:
    """The show-deleted control, or none for ldap3's in-memory server (the demo directory), which cannot decode
    controls and has no tombstones anyway."""
    return None if in_memory else [(SHOW_DELETED_OID, False, None)]


__all__ = ["GUIDS_PER_LOOKUP", "OU_ATTRIBUTES", "OU_FILTER", "SHOW_DELETED_OID", "USER_ATTRIBUTES", "USER_FILTER",
           "Entry", "paged", "show_deleted"]
