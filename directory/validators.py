"""Checks of integration settings a person types, shared by the admin form and the staff API.

Each raises ValidationError with a sentence that says what to write instead. They run before anything
reaches a connector, so a value that would widen an LDAP search or bend a Graph URL never gets there.
"""

from __future__ import annotations

import ipaddress
import re
import ssl
import uuid
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from ldap3.core.exceptions import LDAPInvalidDnError
from ldap3.utils.dn import parse_dn

from .clouds import CLOUDS, CUSTOM, ENDPOINT_FIELDS
from .connectors.entra_hosts import graph_url_problem, login_host_problem, scope_problem
from .models import TlsMode

_HOST_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$", re.IGNORECASE)
# A verified domain name, as Entra ID accepts them (at least two labels, a letter-led top-level label).
_DOMAIN = re.compile(r"^(?=.{4,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,61}[a-z0-9]$",
                     re.IGNORECASE)


def _is_host(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        return len(name) <= 253 and all(_HOST_LABEL.match(label) for label in name.rstrip(".").split("."))


def clean_ldap_urls(value: str) -> str:
    """One ldaps://host[:port] or ldap://host[:port] per line; returns them one per line, trimmed."""
    urls = [line.strip() for line in (value or "").splitlines() if line.strip()]
    for number, url in enumerate(urls, start=1):
        problem = f"Line {number} ({url[:80]!r}) is not an LDAP URL: write ldaps://host:636 or ldap://host:389"
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            raise ValidationError(f"{problem} (the port is not a number).") from None
        if parts.scheme not in ("ldap", "ldaps") or not parts.hostname or not _is_host(parts.hostname):
            raise ValidationError(f"{problem}.")
        if parts.path.strip("/") or parts.query or parts.fragment or parts.username or port == 0:
            raise ValidationError(f"{problem}, with nothing after the port (the base DN has its own field).")
    return "\n".join(urls)


def clean_dn(value: str) -> str:
    """A distinguished name such as OU=Staff,DC=corp,DC=example,DC=com; a filter fragment is not one."""
    dn = (value or "").strip()
    if not dn:
        return dn
    try:
        components = parse_dn(dn)
    except LDAPInvalidDnError:
        components = []
    names_ok = all(re.fullmatch(r"[A-Za-z][A-Za-z0-9-]*|[0-9]+(\.[0-9]+)*", attr.strip()) for attr, _, _ in components)
    # Values may hold parentheses ("OU=Sales (EMEA)"): a DN is never put into a search filter.
    if not components or not names_ok or "\x00" in dn:
        raise ValidationError("This is not a DN: write it as DC=corp,DC=example,DC=com or "
                              "OU=Staff,DC=corp,DC=example,DC=com.")
    return dn


def clean_bind_dn(value: str) -> str:
    """The bind account: a DN, or a user principal name (svc-portal@corp.example.com)."""
    text = (value or "").strip()
    if "@" in text and "=" not in text:
        if any(ch in text for ch in "()*\x00 ") or text.count("@") != 1:
            raise ValidationError("This is not a user principal name: write it as svc-portal@corp.example.com.")
        return text
    return clean_dn(text)


def clean_ca_pem(value: str) -> str:
    """One or more PEM CA certificates that TLS can load; anything else is refused with what was wrong."""
    pem = (value or "").strip()
    if not pem:
        return pem
    if "-----BEGIN CERTIFICATE-----" not in pem:
        raise ValidationError("This is not a PEM CA certificate: paste the text from -----BEGIN CERTIFICATE----- "
                              "to -----END CERTIFICATE-----.")
    try:
        ssl.create_default_context(cadata=pem)
    except (ssl.SSLError, ValueError) as exc:
        raise ValidationError(f"This is not a PEM CA certificate ({exc}).") from None
    return pem


def clean_tenant(value: str) -> str:
    """An Entra tenant: its GUID or one of its verified domain names."""
    tenant = (value or "").strip()
    if not tenant:
        return tenant
    try:
        uuid.UUID(tenant)
        return tenant
    except ValueError:
        pass
    if not _DOMAIN.match(tenant):
        raise ValidationError(f"{tenant[:80]!r} is not a tenant: write its GUID "
                              "(00000000-0000-0000-0000-000000000000) or a verified domain (contoso.com).")
    return tenant


def clean_login_host(value: str) -> str:
    """A bare Microsoft login host (or one the operator allowed), lowercase; blank means the cloud's."""
    host = (value or "").strip().lower()
    if host and (problem := login_host_problem(host)):
        raise ValidationError(problem)
    return host


def clean_graph_base_url(value: str) -> str:
    """https on a Microsoft Graph host (or one the operator allowed); blank means graph.microsoft.com."""
    url = (value or "").strip()
    if url and (problem := graph_url_problem(url)):
        raise ValidationError(problem)
    return url


def clean_graph_scope(value: str) -> str:
    """https://<a Graph resource>/.default (or a host the operator allowed); blank means the cloud's."""
    scope = (value or "").strip()
    if scope and (problem := scope_problem(scope)):
        raise ValidationError(problem)
    return scope


_ENDPOINT_LABELS = {"login_host": "login host", "graph_base_url": "Graph base URL", "graph_scope": "token scope"}
_CHECKS = {"login_host": login_host_problem, "graph_base_url": graph_url_problem, "graph_scope": scope_problem}


def _same(name: str, a: str, b: str) -> bool:
    a, b = (a or "").strip(), (b or "").strip()
    if name == "graph_base_url":
        return a.rstrip("/").lower() == b.rstrip("/").lower()
    return a.lower() == b.lower()


def cloud_endpoints(cloud: str, typed: Mapping[str, str], stored: Mapping[str, str]) -> dict[str, str]:
    """The login host, Graph base URL and token scope an Entra integration uses, by field.

    A Microsoft cloud gives all three: a value typed for one of them must be that cloud's (Custom is the
    choice for other values), so nobody believes a host is used that is not. Custom takes the typed values
    (or the stored ones), all three required and each checked. Raises ValidationError by field.
    """
    if cloud in CLOUDS:
        own = CLOUDS[cloud].endpoints()
        wrong = {name: f"The cloud {CLOUDS[cloud].label} sets the {_ENDPOINT_LABELS[name]} to {own[name]}: choose "
                       "Custom to use another one." for name, value in typed.items()
                 if name in own and value and not _same(name, value, own[name])}
        if wrong:
            raise ValidationError(wrong)
        return own
    if cloud != CUSTOM:
        raise ValidationError({"entra_cloud": "Choose the cloud the tenant is in."})
    values = {name: str(typed.get(name) if name in typed else stored.get(name) or "").strip()
              for name in ENDPOINT_FIELDS}
    problems = {}
    for name, value in values.items():
        if not value:
            problems[name] = f"A custom cloud needs its {_ENDPOINT_LABELS[name]} typed here."
        elif problem := _CHECKS[name](value):
            problems[name] = problem
    if problems:
        raise ValidationError(problems)
    values["login_host"] = values["login_host"].lower()
    return values


# What to say when a secret is missing: never typed, or stored for endpoints that just changed (R26).
_SECRET_MISSING = {
    "bind_password": "Direct mode needs the bind password.",
    "client_secret": "Type the app's client secret.",
}
_SECRET_MOVED = {
    "bind_password": "The LDAP URLs or TLS settings changed, so the stored bind password is not sent there: "
                     "type it again.",
    "client_secret": "The cloud, login host, Graph base URL, token scope, tenant or TLS settings changed, so the "
                     "stored client secret is not sent there: type it again.",
}


def missing_secret(secret: str, *, moved: bool) -> str:
    return (_SECRET_MOVED if moved else _SECRET_MISSING)[secret]


def direct_ad_problems(values: Mapping[str, Any], *, password: str, password_moved: bool) -> dict[str, str]:
    """What a direct-mode AD integration lacks, by field; the portal binds with its password itself.

    Plain LDAP is refused whatever else is set: the bind password would cross the network in clear.
    """
    problems = {name: "Direct mode reads AD from the portal: this is needed."
                for name in ("ldap_urls", "base_dn", "bind_dn") if not values.get(name)}
    if not password:
        problems["bind_password"] = missing_secret("bind_password", moved=password_moved)
    if values.get("tls_mode") == TlsMode.NONE:
        problems["tls_mode"] = ("Direct mode sends the bind password to the domain controller: use LDAPS or "
                                "StartTLS (plain LDAP would carry it in clear).")
    return problems
