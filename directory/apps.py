from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _ensure_schedules_after_migrate(sender, using: str = "default", **kwargs) -> None:
    from django.db import connections

    # A partial migrate (one app, or backwards) may leave django-q2's table out.
    if "django_q_schedule" not in connections[using].introspection.table_names():
        return
    from .schedules import ensure_schedules

    ensure_schedules(using=using)


class DirectoryConfig(AppConfig):
    name = "directory"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        post_migrate.connect(_ensure_schedules_after_migrate, sender=self, dispatch_uid="directory.schedules")
