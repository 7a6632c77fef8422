import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    """Help texts people read (admin, API schema) say what a field means, without rule numbers."""

    dependencies = [
        ('provisioning', '0003_held_decision'),
    ]

    operations = [
        migrations.AlterField(
            model_name='syncrun',
            name='portal_user',
            field=models.ForeignKey(blank=True, help_text='The one user a single-user resync was for.', null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='passportal.portaluser'),
        ),
    ]
