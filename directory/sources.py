"""Turn an integration into the connector that reads it: the one place where models meet connectors.

Connectors (`directory/connectors/`, `adread/`) take plain settings and return plain records; they never
import models (docs/architecture.md, rule 1). This module reads an `Integration` row and builds those
settings: `ldap_settings` for AD read directly, `entra_settings` for Graph. The sources the portal itself
stores (an on-prem agent's uploads, what a SCIM client pushed) are read by connectors over the database
that live beside their models (`directory.uploads`, `scim.connector`); they are built here too.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings as django_settings

from .clouds import CLOUDS, DEFAULT_CLOUD
from .connectors.base import Connector
from .connectors.demo import demo_connector, organisations
from .connectors.entra import DEFAULT_GRAPH_BASE_URL, DEFAULT_LOGIN_HOST, EntraConnector, EntraSettings, RetryPolicy
from .connectors.ldap import LdapConnector, LdapSettings
from .models import AdMode, Integration, IntegrationKind

__all__ = ["connector_for", "entra_connector", "entra_settings", "ldap_settings"]


def connector_for(integration: Integration) -> Connector:
    """The connector that reads this integration's directory, as it is configured now."""
    if integration.kind == IntegrationKind.ENTRA:
        return entra_connector(integration)
    if integration.kind == IntegrationKind.SCIM:
        from scim.connector import ScimConnector  # scim's models import directory's: only at call time

        return ScimConnector(integration)
    if integration.kind == IntegrationKind.DEMO:
        return demo_connector(integration.base_dn or organisations()["client"]["base_dn"])
    if integration.ad_mode == AdMode.AGENT:
        from .uploads import UploadConnector

        return UploadConnector(integration)
    return LdapConnector(ldap_settings(integration))


def ldap_settings(integration: Integration) -> LdapSettings:
    """LdapSettings from an AD integration read directly by the portal."""
    return LdapSettings(
        urls=tuple(integration.url_list()),
        base_dn=integration.base_dn,
        bind_dn=integration.bind_dn,
        bind_password=str(integration.bind_password or ""),
        tls_mode=integration.tls_mode or "ldaps",
        ca_pem=integration.tls_ca_pem,
        tls_verify=integration.tls_verify,
        page_size=integration.page_size or 500,
    )


def entra_connector(integration: Integration, **overrides: Any) -> EntraConnector:
    return EntraConnector(entra_settings(integration, **overrides))


def entra_settings(integration: Integration, **overrides: Any) -> EntraSettings:
    """EntraSettings from an Entra integration (saved or not); the retry policy from the portal's settings."""
    retry = RetryPolicy(max_attempts=django_settings.ENTRA_RETRY_MAX_ATTEMPTS,
                        cap_seconds=django_settings.ENTRA_RETRY_CAP_SECONDS,
                        backoff_base_seconds=django_settings.ENTRA_BACKOFF_BASE_SECONDS)
    values: dict[str, Any] = {
        "tenant": (integration.tenant or "").strip(),
        "client_id": (integration.app_client_id or "").strip(),
        "client_secret": integration.client_secret or "",
        "login_host": (integration.login_host or DEFAULT_LOGIN_HOST).strip(),
        "graph_base_url": (integration.graph_base_url or DEFAULT_GRAPH_BASE_URL).strip(),
        "scope": _scope_of(integration),
        "ca_pem": integration.tls_ca_pem or "",
        "verify": bool(integration.tls_verify),
        "delta_state": dict(integration.delta_state or {}),
        "tenant_guid": (integration.tenant_guid or "").strip(),
        "retry": retry,
        "incremental_change_limit": django_settings.ENTRA_INCREMENTAL_CHANGE_LIMIT,
        "read_concurrency": django_settings.ENTRA_READ_CONCURRENCY,
    }
    values.update(overrides)
    return EntraSettings(**values)


def _scope_of(integration: Integration) -> str:
    """The token scope: the cloud's own, or the one typed for a custom cloud (blank: from the Graph URL)."""
    cloud = CLOUDS.get(integration.entra_cloud or DEFAULT_CLOUD)
    if cloud is not None:
        return cloud.graph_scope
    return (integration.graph_scope or "").strip()
