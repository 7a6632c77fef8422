"""A paged search that asks for the next page before decoding the one it has: the DC works while we decode.

ldap3's paged search is strictly serial: it sends a page's request, waits while the DC builds the page, decodes
every entry of it, and only then sends the next request with the cookie the page ended with. Measured on a
Samba DC (20,000 users, pages of 1,000): the wall time of a read is the DC's time plus ours, end to end (4.9 s =
3.25 s of the DC's CPU + 1.45 s of ours), each side idle while the other works. Here a page's messages are
received whole but left undecoded; its last message (searchResDone, which carries the cookie) is decoded first,
the next page is asked for at once, and the entries are decoded while the DC builds it.

What is asked and what comes back are ldap3's own: the same request (built by ldap3's search_operation with the
paged control), the same decoding of each message (ldap3's fast decoder), the same entries in the same order
(ldap3's generator yields a page's entries last first, and so does this), the same errors raised (R21) and the
same usage counts. Anything this path does not handle the way ldap3 would (the demo's in-memory server, a
referral to follow, an attribute that may come in ranges) is left to ldap3's own paged search; a ranged attribute
that comes anyway is refused, never read in part.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any, NoReturn

from ldap3 import ALL_ATTRIBUTES, ALL_OPERATIONAL_ATTRIBUTES, DEREF_ALWAYS, NO_ATTRIBUTES, SUBTREE, SYNC, Connection
from ldap3.core.exceptions import (
    LDAPException,
    LDAPExceptionError,
    LDAPOperationResult,
    LDAPReferralError,
    LDAPSessionTerminatedByServerError,
    LDAPSocketReceiveError,
)
from ldap3.core.results import DO_NOT_RAISE_EXCEPTIONS
from ldap3.operation.search import decode_raw_vals_fast, search_operation
from ldap3.protocol.rfc2696 import paged_search_control
from ldap3.utils.asn1 import decode_message_fast
from ldap3.utils.config import get_config_parameter
from ldap3.utils.conv import to_unicode
from ldap3.utils.dn import safe_dn

from .ber import NotAnEntry, search_result_entry

PAGED_RESULTS_OID = "1.2.840.113556.1.4.319"
_ENTRY, _REFERENCE, _DONE = 0x64, 0x73, 0x65  # BER tags of searchResEntry, searchResRef and searchResDone

Item = tuple[str, dict[str, list[bytes]]]


class RangedAttribute(LDAPExceptionError):
    """The DC sent part of an attribute's values (";range="): ldap3's own search fetches the rest, this one refuses."""


# Attributes a DC never sends in ranges (";range=0-1499"): single-valued, or a handful of values. A search for any
# other (a group's member) goes through ldap3's own paged search, which fetches the remaining ranges.
NEVER_RANGED = frozenset(name.lower() for name in (
    "objectGUID", "givenName", "sn", "mail", "userAccountControl", "displayName", "userPrincipalName", "isDeleted",
    "objectClass", "cn", "groupType",
))


def pipelines(conn: Connection, attributes: Sequence[str]) -> bool:
    """Whether this search reads pages ahead: on a real synchronous connection (not the in-memory demo server),
    for attributes that never come in ranges."""
    return (conn.strategy_type == SYNC and not conn.strategy.no_real_dsa and not conn.sasl_mechanism
            and all(name.lower() in NEVER_RANGED for name in attributes))


def paged_ahead(conn: Connection, base: str, search_filter: str, attributes: Sequence[str], page_size: int,
                scope: str = SUBTREE, controls: list[tuple[str, bool, None]] | None = None) -> Iterator[Item] | None:
    """Every entry (DN, raw attributes) the paged search finds, or None when the first page says to follow a
    referral: the caller then runs ldap3's own paged search, which does."""
    if conn.check_names and base:
        base = safe_dn(base)
    asked = list(attributes)
    message_id = _send(conn, base, search_filter, scope, asked, page_size, controls, None)
    messages, done = _receive_page(conn, message_id)
    if done.get("referrals") and conn.auto_referrals:
        return None
    return _pages(conn, (base, search_filter, scope, asked, page_size, controls), messages, done)


def _pages(conn: Connection, search: tuple, messages: list[bytes], done: dict[str, Any]) -> Iterator[Item]:
    base, search_filter, scope, asked, page_size, controls = search
    outstanding = None
    try:
        while True:
            _raise_for(conn, done)
            cookie = _cookie(done)
            # The next page is asked for before this one is decoded: the DC builds it while we decode.
            outstanding = None if cookie is None else _send(conn, base, search_filter, scope, asked, page_size,
                                                            controls, cookie)
            entries = [_entry(raw, asked, conn.empty_attributes) for raw in messages if raw[_op_offset(raw)] == _ENTRY]
            while entries:
                yield entries.pop()  # last first, as ldap3's paged_search_generator yields a page
            if outstanding is None:
                return
            messages, done = _receive_page(conn, outstanding)
            outstanding = None
            if done.get("referrals") and conn.auto_referrals:
                raise LDAPReferralError("a later page of a paged search referred elsewhere")
    except GeneratorExit:
        if outstanding is not None:  # closed before the last page: read it off, so the connection stays usable
            _drain(conn, outstanding)
        raise


