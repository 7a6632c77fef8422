"""Read Active Directory over LDAP with ldap3: OUs as folders, user objects as users. Never writes (R1).

Every search is paged (Windows AD stops an unpaged search at 1,000 entries; Samba does not, so
tests could not catch a forgotten page), and every connection is made with raise_exceptions=True:
without it ldap3's paged-search generator ends quietly on an error and a partial read would look
complete (R21). Settings come in as a plain `LdapSettings`; this module never imports models.

It lives outside the Django project because the standalone on-prem agent (agent/) reads AD with exactly
this code: it imports ldap3 and the standard library only. The portal imports it through
directory.connectors.ldap, which re-exports it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
import ssl
import uuid
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit

from ldap3 import MOCK_ASYNC, MOCK_SYNC, NONE, SUBTREE, SYNC, Connection, Server, Tls
from ldap3.core.exceptions import (
    LDAPException,
    LDAPInvalidCredentialsResult,
    LDAPInvalidDnError,
    LDAPSocketOpenError,
)
from ldap3.utils.dn import parse_dn

from . import groups
from .batches import chunks
from .flags import account_enabled
from .records import (
    DirectoryAuthError,
    DirectoryUnavailable,
    FolderRecord,
    Snapshot,
    UserRecord,
    canonical_guid,
    full_snapshot,
)

# The ldap3 strategies a connector is built with: real connections, or the in-memory server of the demo.
ClientStrategy = Literal["SYNC", "MOCK_SYNC", "MOCK_ASYNC"]
USER_FILTER = "(&(objectCategory=person)(objectClass=user))"
OU_FILTER = "(objectClass=organizationalUnit)"
USER_ATTRIBUTES = (
    "objectGUID", "givenName", "sn", "mail", "userPrincipalName", "sAMAccountName",
    "userAccountControl", "displayName", "distinguishedName", "whenChanged", "uSNChanged",
)
OU_ATTRIBUTES = ("objectGUID", "distinguishedName")
# The show-deleted control: a search that carries it also returns tombstones (deleted objects, isDeleted=TRUE).
# Not critical: a server that ignores it simply returns no tombstones, and "not found" also means deleted.
SHOW_DELETED_OID = "1.2.840.113556.1.4.417"
GUIDS_PER_LOOKUP = 100  # objectGUIDs ORed into one search (about 6 KB of filter, far below AD's limits)

# AD's bind error carries a "data <code>" that says why (ldap3 only says invalidCredentials).
_BIND_REASONS = {
    "52e": "wrong password",
    "525": "no such user",
    "530": "logon not permitted at this time",
    "531": "logon not permitted from this workstation",
    "532": "password expired",
    "533": "account disabled",
    "701": "account expired",
    "773": "password must be changed",
    "775": "account locked out",
}
_DATA_CODE = re.compile(r"data ([0-9a-f]{3,8})", re.IGNORECASE)

T = TypeVar("T")


@dataclass(frozen=True)
class LdapSettings:
    """What the connector needs to reach one AD domain. Plain data: built from an Integration or flags."""

    urls: tuple[str, ...]
    base_dn: str
    bind_dn: str
    bind_password: str = field(repr=False)
    tls_mode: str = "ldaps"  # "ldaps", "starttls" or "none"
    ca_pem: str = ""
    tls_verify: bool = True
    page_size: int = 500
    connect_timeout: int = 10
    receive_timeout: int = 60
    # A bind with a password over plain LDAP is refused unless this is set: only for an operator who chose it
    # knowingly on a machine of their own (the agent's --insecure), never from an integration's settings.
    plain_ldap_allowed: bool = False


@dataclass(frozen=True)
class _Entry:
    dn: str
    attributes: dict[str, list[bytes]]

    def text(self, name: str) -> str:
        values = self.attributes.get(name) or []
        return values[0].decode("utf-8", errors="replace") if values else ""

    def raw(self, name: str) -> bytes | None:
        values = self.attributes.get(name) or []
        return values[0] if values else None


@dataclass(frozen=True)
class _Tree:
    """The OUs of one read, and each OU's objectGUID by its DN (to place users in their parent OU)."""

    folders: list[FolderRecord]
    ids_by_dn: dict[str, str]


@dataclass
class ReadStats:
    """What the last read did: which server answered and how many search requests (pages) it took."""

    server: str = ""
    search_requests: int = 0


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


