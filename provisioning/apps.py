from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _ensure_schedules(sender, **kwargs):
    from .schedules import ensure_schedules

    ensure_schedules()


class ProvisioningConfig(AppConfig):
    name = "provisioning"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        post_migrate.connect(_ensure_schedules, sender=self, dispatch_uid="provisioning-schedules")
        from . import receivers  # noqa: F401  (connects the agent-upload signal)
