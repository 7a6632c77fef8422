"""Agent health: the host the agent runs on and how long its last read took (each push and poll says them)."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('directory', '0008_agent_token_grace'),
    ]

    operations = [
        migrations.AddField(
            model_name='integration',
            name='agent_host',
            field=models.CharField(blank=True, db_default='', default='', max_length=255, verbose_name='Agent host'),
        ),
        migrations.AddField(
            model_name='integration',
            name='agent_last_read_seconds',
            field=models.FloatField(blank=True, null=True, verbose_name="Agent's last read (seconds)"),
        ),
        migrations.AlterField(
            model_name='integration',
            name='agent_last_contact',
            field=models.DateTimeField(blank=True, null=True, verbose_name='Last heard from the agent'),
        ),
        migrations.AlterField(
            model_name='integration',
            name='agent_version',
            field=models.CharField(blank=True, max_length=50, verbose_name='Agent version'),
        ),
    ]
