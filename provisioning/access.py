"""R14: who may configure user mapping for a client, and what is missing when nobody may."""

from __future__ import annotations

from django.db.models import QuerySet

from passportal.models import Client, PortalUser, UserStatus


def activated_site_admins(client: Client) -> QuerySet[PortalUser]:
    return PortalUser.objects.filter(
        client=client, permission_level__is_site_admin=True, activated_at__isnull=False,
    ).exclude(status=UserStatus.DISABLED)


def mapping_blockers(client: Client) -> list[str]:
    """What stops user mapping for this client, as sentences for staff; empty when it may be configured."""
    missing = []
    if not client.site_enabled:
        missing.append("The site is not enabled: turn on Enable Site and save the client.")
    if not client.is_company_vault and not activated_site_admins(client).exists():
        missing.append(
            "The client has no activated Site Admin: create a Site-User with a Site Admin permission level "
            "and let them complete their account activation."
        )
    return missing


def may_configure_mapping(client: Client) -> bool:
    return not mapping_blockers(client)
