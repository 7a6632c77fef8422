import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    """What disabled a portal user, when, and which run or staff member: its page says so."""

    dependencies = [
        ('passportal', '0005_plain_help_texts'),
        ('provisioning', '0003_held_decision'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name='portaluser',
            name='disabled_at',
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='portaluser',
            name='disabled_by_run',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='provisioning.syncrun'),
        ),
        migrations.AddField(
            model_name='portaluser',
            name='staff_disabled_at',
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='portaluser',
            name='staff_disabled_by',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL),
        ),
        migrations.AlterField(
            model_name='portaluser',
            name='disabled_reason',
            field=models.CharField(blank=True, choices=[('', '-'), ('directory', 'Disabled in the directory'), ('deleted', 'Deleted in the directory'), ('out_of_scope', 'Moved out of every mapped folder'), ('link_off', "The integration's link was switched off")], default='', max_length=20),
        ),
    ]
