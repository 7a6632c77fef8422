from django.db import migrations, models


class Migration(migrations.Migration):
    """Help texts staff read in the admin say what a field means, without rule numbers."""

    dependencies = [
        ('passportal', '0004_rate_counters'),
    ]

    operations = [
        migrations.AlterField(
            model_name='permissionlevel',
            name='rank',
            field=models.PositiveIntegerField(help_text='Higher wins when several mappings apply to one user.'),
        ),
        migrations.AlterField(
            model_name='permissionlevel',
            name='is_site_admin',
            field=models.BooleanField(default=False, help_text='Users with this level are Site Admins of their client.'),
        ),
        migrations.AlterField(
            model_name='portaluser',
            name='permission_level_set_by_hand',
            field=models.BooleanField(default=False, help_text='Set by staff: mappings leave this level alone.'),
        ),
    ]
