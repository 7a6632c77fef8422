"""The on-prem agent: read AD where the DCs are reachable and push the snapshot to the portal in chunks.

    python manage.py ad_agent --portal https://portal.example.com --token pat_... \\
        --ldap-url ldaps://dc1.corp.example.com --ldap-url ldaps://dc2.corp.example.com \\
        --base-dn DC=corp,DC=example,DC=com --bind-dn svc-portal@corp.example.com \\
        --ca-file corp-ca.pem [--once]

Every setting can also come from the environment (PORTAL_URL, AGENT_TOKEN, LDAP_URLS, LDAP_BASE_DN,
LDAP_BIND_DN, LDAP_BIND_PASSWORD, LDAP_CA_FILE, LDAP_TLS_MODE, LDAP_TLS_VERIFY, LDAP_PAGE_SIZE) or
from an INI file (--config FILE, section [agent], keys as the long flag names with underscores).
Flags win over the environment, the environment over the file. It pushes at start and then every
6 hours (R17); while the portal is down it retries with exponential backoff. The token and the
bind password are never logged or printed.
"""

from __future__ import annotations

import configparser
import logging
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

import requests
from django.core.management.base import BaseCommand, CommandError

from directory.connectors.base import DirectoryError, FolderRecord, Snapshot, UserRecord
from directory.connectors.ldap import LdapConnector, LdapSettings

AGENT_VERSION = "passportal-ad-agent 0.1.0"
DEFAULT_INTERVAL_HOURS = 6.0
DEFAULT_CHUNK_SIZE = 1000
MAX_CHUNK_SIZE = 2000  # the portal refuses larger chunks

log = logging.getLogger("passportal.agent")

# setting name -> (environment variable, default)
_SETTINGS: dict[str, tuple[str, Any]] = {
    "portal": ("PORTAL_URL", ""),
    "token": ("AGENT_TOKEN", ""),
    "ldap_url": ("LDAP_URLS", ""),
    "base_dn": ("LDAP_BASE_DN", ""),
    "bind_dn": ("LDAP_BIND_DN", ""),
    "bind_password": ("LDAP_BIND_PASSWORD", ""),
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


def _truthy(value: str) -> bool:
    return value.strip().lower() in ("1", "true", "yes", "on")


def load_config(flags: dict[str, Any], environ: dict[str, str], config_file: str | None) -> AgentConfig:
    """Merge flags, environment and the INI file (in that order of precedence) into one config."""
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

    missing = [f"--{n.replace('_', '-')} (or {_SETTINGS[n][0]})" for n in
               ("portal", "token", "ldap_url", "base_dn", "bind_dn", "bind_password") if not values[n]]
    if missing:
        raise CommandError("Missing settings: " + ", ".join(missing))
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
                          tls_verify=_truthy(values["tls_verify"]), page_size=page_size),
        portal_verify=values["portal_ca_file"] or True,
        interval_hours=interval, chunk_size=chunk_size, retries=max(retries, 1), retry_delay=retry_delay,
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
        self.session.verify = config.portal_verify

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        url = f"{self.config.portal}/api/agent/{path}"
        delays = backoff_delays(self.config.retry_delay, self.config.retries)
        while True:
            try:
                response = self.session.post(url, json=body, timeout=120)
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
            delay = next(delays, None)
            if delay is None:
                raise PortalDown(f"{problem}; gave up after {self.config.retries} attempts")
            log.warning("%s; retrying in %.0f s", problem, delay)
            self.sleep(delay)


def _detail(response: requests.Response) -> str:
    try:
        return str(response.json().get("detail", ""))[:500]
    except ValueError:
        return response.text[:200]


def _chunks(items: Sequence[Any], size: int) -> Iterator[list[Any]]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


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
    for chunk in _chunks(snapshot.folders, chunk_size):
        client.post(f"uploads/{upload_id}/folders/", {"records": [folder_payload(f) for f in chunk]})
    for chunk in _chunks(snapshot.users, chunk_size):
        client.post(f"uploads/{upload_id}/users/", {"records": [user_payload(u) for u in chunk]})
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
        parser.add_argument("--bind-password", help="Prefer LDAP_BIND_PASSWORD or --config.")
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
