"""The cloud of each Entra integration (login host, Graph URL and token scope set together) and the token scope.

Existing Entra integrations get the Microsoft cloud whose login host and Graph URL they use; any other pair
becomes Custom with the scope they used until now (the Graph URL's own host), so every row keeps working
exactly as before.
"""

from urllib.parse import urlsplit

from django.db import migrations, models

# Microsoft's published values as of this migration (directory/clouds.py may change later; this must not).
CLOUDS = {
    "global": ("login.microsoftonline.com", "https://graph.microsoft.com"),
    "usgov": ("login.microsoftonline.us", "https://graph.microsoft.us"),
    "usgov_dod": ("login.microsoftonline.us", "https://dod-graph.microsoft.us"),
    "china": ("login.chinacloudapi.cn", "https://microsoftgraph.chinacloudapi.cn"),
}


def set_clouds(apps, schema_editor):
    Integration = apps.get_model("directory", "Integration")
    for row in Integration.objects.filter(kind="entra").only("pk", "login_host", "graph_base_url"):
        host = (row.login_host or "login.microsoftonline.com").strip().lower()
        url = (row.graph_base_url or "https://graph.microsoft.com/v1.0").strip().rstrip("/")
        cloud = next((key for key, (login, graph) in CLOUDS.items()
                      if host == login and url.lower() == f"{graph}/v1.0"), "custom")
        if cloud == "custom":
            parts = urlsplit(url)
            scope = f"{parts.scheme}://{parts.netloc}/.default"
        else:
            scope = f"{CLOUDS[cloud][1]}/.default"
        Integration.objects.filter(pk=row.pk).update(entra_cloud=cloud, graph_scope=scope)


class Migration(migrations.Migration):

    dependencies = [
        ("directory", "0004_scim_kinds"),
    ]

    operations = [
        migrations.AddField(
            model_name="integration",
            name="entra_cloud",
            field=models.CharField(blank=True, choices=[("global", "Global"), ("usgov", "US Government (GCC High)"), ("usgov_dod", "US Government (DoD)"), ("china", "China (21Vianet)"), ("custom", "Custom: a proxy or private endpoint (login host, Graph URL and token scope typed below)")], db_default="global", default="global", max_length=12, verbose_name="Cloud"),
        ),
        migrations.AddField(
            model_name="integration",
            name="graph_scope",
            field=models.CharField(blank=True, db_default="", default="", help_text="Set by the cloud; typed only for Custom: the Graph resource the token is for, e.g. https://graph.microsoft.com/.default, when the Graph URL is a proxy with a host of its own.", max_length=255, verbose_name="Token scope"),
        ),
        migrations.AlterField(
            model_name="integration",
            name="graph_base_url",
            field=models.URLField(blank=True, default="https://graph.microsoft.com/v1.0", help_text="Set by the cloud; typed only for Custom."),
        ),
        migrations.AlterField(
            model_name="integration",
            name="login_host",
            field=models.CharField(blank=True, default="login.microsoftonline.com", help_text="Set by the cloud; typed only for Custom (a host alone, no https://).", max_length=255),
        ),
        migrations.RunPython(set_clouds, migrations.RunPython.noop),
    ]
