"""`make run`'s sample data: a demo client and the Company Vault, each linked to a demo directory.

Idempotent: running it again finds what it made and only refreshes the folder trees. The demo
directory is ldap3's in-memory server read through the real LDAP connector (directory.connectors.demo).
"""

from typing import Any

from django.core.management.base import BaseCommand
from django.db import transaction

from directory.connectors.demo import organisations
from directory.folders import record_folders
from directory.models import Integration, IntegrationKind
from directory.sources import connector_for
from passportal.models import Client

DEMO_CLIENT_NAME = "Demo Client (sample data)"


class Command(BaseCommand):
    help = "Create a demo client and demo directory integrations (sample OUs and users) for trying the portal."

    @transaction.atomic
    def handle(self, *args: str, **options: Any) -> None:
        vault, _ = Client.objects.get_or_create(
            is_company_vault=True, defaults={"name": "Company Vault", "site_enabled": True}
        )
        demo_client, created = Client.objects.get_or_create(
            name=DEMO_CLIENT_NAME, is_company_vault=False, defaults={"site_enabled": True}
        )
        if created:
            self.stdout.write(f"Created the client {demo_client.name}")
        orgs = organisations()
        for client, org, name in (
            (demo_client, orgs["client"], "Demo directory: Contoso (sample data)"),
            (vault, orgs["vault"], "Demo directory: Acme MSP staff (sample data)"),
        ):
            integration, made = Integration.objects.get_or_create(
                client=client, kind=IntegrationKind.DEMO, base_dn=org["base_dn"], defaults={"name": name},
            )
            changes = record_folders(integration, connector_for(integration).read_folders())
            verb = "Created" if made else "Refreshed"
            folders = integration.folders.filter(gone=False).count()
            self.stdout.write(f"{verb} {integration.name} for {client.name}: {folders} OUs ({changes.created} new)")
