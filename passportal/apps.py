from django.apps import AppConfig


class PassportalConfig(AppConfig):
    verbose_name = "Vault"
    name = "passportal"
    default_auto_field = "django.db.models.BigAutoField"
