from django.db import migrations

# Ranked so that R13 ("the highest-ranked of those mappings") has an obvious answer.
DEFAULTS = [
    ("pro", "Administrator", 40, False),
    ("pro", "Manager", 30, False),
    ("pro", "Technician", 20, False),
    ("pro", "Read Only", 10, False),
    ("site", "Site Admin", 40, True),
    ("site", "Site Manager", 30, False),
    ("site", "Site User", 20, False),
    ("site", "Read Only", 10, False),
]


def seed(apps, schema_editor):
    PermissionLevel = apps.get_model("passportal", "PermissionLevel")
    for kind, name, rank, is_site_admin in DEFAULTS:
        PermissionLevel.objects.get_or_create(
            user_kind=kind, name=name, defaults={"rank": rank, "is_site_admin": is_site_admin}
        )


def unseed(apps, schema_editor):
    PermissionLevel = apps.get_model("passportal", "PermissionLevel")
    for kind, name, _rank, _admin in DEFAULTS:
        PermissionLevel.objects.filter(user_kind=kind, name=name).delete()


class Migration(migrations.Migration):
    dependencies = [("passportal", "0001_initial")]
    operations = [migrations.RunPython(seed, unseed)]
