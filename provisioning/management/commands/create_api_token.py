"""manage.py create_api_token USERNAME: a new staff API token, shown once and stored only as a digest (R25)."""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from provisioning.api.authentication import issue_api_token


class Command(BaseCommand):
    help = "Create (or replace) a staff user's API token. It is printed once; only its digest is stored."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("username")

    def handle(self, *args: str, username: str, **options: Any) -> None:
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"No user named {username!r}.")
        if not (user.is_active and user.is_staff):
            raise CommandError(f"{username} is not an active staff user: the API is for staff only.")
        self.stdout.write(issue_api_token(user))
