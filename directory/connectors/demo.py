"""The demo directory: sample organisations in ldap3's in-memory server, read by the real LdapConnector.

So `make run` shows the whole product with no AD at hand. The data (directory/demo_data/
organisations.json) holds nested OUs, users without an email, disabled users, a computer and a
group (which never become users). objectGUIDs are fixed in the file, so re-seeding keeps identities.
"""

from __future__ import annotations

import json
import threading
import uuid
from functools import cache
from pathlib import Path
from typing import Any

from ldap3 import MOCK_SYNC, OFFLINE_AD_2012_R2, Connection, Server
from ldap3.utils.dn import escape_rdn

from adread.flags import UserAccountControl

from .ldap import LdapConnector, LdapSettings

DATA_FILE = Path(__file__).resolve().parent.parent / "demo_data" / "organisations.json"
DEMO_URL = "ldap://demo-directory.invalid"
READER_PASSWORD = "demo-reader"  # the in-memory server's only account; not a secret
_lock = threading.Lock()


@cache
def organisations() -> dict[str, dict[str, Any]]:
    """The sample organisations by name ("client", "vault"): domain, base DN, OUs, users."""
    return {org["name"]: org for org in json.loads(DATA_FILE.read_text())["organisations"]}


def reader_dn(base_dn: str) -> str:
    return f"CN=portal-reader,CN=Users,{base_dn}"


def _ou_dn(path: str, base_dn: str) -> str:
    return ",".join(f"OU={escape_rdn(name)}" for name in reversed(path.split("/"))) + f",{base_dn}"


def _entries(org: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    base = org["base_dn"]
    entries: list[tuple[str, dict[str, Any]]] = [
        (base, {"objectClass": ["top", "domain", "domainDNS"]}),
        (f"CN=Users,{base}", {"objectClass": ["top", "container"]}),
        # The account the connector binds with: a person but not a user object, so it is never listed.
        (reader_dn(base), {"objectClass": ["top", "person"], "objectCategory": "person",
                           "userPassword": READER_PASSWORD}),
    ]
    for ou in org["ous"]:
        entries.append((_ou_dn(ou["path"], base), {
            "objectClass": ["top", "organizationalUnit"], "ou": ou["path"].rsplit("/", 1)[-1],
            "objectGUID": uuid.UUID(ou["guid"]).bytes_le,
        }))
    for user in org["users"]:
        cn = f"{user['given']} {user['sn']}"
        attributes = {
            "objectClass": ["top", "person", "organizationalPerson", "user"],
            # AD expands the filter's "person" to the schema DN; the in-memory server compares literally.
            "objectCategory": "person",
            "objectGUID": uuid.UUID(user["guid"]).bytes_le,
            "sAMAccountName": user["sam"], "userPrincipalName": f"{user['sam']}@{org['domain']}",
            "givenName": user["given"], "sn": user["sn"], "displayName": cn,
            "userAccountControl": str(int(UserAccountControl.NORMAL_ACCOUNT
                                          | (0 if user["enabled"] else UserAccountControl.ACCOUNTDISABLE))),
        }
        if user["mail"]:
            attributes["mail"] = user["mail"]
        entries.append((f"CN={escape_rdn(cn)},{_ou_dn(user['ou'], base)}", attributes))
    first_ou = _ou_dn(org["ous"][0]["path"], base)
    # A computer is a user object class in AD, but its category is computer: never a portal user.
    entries.append((f"CN=WS-0001,{first_ou}", {
        "objectClass": ["top", "person", "organizationalPerson", "user", "computer"], "objectCategory": "computer",
        "objectGUID": uuid.uuid5(uuid.NAMESPACE_DNS, f"ws-0001.{org['domain']}").bytes_le,
        "sAMAccountName": "WS-0001$",
    }))
    entries.append((f"CN=All Staff,{first_ou}", {
        "objectClass": ["top", "group"], "objectCategory": "group",
        "objectGUID": uuid.uuid5(uuid.NAMESPACE_DNS, f"all-staff.{org['domain']}").bytes_le,
    }))
    return entries


@cache
def demo_server() -> Server:
    """One in-memory server per process holding every sample organisation (read-only afterwards)."""
    with _lock:
        # ldap3 takes its offline schemas here; types-ldap3's Literal lists only the server-read ones.
        server = Server("demo-directory.invalid", get_info=OFFLINE_AD_2012_R2)  # type: ignore[arg-type]
        loader = Connection(server, client_strategy=MOCK_SYNC)
        for org in organisations().values():
            for dn, attributes in _entries(org):
                loader.strategy.add_entry(dn, attributes)
        return server


def demo_settings(base_dn: str) -> LdapSettings:
    return LdapSettings(urls=(DEMO_URL,), base_dn=base_dn, bind_dn=reader_dn(base_dn),
                        bind_password=READER_PASSWORD, tls_mode="none", page_size=25)


def demo_connector(base_dn: str) -> LdapConnector:
    """The LdapConnector over the in-memory server, reading the organisation under `base_dn`."""
    return LdapConnector(demo_settings(base_dn), servers=[demo_server()], client_strategy=MOCK_SYNC,
                         tracks_changes=False)
