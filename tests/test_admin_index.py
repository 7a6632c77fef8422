from django.contrib.auth import get_user_model
from django.urls import reverse


def test_r27_the_admin_index_leads_to_the_overview_and_the_clients(client, db):
    admin = get_user_model().objects.create_superuser("root", "root@msp.test", "a-long-test-password")
    client.force_login(admin)
    page = client.get(reverse("admin:index")).content.decode()
    assert reverse("provisioning:overview") in page and "Provisioning overview" in page
    assert client.get(reverse("provisioning:overview")).status_code == 200
