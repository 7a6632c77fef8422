"""Pick the connector for an integration. The only place that turns a model into connector settings."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .base import Connector, DirectoryAuthError, DirectoryError, DirectoryUnavailable

if TYPE_CHECKING:
    from directory.models import Integration

__all__ = ["Connector", "DirectoryAuthError", "DirectoryError", "DirectoryUnavailable", "connector_for"]


def connector_for(integration: Integration) -> Connector:
    from directory.models import AdMode, IntegrationKind

    if integration.kind == IntegrationKind.ENTRA:
        from .entra import EntraConnector

        return EntraConnector.for_integration(integration)
    if integration.kind == IntegrationKind.SCIM:
        from scim.connector import ScimConnector

        return ScimConnector(integration)
    if integration.kind == IntegrationKind.DEMO:
        from .demo import demo_connector

        return demo_connector(integration)
    if integration.ad_mode == AdMode.AGENT:
        from directory.uploads import UploadConnector

        return UploadConnector(integration)
    from .ldap import LdapConnector

    return LdapConnector.for_integration(integration)
