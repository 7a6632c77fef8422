import os
import secrets
from argparse import ArgumentParser
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from passportal.models import Client


class Command(BaseCommand):
    help = "First start: create the Company Vault and a staff superuser (password printed once)."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--vault-name", default=os.environ.get("MSP_NAME", "Your MSP"),
                            help="The MSP's name, shown in emails (env MSP_NAME).")
        parser.add_argument("--username", default="admin")

    def handle(self, *args: str, vault_name: str, username: str, **options: Any) -> None:
        vault, created = Client.objects.get_or_create(
            is_company_vault=True, defaults={"name": vault_name, "site_enabled": True}
        )
        if created:
            self.stdout.write(f"Created the Company Vault: {vault.name}")
        User = get_user_model()
        if not User.objects.filter(is_superuser=True).exists():
            password = secrets.token_urlsafe(12)
            User.objects.create_superuser(username=username, email="", password=password)
            # Shown once; only Django's hash of it is stored.
            self.stdout.write(self.style.SUCCESS(
                f"Staff superuser created. Log in at /admin/ as '{username}' with password: {password}\n"
                "This password is shown only now."
            ))
        else:
            self.stdout.write("A staff superuser exists already.")
