"""A local HTTPS stand-in for Microsoft's login (OIDC discovery, client-credentials token) and Graph.

It speaks the contracts in docs/notes/entra-graph.md so that the real msal library and the
connector's real HTTP code can be driven against it: nothing inside the code under test is patched.

Use it through the `fake_entra` fixture (tests/fixtures_entra.py) or directly::

    server = FakeEntraServer().start()          # thread, 127.0.0.1, random port, throwaway CA
    server.reset()                              # fresh state: one tenant, two domains, one app
    tenant = server.tenant
    au = server.add_au("Sales")
    user = server.add_user("Adele", "Vance", mail="adele@contoso.com", aus=[au])
    connector settings: login_host=server.login_host, graph_base_url=server.graph_base_url,
                        ca_pem=server.ca_pem, tenant=tenant.guid (or a domain),
                        client_id=server.app.client_id, client_secret=server.app.secret

Each tenant belongs to one of Microsoft's clouds (`add_tenant(..., cloud="usgov")`): a token is issued only
for the Graph resource of that cloud, as Entra ID does. `proxy_graph_base_url` serves the same Graph under a
host that is no Graph resource, as a proxy or private endpoint does, so a scope must be given explicitly.

State is a plain in-memory model (tenants with domains and apps, AUs, users, groups, devices,
memberships) plus a change sequence that backs the delta queries. Tests mutate it through the
methods below; every mutation is recorded so `/users/delta` and `/directory/administrativeUnits/delta`
report it. Knobs for failure: `throttle`, `unavailable`, `fail_next_pages`, `expire_delta_tokens`,
`limited_information`, `page_size`, `revoke_tokens`,
`delta_latest_supported`. `page_delay` gives every Graph answer Graph's own latency (100-300 ms a page is
typical; 0, the default, in tests): the server is threaded and sleeps outside its lock, so concurrent requests
overlap as they do against Graph, and `max_in_flight` records how many Graph requests it held at once. Every
request is logged in `requests_seen` (monotonic timestamps) so a test can observe waits. Serving 20,000 users
over 200 AUs is cheap: memberships are indexed both ways and pages are list slices.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlencode, urlsplit

from testing.fake_entra_groups import GroupsMixin
from testing.net import LOOPBACK, ServerThread
from testing.tls import LoopbackCA

USER_DEFAULT_PROPERTIES = (
    "businessPhones", "displayName", "givenName", "jobTitle", "mail", "mobilePhone", "officeLocation",
    "preferredLanguage", "surname", "userPrincipalName", "id",
)
AU_DEFAULT_PROPERTIES = ("id", "displayName", "description", "visibility")
# The Graph resource of each Microsoft cloud (a token is only issued for the resource of its tenant's cloud)
# and the cloud_instance_name its discovery document names.
CLOUD_RESOURCES = {
    "global": ("https://graph.microsoft.com", "microsoftonline.com"),
    "usgov": ("https://graph.microsoft.us", "microsoftonline.us"),
    "usgov_dod": ("https://dod-graph.microsoft.us", "microsoftonline.us"),
    "china": ("https://microsoftgraph.chinacloudapi.cn", "partner.microsoftonline.cn"),
}


# --------------------------------------------------------------------------------------------- model

@dataclass
class FakeApp:
    """An app registration consented in a tenant (client credentials with one secret)."""

    client_id: str
    secret: str
    secret_expired: bool = False


@dataclass
class FakeUser:
    id: str
    given_name: str | None
    surname: str | None
    display_name: str
    mail: str | None
    upn: str
    account_enabled: bool = True
    other_mails: list[str] = field(default_factory=list)
    soft_deleted: bool = False
    changed_seq: int = 0

    def graph(self) -> dict[str, Any]:
        return {
            "id": self.id, "givenName": self.given_name, "surname": self.surname,
            "displayName": self.display_name, "mail": self.mail, "userPrincipalName": self.upn,
            "accountEnabled": self.account_enabled, "otherMails": list(self.other_mails),
            "businessPhones": [], "jobTitle": None, "mobilePhone": None, "officeLocation": None,
            "preferredLanguage": None,
        }


@dataclass
class FakeAU:
    id: str
    display_name: str
    description: str | None = None
    visibility: str | None = None
    changed_seq: int = 0

    def graph(self) -> dict[str, Any]:
        return {"id": self.id, "displayName": self.display_name, "description": self.description,
                "visibility": self.visibility}


@dataclass
class FakeObject:
    """A group or a device: AU members that must never become users."""

    id: str
    odata_type: str  # "#microsoft.graph.group" / "#microsoft.graph.device"
    display_name: str

    def graph(self) -> dict[str, Any]:
        extra = {"deviceId": str(uuid.uuid4())} if self.odata_type.endswith("device") else {"mailEnabled": False}
        return {"@odata.type": self.odata_type, "id": self.id, "displayName": self.display_name, **extra}


@dataclass
class FakeTenant:
    guid: str
    display_name: str
    domains: list[str]
    cloud: str = "global"  # a key of CLOUD_RESOURCES: tokens are issued for that cloud's Graph resource only
    apps: dict[str, FakeApp] = field(default_factory=dict)
    aus: dict[str, FakeAU] = field(default_factory=dict)
    users: dict[str, FakeUser] = field(default_factory=dict)
    objects: dict[str, FakeObject] = field(default_factory=dict)
    au_members: dict[str, list[str]] = field(default_factory=dict)  # AU id -> member ids, in order added
    member_aus: dict[str, set[str]] = field(default_factory=dict)  # member id -> AU ids
    user_tombstones: dict[str, int] = field(default_factory=dict)  # hard-deleted user id -> seq
    au_tombstones: dict[str, int] = field(default_factory=dict)
    membership_log: list[tuple[int, str, str]] = field(default_factory=list)  # (seq, au id, member id)


@dataclass
class Fault:
    path_contains: str
    status: int
    remaining: int | None  # None: for ever
    retry_after: int | None = None
    only_next_pages: bool = False  # only requests that carry a $skiptoken (a followed nextLink)

    def matches(self, path: str, query: str) -> bool:
        if self.path_contains not in path + "?" + query:
            return False
        return not self.only_next_pages or "skiptoken" in query


@dataclass(frozen=True)
class LoggedRequest:
    at: float  # time.monotonic() when the request arrived
    method: str
    path: str
    query: str
    status: int
    answered_at: float


class GraphError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers or {}


# -------------------------------------------------------------------------------------------- server

class FakeEntraServer(GroupsMixin):
    """Microsoft login + Graph on https://127.0.0.1:<port>, with mutable in-memory state."""

    def __init__(self) -> None:
        self._ca = LoopbackCA()
        self.ca_pem: str = self._ca.ca_pem
        self._lock = threading.RLock()
        self._serving: ServerThread | None = None
        self.port = 0
        self.reset()

    # ---- lifecycle
    def start(self) -> FakeEntraServer:
        httpd = _QuietHTTPSServer((LOOPBACK, 0), _handler_for(self))
        httpd.socket = self._ca.server_context().wrap_socket(httpd.socket, server_side=True)
        self._serving = ServerThread(httpd, "fake-entra").start()
        self.port = self._serving.port
        return self

    def stop(self) -> None:
        if self._serving is not None:
            self._serving.stop()
            self._serving = None

    @property
    def login_host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def graph_base_url(self) -> str:
        return f"https://127.0.0.1:{self.port}/v1.0"

    @property
    def graph_resource(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def proxy_graph_base_url(self) -> str:
        """The same Graph under a host name that is no Graph resource, as a proxy or private endpoint is:
        a token asked for with this host as its scope is refused (AADSTS500011)."""
        return f"https://localhost:{self.port}/v1.0"

    def reset(self) -> None:
        """Fresh state: tenant "Contoso" (contoso.onmicrosoft.com, contoso.com) with one app; no faults."""
        with self._lock:
            self.tenants: dict[str, FakeTenant] = {}
            self.tokens: dict[str, tuple[str, str]] = {}  # access token -> (tenant guid, client id)
            self.issued_scopes: list[str] = []  # the scope of every token issued, in order
            self.faults: list[Fault] = []
            self.requests_seen: list[LoggedRequest] = []
            self.page_size = 999  # the most items one page carries, whatever $top asks (tests lower it)
            self.page_delay = 0.0  # seconds each Graph answer takes (injected faults answer at once, as Graph's gate)
            self.in_flight = 0  # Graph requests arrived and not yet answered
            self.max_in_flight = 0
            self.limited_information = False  # members come back with id only (no User.Read.All)
            self.delta_generation = 1
            self.delta_expired_status = 410
            self.delta_latest_supported = True  # False: `$deltatoken=latest` answers 400
            self._seq = 0
            self._reset_groups()
            self.tenant = self.add_tenant("Contoso", ["contoso.onmicrosoft.com", "contoso.com"])
            self.app = self.add_app(self.tenant)

    # ---- tenants and apps
    def add_tenant(self, display_name: str, domains: list[str], guid: str | None = None, *,
                   cloud: str = "global") -> FakeTenant:
        """A tenant in one of Microsoft's clouds ("global", "usgov", "usgov_dod", "china")."""
        if cloud not in CLOUD_RESOURCES:
            raise ValueError(f"no cloud {cloud!r}: one of {', '.join(CLOUD_RESOURCES)}")
        tenant = FakeTenant(guid=guid or str(uuid.uuid4()), display_name=display_name, domains=list(domains),
                            cloud=cloud)
        with self._lock:
            self.tenants[tenant.guid] = tenant
        return tenant

    def add_app(self, tenant: FakeTenant | None = None, *, client_id: str | None = None,
                secret: str | None = None) -> FakeApp:
        tenant = tenant or self.tenant
        app = FakeApp(client_id=client_id or str(uuid.uuid4()), secret=secret or "s3cr3t~" + secrets.token_urlsafe(24))
        with self._lock:
            tenant.apps[app.client_id] = app
        return app

    def expire_secret(self, app: FakeApp | None = None) -> None:
        (app or self.app).secret_expired = True

    def revoke_tokens(self) -> None:
        """Every access token issued so far is refused by Graph with 401 (as after a key rollover)."""
        with self._lock:
            self.tokens.clear()

    def find_tenant(self, name: str) -> FakeTenant | None:
        name = name.lower()
        for tenant in self.tenants.values():
            if tenant.guid == name or name in (d.lower() for d in tenant.domains):
                return tenant
        return None

    # ---- directory objects (all default to the default tenant)
    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def add_au(self, display_name: str, *, description: str | None = None, visibility: str | None = None,
               tenant: FakeTenant | None = None, au_id: str | None = None) -> FakeAU:
        tenant = tenant or self.tenant
        with self._lock:
            au = FakeAU(au_id or str(uuid.uuid4()), display_name, description, visibility, self._next_seq())
            tenant.aus[au.id] = au
            tenant.au_members[au.id] = []
        return au

    def rename_au(self, au: FakeAU, display_name: str) -> None:
        with self._lock:
            au.display_name = display_name
            au.changed_seq = self._next_seq()

    def remove_au(self, au: FakeAU, tenant: FakeTenant | None = None) -> None:
        tenant = tenant or self.tenant
        with self._lock:
            for member_id in list(tenant.au_members.get(au.id, [])):
                self._unlink(tenant, au.id, member_id)
            tenant.aus.pop(au.id, None)
            tenant.au_members.pop(au.id, None)
            tenant.au_tombstones[au.id] = self._next_seq()

    def add_user(self, given_name: str | None, surname: str | None, *, mail: str | None = None,
                 upn: str | None = None, display_name: str | None = None, enabled: bool = True,
                 other_mails: list[str] | None = None, aus: Sequence[FakeAU] = (),
                 tenant: FakeTenant | None = None, user_id: str | None = None) -> FakeUser:
        tenant = tenant or self.tenant
        with self._lock:
            uid = user_id or str(uuid.uuid4())
            local = f"{(given_name or 'user').lower()}.{(surname or uid[:8]).lower()}".replace(" ", "")
            user = FakeUser(
                id=uid, given_name=given_name, surname=surname,
                display_name=display_name or " ".join(p for p in (given_name, surname) if p) or uid,
                mail=mail, upn=upn or f"{local}@{tenant.domains[0]}", account_enabled=enabled,
                other_mails=list(other_mails or []), changed_seq=self._next_seq(),
            )
            tenant.users[uid] = user
            for au in aus:
                self.add_member(au, user, tenant=tenant)
        return user

    def add_group(self, display_name: str, *, aus: Sequence[FakeAU] = (), tenant: FakeTenant | None = None
                  ) -> FakeObject:
        return self._add_object("#microsoft.graph.group", display_name, aus, tenant or self.tenant)

    def add_device(self, display_name: str, *, aus: Sequence[FakeAU] = (), tenant: FakeTenant | None = None
                   ) -> FakeObject:
        return self._add_object("#microsoft.graph.device", display_name, aus, tenant or self.tenant)

    def _add_object(self, odata_type: str, display_name: str, aus: Sequence[FakeAU], tenant: FakeTenant
                    ) -> FakeObject:
        with self._lock:
            obj = FakeObject(str(uuid.uuid4()), odata_type, display_name)
            tenant.objects[obj.id] = obj
            for au in aus:
                self.add_member(au, obj, tenant=tenant)
        return obj

    def add_member(self, au: FakeAU, member: FakeUser | FakeObject, tenant: FakeTenant | None = None) -> None:
        tenant = tenant or self.tenant
        with self._lock:
            if au.id in tenant.member_aus.get(member.id, set()):
                return
            tenant.au_members[au.id].append(member.id)
            tenant.member_aus.setdefault(member.id, set()).add(au.id)
            tenant.membership_log.append((self._next_seq(), au.id, member.id))

    def remove_member(self, au: FakeAU, member: FakeUser | FakeObject, tenant: FakeTenant | None = None) -> None:
        with self._lock:
            self._unlink(tenant or self.tenant, au.id, member.id)

    def _unlink(self, tenant: FakeTenant, au_id: str, member_id: str) -> None:
        if au_id not in tenant.member_aus.get(member_id, set()):
            return
        tenant.au_members[au_id].remove(member_id)
        tenant.member_aus[member_id].discard(au_id)
        tenant.membership_log.append((self._next_seq(), au_id, member_id))

    def _touch(self, user: FakeUser) -> None:
        user.changed_seq = self._next_seq()

    def update_user(self, user: FakeUser, **changes: Any) -> None:
        """Change FakeUser attributes (given_name, surname, mail, upn, display_name, other_mails...)."""
        with self._lock:
            for name, value in changes.items():
                if not hasattr(user, name):
                    raise AttributeError(f"FakeUser has no attribute {name!r}")
                setattr(user, name, value)
            self._touch(user)

    def rename_user(self, user: FakeUser, given_name: str, surname: str) -> None:
        self.update_user(user, given_name=given_name, surname=surname, display_name=f"{given_name} {surname}")

    def disable_user(self, user: FakeUser) -> None:
        self.update_user(user, account_enabled=False)

    def enable_user(self, user: FakeUser) -> None:
        self.update_user(user, account_enabled=True)

    def soft_delete_user(self, user: FakeUser) -> None:
        """Into the recycle bin: gone from listings and /users/{id}; delta says @removed changed."""
        self.update_user(user, soft_deleted=True)

    def restore_user(self, user: FakeUser) -> None:
        """Out of the recycle bin with its memberships; delta lists it again without annotation."""
        self.update_user(user, soft_deleted=False)

    def hard_delete_user(self, user: FakeUser, tenant: FakeTenant | None = None) -> None:
        """Permanently deleted: memberships dropped; delta says @removed deleted."""
        tenant = tenant or self.tenant
        with self._lock:
            for au_id in list(tenant.member_aus.get(user.id, set())):
                self._unlink(tenant, au_id, user.id)
            tenant.users.pop(user.id, None)
            tenant.user_tombstones[user.id] = self._next_seq()

    def seed(self, *, aus: int, users: int, tenant: FakeTenant | None = None) -> tuple[list[FakeAU], list[FakeUser]]:
        """Bulk data for benchmarks: `users` users spread round-robin over `aus` AUs, all with mail."""
        tenant = tenant or self.tenant
        au_list = [self.add_au(f"AU {i:04d}", tenant=tenant) for i in range(aus)]
        user_list = []
        for i in range(users):
            user_list.append(self.add_user(f"First{i}", f"Last{i}", mail=f"user{i}@{tenant.domains[-1]}",
                                           aus=[au_list[i % aus]], tenant=tenant))
        return au_list, user_list

    # ---- knobs
    def throttle(self, path_contains: str, times: int, retry_after: int = 1) -> None:
        """The next `times` requests whose path+query contains the text get 429 with Retry-After."""
        with self._lock:
            self.faults.append(Fault(path_contains, 429, times, retry_after))

    def unavailable(self, path_contains: str, times: int | None = None, status: int = 503,
                    retry_after: int | None = None) -> None:
        """503 (or 504/500) on matching requests, `times` times or for ever (None)."""
        with self._lock:
            self.faults.append(Fault(path_contains, status, times, retry_after))

    def fail_next_pages(self, path_contains: str, status: int = 500, times: int | None = None) -> None:
        """Only the followed @odata.nextLink pages (with $skiptoken) of matching requests fail."""
        with self._lock:
            self.faults.append(Fault(path_contains, status, times, only_next_pages=True))

    def clear_faults(self) -> None:
        with self._lock:
            self.faults.clear()

    def expire_delta_tokens(self, status: int = 410) -> None:
        """Every delta link handed out so far is refused (410 Gone, or 400 syncStateNotFound)."""
        with self._lock:
            self.delta_generation += 1
            self.delta_expired_status = status

    def requests_to(self, path_contains: str) -> list[LoggedRequest]:
        return [r for r in self.requests_seen if path_contains in r.path + "?" + r.query]

    def _graph_request(self, started: bool) -> None:
        """Count a Graph request in (started) or out, keeping the most held at once."""
        with self._lock:
            self.in_flight += 1 if started else -1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)

    # ---- request handling (called from the handler thread)
    def _fault_for(self, path: str, query: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.matches(path, query) and (fault.remaining is None or fault.remaining > 0):
                    if fault.remaining is not None:
                        fault.remaining -= 1
                    return fault
        return None

    def handle(self, method: str, raw_path: str, headers: dict[str, str], body: bytes
               ) -> tuple[int, dict[str, str], dict[str, Any] | None]:
        split = urlsplit(raw_path)
        path, query = unquote(split.path), split.query
        fault = self._fault_for(path, query)
        if fault is not None:
            extra = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
            code = "TooManyRequests" if fault.status == 429 else "serviceNotAvailable"
            return fault.status, extra, _graph_error_body(code, "Please retry again later.", fault.status)
        if path.startswith("/v1.0/") and self.page_delay > 0:
            time.sleep(self.page_delay)  # outside the lock: requests in flight together wait together
        params = {k: v[-1] for k, v in parse_qs(query, keep_blank_values=True).items()}
        with self._lock:
            try:
                if path.startswith("/v1.0/"):
                    return 200, {}, self._graph(method, path[len("/v1.0"):], params, headers)
                return self._login(method, path, params, headers, body)
            except GraphError as err:
                return err.status, err.headers, _graph_error_body(err.code, err.message, err.status)

    # ---- login
    def _login(self, method: str, path: str, params: dict[str, str], headers: dict[str, str], body: bytes
               ) -> tuple[int, dict[str, str], dict[str, Any] | None]:
        parts = path.strip("/").split("/")
        tenant_name = parts[0] if parts else ""
        rest = "/".join(parts[1:])
        if method == "GET" and rest == "v2.0/.well-known/openid-configuration":
            if not _looks_like_tenant(tenant_name):
                return 400, {}, _aad_error("invalid_request", 900023, f"Specified tenant identifier "
                                           f"'{tenant_name}' is neither a valid DNS name, nor a valid external domain.")
            tenant = self.find_tenant(tenant_name)
            if tenant is None:
                return 400, {}, _aad_error("invalid_tenant", 90002, f"Tenant '{tenant_name}' not found. Check to "
                                           "make sure you have the correct tenant ID and are signing into the "
                                           "correct cloud.")
            return 200, {}, self._openid_configuration(tenant)
        if method == "POST" and rest == "oauth2/v2.0/token":
            return self._token(tenant_name, _form(body), headers)
        return 404, {}, {"error": "not_found", "error_description": f"No such login endpoint {path}"}

    def _openid_configuration(self, tenant: FakeTenant) -> dict[str, Any]:
        base = f"https://{self.login_host}/{tenant.guid}"
        return {
            "token_endpoint": f"{base}/oauth2/v2.0/token",
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
            "jwks_uri": f"https://{self.login_host}/{tenant.guid}/discovery/v2.0/keys",
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "issuer": f"https://{self.login_host}/{tenant.guid}/v2.0",
            "request_uri_parameter_supported": False,
            "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
            "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
            "end_session_endpoint": f"{base}/oauth2/v2.0/logout",
            "tenant_region_scope": "EU",
            "cloud_instance_name": CLOUD_RESOURCES[tenant.cloud][1],
        }

    def _token(self, tenant_name: str, form: dict[str, str], headers: dict[str, str]
               ) -> tuple[int, dict[str, str], dict[str, Any]]:
        if not _looks_like_tenant(tenant_name):
            return 400, {}, _aad_error("invalid_request", 900023, f"Specified tenant identifier '{tenant_name}' "
                                       "is neither a valid DNS name, nor a valid external domain.")
        tenant = self.find_tenant(tenant_name)
        if tenant is None:
            return 400, {}, _aad_error("invalid_tenant", 90002, f"Tenant '{tenant_name}' not found.")
        if form.get("grant_type") != "client_credentials":
            return 400, {}, _aad_error("unsupported_grant_type", 70003, "The app requested an unsupported grant type.")
        client_id, secret = form.get("client_id", ""), form.get("client_secret")
        basic = headers.get("authorization", "")
        if basic.lower().startswith("basic "):
            client_id, _, secret = base64.b64decode(basic[6:]).decode().partition(":")
        app = tenant.apps.get(client_id)
        if app is None:
            return 400, {}, _aad_error("unauthorized_client", 700016, f"Application with identifier '{client_id}' "
                                       f"was not found in the directory '{tenant.display_name}'.")
        if not secret:
            return 401, {}, _aad_error("invalid_client", 7000218, "The request body must contain the following "
                                       "parameter: 'client_assertion' or 'client_secret'.")
        if not secrets.compare_digest(secret, app.secret):
            return 401, {}, _aad_error("invalid_client", 7000215, "Invalid client secret provided. Ensure the "
                                       "secret being sent in the request is the client secret value, not the "
                                       f"client secret ID, for a secret added to app '{client_id}'.")
        if app.secret_expired:
            return 401, {}, _aad_error("invalid_client", 7000222, "The provided client secret keys for app "
                                       f"'{client_id}' are expired.")
        scopes = form.get("scope", "").split()
        if len(scopes) != 1 or not scopes[0].endswith("/.default"):
            code = 700022 if len(scopes) > 1 else 1002012
            return 400, {}, _aad_error("invalid_scope", code, f"The provided value for scope {form.get('scope')} "
                                       "is not valid. Client credential flows must have a scope value with "
                                       "/.default suffixed to the resource identifier.")
        resource = scopes[0][: -len("/.default")]
        if resource not in self._resources_of(tenant):
            return 400, {}, _aad_error("invalid_resource", 500011, f"The resource principal named {resource} "
                                       f"was not found in the tenant named {tenant.display_name}.")
        token = "fake-at." + secrets.token_urlsafe(32)
        self.tokens[token] = (tenant.guid, app.client_id)
        self.issued_scopes.append(scopes[0])
        return 200, {}, {"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": token}

    def _resources_of(self, tenant: FakeTenant) -> tuple[str, ...]:
        """The Graph resource of the tenant's cloud; a global tenant also the stand-in's own address, as a scope
        derived from the Graph URL names it."""
        own = CLOUD_RESOURCES[tenant.cloud][0]
        return (own, self.graph_resource) if tenant.cloud == "global" else (own,)

    # ---- Graph
    def _graph(self, method: str, path: str, params: dict[str, str], headers: dict[str, str]) -> dict[str, Any]:
        auth = headers.get("authorization", "")
        grant = self.tokens.get(auth[7:]) if auth.lower().startswith("bearer ") else None
        if grant is None:
            raise GraphError(401, "InvalidAuthenticationToken", "Access token validation failure. Invalid audience.")
        tenant = self.tenants[grant[0]]
        if method != "GET":
            raise GraphError(405, "Request_BadRequest", "Only GET is served by the stand-in.")
        path = path.replace("/graph.user", "/microsoft.graph.user")
        segments = [s for s in path.split("/") if s]
        if segments == ["organization"]:
            return self._collection("organization", [self._organization(tenant)], params, path)
        if segments[:1] == ["directory"]:
            segments = segments[1:]
        if segments[:1] == ["administrativeUnits"]:
            return self._graph_aus(tenant, segments[1:], params, path)
        if segments[:1] == ["users"]:
            return self._graph_users(tenant, segments[1:], params, path)
        if segments[:1] == ["groups"]:
            return self._graph_groups(tenant, segments[1:], params, path)
        raise GraphError(400, "BadRequest", f"Resource not found for the segment '{segments[0] if segments else ''}'.")

    def _organization(self, tenant: FakeTenant) -> dict[str, Any]:
        return {
            "id": tenant.guid, "displayName": tenant.display_name,
            "verifiedDomains": [
                {"capabilities": "Email, OfficeCommunicationsOnline", "isDefault": i == len(tenant.domains) - 1,
                 "isInitial": i == 0, "name": name, "type": "Managed"}
                for i, name in enumerate(tenant.domains)
            ],
        }

    def _graph_aus(self, tenant: FakeTenant, rest: list[str], params: dict[str, str], path: str) -> dict[str, Any]:
        if not rest:
            aus = [_select(au.graph(), params, AU_DEFAULT_PROPERTIES) for au in tenant.aus.values()]
            return self._collection("directory/administrativeUnits", aus, params, path)
        if rest == ["delta"]:
            return self._au_delta(tenant, params, path)
        au = tenant.aus.get(rest[0])
        if au is None:
            raise GraphError(404, "Request_ResourceNotFound", f"Resource '{rest[0]}' does not exist or one of its "
                             "queried reference-property objects are not present.")
        if len(rest) == 1:
            return _select(au.graph(), params, AU_DEFAULT_PROPERTIES)
        if rest[1] != "members" or len(rest) > 3:
            raise GraphError(400, "BadRequest", f"Unsupported segment {'/'.join(rest[1:])}")
        cast = rest[2] if len(rest) == 3 else None
        if cast not in (None, "microsoft.graph.user"):
            raise GraphError(400, "BadRequest", f"Unsupported cast {cast}")
        items: list[dict[str, Any]] = []
        for member_id in tenant.au_members[au.id]:
            user = tenant.users.get(member_id)
            if user is not None:
                if user.soft_deleted:
                    continue
                items.append(self._user_json(user, params, typed=cast is None))
            elif cast is None:
                items.append(_select(tenant.objects[member_id].graph(), params, None, keep_type=True))
        context = "users" if cast else "directoryObjects"
        return self._collection(context, items, params, path)

    def _user_json(self, user: FakeUser, params: dict[str, str], *, typed: bool) -> dict[str, Any]:
        data = _select(user.graph(), params, USER_DEFAULT_PROPERTIES)
        if self.limited_information:
            data = {key: (value if key == "id" else None) for key, value in data.items()}
        if typed:
            data = {"@odata.type": "#microsoft.graph.user", **data}
        return data

    def _graph_users(self, tenant: FakeTenant, rest: list[str], params: dict[str, str], path: str) -> dict[str, Any]:
        if self.limited_information:
            raise GraphError(403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")
        if rest == ["delta"]:
            return self._user_delta(tenant, params, path)
        if not rest:
            users = [self._user_json(u, params, typed=False) for u in tenant.users.values() if not u.soft_deleted]
            return self._collection("users", users, params, path)
        user = tenant.users.get(rest[0])
        if user is None or user.soft_deleted:
            raise GraphError(404, "Request_ResourceNotFound", f"Resource '{rest[0]}' does not exist or one of its "
                             "queried reference-property objects are not present.")
        if len(rest) == 1:
            return self._user_json(user, params, typed=False)
        if rest[1] in ("memberOf", "transitiveMemberOf") and len(rest) <= 3:
            return self._user_memberships(tenant, user, rest[1], rest[2] if len(rest) == 3 else None, params, path)
        raise GraphError(400, "BadRequest", f"Unsupported segment {'/'.join(rest[1:])}")

    def _user_aus(self, tenant: FakeTenant, user: FakeUser, params: dict[str, str], *, typed: bool
                  ) -> list[dict[str, Any]]:
        """The AUs a user is in, as memberOf and transitiveMemberOf list them (AUs do not nest)."""
        aus = [tenant.aus[au_id] for au_id in sorted(tenant.member_aus.get(user.id, set()))]
        return [_select({"@odata.type": "#microsoft.graph.administrativeUnit", **au.graph()}, params,
                        AU_DEFAULT_PROPERTIES, keep_type=typed) for au in aus]

    def _collection(self, context: str, items: list[dict[str, Any]], params: dict[str, str], path: str
                    ) -> dict[str, Any]:
        """One page of `items`; @odata.nextLink (absolute, with $skiptoken) when more remain."""
        top = _int_param(params, "$top", 100, upper=999)
        size = max(1, min(top, self.page_size))
        offset = _decode_int(params.get("$skiptoken", "")) if "$skiptoken" in params else 0
        page = items[offset: offset + size]
        body: dict[str, Any] = {"@odata.context": f"{self.graph_base_url}/$metadata#{context}", "value": page}
        if offset + size < len(items):
            next_params = {k: v for k, v in params.items() if k != "$skiptoken"}
            next_params["$skiptoken"] = _encode({"o": offset + size})
            body["@odata.nextLink"] = f"{self.graph_base_url}{path}?{_qs(next_params)}"
        return body

    # ---- delta
    def _delta_window(self, params: dict[str, str], kind: str) -> tuple[int, int, int, str] | None:
        """(since, upto, offset, select) from $skiptoken/$deltatoken; None for `$deltatoken=latest`."""
        if "$skiptoken" in params:
            state = _decode(params["$skiptoken"])
        elif "$deltatoken" in params:
            if params["$deltatoken"] == "latest":
                if not self.delta_latest_supported:
                    raise GraphError(400, "Request_BadRequest", "Unsupported delta token.")
                return None
            state = _decode(params["$deltatoken"])
            state = {**state, "u": self._seq, "o": 0}
        else:
            return 0, self._seq, 0, params.get("$select", "")
        if state.get("k") != kind or state.get("g") != self.delta_generation:
            status = self.delta_expired_status
            location = f"{self.graph_base_url}/{'users' if kind == 'users' else 'directory/administrativeUnits'}" \
                       "/delta?$deltatoken="
            code = "resyncRequired" if status == 410 else "syncStateNotFound"
            raise GraphError(status, code, "The sync state is no longer valid; a full resync is required.",
                             {"Location": location})
        return state["s"], state["u"], state["o"], state.get("sel", "")

    def _delta_page(self, kind: str, path: str, items: list[dict[str, Any]], window: tuple[int, int, int, str]
                    ) -> dict[str, Any]:
        since, upto, offset, select = window
        size = self.page_size
        page = items[offset: offset + size]
        body: dict[str, Any] = {"@odata.context": f"{self.graph_base_url}/$metadata#{kind}", "value": page}
        if offset + size < len(items):
            token = _encode({"k": kind, "g": self.delta_generation, "s": since, "u": upto, "o": offset + size,
                             "sel": select})
            body["@odata.nextLink"] = f"{self.graph_base_url}{path}?$skiptoken={token}"
        else:
            token = _encode({"k": kind, "g": self.delta_generation, "s": upto, "sel": select})
            body["@odata.deltaLink"] = f"{self.graph_base_url}{path}?$deltatoken={token}"
        return body

    def _latest(self, kind: str, path: str, select: str) -> dict[str, Any]:
        token = _encode({"k": kind, "g": self.delta_generation, "s": self._seq, "sel": select})
        return {"@odata.context": f"{self.graph_base_url}/$metadata#{kind}", "value": [],
                "@odata.deltaLink": f"{self.graph_base_url}{path}?$deltatoken={token}"}

    def _user_delta(self, tenant: FakeTenant, params: dict[str, str], path: str) -> dict[str, Any]:
        window = self._delta_window(params, "users")
        if window is None:
            return self._latest("users", path, params.get("$select", ""))
        since, upto, _, select = window
        select_params = {"$select": select} if select else {}
        changes: list[tuple[str, dict[str, Any]]] = []
        for user in tenant.users.values():
            if since < user.changed_seq <= upto:
                if user.soft_deleted:
                    if since:
                        changes.append((user.id, {"id": user.id, "@removed": {"reason": "changed"}}))
                else:
                    changes.append((user.id, self._user_json(user, select_params, typed=False)))
        if since:
            changes += [(uid, {"id": uid, "@removed": {"reason": "deleted"}})
                        for uid, seq in tenant.user_tombstones.items() if since < seq <= upto]
        changes.sort(key=lambda pair: pair[0])
        return self._delta_page("users", path, [item for _, item in changes], window)

    def _au_delta(self, tenant: FakeTenant, params: dict[str, str], path: str) -> dict[str, Any]:
        window = self._delta_window(params, "administrativeUnits")
        if window is None:
            return self._latest("administrativeUnits", path, params.get("$select", ""))
        since, upto, _, _ = window
        touched: dict[str, set[str]] = {}
        for seq, au_id, member_id in tenant.membership_log:
            if since < seq <= upto:
                touched.setdefault(au_id, set()).add(member_id)
        items: list[dict[str, Any]] = []
        for au in tenant.aus.values():
            if since == 0 and au.changed_seq <= upto:
                members = tenant.au_members[au.id]
            elif since < au.changed_seq <= upto or au.id in touched:
                members = sorted(touched.get(au.id, set()))
            else:
                continue
            entries = []
            for member_id in members:
                odata_type = "#microsoft.graph.user" if member_id in tenant.users or member_id in \
                    tenant.user_tombstones else tenant.objects[member_id].odata_type
                entry: dict[str, Any] = {"@odata.type": odata_type, "id": member_id}
                if au.id not in tenant.member_aus.get(member_id, set()):
                    entry["@removed"] = {"reason": "deleted"}
                entries.append(entry)
            items.append({**au.graph(), "members@delta": entries})
        if since:
            items += [{"id": au_id, "@removed": {"reason": "deleted"}}
                      for au_id, seq in tenant.au_tombstones.items() if since < seq <= upto]
        return self._delta_page("administrativeUnits", path, items, window)


# ------------------------------------------------------------------------------------------- helpers

def _graph_error_body(code: str, message: str, status: int) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "innerError": {
        "date": time.strftime("%Y-%m-%dT%H:%M:%S"), "request-id": str(uuid.uuid4()),
        "client-request-id": str(uuid.uuid4()), "status": str(status)}}}


