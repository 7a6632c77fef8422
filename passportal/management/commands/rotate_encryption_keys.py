from typing import Any

from django.apps import apps
from django.core.management.base import BaseCommand
from django.db import transaction

from passportal.crypto import EncryptedTextField


class Command(BaseCommand):
    help = "Re-encrypt every stored secret under the first key of FIELD_ENCRYPTION_KEYS."

    def handle(self, *args: str, **options: Any) -> None:
        total = 0
        for model in apps.get_models():
            fields = [f.attname for f in model._meta.concrete_fields if isinstance(f, EncryptedTextField)]
            if not fields:
                continue
            with transaction.atomic():
                # Reading decrypts with any key; writing encrypts with the first.
                for row in model._default_manager.select_for_update().values("pk", *fields).iterator():
                    updates = {f: str(row[f]) for f in fields if row[f]}
                    if updates:
                        model._default_manager.filter(pk=row["pk"]).update(**updates)
                        total += 1
        self.stdout.write(f"Re-encrypted secrets of {total} row(s) under the first key.")
