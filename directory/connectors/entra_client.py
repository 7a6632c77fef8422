"""The Graph client of an Entra integration: msal's token, HTTP sessions, paging, retries and throttling.

msal (client credentials) gives the token, once for every thread of a read; requests.Sessions talk to Graph, each
used by one thread at a time (entra_budget.SessionPool). A 429 or a transient failure is waited out (Retry-After,
else exponential backoff with jitter, each wait capped) before the read gives up (R21); a Retry-After holds every
request of the tenant, whichever thread drew it (entra_budget.ThrottleGate); a 401 gets one fresh token. The
contracts this follows are in docs/notes/entra-graph.md. It knows nothing of AUs, users or groups: the reads
(entra_read, entra_delta, entra_groups) ask it for URLs and, for several collections at once, `for_each`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import re
import tempfile
import threading
import uuid
import weakref
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlsplit

import msal
import requests
from msal.authority import WELL_KNOWN_AUTHORITY_HOSTS

from .base import DirectoryAuthError, DirectoryError, DirectoryUnavailable
from .entra_budget import SessionPool, ThrottleGate, fan_out
from .entra_hosts import graph_url_problem, login_host_problem, scope_problem

logger = logging.getLogger(__name__)
Item = TypeVar("Item")
Result = TypeVar("Result")

DEFAULT_LOGIN_HOST = "login.microsoftonline.com"
DEFAULT_GRAPH_BASE_URL = "https://graph.microsoft.com/v1.0"
_DNS_NAME = re.compile(r"^(?=.{4,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,61}[a-z0-9]$", re.I)


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
    # Graph requests of one read in flight at once (the members of that many AUs read together); 1: one by one.
    read_concurrency: int = 8

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
    ("/memberOf/microsoft.graph.group", "GroupMember.Read.All"),
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


def short_url(url: str) -> str:
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

    def request(self, method: str, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", self._timeout)
        return super().request(method, url, *args, **kwargs)


class GraphStatus(Exception):
    """A Graph answer the caller decides about (404, 410, other 4xx)."""

    def __init__(self, url: str, status: int, code: str, headers: Mapping[str, str]) -> None:
        super().__init__(f"{status} {code}")
        self.url, self.status, self.code, self.headers = url, status, code, headers


class GraphGaveUp(DirectoryUnavailable):
    """A Graph request still failed after its last retry. The read stops at it: every later request of the
    read would wait out the same outage, only to fail the run anyway, and name the wrong request."""


class ScopeRefused(DirectoryAuthError):
    """The login service refused the token scope: the cloud (or a custom cloud's scope) does not fit the tenant."""


# ------------------------------------------------------------------------------------------ client

class GraphClient:
    """One tenant's token and Graph session, from `EntraSettings`. Close it when the read is done."""

    def __init__(self, settings: EntraSettings) -> None:
        self.settings = settings
        self._ca_file: str | None = None
        verify: bool | str = settings.verify
        if settings.verify and settings.ca_pem.strip():
            handle, self._ca_file = tempfile.mkstemp(prefix="entra-ca-", suffix=".pem")
            with os.fdopen(handle, "w") as ca:
                ca.write(settings.ca_pem)
            weakref.finalize(self, _remove_file, self._ca_file)
            verify = self._ca_file
        self._verify = verify
        self._sessions = SessionPool(lambda: _TimeoutSession(settings.timeout_seconds, verify))
        self.gate = ThrottleGate()
        self._app: msal.ConfidentialClientApplication | None = None
        # msal's token cache is thread-safe, its HTTP session is not: one thread at a time asks msal, and the
        # others reuse the token it got (from the cache), so a read acquires it once.
        self._token_lock = threading.Lock()
        self._last_token = ""

    @property
    def tenant_id(self) -> str:
        """The tenant GUID once msal has resolved it; before, the GUID linked or the name typed."""
        if self._app is not None:
            return self._app.authority.tenant.lower()
        return (self.settings.tenant_guid or self.settings.tenant).lower()

    def msal_app(self) -> msal.ConfidentialClientApplication:
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
            with self._sessions.session() as session:
                resp = session.get(url)
            body = resp.json()
        except (requests.RequestException, ValueError):
            return DirectoryUnavailable(f"Entra ID login: OIDC discovery failed at {url}.")
        if isinstance(body, dict) and body.get("error"):
            return DirectoryAuthError(token_error_message(
                str(body["error"]), [int(c) for c in body.get("error_codes") or [] if str(c).isdigit()],
                tenant=s.tenant, client_id=s.client_id))
        return DirectoryUnavailable(f"Entra ID login: OIDC discovery at {url} answered HTTP {resp.status_code}.")

    def _token(self) -> str:
        with self._token_lock:
            self._last_token = self._acquire_token()
            return self._last_token

    def _drop_token(self, refused: str) -> None:
        """Graph refused this token (401): the next request asks for a new one, once, whichever thread saw it."""
        with self._token_lock:
            if refused == self._last_token and self._app is not None:
                self._app.remove_tokens_for_client()
                self._last_token = ""

    def _acquire_token(self) -> str:
        app = self.msal_app()
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

    def get(self, url: str) -> dict[str, Any]:
        """GET a Graph URL with the token; wait out 429/503/504; refresh the token once on 401."""
        policy = self.settings.retry
        last = ""
        refreshed = False
        attempt = 0
        while attempt < policy.max_attempts:
            attempt += 1
            self.gate.wait()  # the tenant's Retry-After, whichever thread drew it
            token = self._token()
            try:
                with self._sessions.session() as session:
                    resp = session.get(url, headers={"Authorization": f"Bearer {token}", "Accept": "application/json"})
            except requests.exceptions.SSLError as exc:
                raise DirectoryUnavailable(
                    f"Graph host {urlsplit(url).netloc} presented a certificate this integration does not "
                    "trust: set the CA certificate (PEM) or check the Graph base URL."
                ) from exc
            except requests.RequestException as exc:
                last = type(exc).__name__
                self._back_off(attempt, None, url, last)
                continue
            if resp.status_code == 200:
                try:
                    return resp.json()
                except ValueError:
                    last = "200 with a body that is not JSON"
                    self._back_off(attempt, None, url, last)
                    continue
            code = _graph_error_code(resp)
            if resp.status_code == 401 and not refreshed:
                # The cached token may have been revoked or rolled over: drop it and ask once more.
                refreshed = True
                attempt -= 1
                self._drop_token(token)
                continue
            if resp.status_code == 401:
                raise DirectoryAuthError(f"Graph refused the app's token at {short_url(url)} (401 {code}), "
                                         "even after a new token: check the app registration.")
            if resp.status_code == 403:
                permission = _permission_for(url)
                raise DirectoryAuthError(
                    f"Graph refused {short_url(url)} (403 {code}): the app lacks the application permission "
                    f"{permission} (or Directory.Read.All). Grant it with admin consent."
                )
            if resp.status_code in (429, 500, 502, 503, 504):
                last = f"{resp.status_code} {code}".strip()
                self._back_off(attempt, resp, url, last)
                continue
            raise GraphStatus(url, resp.status_code, code, resp.headers)
        raise GraphGaveUp(
            f"Graph request GET {short_url(url)} failed after {policy.max_attempts} attempts (last answer: {last}); "
            "the read stopped there, nothing was changed, the next run tries again."
        )

    def _back_off(self, attempt: int, resp: requests.Response | None, url: str, why: str) -> None:
        """Wait before the next attempt. A 429, or any answer with Retry-After, is the tenant's to wait out: every
        thread of the read holds back (Graph's bucket is per app and tenant). Other failures: this thread only."""
        if attempt >= self.settings.retry.max_attempts:
            return
        retry_after = resp.headers.get("Retry-After") if resp is not None else None
        seconds = self._backoff(attempt, retry_after)
        if seconds <= 0:
            return
        logger.info("Graph %s answered %s; waiting %.1f s", short_url(url), why, seconds)
        if retry_after is not None or (resp is not None and resp.status_code == 429):
            self.gate.hold(seconds)  # the next gate.wait() waits it out, with every other thread
        else:
            self.gate.pause(seconds)

    def _backoff(self, attempt: int, retry_after: str | None) -> float:
        policy = self.settings.retry
        if retry_after is not None and retry_after.strip().isdigit():
            return min(float(retry_after), policy.cap_seconds)
        delay = policy.backoff_base_seconds * (2 ** (attempt - 1))
        return min(delay + random.uniform(0, delay / 2), policy.cap_seconds)  # noqa: S311 - jitter, not crypto

    def for_each(self, items: Sequence[Item], work: Callable[[Item], Result]) -> list[Result]:
        """`work(item)` for each item, `read_concurrency` at once on this tenant's budget; results in order.
        One failure stops the others and is raised: never part of the results (R21)."""
        return fan_out(self.gate, items, work, self.settings.read_concurrency)

    def pages(self, url: str) -> Iterator[dict[str, Any]]:
        """Every page of a collection, following each @odata.nextLink verbatim (notes §3)."""
        next_url: str | None = url
        while next_url:
            page = self.get(next_url)
            yield page
            next_url = page.get("@odata.nextLink")

    def url(self, path: str) -> str:
        return self.settings.graph_base_url.rstrip("/") + path

    def close(self) -> None:
        self._sessions.close()
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
