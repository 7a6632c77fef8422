"""Check an Entra integration before it is saved: resolve its tenant, refuse a tenant linked twice (R5).

The admin form calls `check_entra_integration(integration)` from its clean(). The tenant GUID comes
from msal's authority discovery (a domain resolves to its tenant's GUID without any Graph permission)
and is confirmed by GET /organization, which also lists the verified domains.
"""

from __future__ import annotations

from dataclasses import replace

from django.core.exceptions import ValidationError
from django.db.models import Q

from notifications.services import NotificationKind, notify

from .clouds import CUSTOM
from .connectors.base import DirectoryAuthError, DirectoryError
from .connectors.entra import EntraConnector, EntraSettings, ScopeRefused, TenantInfo
from .models import Integration, IntegrationKind
from .sources import entra_settings


def resolve_tenant(settings: EntraSettings) -> TenantInfo:
    """Log in with the integration's app and read /organization. Raises DirectoryError subclasses."""
    connector = EntraConnector(settings)
    try:
        return connector.tenant_info()
    finally:
        connector.close()


def linked_integration(integration: Integration, tenant: TenantInfo) -> Integration | None:
    """Another integration of the same client that already reaches this tenant, if any."""
    if not integration.client_id:
        return None
    names = [tenant.guid, *tenant.domains]
    same_tenant = Q(tenant_guid__iexact=tenant.guid)
    for name in names:  # older rows saved before their GUID was known
        same_tenant |= Q(tenant_guid="", tenant__iexact=name)
    others = Integration.objects.filter(client_id=integration.client_id, kind=IntegrationKind.ENTRA)
    if integration.pk:
        others = others.exclude(pk=integration.pk)
    return others.filter(same_tenant).order_by("pk").first()


def check_entra_integration(integration: Integration) -> TenantInfo:
    """Resolve the tenant of a saved or unsaved Entra integration and set tenant_guid / tenant_domains.

    Raises ValidationError naming what to fix: the credentials (from the OAuth error code), the
    login host, or the integration that already links this tenant to the client (R5).
    """
    settings = replace(entra_settings(integration), tenant_guid="", delta_state={})
    try:
        tenant = resolve_tenant(settings)
    except ScopeRefused as exc:  # said on the field that chose the scope
        field = "graph_scope" if integration.entra_cloud == CUSTOM else "entra_cloud"
        raise ValidationError({field: str(exc)}) from exc
    except DirectoryAuthError as exc:
        raise ValidationError(str(exc), code="entra_refused") from exc
    except DirectoryError as exc:
        raise ValidationError(f"Could not check the Entra ID tenant: {exc}", code="entra_unreachable") from exc

    existing = linked_integration(integration, tenant)
    if existing is not None:
        domains = ", ".join(tenant.domains) or "no verified domains"
        message = (f"{tenant.guid} ({domains}) is already linked to this client through {existing.name}")
        notify(
            NotificationKind.TENANT_LINKED,
            title=f"Entra tenant {tenant.display_name or tenant.guid} is already linked",
            message=f"{message}. Adding {integration.name or integration.tenant} was refused so that no user is "
                    "provisioned twice (R5).",
            client=existing.client, integration=existing,
        )
        raise ValidationError(message, code="tenant_already_linked")

    if integration.tenant_guid and integration.tenant_guid.lower() != tenant.guid:
        integration.delta_state = {}  # links of another tenant mean nothing here
    integration.tenant_guid = tenant.guid
    integration.tenant_domains = list(tenant.domains)
    return tenant
