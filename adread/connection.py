"""Reaching a domain controller: the settings of one AD domain, the ldap3 Server and TLS of each DC URL, the bind
(refused before connecting when it would send a password in clear, R25), and the hand-over to the next DC when one
fails (R21: a read that fails on every DC raises, never returns part of the directory)."""

from __future__ import annotations

import contextlib
import re
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal, TypeVar
from urllib.parse import urlsplit

from ldap3 import MOCK_ASYNC, MOCK_SYNC, NONE, Connection, Server, Tls
from ldap3.core.exceptions import LDAPException, LDAPInvalidCredentialsResult, LDAPSocketOpenError

from .records import DirectoryAuthError, DirectoryUnavailable

# The ldap3 strategies a connector is built with: real connections, or the in-memory server of the demo.
ClientStrategy = Literal["SYNC", "MOCK_SYNC", "MOCK_ASYNC"]

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


@dataclass
class ReadStats:
    """What the last read did: which server answered and how many search requests (pages) it took."""

    server: str = ""
    search_requests: int = 0


class Connections:
    """The DCs of one domain, tried in order: the first that binds does the work; one that fails mid-read hands
    over to the next. `last_read` says which answered the last work, and how many searches it took."""

    def __init__(self, settings: LdapSettings, servers: Sequence[Server] | None, client_strategy: ClientStrategy
                 ) -> None:
        if not settings.urls and servers is None:
            raise ValueError("LDAP settings name no server URL")
        self.settings = settings
        self.client_strategy = client_strategy
        self._fixed_servers = list(servers) if servers is not None else None
        for url in settings.urls:
            self.server(url)  # refuse a malformed URL now, not at the first read
        self.last_read = ReadStats()

    @property
    def in_memory(self) -> bool:
        """ldap3's in-memory server (the demo directory): nothing leaves the process."""
        return self.client_strategy in (MOCK_SYNC, MOCK_ASYNC)

    def server(self, url: str) -> Server:
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

    def _sends_password_in_clear(self, server: Server) -> bool:
        """A bind with a password to this server would cross the network unencrypted (R25)."""
        if not self.settings.bind_password or self.settings.plain_ldap_allowed or self.in_memory:
            return False
        return not server.ssl and self.settings.tls_mode != "starttls"

    def connect(self, server: Server) -> Connection:
        if self._sends_password_in_clear(server):
            # Refused before connecting: a listener on that address would read the password as it arrives.
            raise DirectoryAuthError(
                f"The bind password was not sent to {label(server)}: plain LDAP would carry it in clear. "
                "Use LDAPS (ldaps://, port 636) or StartTLS."
            )
        conn = Connection(
            server, user=self.settings.bind_dn, password=self.settings.bind_password,
            client_strategy=self.client_strategy, raise_exceptions=True, read_only=True,
            receive_timeout=self.settings.receive_timeout, collect_usage=True, auto_bind=False,
        )
        conn.open()
        if self.settings.tls_mode == "starttls" and not server.ssl:
            conn.start_tls()
        conn.bind()
        return conn

    def run(self, work: Callable[[Connection], T]) -> T:
        """Run work on the first server that answers; a server that fails mid-read hands over to the next.

        A refused bind stops at once (the next DC would refuse it too, and retries lock accounts out).
        """
        failures: list[str] = []
        # Fresh Server objects each time: ldap3 remembers an address that failed and would skip it later.
        servers = self._fixed_servers or [self.server(url) for url in self.settings.urls]
        for server in servers:
            name = label(server)
            try:
                conn = self.connect(server)
            except LDAPInvalidCredentialsResult as exc:
                raise bind_error(exc, self.settings.bind_dn, name) from None
            except LDAPSocketOpenError as exc:
                failures.append(f"{name}: {describe_socket_error(exc)}")
                continue
            except (LDAPException, OSError) as exc:
                failures.append(f"{name}: {exc}")
                continue
            try:
                result = work(conn)
            except (LDAPException, OSError) as exc:
                failures.append(f"{name}: the read failed part-way ({exc})")
                continue
            finally:
                self.last_read = ReadStats(server=name, search_requests=search_count(conn))
                _close(conn)
            return result
        raise DirectoryUnavailable(
            f"Could not read {self.settings.base_dn} from any domain controller: " + "; ".join(failures)
        )


def label(server: Server) -> str:
    return f"{'ldaps' if server.ssl else 'ldap'}://{server.host}:{server.port}"


def bind_error(exc: LDAPInvalidCredentialsResult, bind_dn: str, server: str) -> DirectoryAuthError:
    message = str(getattr(exc, "message", "") or exc)
    match = _DATA_CODE.search(message)
    code = match.group(1).lower() if match else ""
    reason = _BIND_REASONS.get(code, "credentials refused")
    detail = f" (AD code {code})" if code else ""
    return DirectoryAuthError(f"{server} refused the bind: {reason} for {bind_dn}{detail}.")


def describe_socket_error(exc: LDAPSocketOpenError) -> str:
    text = str(exc)
    if "CERTIFICATE_VERIFY_FAILED" in text or "certificate verify failed" in text:
        return ("the server's TLS certificate was not accepted (certificate verify failed): check the "
                "integration's CA certificate")
    if "hostname" in text.lower() and "match" in text.lower():
        return "the server's TLS certificate does not name this host (hostname mismatch)"
    return f"cannot connect ({text})"


def search_count(conn: Connection) -> int:
    """The search requests (one a page) this connection has sent."""
    usage = getattr(conn, "usage", None)
    return int(usage.search_operations) if usage is not None else 0


def _close(conn: Connection) -> None:
    with contextlib.suppress(LDAPException, OSError):
        conn.unbind()


__all__ = ["ClientStrategy", "Connections", "LdapSettings", "ReadStats", "search_count"]
