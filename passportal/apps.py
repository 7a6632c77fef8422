from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _seed_permission_levels(sender, **kwargs):
    from .defaults import ensure_default_permission_levels
    from .models import PermissionLevel

    ensure_default_permission_levels(PermissionLevel)


class PassportalConfig(AppConfig):
    name = "passportal"
    verbose_name = "Vault"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Also after a flush (Django's test cases flush between transactional tests).
        post_migrate.connect(_seed_permission_levels, sender=self, dispatch_uid="passportal-default-levels")
