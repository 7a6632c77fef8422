"""Agent uploads may name linked users the agent found deleted in AD (records of kind "gone")."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("directory", "0006_group_folder_kinds"),
    ]

    operations = [
        migrations.AlterField(
            model_name="agentuploadrecord",
            name="kind",
            field=models.CharField(choices=[("folder", "Folder (OU)"), ("user", "User"), ("gone", "User deleted in the directory")], max_length=6),
        ),
    ]
