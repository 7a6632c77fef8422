"""The on-prem agent: read AD where the DCs are reachable and push the snapshot to the portal in chunks.

    AGENT_TOKEN=pat_... python manage.py ad_agent --portal https://portal.example.com \\
        --ldap-url ldaps://dc1.corp.example.com --ldap-url ldaps://dc2.corp.example.com \\
        --base-dn DC=corp,DC=example,DC=com --bind-dn svc-portal@corp.example.com \\
        --bind-password-file /etc/portal-agent/bind-password --ca-file corp-ca.pem [--once]

Every setting can also come from the environment (PORTAL_URL, AGENT_TOKEN, LDAP_URLS, LDAP_BASE_DN,
LDAP_BIND_DN, LDAP_BIND_PASSWORD, LDAP_BIND_PASSWORD_FILE, LDAP_CA_FILE, LDAP_TLS_MODE, LDAP_TLS_VERIFY,
LDAP_PAGE_SIZE) or from an INI file (--config FILE, section [agent], keys as the long flag names with
underscores). Flags win over the environment, the environment over the file. The bind password never
comes from the command line, where any user of the machine can read it (ps): a file, the environment
or the INI file. Plain HTTP to the portal (the token in clear) and LDAP without TLS (the password in
clear) are refused unless --insecure is given, which warns. It pushes at start and then every 6 hours
(R17); while the portal is down it retries with exponential backoff. Chunks are split to fit the
limits the portal states when an upload starts. The token and the bind password are never logged or
printed.
"""

from __future__ import annotations

import argparse
import configparser
import json
import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
from django.core.management.base import BaseCommand, CommandError

from directory.connectors.base import DirectoryError, FolderRecord, Snapshot, UserRecord
from directory.connectors.ldap import LdapConnector, LdapSettings

AGENT_VERSION = "passportal-ad-agent 0.1.0"
DEFAULT_INTERVAL_HOURS = 6.0
DEFAULT_CHUNK_SIZE = 1000
MAX_CHUNK_SIZE = 2000  # the portal refuses larger chunks
# Request body limit of a portal that does not state its limits: Django's DATA_UPLOAD_MAX_MEMORY_SIZE.
FALLBACK_CHUNK_BYTES = 2_621_440
LONGEST_RETRY_AFTER = 300.0  # seconds; a portal asking for longer is asked again sooner

log = logging.getLogger("passportal.agent")

# setting name -> (environment variable, default)
_SETTINGS: dict[str, tuple[str, Any]] = {
    "portal": ("PORTAL_URL", ""),
    "token": ("AGENT_TOKEN", ""),
    "ldap_url": ("LDAP_URLS", ""),
    "base_dn": ("LDAP_BASE_DN", ""),
    "bind_dn": ("LDAP_BIND_DN", ""),
    "bind_password": ("LDAP_BIND_PASSWORD", ""),  # environment or INI file only, never a flag
    "bind_password_file": ("LDAP_BIND_PASSWORD_FILE", ""),
    "ca_file": ("LDAP_CA_FILE", ""),
    "tls_mode": ("LDAP_TLS_MODE", "ldaps"),
    "tls_verify": ("LDAP_TLS_VERIFY", "true"),
    "page_size": ("LDAP_PAGE_SIZE", "500"),
    "portal_ca_file": ("PORTAL_CA_FILE", ""),
    "interval_hours": ("AGENT_INTERVAL_HOURS", str(DEFAULT_INTERVAL_HOURS)),
    "chunk_size": ("AGENT_CHUNK_SIZE", str(DEFAULT_CHUNK_SIZE)),
    "retries": ("AGENT_RETRIES", "8"),
    "retry_delay": ("AGENT_RETRY_DELAY", "2"),
}


class PortalRefused(Exception):
    """The portal answered with a 4xx: retrying will not help (bad token, bad record, ...)."""


class PortalDown(Exception):
    """The portal could not be reached, or answered 5xx/429, after every retry."""


@dataclass(frozen=True)
class AgentConfig:
    portal: str
    token: str = field(repr=False)
    ldap: LdapSettings
    portal_verify: bool | str = True
    interval_hours: float = DEFAULT_INTERVAL_HOURS
    chunk_size: int = DEFAULT_CHUNK_SIZE
    retries: int = 8
    retry_delay: float = 2.0
    warnings: tuple[str, ...] = ()  # what --insecure let through; the command prints them


BIND_PASSWORD_FLAG_REFUSED = (
    "--bind-password is not accepted: any user of this machine can read a command line (ps). Put the password "
    "in a file only the agent's account can read and pass --bind-password-file FILE (or LDAP_BIND_PASSWORD_FILE), "
    "or set LDAP_BIND_PASSWORD in the agent's environment.")