def _guids(values: Collection[str]) -> frozenset[str]:
    """Canonical objectGUID text of each value; anything that is not a GUID is left out (never put in a filter)."""
    guids = set()
    for value in values:
        with contextlib.suppress(ValueError, AttributeError, TypeError):
            guids.add(canonical_guid(value))
    return frozenset(guids)


# A DN with none of the characters that escape, quote or join RDNs splits on "," and "=" exactly as ldap3's
# parser reads it; the parser costs ~13 us a DN, and a group read keys every member value and every user's DN.
_PLAIN_DN = re.compile(r"^[^\\\"+#;<>]*$")
_PLAIN_ATTR = re.compile(r"^[A-Za-z][A-Za-z0-9-]*$")


def dn_key(dn: str) -> str:
    """A DN in one spelling, for comparing DNs the server wrote: components trimmed, lowercased."""
    if _PLAIN_DN.match(dn):
        parts = []
        for component in dn.split(","):
            attr, equals, value = component.partition("=")
            if not equals or not _PLAIN_ATTR.match(attr) or "=" in value or value != value.strip() or not value:
                break  # not a DN this fast path can vouch for: let the parser say what it is
            parts.append(f"{attr}={value}")
        else:
            return ",".join(parts).lower()
    return ",".join(f"{attr.strip()}={value.strip()}" for attr, value, _ in parse_dn(dn)).lower()


def parent_dn(dn: str) -> str:
    components = parse_dn(dn)
    return ",".join(f"{attr}={value}" for attr, value, _ in components[1:])


def parent_key(dn: str) -> str:
    """dn_key(parent_dn(dn)) with one parse instead of two (ldap3's parse_dn is most of a user's cost)."""
    return ",".join(f"{attr.strip()}={value.strip()}" for attr, value, _ in parse_dn(dn)[1:]).lower()


def _unescape(value: str) -> str:
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


def _bind_error(exc: LDAPInvalidCredentialsResult, bind_dn: str, server: str) -> DirectoryAuthError:
    message = str(getattr(exc, "message", "") or exc)
    match = _DATA_CODE.search(message)
    code = match.group(1).lower() if match else ""
    reason = _BIND_REASONS.get(code, "credentials refused")
    detail = f" (AD code {code})" if code else ""
    return DirectoryAuthError(f"{server} refused the bind: {reason} for {bind_dn}{detail}.")


