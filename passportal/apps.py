from typing import Any

from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _seed_permission_levels(sender: AppConfig, **kwargs: Any) -> None:
    from .defaults import ensure_default_permission_levels
    from .models import PermissionLevel

    ensure_default_permission_levels(PermissionLevel)


def _ensure_schedules_after_migrate(sender: AppConfig, using: str = "default", **kwargs: Any) -> None:
    from django.db import connections

    # A partial migrate (one app, or backwards) may leave django-q2's table out.
    if "django_q_schedule" not in connections[using].introspection.table_names():
        return
    from .schedules import ensure_schedules

    ensure_schedules(using=using)


class PassportalConfig(AppConfig):
    name = "passportal"
    verbose_name = "Vault"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Also after a flush (Django's test cases flush between transactional tests).
        post_migrate.connect(_seed_permission_levels, sender=self, dispatch_uid="passportal-default-levels")
        # Every app's schedules, from the one table (passportal/schedules.py).
        post_migrate.connect(_ensure_schedules_after_migrate, sender=self, dispatch_uid="passportal.schedules")
