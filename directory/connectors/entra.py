"""Read Entra ID through Microsoft Graph: AUs are the folders, their user members are the users.

msal (client credentials) gives the token; one requests.Session talks to Graph with explicit paging,
delta queries and retry. The contracts this follows are in docs/notes/entra-graph.md. Like every
connector it never imports models (ARCHITECTURE, rule 1): `directory.sources` builds its settings
from an integration.

Identity (R3): a user is its Entra object `id` within the tenant GUID (`Snapshot.directory_id`).
Safety (R21): a read that cannot finish raises DirectoryUnavailable / DirectoryAuthError; a member
that comes back without properties (no User.Read.All) is an error, never "user removed".
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import re
import tempfile
import time
import uuid
import weakref
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

import msal
import requests
from msal.authority import WELL_KNOWN_AUTHORITY_HOSTS

from . import entra_groups
from .base import (
    DirectoryAuthError,
    DirectoryError,
    DirectoryUnavailable,
    FolderRecord,
    Snapshot,
    UserRecord,
    canonical_guid,
)

logger = logging.getLogger(__name__)

USER_SELECT = "id,givenName,surname,displayName,mail,userPrincipalName,accountEnabled,otherMails"
AU_SELECT = "id,displayName,description,visibility"
DEFAULT_LOGIN_HOST = "login.microsoftonline.com"
DEFAULT_GRAPH_BASE_URL = "https://graph.microsoft.com/v1.0"
_DNS_NAME = re.compile(r"^(?=.{4,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,61}[a-z0-9]$", re.I)
# Where a client secret, and the token it buys, may be sent (R26): the login hosts msal knows for Microsoft's
# clouds, and the Graph hosts of those clouds. Any other host (a sovereign proxy, the test suite's stand-in)
# must be on the operator's ENTRA_ALLOWED_HOSTS: a staff member cannot point a stored secret at a host of theirs.
LOGIN_HOSTS = WELL_KNOWN_AUTHORITY_HOSTS
GRAPH_HOSTS = frozenset({"graph.microsoft.com", "graph.microsoft.us", "dod-graph.microsoft.us",
                         "microsoftgraph.chinacloudapi.cn"})
_ASK_OPERATOR = "any other host must first be allowed by whoever runs the portal (ENTRA_ALLOWED_HOSTS)"


# ------------------------------------------------------------------------------------------ settings

@dataclass(frozen=True)
class RetryPolicy:
    """How long Graph throttling and transient failures are waited out before a run gives up (R21)."""

    max_attempts: int = 6
    cap_seconds: float = 30.0  # the most one wait lasts, whatever Retry-After asks
    backoff_base_seconds: float = 1.0  # 503/504 without Retry-After: base * 2^(n-1), plus jitter


@dataclass(frozen=True, eq=False)
class EntraSettings:
    tenant: str  # GUID or a verified domain
    client_id: str
    client_secret: str = field(repr=False)
    login_host: str = DEFAULT_LOGIN_HOST
    graph_base_url: str = DEFAULT_GRAPH_BASE_URL
    # The token's scope (its Graph resource). Blank: the Graph base URL's own host, as for Microsoft's clouds;
    # set when Graph is reached through a host that is not the resource (a proxy, a private endpoint).
    scope: str = ""
    ca_pem: str = ""  # CA bundle to trust for the login and Graph hosts; blank = system CAs
    verify: bool = True
    delta_state: Mapping[str, Any] = field(default_factory=dict)
    tenant_guid: str = ""  # the GUID this integration was linked to, when known
    retry: RetryPolicy = RetryPolicy()
    timeout_seconds: float = 60.0
    # More changed users than this in one incremental round: one full read is cheaper than 2 calls each.
    incremental_change_limit: int = 1000

    @property
    def graph_scope(self) -> str:
        if self.scope.strip():
            return self.scope.strip()
        parts = urlsplit(self.graph_base_url)
        return f"{parts.scheme}://{parts.netloc}/.default"


@dataclass(frozen=True)
class TenantInfo:
    guid: str
    display_name: str
    domains: tuple[str, ...]  # verified domain names, the initial (*.onmicrosoft.com) one first


# ---------------------------------------------------------------------------------- error messages

# Branch on the OAuth `error` and the AADSTS numbers, never on the description text (notes §1).
_AADSTS_MESSAGES: dict[int, str] = {
    7000215: "the client secret is wrong (AADSTS7000215): paste the secret's Value, not its Secret ID",
    7000222: "the client secret has expired (AADSTS7000222): create a new secret for the app and save it here",
    7000218: "no client secret was sent (AADSTS7000218): enter the app's client secret",
    700016: "application {client_id} is not in tenant {tenant} (AADSTS700016): check the application (client) id "
            "and that the app is registered or consented in this tenant",
    90002: "tenant {tenant} was not found (AADSTS90002): check the tenant GUID or domain and the login host",
    900023: "tenant {tenant!r} is not a tenant GUID or a domain name (AADSTS900023)",
    1002012: "the token scope was refused (AADSTS1002012): it must name the Graph resource and end in /.default",
    700022: "the token scope was refused (AADSTS700022): it must name one resource",
    500011: "the Graph resource was not found in tenant {tenant} (AADSTS500011): check the cloud (the tenant "
            "belongs to one cloud only) or, for a custom cloud, the token scope",
    90055: "the Microsoft login service is throttling this app (AADSTS90055): try again later",
}
_ERROR_MESSAGES: dict[str, str] = {
    "invalid_client": "the client credentials were refused",
    "unauthorized_client": "application {client_id} is not allowed in tenant {tenant}",
    "invalid_tenant": "tenant {tenant} was not found",
    "invalid_request": "the token request was refused as invalid",
    "invalid_scope": "the token scope was refused",
    "invalid_resource": "the Graph resource was not found in tenant {tenant}",
}
_TRANSIENT_TOKEN_ERRORS = {"temporarily_unavailable", "server_error"}
_SCOPE_ERRORS = ({"invalid_scope", "invalid_resource"}, {500011, 1002012, 700022})


def token_error_message(error: str, codes: Collection[int], *, tenant: str, client_id: str) -> str:
    """A message a person can act on, from the OAuth error code and AADSTS numbers only."""
    for code in codes:
        if code in _AADSTS_MESSAGES:
            return "Entra ID login: " + _AADSTS_MESSAGES[code].format(tenant=tenant, client_id=client_id)
    known = _ERROR_MESSAGES.get(error, "the login was refused")
    detail = error + (": " + ", ".join(f"AADSTS{c}" for c in codes) if codes else "")
    return f"Entra ID login: {known.format(tenant=tenant, client_id=client_id)} ({detail})"


_PERMISSION_BY_PATH = (
    ("/organization", "Organization.Read.All"),
    ("/groups", "GroupMember.Read.All"),
    ("/transitiveMemberOf", "GroupMember.Read.All"),
    ("/memberOf", "AdministrativeUnit.Read.All"),
    ("/members", "AdministrativeUnit.Read.All (plus Member.Read.Hidden for hidden-membership AUs)"),
    ("/users", "User.Read.All"),
    ("administrativeUnits", "AdministrativeUnit.Read.All"),
)


def _permission_for(url: str) -> str:
    path = urlsplit(url).path
    for fragment, permission in _PERMISSION_BY_PATH:
        if fragment in path:
            return permission
    return "Directory.Read.All"


def _short(url: str) -> str:
    """The URL for a message: skip and delta tokens are long and say nothing to a person."""
    parts = urlsplit(url)
    query = re.sub(r"(\$(?:skiptoken|deltatoken)=)[^&]{12,}", r"\1…", parts.query)
    return f"{parts.scheme}://{parts.netloc}{parts.path}" + (f"?{query}" if query else "")


# ----------------------------------------------------------------------------------------- HTTP

class _TimeoutSession(requests.Session):
    """A session that never waits for ever and ignores proxy/CA environment variables (requests #3829)."""

    def __init__(self, timeout: float, verify: bool | str) -> None:
        super().__init__()
        self.trust_env = False
        self.verify = verify
        self._timeout = timeout

    def request(self, method, url, *args, **kwargs):  # type: ignore[override]
        kwargs.setdefault("timeout", self._timeout)
        return super().request(method, url, *args, **kwargs)


class _GraphStatus(Exception):
    """A Graph answer the caller decides about (404, 410, other 4xx)."""

    def __init__(self, url: str, status: int, code: str, headers: Mapping[str, str]):
        super().__init__(f"{status} {code}")
        self.url, self.status, self.code, self.headers = url, status, code, headers


class FullReadNeeded(Exception):
    """An incremental round cannot be used (delta link refused, too many changes): read everything."""


class GraphGaveUp(DirectoryUnavailable):
    """A Graph request still failed after its last retry. The read stops at it: every later request of the
    read would wait out the same outage, only to fail the run anyway, and name the wrong request."""


class ScopeRefused(DirectoryAuthError):
    """The login service refused the token scope: the cloud (or a custom cloud's scope) does not fit the tenant."""


class _NoDeltaLink(Exception):
    """Graph ended a delta round without a delta link: the next incremental run reads everything."""


# ------------------------------------------------------------------------------------------ endpoints

def operator_hosts() -> frozenset[str]:
    """ENTRA_ALLOWED_HOSTS: extra login and Graph hosts the operator trusts ("host": any port; "host:port")."""
    from django.conf import settings as django_settings

    return frozenset(h.strip().lower() for h in django_settings.ENTRA_ALLOWED_HOSTS if h.strip())


def _host_allowed(host: str, port: int | None, microsoft: frozenset[str]) -> bool:
    if port in (None, 443) and host in microsoft:
        return True
    extra = operator_hosts()
    return host in extra or f"{host}:{port}" in extra


def login_host_problem(login_host: str) -> str:
    """Why the client secret may not be sent to this login host, in plain words; "" when it may."""
    value = login_host.strip()
    parts = urlsplit(f"//{value}")
    try:
        port = parts.port
    except ValueError:
        port = 0
    if not parts.hostname or parts.netloc != value or parts.username is not None or port == 0:
        return (f"{value[:80]!r} is not a host name: write the login host alone, e.g. login.microsoftonline.com "
                "(no https:// and no path).")
    if not _host_allowed(parts.hostname, port, LOGIN_HOSTS):
        return (f"{value} is not a Microsoft login host: use login.microsoftonline.com, or your national cloud's "
                f"(login.microsoftonline.us, login.chinacloudapi.cn); {_ASK_OPERATOR}.")
    return ""


def scope_problem(scope: str) -> str:
    """Why a token may not be asked for with this scope, in plain words; "" when it may.

    The scope decides which resource the client secret buys a token for, and that token goes to the Graph
    host: only Graph's own resources (or a host the operator allowed) may be named, never another service's.
    """
    value = scope.strip()
    parts = urlsplit(value)
    try:
        port = parts.port
    except ValueError:
        port = 0
    example = "write the Graph resource followed by /.default, e.g. https://graph.microsoft.com/.default"
    if parts.scheme != "https" or not parts.hostname or parts.path != "/.default" or parts.query or parts.fragment \
            or parts.username is not None or port == 0:
        return f"{value[:80]!r} is not a token scope: {example}."
    if not _host_allowed(parts.hostname, port, GRAPH_HOSTS):
        return (f"{parts.netloc} is not a Microsoft Graph resource: use your cloud's Graph (graph.microsoft.com, "
                f"graph.microsoft.us, dod-graph.microsoft.us, microsoftgraph.chinacloudapi.cn); {_ASK_OPERATOR}.")
    return ""


def graph_url_problem(graph_base_url: str) -> str:
    """Why Graph may not be read at this URL (it gets the token), in plain words; "" when it may."""
    url = graph_base_url.strip()
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = 0
    if parts.scheme != "https":
        return "Graph is read over https only: write https://graph.microsoft.com/v1.0."
    if not parts.hostname or parts.username is not None or parts.query or parts.fragment or port == 0:
        return f"{url[:80]!r} is not a Graph base URL: write it as https://graph.microsoft.com/v1.0."
    if not _host_allowed(parts.hostname, port, GRAPH_HOSTS):
        return (f"{parts.netloc} is not a Microsoft Graph host: use https://graph.microsoft.com/v1.0, or your "
                "national cloud's Graph (graph.microsoft.us, dod-graph.microsoft.us, "
                f"microsoftgraph.chinacloudapi.cn); {_ASK_OPERATOR}.")
    return ""


# ------------------------------------------------------------------------------------------ records

def _require_properties(item: Mapping[str, Any], url: str) -> None:
    """Limited information (notes §3): the app may list members but not read users. Never "removed"."""
    if item.get("displayName") is None and item.get("userPrincipalName") is None:
        raise DirectoryAuthError(
            f"Graph returned user {item.get('id')} with its id only ({_short(url)}): the app lacks the "
            "application permission User.Read.All (or Directory.Read.All). Grant it with admin consent; "
            "nothing was changed."
        )


def _user_record(item: Mapping[str, Any], folder_ids: Collection[str], url: str) -> UserRecord:
    _require_properties(item, url)
    # Email: `mail` only. otherMails are alternate, often personal addresses and the UPN need not be a
    # mailbox: sending an activation link to either could reach the wrong person (R7 makes it an issue).
    return UserRecord(
        id=canonical_guid(item["id"]),
        first_name=(item.get("givenName") or "").strip(),
        last_name=(item.get("surname") or "").strip(),
        email=(item.get("mail") or "").strip(),
        enabled=item.get("accountEnabled") is True,
        folder_ids=frozenset(folder_ids),
        display_name=item.get("displayName") or "",
        upn=item.get("userPrincipalName") or "",
    )


def _folder_record(item: Mapping[str, Any]) -> FolderRecord:
    name = item.get("displayName") or item["id"]
    return FolderRecord(id=canonical_guid(item["id"]), name=name, kind="au", path=name)


def _is_user(item: Mapping[str, Any]) -> bool:
    return item.get("@odata.type", "#microsoft.graph.user") == "#microsoft.graph.user"


# --------------------------------------------------------------------------------------- connector

class EntraConnector:
    """One Entra tenant read through Graph, from `EntraSettings` (`directory.sources.entra_settings`)."""

    def __init__(self, settings: EntraSettings) -> None:
        self.settings = settings
        self.new_delta_state: dict[str, Any] | None = None  # set by read_snapshot; the engine stores it
        self._ca_file: str | None = None
        verify: bool | str = settings.verify
        if settings.verify and settings.ca_pem.strip():
            handle, self._ca_file = tempfile.mkstemp(prefix="entra-ca-", suffix=".pem")
            with os.fdopen(handle, "w") as ca:
                ca.write(settings.ca_pem)
            weakref.finalize(self, _remove_file, self._ca_file)
            verify = self._ca_file
        self._verify = verify
        self._graph = _TimeoutSession(settings.timeout_seconds, verify)
        self._app: msal.ConfidentialClientApplication | None = None

    # ---- identity
    @property
    def directory_id(self) -> str:
        if self._app is not None:
            return self._app.authority.tenant.lower()
        return (self.settings.tenant_guid or self.settings.tenant).lower()

    def _msal_app(self) -> msal.ConfidentialClientApplication:
        if self._app is not None:
            return self._app
        s = self.settings
        tenant = s.tenant.strip()
        if not _is_tenant_name(tenant):
            raise DirectoryAuthError(f"Entra ID login: tenant {tenant!r} is not a tenant GUID or a domain name.")
        if not s.client_id.strip():
            raise DirectoryAuthError("Entra ID login: the application (client) id is empty.")
        # Checked again here, not only when the settings were typed: a row saved before these rules existed
        # must not send its secret to a host nobody allowed.
        if problem := login_host_problem(s.login_host) or graph_url_problem(s.graph_base_url) or \
                scope_problem(s.graph_scope):
            raise DirectoryAuthError(f"Entra ID login refused: {problem}")
        authority = f"https://{s.login_host}/{tenant}"
        msal_http = _TimeoutSession(s.timeout_seconds, self._verify)
        try:
            app = msal.ConfidentialClientApplication(
                s.client_id.strip(), client_credential=str(s.client_secret), authority=authority,
                # Microsoft's hosts need no instance discovery; any other host (tests, sovereign proxies)
                # must not trigger a call to login.microsoftonline.com/common/discovery/instance.
                instance_discovery=None if s.login_host in WELL_KNOWN_AUTHORITY_HOSTS else False,
                http_client=msal_http, token_cache=msal.TokenCache(),
            )
        except requests.exceptions.SSLError as exc:
            raise DirectoryUnavailable(
                f"Entra ID login host {s.login_host} presented a certificate this integration does not trust: "
                "set the CA certificate (PEM) or check the host."
            ) from exc
        except requests.RequestException as exc:
            raise DirectoryUnavailable(f"Entra ID login host {s.login_host} could not be reached: "
                                       f"{type(exc).__name__}.") from exc
        except msal.exceptions.MsalServiceError as exc:  # 5xx from OIDC discovery
            raise DirectoryUnavailable(f"Entra ID login host {s.login_host} failed OIDC discovery ({exc}); "
                                       "the next run tries again.") from exc
        except ValueError as exc:
            # msal hides the discovery answer in a text message: ask once more and read its error code.
            raise self._discovery_error(authority) from exc
        guid = app.authority.tenant.lower()
        if s.tenant_guid and guid != s.tenant_guid.lower():
            raise DirectoryAuthError(
                f"Entra ID tenant {tenant} now resolves to {guid}, but this integration was linked to "
                f"{s.tenant_guid}: save the integration again to check the tenant before syncing."
            )
        self._app = app
        return app

    def _discovery_error(self, authority: str) -> DirectoryError:
        s = self.settings
        url = f"{authority}/v2.0/.well-known/openid-configuration"
        try:
            resp = self._graph.get(url)
            body = resp.json()
        except (requests.RequestException, ValueError):
            return DirectoryUnavailable(f"Entra ID login: OIDC discovery failed at {url}.")
        if isinstance(body, dict) and body.get("error"):
            return DirectoryAuthError(token_error_message(
                str(body["error"]), [int(c) for c in body.get("error_codes") or [] if str(c).isdigit()],
                tenant=s.tenant, client_id=s.client_id))
        return DirectoryUnavailable(f"Entra ID login: OIDC discovery at {url} answered HTTP {resp.status_code}.")

    def _token(self) -> str:
        app = self._msal_app()
        try:
            result = app.acquire_token_for_client(scopes=[self.settings.graph_scope])
        except requests.RequestException as exc:
            raise DirectoryUnavailable(f"Entra ID login host {self.settings.login_host} could not be reached: "
                                       f"{type(exc).__name__}.") from exc
        except msal.exceptions.MsalServiceError as exc:
            # 5xx/429 from the token endpoint: msal neither retries nor parses them (notes §6).
            raise DirectoryUnavailable(f"Entra ID token endpoint on {self.settings.login_host} failed ({exc}); "
                                       "the next run tries again.") from exc
        if "access_token" in result:
            return result["access_token"]
        error = str(result.get("error") or "unknown_error")
        codes = [int(c) for c in result.get("error_codes") or [] if str(c).isdigit()]
        message = token_error_message(error, codes, tenant=self.settings.tenant, client_id=self.settings.client_id)
        if error in _TRANSIENT_TOKEN_ERRORS or 90055 in codes:
            raise DirectoryUnavailable(message)
        if error in _SCOPE_ERRORS[0] or _SCOPE_ERRORS[1] & set(codes):
            raise ScopeRefused(message)
        raise DirectoryAuthError(message)

    # ---- Graph requests
    def _get(self, url: str) -> dict[str, Any]:
        """GET a Graph URL with the token; wait out 429/503/504; refresh the token once on 401."""
        policy = self.settings.retry
        last = ""
        refreshed = False
        attempt = 0
        while attempt < policy.max_attempts:
            attempt += 1
            try:
                resp = self._graph.get(url, headers={"Authorization": f"Bearer {self._token()}",
                                                     "Accept": "application/json"})
            except requests.exceptions.SSLError as exc:
                raise DirectoryUnavailable(
                    f"Graph host {urlsplit(url).netloc} presented a certificate this integration does not "
                    "trust: set the CA certificate (PEM) or check the Graph base URL."
                ) from exc
            except requests.RequestException as exc:
                last = type(exc).__name__
                if attempt < policy.max_attempts:
                    self._sleep(self._backoff(attempt, None), url, last)
                continue
            if resp.status_code == 200:
                try:
                    return resp.json()
                except ValueError:
                    last = "200 with a body that is not JSON"
                    if attempt < policy.max_attempts:
                        self._sleep(self._backoff(attempt, None), url, last)
                    continue
            code = _graph_error_code(resp)
            if resp.status_code == 401 and not refreshed:
                # The cached token may have been revoked or rolled over: drop it and ask once more.
                refreshed = True
                attempt -= 1
                self._app.remove_tokens_for_client()  # type: ignore[union-attr]
                continue
            if resp.status_code == 401:
                raise DirectoryAuthError(f"Graph refused the app's token at {_short(url)} (401 {code}), "
                                         "even after a new token: check the app registration.")
            if resp.status_code == 403:
                permission = _permission_for(url)
                raise DirectoryAuthError(
                    f"Graph refused {_short(url)} (403 {code}): the app lacks the application permission "
                    f"{permission} (or Directory.Read.All). Grant it with admin consent."
                )
            if resp.status_code in (429, 500, 502, 503, 504):
                last = f"{resp.status_code} {code}".strip()
                if attempt < policy.max_attempts:
                    self._sleep(self._backoff(attempt, resp.headers.get("Retry-After")), url, last)
                continue
            raise _GraphStatus(url, resp.status_code, code, resp.headers)
        raise GraphGaveUp(
            f"Graph request GET {_short(url)} failed after {policy.max_attempts} attempts (last answer: {last}); "
            "the read stopped there, nothing was changed, the next run tries again."
        )

    def _backoff(self, attempt: int, retry_after: str | None) -> float:
        policy = self.settings.retry
        if retry_after is not None and retry_after.strip().isdigit():
            return min(float(retry_after), policy.cap_seconds)
        delay = policy.backoff_base_seconds * (2 ** (attempt - 1))
        return min(delay + random.uniform(0, delay / 2), policy.cap_seconds)  # noqa: S311 - jitter, not crypto

    def _sleep(self, seconds: float, url: str, why: str) -> None:
        if seconds > 0:
            logger.info("Graph %s answered %s; waiting %.1f s", _short(url), why, seconds)
            time.sleep(seconds)

    def _pages(self, url: str) -> Iterator[dict[str, Any]]:
        """Every page of a collection, following each @odata.nextLink verbatim (notes §3)."""
        next_url: str | None = url
        while next_url:
            page = self._get(next_url)
            yield page
            next_url = page.get("@odata.nextLink")

    def _url(self, path: str) -> str:
        return self.settings.graph_base_url.rstrip("/") + path

    # ---- folders and users
    def read_folders(self) -> list[FolderRecord]:
        """Every AU, then every security and Microsoft 365 group (G1)."""
        records = []
        for page in self._pages(self._url(f"/directory/administrativeUnits?$select={AU_SELECT}&$top=999")):
            records += [_folder_record(item) for item in page.get("value", [])]
        return records + entra_groups.read_group_folders(self)

    def read_users(self, folder_ids: Collection[str]) -> list[UserRecord]:
        """Users of the given AUs, each with every one of those AUs it is in."""
        found: dict[str, dict[str, Any]] = {}
        memberships: dict[str, set[str]] = {}
        for au_id in sorted({canonical_guid(f) for f in folder_ids}):
            url = self._url(f"/directory/administrativeUnits/{au_id}/members/microsoft.graph.user"
                            f"?$select={USER_SELECT}&$top=999")
            try:
                for page in self._pages(url):
                    for item in page.get("value", []):
                        if not _is_user(item):
                            continue
                        user_id = canonical_guid(item["id"])
                        if user_id not in found:
                            _require_properties(item, url)
                        found[user_id] = item
                        memberships.setdefault(user_id, set()).add(au_id)
            except _GraphStatus as exc:
                raise DirectoryUnavailable(
                    f"Graph {_short(exc.url)} answered {exc.status} {exc.code} while reading the members of "
                    f"AU {au_id}: nothing was changed."
                ) from exc
        return [_user_record(found[uid], memberships[uid], url) for uid in sorted(found)]

    def _user_au_ids(self, user_id: str) -> set[str]:
        url = self._url(f"/users/{quote(user_id)}/memberOf/microsoft.graph.administrativeUnit?$select=id")
        ids: set[str] = set()
        for page in self._pages(url):
            ids |= {canonical_guid(item["id"]) for item in page.get("value", [])}
        return ids

    def _user_item(self, user_id: str) -> dict[str, Any] | None:
        try:
            return self._get(self._url(f"/users/{quote(user_id)}?$select={USER_SELECT}"))
        except _GraphStatus as exc:
            if exc.status == 404:
                return None
            raise DirectoryUnavailable(f"Graph {_short(exc.url)} answered {exc.status} {exc.code}.") from exc

    def read_user(self, user_id: str) -> UserRecord | None:
        """One user with all its AU memberships (R28); None when the directory no longer has it."""
        user_id = canonical_guid(user_id)
        item = self._user_item(user_id)
        if item is None:
            return None
        try:
            au_ids = self._user_au_ids(user_id)
        except _GraphStatus as exc:
            if exc.status == 404:
                return None
            raise DirectoryUnavailable(f"Graph {_short(exc.url)} answered {exc.status} {exc.code}.") from exc
        return _user_record(item, au_ids, self._url(f"/users/{user_id}"))

    # ---- tenant
    def tenant_info(self) -> TenantInfo:
        """GUID from msal's authority discovery, confirmed by GET /organization (which lists the domains)."""
        self._msal_app()
        guid = self.directory_id
        try:
            body = self._get(self._url("/organization?$select=id,displayName,verifiedDomains"))
        except _GraphStatus as exc:
            raise DirectoryUnavailable(f"Graph {_short(exc.url)} answered {exc.status} {exc.code}.") from exc
        orgs = body.get("value") or []
        if not orgs:
            raise DirectoryUnavailable("Graph /organization returned no organization.")
        org = orgs[0]
        if str(org.get("id", "")).lower() != guid:
            raise DirectoryAuthError(
                f"Entra ID tenant mismatch: login resolved {self.settings.tenant} to {guid} but Graph answers "
                f"for {org.get('id')}: check the login host and Graph base URL belong to the same cloud."
            )
        domains = sorted(org.get("verifiedDomains") or [], key=lambda d: (not d.get("isInitial"), d.get("name", "")))
        return TenantInfo(guid=guid, display_name=org.get("displayName") or "",
                          domains=tuple(d["name"].lower() for d in domains if d.get("name")))

    def test(self) -> str:
        info = self.tenant_info()
        au_count = len(self.read_folders())
        return (f"Token OK for application {self.settings.client_id}. Tenant {info.guid} "
                f"({info.display_name}). Verified domains: {', '.join(info.domains) or 'none'}. "
                f"Administrative units: {au_count}.")

    # ---- snapshots
    def read_snapshot(self, folder_ids: Collection[str], *, incremental: bool = False) -> Snapshot:
        """Full: every AU and the users of `folder_ids` (empty = all AUs). Incremental: delta since last run.

        Either way `new_delta_state` holds the delta links to store after a successful run (or None).
        """
        self.new_delta_state = None
        notes: list[str] = []
        if incremental:
            links = self._stored_links()
            if links is None:
                notes.append("No stored delta links for this tenant: read everything.")
            else:
                try:
                    return self._incremental_snapshot(links, folder_ids)
                except FullReadNeeded as exc:
                    self.new_delta_state = None
                    notes.append(f"{exc} Read everything instead.")
        return self._full_snapshot(folder_ids, notes)

    def _stored_links(self) -> dict[str, str] | None:
        self._msal_app()  # the tenant GUID the links belong to
        state = self.settings.delta_state or {}
        users, aus = state.get("users"), state.get("administrativeUnits")
        if not users or not aus or str(state.get("tenant", "")).lower() != self.directory_id:
            return None
        if state.get("groups"):
            return {"users": users, "administrativeUnits": aus, "groups": state["groups"]}
        return {"users": users, "administrativeUnits": aus}

    def _full_snapshot(self, folder_ids: Collection[str], notes: list[str]) -> Snapshot:
        self._msal_app()
        # Delta links first: changes made while the full read runs are replayed by the next incremental run.
        # A delta link Graph refuses (an answer, not an outage) costs only the next incremental run; an outage
        # that outlasts the retries (GraphGaveUp) or a refused permission stops the read here, at its first request.
        links = None
        try:
            links = {
                "users": self._fresh_delta_link(f"/users/delta?$select={USER_SELECT}"),
                "administrativeUnits": self._fresh_delta_link(
                    f"/directory/administrativeUnits/delta?$select={AU_SELECT}"),
            }
        except (_GraphStatus, _NoDeltaLink) as exc:
            notes.append(f"Delta links not refreshed ({exc}); the next incremental run reads everything.")
        folders = self.read_folders()
        known = {f.id for f in folders}
        wanted = {canonical_guid(f) for f in folder_ids} if folder_ids else known
        # An AU that no longer exists has no members: its users fall out of scope (R9, R19). Groups are read
        # through their nested members (G2); a mapped group that is gone fails the plan (G4).
        groups = [f for f in folders if f.id in wanted and f.kind in entra_groups.GROUP_KINDS]
        if groups and links is not None:
            try:  # G6: incremental runs watch every group's members once a group is mapped
                links["groups"] = self._fresh_delta_link(f"/groups/delta?$select={entra_groups.GROUP_DELTA_SELECT}")
            except (_GraphStatus, _NoDeltaLink) as exc:
                links = None
                notes.append(f"Delta links not refreshed ({exc}); the next incremental run reads everything.")
        users = entra_groups.with_group_members(self, self.read_users(wanted & known - {g.id for g in groups}), groups)
        if links is not None:
            self.new_delta_state = {"tenant": self.directory_id, **links}
        return Snapshot(
            directory_id=self.directory_id, folders=tuple(folders), users=tuple(users), complete=True,
            read_folder_ids=frozenset(wanted), notes=tuple(notes),
        )

    def _fresh_delta_link(self, path: str) -> str:
        """A delta link for "from now on": `$deltatoken=latest`, or a whole initial round where it is refused."""
        try:
            body = self._get(self._url(f"{path}&$deltatoken=latest"))
        except _GraphStatus as exc:
            if exc.status not in (400, 501):
                raise
            body = self._get(self._url(path))
        while "@odata.deltaLink" not in body and body.get("@odata.nextLink"):
            body = self._get(body["@odata.nextLink"])
        if "@odata.deltaLink" not in body:
            raise _NoDeltaLink(f"Graph {path.split('?')[0]} gave no delta link")
        return body["@odata.deltaLink"]

    def _run_delta(self, link: str) -> tuple[list[dict[str, Any]], str]:
        """Follow a stored delta link to its new delta link; a refused link -> FullReadNeeded."""
        items: list[dict[str, Any]] = []
        url = link
        while True:
            try:
                page = self._get(url)
            except _GraphStatus as exc:
                if exc.status in (400, 404, 409, 410):
                    raise FullReadNeeded(
                        f"Graph refused the stored delta link {_short(url)} ({exc.status} {exc.code})."
                    ) from exc
                raise DirectoryUnavailable(f"Graph {_short(exc.url)} answered {exc.status} {exc.code}.") from exc
            items += page.get("value", [])
            if page.get("@odata.nextLink"):
                url = page["@odata.nextLink"]
            elif page.get("@odata.deltaLink"):
                return items, page["@odata.deltaLink"]
            else:
                raise DirectoryUnavailable(f"Graph {_short(url)} ended a delta round without a delta link.")

    def _incremental_snapshot(self, links: Mapping[str, str], folder_ids: Collection[str]) -> Snapshot:
        user_items, users_link = self._run_delta(links["users"])
        au_items, aus_link = self._run_delta(links["administrativeUnits"])
        groups_link = entra_groups.check_group_delta(self, links["groups"]) if "groups" in links else None
        notes: list[str] = []

        # Later entries win: delta may replay an object, and a restore follows a removal.
        changed: dict[str, dict[str, Any] | None] = {}
        removed: set[str] = set()
        for item in user_items:
            user_id = canonical_guid(item["id"])
            if "@removed" in item:
                removed.add(user_id)
                changed.pop(user_id, None)
            else:
                removed.discard(user_id)
                changed[user_id] = item
        folders: list[FolderRecord] = []
        gone_aus = 0
        for item in au_items:
            if "@removed" in item:
                gone_aus += 1
                continue
            folders.append(_folder_record(item))
            for member in item.get("members@delta") or []:
                member_id = canonical_guid(member["id"])
                if _is_user(member) and member_id not in removed:
                    changed.setdefault(member_id, None)  # properties fetched below
        if gone_aus:
            notes.append(f"{gone_aus} AU(s) deleted: their users are re-checked at the next full read.")
        if len(changed) > self.settings.incremental_change_limit:
            raise FullReadNeeded(f"{len(changed)} users changed since the last run (more than "
                                 f"{self.settings.incremental_change_limit}).")

        users: list[UserRecord] = []
        for user_id in sorted(changed):
            item = changed[user_id]
            if item is None or "accountEnabled" not in item:
                item = self._user_item(user_id)
                if item is None:  # deleted since the delta round: the next delta says so too
                    removed.add(user_id)
                    continue
            try:
                au_ids = self._user_au_ids(user_id)
            except _GraphStatus as exc:
                if exc.status == 404:
                    removed.add(user_id)
                    continue
                raise DirectoryUnavailable(f"Graph {_short(exc.url)} answered {exc.status} {exc.code}.") from exc
            if groups_link is not None:
                au_ids |= entra_groups.user_group_ids(self, user_id)
            users.append(_user_record(item, au_ids, self._url("/users/delta")))

        self.new_delta_state = {"tenant": self.directory_id, "users": users_link, "administrativeUnits": aus_link}
        if groups_link is not None:
            self.new_delta_state["groups"] = groups_link
        return Snapshot(
            directory_id=self.directory_id, folders=tuple(folders), users=tuple(users), complete=True,
            incremental=True, read_folder_ids=frozenset(canonical_guid(f) for f in folder_ids),
            removed_user_ids=frozenset(removed), folders_complete=False, notes=tuple(notes),
        )

    def close(self) -> None:
        self._graph.close()
        if self._ca_file:
            _remove_file(self._ca_file)


# ------------------------------------------------------------------------------------------ helpers

def _is_tenant_name(value: str) -> bool:
    try:
        uuid.UUID(value)
        return True
    except ValueError:
        return bool(_DNS_NAME.match(value))


def _graph_error_code(resp: requests.Response) -> str:
    try:
        body = resp.json()
    except ValueError:
        return ""
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        return str(error.get("code") or "")
    return str(error or "")


def _remove_file(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