def _send(conn: Connection, base: str, search_filter: str, scope: str, attributes: list[str], page_size: int,
          controls: list[tuple[str, bool, None]] | None, cookie: bytes | None) -> int:
    """ldap3's Connection.search up to the point it sends (same request, same controls), without waiting."""
    with conn.connection_lock:
        request = search_operation(base, search_filter, scope, DEREF_ALWAYS, attributes, 0, 0, False,
                                   conn.auto_escape, conn.auto_encode, conn.server.schema if conn.server else None,
                                   validator=conn.server.custom_validator, check_names=conn.check_names)
        paged = [*(controls or []), paged_search_control(False, page_size, cookie)]
        return int(conn.send("searchRequest", request, paged))


def _op_offset(raw: bytes) -> int:
    """Where the protocolOp's tag sits in one LDAPMessage: after the SEQUENCE header and the messageID."""
    offset = 2 + (raw[1] & 0x7F if raw[1] & 0x80 else 0)  # SEQUENCE tag and length
    return offset + 2 + raw[offset + 1]  # INTEGER tag, its length (one byte: ids are small) and its value


def _receive_page(conn: Connection, message_id: int) -> tuple[list[bytes], dict[str, Any]]:
    """Every message of one page, undecoded, and its searchResDone decoded (for the result and the cookie)."""
    strategy = conn.strategy
    page: list[bytes] = []
    while True:
        received = strategy.receiving()
        if not received:  # the server closed the connection: as ldap3's get_response, close and raise
            _terminated(conn)
        for raw in received:
            if not raw:
                continue
            if conn.usage:
                conn._usage.update_received_message(len(raw))  # type: ignore[attr-defined]
            offset = _op_offset(raw)
            if raw[offset] in (_ENTRY, _REFERENCE) and _message_id(raw) == message_id:
                page.append(raw)
                continue
            message = decode_message_fast(raw)  # type: ignore[no-untyped-call]
            if int(message["messageID"]) == 0:  # an unsolicited notice of disconnection
                _terminated(conn)
            if int(message["messageID"]) != message_id or raw[offset] != _DONE:
                raise LDAPSocketReceiveError(f"unexpected LDAP message {int(message['messageID'])} in a paged search")
            strategy._outstanding.pop(message_id, None)
            done = strategy.decode_response_fast(message)
            conn.result = done
            return page, done


def _terminated(conn: Connection) -> NoReturn:
    with contextlib.suppress(OSError, LDAPExceptionError):
        conn.strategy.close()
    conn.last_error = "session terminated by server"
    raise LDAPSessionTerminatedByServerError(conn.last_error)


def _message_id(raw: bytes) -> int:
    offset = 2 + (raw[1] & 0x7F if raw[1] & 0x80 else 0)
    return int.from_bytes(raw[offset + 2:offset + 2 + raw[offset + 1]], "big", signed=True)


def _raise_for(conn: Connection, done: dict[str, Any]) -> None:
    """Raise as ldap3 does for a page's result (raise_exceptions: every connection of the reader has it)."""
    if conn.raise_exceptions and done["result"] not in DO_NOT_RAISE_EXCEPTIONS:
        raise LDAPOperationResult(result=done["result"], description=done["description"], dn=done["dn"],
                                  message=done["message"], response_type=done["type"])


def _cookie(done: dict[str, Any]) -> bytes | None:
    try:
        return done["controls"][PAGED_RESULTS_OID]["value"]["cookie"] or None
    except (KeyError, TypeError):
        return None


def _entry(raw: bytes, asked: list[str], empty_attributes: bool) -> Item:
    """One searchResEntry as ldap3 gives it (dn, raw_attributes), with an empty list for each attribute asked for
    and not returned (ldap3's return_empty_attributes, on by default). Text is decoded as ldap3's to_unicode
    decodes what a server sent: its server encoding (UTF-8), then ldap3's own fallbacks."""
    try:
        dn_bytes, sent = search_result_entry(raw)
    except NotAnEntry:  # an unexpected shape: ldap3's decoder reads it (or says what is wrong with it)
        payload = decode_message_fast(raw)["payload"]  # type: ignore[no-untyped-call]
        dn_bytes = payload[0][3]
        sent = [(attribute[3][0][3], decode_raw_vals_fast(attribute[3][1][3]))  # type: ignore[no-untyped-call]
                for attribute in payload[1][3]]
    utf8 = str(get_config_parameter("DEFAULT_SERVER_ENCODING")).lower() in ("utf-8", "utf8")  # type: ignore[no-untyped-call]
    attributes: dict[str, list[bytes]] = {}
    for name_bytes, values in sent:
        name = _text(name_bytes, utf8)
        if ";range=" in name:
            raise RangedAttribute(f"the server sent {name}: part of the values only")
        attributes[name] = list(values)
    if empty_attributes:
        present = {name.lower() for name in attributes}
        for name in asked:
            if name.lower() not in present and name not in (ALL_ATTRIBUTES, ALL_OPERATIONAL_ATTRIBUTES, NO_ATTRIBUTES):
                attributes[name] = []
    return _text(dn_bytes, utf8), attributes


def _text(value: bytes, utf8: bool) -> str:
    try:
        return value.decode("utf-8") if utf8 else str(to_unicode(value, from_server=True))
    except UnicodeDecodeError:
        return str(to_unicode(value, from_server=True))  # ldap3's other encodings, or its error


def _drain(conn: Connection, message_id: int) -> None:
    # Best effort: if the page cannot be read off, the connection is broken and its owner closes it anyway.
    with contextlib.suppress(LDAPException, OSError, TypeError):
        _receive_page(conn, message_id)
