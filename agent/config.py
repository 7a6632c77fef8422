"""The agent's settings: command-line flags, then the environment, then an INI file ([agent] section).

Flags win over the environment, the environment over the file. The bind password never comes from the
command line, where any user of the machine can read it (ps): a file (--bind-password-file or
LDAP_BIND_PASSWORD_FILE), the environment (LDAP_BIND_PASSWORD) or the INI file. Plain HTTP to the portal
(the token in clear) and LDAP without TLS (the password in clear) are refused unless `insecure` is set,
which the caller prints as warnings.
"""

from __future__ import annotations

import configparser
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from adread.connection import LdapSettings

DEFAULT_INTERVAL_HOURS = 6.0
DEFAULT_POLL_SECONDS = 60.0
DEFAULT_CHUNK_SIZE = 1000
MAX_CHUNK_SIZE = 2000  # the portal refuses larger chunks

# setting name -> (environment variable, default)
SETTINGS: dict[str, tuple[str, str]] = {
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
    "poll_seconds": ("AGENT_POLL_SECONDS", str(DEFAULT_POLL_SECONDS)),
    "chunk_size": ("AGENT_CHUNK_SIZE", str(DEFAULT_CHUNK_SIZE)),
    "retries": ("AGENT_RETRIES", "8"),
    "retry_delay": ("AGENT_RETRY_DELAY", "2"),
}

BIND_PASSWORD_FLAG_REFUSED = (
    "--bind-password is not accepted: any user of this machine can read a command line (ps). Put the password "
    "in a file only the agent's account can read and pass --bind-password-file FILE (or LDAP_BIND_PASSWORD_FILE), "
    "or set LDAP_BIND_PASSWORD in the agent's environment.")


class ConfigError(Exception):
    """A setting is missing or wrong; the message says which and where it goes."""


@dataclass(frozen=True)
class AgentConfig:
    portal: str
    token: str = field(repr=False)
    ldap: LdapSettings
    portal_verify: bool | str = True
    interval_hours: float = DEFAULT_INTERVAL_HOURS
    poll_seconds: float = DEFAULT_POLL_SECONDS
    chunk_size: int = DEFAULT_CHUNK_SIZE
    retries: int = 8
    retry_delay: float = 2.0
    warnings: tuple[str, ...] = ()  # what --insecure let through; the caller prints them

    def secrets(self) -> tuple[str, ...]:
        """What must never leave the agent in a message (a failure report, a log line)."""
        return tuple(s for s in (self.token, self.ldap.bind_password) if s)


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
        raise ConfigError(f"Cannot read the bind password file {path}: {exc.strerror}") from None
    return text.rstrip("\r\n")  # the line end an editor adds is not part of the password


def _cleartext_risks(portal: str, tls_mode: str) -> list[str]:
    """What this configuration would send unencrypted; refused unless --insecure."""
    scheme = urlsplit(portal).scheme.lower()
    if scheme not in ("https", "http") or not urlsplit(portal).hostname:
        raise ConfigError(f"--portal must be the portal's https:// address, e.g. https://portal.example.com, "
                          f"not {portal!r}")
    risks = []
    if scheme == "http":
        risks.append(f"the portal address {portal} is plain http://: the agent token and the directory's users "
                     "would cross the network in clear (use https://)")
    if tls_mode == "none":
        risks.append("--tls-mode none: the bind password and the directory's users would cross the network in "
                     "clear (use ldaps or starttls)")
    return risks


def _file_settings(config_file: str | None) -> dict[str, str]:
    if not config_file:
        return {}
    parser = configparser.ConfigParser(interpolation=None)
    if not parser.read(config_file):
        raise ConfigError(f"Cannot read the config file {config_file}")
    return dict(parser.items("agent")) if parser.has_section("agent") else {}


def _merged(flags: Mapping[str, Any], environ: Mapping[str, str], from_file: dict[str, str]) -> dict[str, str]:
    values: dict[str, str] = {}
    for name, (env_name, default) in SETTINGS.items():
        flag = flags.get(name)
        if isinstance(flag, list):
            flag = "\n".join(flag) if flag else None
        values[name] = str(flag if flag not in (None, "") else environ.get(env_name) or from_file.get(name) or default)
    return values


def load_config(flags: Mapping[str, Any], environ: Mapping[str, str], config_file: str | None, *,
                need_portal: bool = True) -> AgentConfig:
    """Merge flags, environment and the INI file (in that order of precedence) into one config.

    `need_portal` is False for --check, which only reads AD (it still asks the portal which OUs are mapped
    when it can).
    """
    if flags.get("bind_password"):
        raise ConfigError(BIND_PASSWORD_FLAG_REFUSED)
    values = _merged(flags, environ, _file_settings(config_file))
    values["bind_password"] = _bind_password(values)
    required = ("portal", "token", "ldap_url", "base_dn", "bind_dn") if need_portal else ("ldap_url", "base_dn",
                                                                                            "bind_dn")
    missing = [f"--{n.replace('_', '-')} (or {SETTINGS[n][0]})" for n in required if not values[n]]
    if not values["bind_password"]:
        missing.append("--bind-password-file (or LDAP_BIND_PASSWORD_FILE, or LDAP_BIND_PASSWORD)")
    if missing:
        raise ConfigError("Missing settings: " + ", ".join(missing))
    insecure = bool(flags.get("insecure"))
    risks = _cleartext_risks(values["portal"] or "https://portal.invalid", values["tls_mode"])
    if risks and not insecure:
        raise ConfigError("Refused: " + "; ".join(risks) + ". Only on a test network, pass --insecure to "
                          "accept this.")
    ca_pem = ""
    if values["ca_file"]:
        try:
            ca_pem = Path(values["ca_file"]).read_text()
        except OSError as exc:
            raise ConfigError(f"Cannot read the CA file {values['ca_file']}: {exc.strerror}") from None
    try:
        page_size = int(values["page_size"])
        chunk_size = int(values["chunk_size"])
        interval = float(values["interval_hours"])
        poll = float(values["poll_seconds"])
        retries = int(values["retries"])
        retry_delay = float(values["retry_delay"])
    except ValueError as exc:
        raise ConfigError(f"A numeric setting is not a number: {exc}") from None
    if not 1 <= chunk_size <= MAX_CHUNK_SIZE:
        raise ConfigError(f"--chunk-size must be between 1 and {MAX_CHUNK_SIZE}")
    if values["tls_mode"] not in ("ldaps", "starttls", "none"):
        raise ConfigError("--tls-mode must be ldaps, starttls or none")
    urls = tuple(u.strip() for u in values["ldap_url"].replace(",", "\n").splitlines() if u.strip())
    return AgentConfig(
        portal=values["portal"].rstrip("/"),
        token=values["token"],
        ldap=LdapSettings(urls=urls, base_dn=values["base_dn"], bind_dn=values["bind_dn"],
                          bind_password=values["bind_password"], tls_mode=values["tls_mode"], ca_pem=ca_pem,
                          tls_verify=_truthy(values["tls_verify"]), page_size=page_size,
                          plain_ldap_allowed=insecure and values["tls_mode"] == "none"),
        portal_verify=values["portal_ca_file"] or True,
        interval_hours=interval, poll_seconds=max(poll, 1.0), chunk_size=chunk_size, retries=max(retries, 1),
        retry_delay=retry_delay, warnings=tuple(risks),
    )