def _truthy(value: str) -> bool:
    return value.strip().lower() in ("1", "true", "yes", "on")


def _bind_password(values: dict[str, str]) -> str:
    """From the file named by --bind-password-file if there is one, else LDAP_BIND_PASSWORD or the INI file."""
    path = values["bind_password_file"]
    if not path:
        return values["bind_password"]
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise CommandError(f"Cannot read the bind password file {path}: {exc.strerror}") from None
    return text.rstrip("\r\n")  # the line end an editor adds is not part of the password


def _cleartext_risks(portal: str, tls_mode: str) -> list[str]:
    """What this configuration would send unencrypted; refused unless --insecure."""
    scheme = urlsplit(portal).scheme.lower()
    if scheme not in ("https", "http") or not urlsplit(portal).hostname:
        raise CommandError(f"--portal must be the portal's https:// address, e.g. https://portal.example.com, "
                           f"not {portal!r}")
    risks = []
    if scheme == "http":
        risks.append(f"the portal address {portal} is plain http://: the agent token and the directory's users "
                     "would cross the network in clear (use https://)")
    if tls_mode == "none":
        risks.append("--tls-mode none: the bind password and the directory's users would cross the network in "
                     "clear (use ldaps or starttls)")
    return risks


def _accepted_risks(values: dict[str, str], insecure: bool) -> tuple[str, ...]:
    risks = _cleartext_risks(values["portal"], values["tls_mode"])
    if risks and not insecure:
        raise CommandError("Refused: " + "; ".join(risks) + ". Only on a test network, pass --insecure to "
                           "accept this.")
    return tuple(risks)


def load_config(flags: dict[str, Any], environ: dict[str, str], config_file: str | None) -> AgentConfig:
    """Merge flags, environment and the INI file (in that order of precedence) into one config."""
    if flags.get("bind_password"):
        raise CommandError(BIND_PASSWORD_FLAG_REFUSED)
    from_file: dict[str, str] = {}
    if config_file:
        parser = configparser.ConfigParser(interpolation=None)
        if not parser.read(config_file):
            raise CommandError(f"Cannot read the config file {config_file}")
        if parser.has_section("agent"):
            from_file = dict(parser.items("agent"))
    values: dict[str, str] = {}
    for name, (env_name, default) in _SETTINGS.items():
        flag = flags.get(name)
        if isinstance(flag, list):
            flag = "\n".join(flag) if flag else None
        values[name] = str(flag if flag not in (None, "") else environ.get(env_name) or from_file.get(name) or default)

    values["bind_password"] = _bind_password(values)
    missing = [f"--{n.replace('_', '-')} (or {_SETTINGS[n][0]})" for n in
               ("portal", "token", "ldap_url", "base_dn", "bind_dn") if not values[n]]
    if not values["bind_password"]:
        missing.append("--bind-password-file (or LDAP_BIND_PASSWORD_FILE, or LDAP_BIND_PASSWORD)")
    if missing:
        raise CommandError("Missing settings: " + ", ".join(missing))
    insecure = bool(flags.get("insecure"))
    risks = _accepted_risks(values, insecure)
    ca_pem = ""
    if values["ca_file"]:
        try:
            ca_pem = Path(values["ca_file"]).read_text()
        except OSError as exc:
            raise CommandError(f"Cannot read the CA file {values['ca_file']}: {exc.strerror}") from None
    try:
        page_size = int(values["page_size"])
        chunk_size = int(values["chunk_size"])
        interval = float(values["interval_hours"])
        retries = int(values["retries"])
        retry_delay = float(values["retry_delay"])
    except ValueError as exc:
        raise CommandError(f"A numeric setting is not a number: {exc}") from None
    if not 1 <= chunk_size <= MAX_CHUNK_SIZE:
        raise CommandError(f"--chunk-size must be between 1 and {MAX_CHUNK_SIZE}")
    if values["tls_mode"] not in ("ldaps", "starttls", "none"):
        raise CommandError("--tls-mode must be ldaps, starttls or none")
    urls = tuple(u.strip() for u in values["ldap_url"].replace(",", "\n").splitlines() if u.strip())
    return AgentConfig(
        portal=values["portal"].rstrip("/"),
        token=values["token"],
        ldap=LdapSettings(urls=urls, base_dn=values["base_dn"], bind_dn=values["bind_dn"],
                          bind_password=values["bind_password"], tls_mode=values["tls_mode"], ca_pem=ca_pem,
                          tls_verify=_truthy(values["tls_verify"]), page_size=page_size,
                          plain_ldap_allowed=insecure and values["tls_mode"] == "none"),
        portal_verify=values["portal_ca_file"] or True,
        interval_hours=interval, chunk_size=chunk_size, retries=max(retries, 1), retry_delay=retry_delay,
        warnings=risks,
    )