class LdapConnector:
    """Reads OUs and users from AD (or the demo's in-memory directory) with paged searches only."""

    finds_deleted_users = True  # read_snapshot takes known_user_ids (base.FindsDeletedUsers)

    def __init__(self, settings: LdapSettings, *, servers: Sequence[Server] | None = None,
                 client_strategy: ClientStrategy = SYNC, tracks_changes: bool = True) -> None:
        if not settings.urls and servers is None:
            raise ValueError("LDAP settings name no server URL")
        self.settings = settings
        self.directory_id = domain_of(settings.base_dn)
        self._fixed_servers = list(servers) if servers is not None else None
        for url in settings.urls:
            self._server(url)  # refuse a malformed URL now, not at the first read
        self._client_strategy = client_strategy
        # A DC keeps update sequence numbers (uSNChanged, highestCommittedUSN), so a run can read only what
        # changed; the demo's in-memory directory keeps none, so it is always read in full.
        self.tracks_changes = tracks_changes
        self.last_read = ReadStats()

    # ---- the Connector interface -------------------------------------------------------------
    def test(self) -> str:
        def count(conn: Connection) -> tuple[int, int]:
            folders = sum(1 for _ in self._search(conn, OU_FILTER, OU_ATTRIBUTES))
            users = sum(1 for _ in self._search(conn, USER_FILTER, ("objectGUID",)))
            return folders, users

        folders, users = self._with_connection(count)
        return (f"Connected to {self.last_read.server} and bound as {self.settings.bind_dn}: "
                f"{folders} OUs and {users} users under {self.settings.base_dn} "
                f"(read in {self.last_read.search_requests} paged searches).")

    def read_folders(self) -> list[FolderRecord]:
        """Every OU, then every security group (G1)."""
        return self._with_connection(lambda conn: self._read_tree(conn).folders + self._read_groups(conn).folders)

    def read_users(self, folder_ids: Collection[str]) -> list[UserRecord]:
        wanted = frozenset(canonical_guid(f) for f in folder_ids)

        def read(conn: Connection) -> list[UserRecord]:
            return self._read_users(conn, self._read_tree(conn), wanted)

        return self._with_connection(read)

    def read_user(self, user_id: str) -> UserRecord | None:
        """One user by objectGUID (R28), in its OU and every security group it is in, or None when the directory
        has no such user.

        The id must be GUID text: anything else (a filter fragment, say) is refused with ValueError.
        """
        try:
            guid = canonical_guid(user_id)
        except (ValueError, AttributeError, TypeError) as exc:
            raise ValueError(f"{user_id!r} is not a GUID: a user is read by its objectGUID") from exc

        def read(conn: Connection) -> UserRecord | None:
            entries = list(self._search(conn, f"(&{USER_FILTER}{guid_filter(guid)})", USER_ATTRIBUTES))
            if not entries:
                return None
            # G2: the groups the user is in through nesting, so a user in scope by a group stays in scope.
            joined = groups.memberships_for(self._groups_holding(conn, entries[0].dn), frozenset())
            return self._user_record(entries[0], self._read_tree(conn).ids_by_dn, joined)

        return self._with_connection(read)

    def deleted_users(self, user_ids: Collection[str]) -> frozenset[str]:
        """Which of these objectGUIDs AD has deleted: a tombstone, or nowhere in the domain (R8).

        The on-prem agent asks this of the linked users its upload did not hold: a user found alive elsewhere in
        the domain was moved (out of scope), not deleted. Text that is no GUID is never searched for.
        """
        guids = _guids(user_ids)
        if not guids:
            return frozenset()
        return self._with_connection(lambda conn: self._deleted(conn, guids))

    def read_snapshot(self, folder_ids: Collection[str], *, incremental: bool = False,
                      known_user_ids: Collection[str] = ()) -> Snapshot:
        """A complete read of the folder tree and of the users in folder_ids (empty: every folder, so every
        user, each with every security group it is in through nesting, and its chains: G2, G6).

        AD is always read in full here, so `incremental` is accepted and a full snapshot returned.
        `known_user_ids` are the objectGUIDs the caller expects (its linked users): those this read did not
        see anywhere under the base DN are looked up, and the deleted ones come back in `removed_user_ids`,
        so a user who left the company is not taken for one moved to an unmapped OU (R8, R9).
        """
        wanted = frozenset(canonical_guid(f) for f in folder_ids)
        known = _guids(known_user_ids)
        return self._with_connection(lambda conn: self.read_everything(conn, wanted, known))

    def read_everything(self, conn: Connection, wanted: frozenset[str], known: frozenset[str]) -> Snapshot:
        """read_snapshot's full read over an open connection (adread.incremental falls back to it on its own)."""
        tree, graph = self._read_tree(conn), self._read_groups(conn)
        seen: set[str] = set()
        # G2: with a group wanted, or everything (the agent's read), each user's record is built in its groups
        users = self._read_users(conn, tree, wanted, seen, groups.memberships_for(graph, wanted))
        folders = tree.folders + graph.folders
        deleted = self._deleted(conn, known - seen)
        snapshot = full_snapshot(self.directory_id, folders, users, wanted or frozenset(f.id for f in folders))
        return dataclasses.replace(snapshot, removed_user_ids=deleted) if deleted else snapshot

    # ---- connecting ----------------------------------------------------------------------------
    def _server(self, url: str) -> Server:
        parts = urlsplit(url if "://" in url else f"ldap://{url}")
        if parts.scheme not in ("ldap", "ldaps") or not parts.hostname:
            raise ValueError(f"{url!r} is not an LDAP URL (ldaps://host:636 or ldap://host:389)")
        use_ssl = parts.scheme == "ldaps" or self.settings.tls_mode == "ldaps"
        port = parts.port or (636 if use_ssl else 389)
        return Server(parts.hostname, port=port, use_ssl=use_ssl, tls=self._tls(),
                      connect_timeout=self.settings.connect_timeout, get_info=NONE)

    def _tls(self) -> Tls:
        validate = ssl.CERT_REQUIRED if self.settings.tls_verify else ssl.CERT_NONE
        return Tls(validate=validate, ca_certs_data=self.settings.ca_pem or None)

    @staticmethod
    def _label(server: Server) -> str:
        return f"{'ldaps' if server.ssl else 'ldap'}://{server.host}:{server.port}"

    def _sends_password_in_clear(self, server: Server) -> bool:
        """A bind with a password to this server would cross the network unencrypted (R25)."""
        if not self.settings.bind_password or self.settings.plain_ldap_allowed:
            return False
        if self._client_strategy in (MOCK_SYNC, MOCK_ASYNC):
            return False  # ldap3's in-memory server (the demo directory): nothing leaves the process
        return not server.ssl and self.settings.tls_mode != "starttls"

    def _connect(self, server: Server) -> Connection:
        if self._sends_password_in_clear(server):
            # Refused before connecting: a listener on that address would read the password as it arrives.
            raise DirectoryAuthError(
                f"The bind password was not sent to {self._label(server)}: plain LDAP would carry it in clear. "
                "Use LDAPS (ldaps://, port 636) or StartTLS."
            )
        conn = Connection(
            server, user=self.settings.bind_dn, password=self.settings.bind_password,
            client_strategy=self._client_strategy, raise_exceptions=True, read_only=True,
            receive_timeout=self.settings.receive_timeout, collect_usage=True, auto_bind=False,
        )
        conn.open()
        if self.settings.tls_mode == "starttls" and not server.ssl:
            conn.start_tls()
        conn.bind()
        return conn

    def _with_connection(self, work: Callable[[Connection], T]) -> T:
        """Run work on the first server that answers; a server that fails mid-read hands over to the next.

        A refused bind stops at once (the next DC would refuse it too, and retries lock accounts out).
        """
        failures: list[str] = []
        # Fresh Server objects each time: ldap3 remembers an address that failed and would skip it later.
        servers = self._fixed_servers or [self._server(url) for url in self.settings.urls]
        for server in servers:
            label = self._label(server)
            try:
                conn = self._connect(server)
            except LDAPInvalidCredentialsResult as exc:
                raise _bind_error(exc, self.settings.bind_dn, label) from None
            except LDAPSocketOpenError as exc:
                failures.append(f"{label}: {_describe_socket_error(exc)}")
                continue
            except (LDAPException, OSError) as exc:
                failures.append(f"{label}: {exc}")
                continue
            try:
                result = work(conn)
            except (LDAPException, OSError) as exc:
                failures.append(f"{label}: the read failed part-way ({exc})")
                continue
            finally:
                self.last_read = ReadStats(server=label, search_requests=_search_count(conn))
                _close(conn)
            return result
        raise DirectoryUnavailable(
            f"Could not read {self.settings.base_dn} from any domain controller: " + "; ".join(failures)
        )

    # ---- reading -------------------------------------------------------------------------------
    def _search(self, conn: Connection, search_filter: str, attributes: Sequence[str],
                base: str | None = None, scope: str = SUBTREE,
                controls: list[tuple[str, bool, None]] | None = None) -> Iterator[_Entry]:
        """Every entry matching the filter, page by page. Referrals are skipped; errors raise."""
        pages = conn.extend.standard.paged_search(
            base or self.settings.base_dn, search_filter, scope, attributes=list(attributes),
            paged_size=self.settings.page_size, generator=True, controls=controls,
        )
        for item in pages:
            if item.get("type") != "searchResEntry":
                continue
            raw: dict[str, Any] = item.get("raw_attributes") or {}
            yield _Entry(dn=item["dn"], attributes={k: list(v) for k, v in raw.items()})

    def _read_tree(self, conn: Connection) -> _Tree:
        entries = list(self._search(conn, OU_FILTER, OU_ATTRIBUTES))
        ids_by_dn: dict[str, str] = {}
        for entry in entries:
            guid = entry.raw("objectGUID")
            if guid is not None:
                ids_by_dn[dn_key(entry.dn)] = canonical_guid(guid)
        folders = []
        for entry in entries:
            key = dn_key(entry.dn)
            if key not in ids_by_dn:
                continue
            components = parse_dn(entry.dn)
            # The path runs from the top of the domain (DC= parts left out): Contoso/Sales/EMEA.
            in_domain = [value for attr, value, _ in components if attr.lower() != "dc"]
            path = "/".join(_unescape(value) for value in reversed(in_domain))
            folders.append(FolderRecord(
                id=ids_by_dn[key], name=_unescape(components[0][1]), kind="ou",
                parent_id=ids_by_dn.get(dn_key(parent_dn(entry.dn))), path=path,
            ))
        folders.sort(key=lambda f: f.path.lower())
        return _Tree(folders=folders, ids_by_dn=ids_by_dn)

    def _read_groups(self, conn: Connection) -> groups.GroupGraph:
        return groups.group_graph(self._search(conn, groups.GROUP_FILTER, groups.GROUP_ATTRIBUTES))

    def _read_users(self, conn: Connection, tree: _Tree, wanted: frozenset[str], seen: set[str] | None = None,
                    joined: groups.Memberships | None = None) -> list[UserRecord]:
        """The users of the wanted folders (OUs, and groups `joined` puts users in); `seen` collects every user
        under the base DN, wanted or not."""
        users = []
        for entry in self._search(conn, USER_FILTER, USER_ATTRIBUTES):
            record = self._user_record(entry, tree.ids_by_dn, joined)
            if record is None:
                continue
            if seen is not None:
                seen.add(record.id)
            if not wanted or record.folder_ids & wanted:
                users.append(record)
        return users

    def _deleted(self, conn: Connection, missing: Collection[str]) -> frozenset[str]:
        """Which of these objectGUIDs, not under the base DN, are deleted: a tombstone, or nowhere in the domain.

        Searched from the domain's root, not the base DN: a user moved to an OU outside the base DN still
        exists (out of scope), and a deleted one sits in CN=Deleted Objects, which only the show-deleted
        control reveals.
        """
        live: set[str] = set()
        ordered = sorted(missing)
        for batch in chunks(ordered, GUIDS_PER_LOOKUP):
            search_filter = "(|" + "".join(guid_filter(guid) for guid in batch) + ")"
            for entry in self._search(conn, search_filter, ("objectGUID", "isDeleted"),
                                      base=domain_root(self.settings.base_dn), controls=self._show_deleted()):
                guid = entry.raw("objectGUID")
                if guid is not None and entry.text("isDeleted").upper() != "TRUE":
                    live.add(canonical_guid(guid))
        return frozenset(missing) - live

    def _groups_holding(self, conn: Connection, dn: str) -> groups.GroupGraph:
        """The groups `dn` is in through nesting: one search with the in-chain rule. ldap3's in-memory server (the
        demo directory) has no extensible match, so it reads every group, which the walk narrows alike."""
        if self._client_strategy in (MOCK_SYNC, MOCK_ASYNC):
            return self._read_groups(conn)
        return groups.group_graph(self._search(conn, groups.holding_filter(dn), groups.GROUP_ATTRIBUTES))

    def _show_deleted(self) -> list[tuple[str, bool, None]] | None:
        # ldap3's in-memory server (the demo directory) cannot decode controls, and has no tombstones anyway.
        if self._client_strategy in (MOCK_SYNC, MOCK_ASYNC):
            return None
        return [(SHOW_DELETED_OID, False, None)]

    def _user_record(self, entry: _Entry, ou_ids: dict[str, str],
                     joined: groups.Memberships | None = None) -> UserRecord | None:
        guid = entry.raw("objectGUID")
        if guid is None:
            return None
        uac_text = entry.text("userAccountControl")
        uac = int(uac_text) if uac_text.lstrip("-").isdigit() else 0
        folder = ou_ids.get(parent_key(entry.dn))
        folder_ids, chains = (joined.of(entry.dn, folder) if joined is not None
                              else (frozenset({folder}) if folder else frozenset(), ()))
        return UserRecord(
            id=canonical_guid(guid),
            first_name=entry.text("givenName"),
            last_name=entry.text("sn"),
            email=entry.text("mail").strip(),
            enabled=account_enabled(uac),
            folder_ids=folder_ids,
            display_name=entry.text("displayName"),
            upn=entry.text("userPrincipalName"),
            dn=entry.dn,
            chains=chains,
        )


def _describe_socket_error(exc: LDAPSocketOpenError) -> str:
    text = str(exc)
    if "CERTIFICATE_VERIFY_FAILED" in text or "certificate verify failed" in text:
        return ("the server's TLS certificate was not accepted (certificate verify failed): check the "
                "integration's CA certificate")
    if "hostname" in text.lower() and "match" in text.lower():
        return "the server's TLS certificate does not name this host (hostname mismatch)"
    return f"cannot connect ({text})"


def _search_count(conn: Connection) -> int:
    usage = getattr(conn, "usage", None)
    return int(usage.search_operations) if usage is not None else 0


def _close(conn: Connection) -> None:
    with contextlib.suppress(LDAPException, OSError):
        conn.unbind()


__all__ = ["LdapConnector", "LdapSettings", "ReadStats", "domain_of", "guid_filter"]
