"""Shared fixtures: plain helpers over the ORM (no factories library).

Servers the suite starts (Samba AD DC, SMTP, the Graph stand-in) live in their own plugin modules,
listed here so every test module can use their fixtures.
"""

from __future__ import annotations

import pytest

from passportal.models import Client, PermissionLevel

pytest_plugins: list[str] = [
    "tests.fixtures_smtp",
    "tests.fixtures_samba",
    "tests.fixtures_entra",
    "tests.fixtures_browser",
]


@pytest.fixture
def vault(db) -> Client:
    return Client.objects.create(name="Acme MSP", is_company_vault=True, site_enabled=True)


@pytest.fixture
def client_org(db) -> Client:
    return Client.objects.create(name="Contoso Ltd", site_enabled=True)


def level(kind: str, name: str) -> PermissionLevel:
    return PermissionLevel.objects.get(user_kind=kind, name=name)
