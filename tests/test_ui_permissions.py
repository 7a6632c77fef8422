"""Every staff page of the User Mapping flow: non-staff are sent to the login, staff without the permission get 403."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.urls import reverse

from directory.models import Integration
from passportal.models import PermissionLevel, PortalUser
from provisioning.models import Mapping, SyncRun
from tests.fixtures_browser import activated_site_admin, agent_integration, ou, person, staff_user

SALES = ou(1, "Sales")


@pytest.fixture
def world(client_org):
    activated_site_admin(client_org)
    integration = agent_integration(client_org, [SALES], [person(1, SALES)])
    folder = integration.folders.get()
    Mapping.objects.create(folder=folder, permission_level=PermissionLevel.objects.get(user_kind="site",
                                                                                       name="Site User"))
    run = SyncRun.objects.filter(integration=integration).first()
    user = PortalUser.objects.get(email="siteadmin@client.test")
    return {"client": client_org, "integration": integration, "folder": folder, "run": run, "user": user}


def pages(w) -> list[tuple[str, str, str]]:
    i, c = w["integration"].pk, w["client"].pk
    return [
        ("get", reverse("provisioning:overview"), "directory.view_integration"),
        ("get", reverse("provisioning:user-mapping", args=[c]), "provisioning.view_mapping"),
        ("get", reverse("provisioning:add-domain", args=[c]), "directory.add_integration"),
        ("get", reverse("provisioning:link", args=[i]) + "?enabled=0", "directory.change_integration"),
        ("post", reverse("provisioning:force-resync", args=[i]), "provisioning.add_syncrun"),
        ("get", reverse("provisioning:setup", args=[i]), "provisioning.add_mapping"),
        ("get", reverse("provisioning:remove-mapping", args=[i, w["folder"].pk]), "provisioning.delete_mapping"),
        ("get", reverse("provisioning:run", args=[w["run"].pk]), "provisioning.view_syncrun"),
        ("get", reverse("provisioning:run-status", args=[w["run"].pk]), "provisioning.view_syncrun"),
        ("post", reverse("provisioning:held-decision", args=[w["run"].pk]), "provisioning.change_syncrun"),
        ("post", reverse("provisioning:user-resync", args=[w["user"].pk]), "passportal.change_portaluser"),
        ("post", reverse("provisioning:user-enabled", args=[w["user"].pk]), "passportal.change_portaluser"),
    ]


def test_non_staff_are_sent_to_the_login_page(client, world):
    # force_login: django-axes refuses authenticate() without the request, which client.login() does not pass.
    client.force_login(User.objects.create_user("visitor", "v@x.test", "Visitor-Passw0rd-123"))
    for method, url, _perm in pages(world):
        response = getattr(client, method)(url)
        assert response.status_code == 302 and "/admin/login/" in response.url, url
    assert Integration.objects.get().link_enabled


def test_staff_without_the_permission_are_refused(client, world):
    client.force_login(staff_user("intern"))  # staff, no permissions at all
    for method, url, _perm in pages(world):
        assert getattr(client, method)(url).status_code == 403, url
    assert SyncRun.objects.filter(trigger="force").count() == 0


def test_staff_with_only_view_permissions_cannot_change_anything(client, world):
    client.force_login(staff_user("viewer", "provisioning.view_mapping", "provisioning.view_syncrun",
                                  "directory.view_integration"))
    assert client.get(reverse("provisioning:user-mapping", args=[world["client"].pk])).status_code == 200
    assert client.get(reverse("provisioning:run", args=[world["run"].pk])).status_code == 200
    assert client.get(reverse("provisioning:setup", args=[world["integration"].pk])).status_code == 403
    assert client.post(reverse("provisioning:force-resync", args=[world["integration"].pk])).status_code == 403
