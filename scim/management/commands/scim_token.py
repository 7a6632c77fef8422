"""manage.py scim_token --integration ID [--revoke]: a new SCIM token (printed once), or stop them all."""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from directory.models import Integration, IntegrationKind
from scim.tokens import grace, issue_token, revoke_tokens


class Command(BaseCommand):
    help = "Create or rotate the SCIM token of a SCIM integration (the previous one keeps working for the grace)."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--integration", type=int, required=True)
        parser.add_argument("--revoke", action="store_true", help="Stop every token of the integration now.")

    def handle(self, *args: str, integration: int, revoke: bool, **options: Any) -> None:
        found = Integration.objects.filter(pk=integration, kind=IntegrationKind.SCIM).first()
        if found is None:
            raise CommandError(f"No SCIM integration with id {integration}.")
        if revoke:
            self.stdout.write(f"{revoke_tokens(found)} tokens stopped.")
            return
        token = issue_token(found)
        self.stdout.write(f"SCIM endpoint: {settings.PORTAL_BASE_URL}/scim/v2/{found.pk}/")
        self.stdout.write(f"Token (shown once): {token}")
        self.stdout.write(f"Tokens issued before keep working for {int(grace().total_seconds() // 60)} minutes.")
