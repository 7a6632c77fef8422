# One portal user is linked from at most one directory identity (one person, one portal user, across all
# of a client's directories). Existing doubles are resolved first and reported.

from django.db import migrations, models


def resolve_doubles(apps, schema_editor):
    from provisioning.link_doubles import resolve_doubles as resolve

    removed = resolve(apps.get_model("provisioning", "DirectoryLink"), print)
    if removed:
        print(f"{removed} directory identities no longer share a portal user; their next sync names who keeps it.")


class Migration(migrations.Migration):

    dependencies = [
        ('provisioning', '0005_scim_trigger'),
    ]

    operations = [
        migrations.RunPython(resolve_doubles, migrations.RunPython.noop),
        migrations.RemoveConstraint(
            model_name='directorylink',
            name='link_one_identity_per_user',
        ),
        migrations.AddConstraint(
            model_name='directorylink',
            constraint=models.UniqueConstraint(fields=('portal_user',), name='link_one_identity_per_portal_user'),
        ),
    ]
