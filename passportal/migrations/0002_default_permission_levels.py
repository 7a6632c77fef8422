from django.db import migrations

from passportal.defaults import DEFAULT_PERMISSION_LEVELS, ensure_default_permission_levels


def seed(apps, schema_editor):
    ensure_default_permission_levels(apps.get_model("passportal", "PermissionLevel"))


def unseed(apps, schema_editor):
    PermissionLevel = apps.get_model("passportal", "PermissionLevel")
    for kind, name, _rank, _admin in DEFAULT_PERMISSION_LEVELS:
        PermissionLevel.objects.filter(user_kind=kind, name=name).delete()


class Migration(migrations.Migration):
    dependencies = [("passportal", "0001_initial")]
    operations = [migrations.RunPython(seed, unseed)]