def backoff_delays(first: float, attempts: int, cap: float = 300.0) -> Iterator[float]:
    """Waits between attempts: first, 2x, 4x, ... capped (attempts - 1 of them)."""
    for n in range(attempts - 1):
        yield min(first * (2 ** n), cap)


class PortalClient:
    """The portal's push API over HTTPS with the agent token; retries while the portal is down."""

    def __init__(self, config: AgentConfig, sleep: Callable[[float], None] = time.sleep) -> None:
        self.config = config
        self.sleep = sleep
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {config.token}"
        self.session.headers["User-Agent"] = AGENT_VERSION

    def post(self, path: str, body: dict[str, Any] | bytes) -> dict[str, Any]:
        """POST JSON (a dict, or a body already encoded to fit the portal's size limit); the reply's JSON."""
        url = f"{self.config.portal}/api/agent/{path}"
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        delays = backoff_delays(self.config.retry_delay, self.config.retries)
        while True:
            asked_wait = 0.0
            try:
                # verify on each request: requests lets REQUESTS_CA_BUNDLE override a session's verify, which
                # would ignore --portal-ca-file.
                response = self.session.post(url, data=data, headers={"Content-Type": "application/json"},
                                             verify=self.config.portal_verify, timeout=120)
            except requests.RequestException as exc:
                problem = f"cannot reach {self.config.portal} ({type(exc).__name__})"
            else:
                if response.status_code < 400:
                    return response.json()
                detail = _detail(response)
                if response.status_code not in (429, 502, 503, 504) and response.status_code < 500:
                    if response.status_code == 401:
                        raise PortalRefused(f"{self.config.portal} refused the agent token (401): {detail}")
                    raise PortalRefused(f"{self.config.portal} refused {path} ({response.status_code}): {detail}")
                problem = f"{self.config.portal} answered {response.status_code}: {detail}"
                asked_wait = _retry_after(response)
            delay = next(delays, None)
            if delay is None:
                raise PortalDown(f"{problem}; gave up after {self.config.retries} attempts")
            delay = max(delay, asked_wait)  # sooner would only be refused again (429, 503)
            log.warning("%s; retrying in %.0f s", problem, delay)
            self.sleep(delay)


def _retry_after(response: requests.Response) -> float:
    """The seconds a 429 or 503 asks the agent to wait (0 if it does not say), at most LONGEST_RETRY_AFTER."""
    try:
        return min(max(float(response.headers.get("Retry-After", 0)), 0.0), LONGEST_RETRY_AFTER)
    except ValueError:  # an HTTP date: not what the portal sends; the backoff decides
        return 0.0


def _detail(response: requests.Response) -> str:
    try:
        return str(response.json().get("detail", ""))[:500]
    except ValueError:
        return response.text[:200]


_HEAD, _TAIL = b'{"records":[', b"]}"


def chunk_bodies(payloads: Iterable[dict[str, Any]], max_records: int, max_bytes: int) -> Iterator[bytes]:
    """Request bodies {"records": [...]} of at most max_records records and max_bytes bytes each, in order.

    Sized by the encoded bytes, not by counting records: long names and DNs make some records far
    larger than others, and the portal refuses a body over its limit (413).
    """
    parts: list[bytes] = []
    size = len(_HEAD) + len(_TAIL)
    for payload in payloads:
        part = json.dumps(payload, separators=(",", ":")).encode()
        if len(_HEAD) + len(part) + len(_TAIL) > max_bytes:
            raise PortalRefused(f"record {payload.get('id')} alone is {len(part):,} bytes, over the portal's limit "
                                f"of {max_bytes:,} bytes per request (AGENT_CHUNK_MAX_BYTES on the portal)")
        if parts and (len(parts) == max_records or size + 1 + len(part) > max_bytes):
            yield _HEAD + b",".join(parts) + _TAIL
            parts, size = [], len(_HEAD) + len(_TAIL)
        size += len(part) + (1 if parts else 0)  # the comma before every record but the first
        parts.append(part)
    if parts:
        yield _HEAD + b",".join(parts) + _TAIL


def folder_payload(folder: FolderRecord) -> dict[str, Any]:
    return {"id": folder.id, "name": folder.name, "path": folder.path, "parent_id": folder.parent_id}


def user_payload(user: UserRecord) -> dict[str, Any]:
    return {"id": user.id, "first_name": user.first_name, "last_name": user.last_name, "email": user.email,
            "enabled": user.enabled, "folder_ids": sorted(user.folder_ids), "display_name": user.display_name,
            "upn": user.upn, "dn": user.dn}


