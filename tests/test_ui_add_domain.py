"""Add Domain (an additional Entra ID domain) and its cog, against the Microsoft login + Graph stand-in."""

from __future__ import annotations

import re

from django.urls import reverse

from directory.models import Integration
from passportal.models import PermissionLevel, PortalUser
from provisioning.models import SyncRun


def domain_form(server, **overrides) -> dict:
    values = {"name": "Contoso Entra", "tenant": server.tenant.domains[0], "app_client_id": server.app.client_id,
              "client_secret": server.app.secret, "entra_cloud": "custom", "login_host": server.login_host,
              "graph_base_url": server.graph_base_url, "graph_scope": f"{server.graph_resource}/.default",
              "tls_ca_pem": server.ca_pem}
    values.update(overrides)
    return values


def test_add_domain_then_cog_then_apply_creates_pro_users(staff_client, vault, fake_entra):
    staff_au = fake_entra.add_au("Staff")
    fake_entra.add_user("Ada", "Lovelace", mail="ada@contoso.com", aus=[staff_au])
    fake_entra.add_user("Alan", "Turing", mail="alan@contoso.com", aus=[staff_au])
    url = reverse("provisioning:add-domain", args=[vault.pk])
    response = staff_client.post(url, domain_form(fake_entra))
    assert response.status_code == 302, response.content.decode()
    integration = Integration.objects.get()
    assert integration.entra_role == "additional" and integration.tenant_guid == fake_entra.tenant.guid
    mapping_page = staff_client.get(response.url).content.decode()
    assert "Contoso Entra" in mapping_page and "cog" in mapping_page and "Force Re-sync" in mapping_page
    assert fake_entra.app.secret not in mapping_page

    setup_page = staff_client.get(reverse("provisioning:setup", args=[integration.pk])).content.decode()
    assert re.findall(r'data-folder-name="([^"]+)"', setup_page) == ["Staff"]
    folder = integration.folders.get()
    level = PermissionLevel.objects.get(user_kind="pro", name="Technician")
    confirm = staff_client.post(reverse("provisioning:setup", args=[integration.pk]),
                                {"folders": [folder.pk], "permission_level": level.pk, "apply": "Apply"}).url
    assert '<td class="count">2</td>' in staff_client.get(confirm).content.decode()
    staff_client.post(confirm, {"yes": "1"})
    run = SyncRun.objects.get(trigger="apply", dry_run=False)
    assert run.status == "succeeded", run.error
    assert sorted(PortalUser.objects.values_list("email", flat=True)) == ["ada@contoso.com", "alan@contoso.com"]
    assert {u.kind for u in PortalUser.objects.all()} == {"pro"}


def test_r5_a_second_domain_of_the_same_tenant_is_refused_naming_the_tenant(staff_client, vault, fake_entra):
    url = reverse("provisioning:add-domain", args=[vault.pk])
    staff_client.post(url, domain_form(fake_entra))
    response = staff_client.post(url, domain_form(fake_entra, name="Same tenant", tenant=fake_entra.tenant.domains[1]))
    page = response.content.decode()
    assert response.status_code == 200 and fake_entra.tenant.guid in page and "already linked" in page
    assert Integration.objects.count() == 1


def test_add_domain_wrong_secret_gets_a_message_on_the_field(staff_client, vault, fake_entra):
    response = staff_client.post(reverse("provisioning:add-domain", args=[vault.pk]),
                                 domain_form(fake_entra, client_secret="not-the-secret"))
    page = response.content.decode()
    assert response.status_code == 200 and not Integration.objects.exists()
    field_block = page.split('field-client_secret', 1)[1].split("</div>", 2)[0]
    assert "errorlist" in field_block
    assert "not-the-secret" not in page


def test_add_domain_missing_fields_are_named(staff_client, vault):
    page = staff_client.post(reverse("provisioning:add-domain", args=[vault.pk]), {"name": "x"}).content.decode()
    for field in ("tenant", "app_client_id", "client_secret"):
        assert "This field is required" in page.split(f"field-{field}", 1)[1].split("</div>", 1)[0]