def _aad_error(error: str, code: int, text: str) -> dict[str, Any]:
    trace, correlation = str(uuid.uuid4()), str(uuid.uuid4())
    stamp = time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime())
    return {
        "error": error,
        "error_description": f"AADSTS{code}: {text}\r\nTrace ID: {trace}\r\nCorrelation ID: {correlation}\r\n"
                             f"Timestamp: {stamp}",
        "error_codes": [code], "timestamp": stamp, "trace_id": trace, "correlation_id": correlation,
        "error_uri": f"https://login.microsoftonline.com/error?code={code}",
    }


def _looks_like_tenant(name: str) -> bool:
    try:
        uuid.UUID(name)
        return True
    except ValueError:
        labels = name.split(".")
        return len(labels) >= 2 and all(label and label.replace("-", "").isalnum() for label in labels)


def _select(data: dict[str, Any], params: dict[str, str], default: tuple[str, ...] | None, *,
            keep_type: bool = False) -> dict[str, Any]:
    chosen = params.get("$select")
    if chosen:
        names = {"id", *(name.strip() for name in chosen.split(","))}
    elif default is not None:
        names = set(default)
    else:
        names = set(data)
    if keep_type:
        names.add("@odata.type")
    picked = {key: value for key, value in data.items() if key in names}
    missing = {name: None for name in sorted(names - set(data) - {"@odata.type"})}
    return picked | missing


