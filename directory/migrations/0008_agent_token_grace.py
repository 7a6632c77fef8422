"""An agent token a rotation replaced keeps working for a grace period (AGENT_TOKEN_GRACE_MINUTES)."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('directory', '0007_upload_gone_records'),
    ]

    operations = [
        migrations.AddField(
            model_name='integration',
            name='agent_previous_token_hash',
            field=models.CharField(blank=True, db_default="", db_index=True, default="", max_length=64),
        ),
        migrations.AddField(
            model_name='integration',
            name='agent_previous_token_until',
            field=models.DateTimeField(blank=True, null=True),
        ),
    ]