def push_snapshot(client: PortalClient, snapshot: Snapshot, chunk_size: int) -> dict[str, Any]:
    """Start an upload, send folders then users in chunks, commit with the counts. Returns the commit reply."""
    upload = client.post("uploads/", {"directory_id": snapshot.directory_id, "agent_version": AGENT_VERSION})
    upload_id = upload["upload_id"]
    limits = upload.get("limits", {})
    max_records = min(chunk_size, limits.get("chunk_records", MAX_CHUNK_SIZE))
    max_bytes = limits.get("chunk_bytes", FALLBACK_CHUNK_BYTES)
    for body in chunk_bodies(map(folder_payload, snapshot.folders), max_records, max_bytes):
        client.post(f"uploads/{upload_id}/folders/", body)
    for body in chunk_bodies(map(user_payload, snapshot.users), max_records, max_bytes):
        client.post(f"uploads/{upload_id}/users/", body)
    return client.post(f"uploads/{upload_id}/commit/",
                       {"folder_count": len(snapshot.folders), "user_count": len(snapshot.users)})


def run_once(config: AgentConfig, client: PortalClient) -> str:
    connector = LdapConnector(config.ldap)
    snapshot = connector.read_snapshot(())
    reply = push_snapshot(client, snapshot, config.chunk_size)
    return (f"Pushed {len(snapshot.folders)} OUs and {len(snapshot.users)} users of {snapshot.directory_id} "
            f"(read from {connector.last_read.server}) as upload {reply['upload_id']}.")


class Command(BaseCommand):
    help = "On-prem agent: read Active Directory and push it to the portal (at start, then every 6 hours)."

    def add_arguments(self, parser):
        parser.add_argument("--portal", help="The portal's base URL, e.g. https://portal.example.com")
        parser.add_argument("--token", help="The integration's agent token (prefer AGENT_TOKEN or --config).")
        parser.add_argument("--once", action="store_true", help="Push once and exit (no 6-hourly loop).")
        parser.add_argument("--config", help="An INI file with an [agent] section.")
        parser.add_argument("--ldap-url", action="append", help="An LDAP URL; repeat for failover, in order.")
        parser.add_argument("--base-dn")
        parser.add_argument("--bind-dn", help="Bind DN or UPN of a read-only service account.")
        parser.add_argument("--bind-password-file",
                            help="File holding the bind password (readable by the agent's account only).")
        # Accepted only to be refused with a message that says where the password goes instead.
        parser.add_argument("--bind-password", help=argparse.SUPPRESS)
        parser.add_argument("--insecure", action="store_true",
                            help="Allow http:// to the portal and --tls-mode none, with a warning (test labs only).")
        parser.add_argument("--ca-file", help="PEM file of the CA that signed the DCs' certificates.")
        parser.add_argument("--tls-mode", choices=["ldaps", "starttls", "none"])
        parser.add_argument("--tls-verify", choices=["true", "false"])
        parser.add_argument("--page-size", type=int)
        parser.add_argument("--portal-ca-file", help="PEM file of a private CA for the portal's HTTPS.")
        parser.add_argument("--interval-hours", type=float)
        parser.add_argument("--chunk-size", type=int, help=f"Records per request (at most {MAX_CHUNK_SIZE}).")
        parser.add_argument("--retries", type=int, help="Attempts per request while the portal is down.")
        parser.add_argument("--retry-delay", type=float, help="First wait in seconds; doubles each attempt.")

    def handle(self, *args, **options):
        config = load_config(options, dict(os.environ), options.get("config"))
        for warning in config.warnings:
            self.stderr.write(f"WARNING (--insecure): {warning}.")
        client = PortalClient(config)
        if options["once"]:
            try:
                self.stdout.write(run_once(config, client))
            except (DirectoryError, PortalRefused, PortalDown) as exc:
                raise CommandError(str(exc)) from None
            return
        self._run_forever(config, client)

    def _run_forever(self, config: AgentConfig, client: PortalClient) -> None:
        interval = config.interval_hours * 3600
        failures = 0
        while True:
            try:
                self.stdout.write(run_once(config, client))
                failures = 0
                wait = interval
            except (DirectoryError, PortalRefused, PortalDown) as exc:
                failures += 1
                # A refused or unreachable push is tried again soon, never later than the next regular push.
                wait = min(config.retry_delay * (2 ** min(failures, 10)), 1800, interval)
                self.stderr.write(f"Push failed: {exc}; next attempt in {wait:.0f} s")
            time.sleep(wait)