def _form(body: bytes) -> dict[str, str]:
    return {k: v[-1] for k, v in parse_qs(body.decode(), keep_blank_values=True).items()}


def _qs(params: dict[str, str]) -> str:
    return urlencode(params, safe="$,", quote_via=quote)


def _int_param(params: dict[str, str], name: str, default: int, upper: int) -> int:
    value = params.get(name)
    if value is None:
        return default
    if not value.isdigit() or not 1 <= int(value) <= upper:
        raise GraphError(400, "Request_BadRequest", f"Invalid value '{value}' for query parameter {name}.")
    return int(value)


def _encode(state: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(state, separators=(",", ":")).encode()).decode().rstrip("=")


def _decode(token: str) -> dict[str, Any]:
    try:
        return json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except ValueError as exc:
        raise GraphError(400, "Request_BadRequest", "Invalid token.") from exc


def _decode_int(token: str) -> int:
    return int(_decode(token).get("o", 0))


class _QuietHTTPSServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:  # a client refusing our cert is expected in tests
        pass


def _handler_for(server: FakeEntraServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms delayed-ACK stall

        def log_message(self, format: str, *args: Any) -> None:  # keep pytest output clean
            pass

        def _serve(self, method: str) -> None:
            arrived = time.monotonic()
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            headers = {k.lower(): v for k, v in self.headers.items()}
            graph = self.path.startswith("/v1.0/")
            if graph:
                server._graph_request(started=True)
            try:
                status, extra, payload = server.handle(method, self.path, headers, body)
            finally:
                if graph:
                    server._graph_request(started=False)
            data = json.dumps(payload).encode() if payload is not None else b""
            split = urlsplit(self.path)
            with server._lock:  # logged before the answer leaves, so a client that has it sees the entry
                server.requests_seen.append(LoggedRequest(arrived, method, unquote(split.path), unquote(split.query),
                                                          status, time.monotonic()))
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            for name, value in extra.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            self._serve("GET")

        def do_POST(self) -> None:
            self._serve("POST")

    return Handler
