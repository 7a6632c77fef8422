"""The staff REST API: token auth, model permissions per endpoint, field-named errors, write-only secrets."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import User
from rest_framework.test import APIClient

from directory.models import Integration
from notifications.services import NotificationKind, notify
from passportal.models import PermissionLevel, PortalUser, SecurityGroup
from provisioning import sync
from provisioning.api.authentication import issue_api_token
from provisioning.models import Mapping, SyncRun
from tests.fixtures_browser import activated_site_admin, agent_integration, ou, person, push_directory, staff_user
from tests.fixtures_entra import entra_integration_values

SALES, IT = ou(1, "Sales"), ou(2, "IT")
PEOPLE = [person(1, SALES), person(2, SALES), person(3, IT)]


def api_for(user: User, capture=None) -> APIClient:
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {issue_api_token(user)}")
    if capture is not None:
        from tests.fixtures_browser import run_commit_hooks_per_request

        run_commit_hooks_per_request(api, capture)
    return api


@pytest.fixture
def corp(client_org):
    activated_site_admin(client_org)
    return agent_integration(client_org, [SALES, IT], PEOPLE)


@pytest.fixture
def boss(db, settings, django_capture_on_commit_callbacks) -> APIClient:
    settings.TASKS_RUN_INLINE = True
    return api_for(staff_user("boss", superuser=True), django_capture_on_commit_callbacks)


def level(name="Site User", kind="site") -> PermissionLevel:
    return PermissionLevel.objects.get(user_kind=kind, name=name)


def folder_pk(integration, record) -> int:
    return integration.folders.get(external_id=record["id"]).pk


def test_r15_apply_dry_run_previews_and_saves_nothing(boss, corp):
    body = {"integration": corp.pk, "folders": [folder_pk(corp, SALES)], "permission_level": level().pk,
            "dry_run": True}
    asked = boss.post("/api/mappings/apply/", body, format="json")
    # An agent integration: the agent is asked to read AD (202, the waiting run's address); the suite's stand-in for
    # the agent answers, and the run, read again, is the preview.
    assert asked.status_code == 202 and asked.json()["phase"] == "waiting for the on-prem agent", asked.json()
    response = boss.get(asked["Location"])
    assert response.json()["status"] == "succeeded", response.json()
    assert response.json()["dry_run"] and response.json()["counts"]["created"] == 2
    assert len(response.json()["changes"]["create"]) == 2
    assert not Mapping.objects.exists() and PortalUser.objects.count() == 1


def test_r16_apply_saves_mappings_and_runs_the_sync(boss, corp):
    group = SecurityGroup.objects.create(client=corp.client, name="Sales team")
    body = {"integration": corp.pk, "folders": [folder_pk(corp, SALES), folder_pk(corp, IT)],
            "permission_level": level().pk, "security_groups": [group.pk]}
    response = boss.post("/api/mappings/apply/", body, format="json")
    assert response.status_code == 202
    run = boss.get(f"/api/runs/{response.json()['id']}/").json()
    assert run["status"] == "succeeded" and run["counts"]["created"] == 3
    assert Mapping.objects.count() == 2
    assert list(PortalUser.objects.get(email="user1@corp.test").security_groups.values_list("name", flat=True)) \
        == ["Sales team"]


def test_r15_apply_bad_input_names_the_field(boss, corp, vault):
    url = "/api/mappings/apply/"
    base = {"integration": corp.pk, "folders": [folder_pk(corp, SALES)], "permission_level": level().pk}
    assert "folders" in boss.post(url, {**base, "folders": []}, format="json").json()
    assert "permission_level" in boss.post(url, {**base, "permission_level": level("Technician", "pro").pk},
                                           format="json").json()
    assert "integration" in boss.post(url, {**base, "integration": 99999}, format="json").json()
    other = SecurityGroup.objects.create(client=vault, name="MSP group")
    assert "security_groups" in boss.post(url, {**base, "security_groups": [other.pk]}, format="json").json()
    many = agent_integration(corp.client, [ou(100 + n, f"T{n}") for n in range(101)], [], name="Big")
    all_folders = list(many.folders.values_list("pk", flat=True))
    response = boss.post(url, {**base, "integration": many.pk, "folders": all_folders}, format="json")
    assert response.status_code == 400 and "at most 100" in str(response.json()["folders"])


def test_r14_apply_refused_without_activated_site_admin(boss, client_org):
    integration = agent_integration(client_org, [SALES], PEOPLE[:1])
    body = {"integration": integration.pk, "folders": [folder_pk(integration, SALES)], "permission_level": level().pk}
    response = boss.post("/api/mappings/apply/", body, format="json")
    assert response.status_code == 400 and "Site Admin" in str(response.json()["integration"])
    assert boss.get(f"/api/clients/{client_org.pk}/").json()["mapping_blockers"]


def test_r9_deleting_a_mapping_disables_its_users(boss, corp):
    boss.post("/api/mappings/apply/", {"integration": corp.pk, "folders": [folder_pk(corp, SALES)],
                                       "permission_level": level().pk}, format="json")
    mapping = Mapping.objects.get()
    assert boss.delete(f"/api/mappings/{mapping.pk}/").status_code == 202
    assert PortalUser.objects.get(email="user1@corp.test").disabled_reason == "out_of_scope"


def test_r10_link_off_via_api(boss, corp):
    boss.post("/api/mappings/apply/", {"integration": corp.pk, "folders": [folder_pk(corp, SALES)],
                                       "permission_level": level().pk}, format="json")
    assert "enabled" in boss.post(f"/api/integrations/{corp.pk}/link/", {}, format="json").json()
    response = boss.post(f"/api/integrations/{corp.pk}/link/", {"enabled": False}, format="json")
    assert response.status_code == 200 and response.json()["counts"]["disabled"] == 2


def test_r17_force_resync_via_api(boss, corp):
    response = boss.post(f"/api/integrations/{corp.pk}/resync/")
    assert response.status_code == 202 and SyncRun.objects.get(pk=response.json()["id"]).trigger == "force"
    assert response.json()["full"] is True


def test_r17_incremental_resync_via_api_runs_the_delta_sync(db, settings, django_capture_on_commit_callbacks,
                                                              fake_entra, client_org):
    settings.TASKS_RUN_INLINE = True
    au = fake_entra.add_au("Sales")
    fake_entra.add_user("Ann", "Lee", mail="ann@contoso.com", aus=[au])
    integration = Integration.objects.create(client=client_org, name="Contoso Entra",
                                             **entra_integration_values(fake_entra))
    sync.run_sync(integration, "force")
    Mapping.objects.create(folder=integration.folders.get(external_id=au.id), permission_level=level())
    assert sync.run_sync(integration, "force").counts["created"] == 1
    fake_entra.add_user("Bob", "Ray", mail="bob@contoso.com", aus=[au])
    fake_entra.requests_seen.clear()
    boss = api_for(staff_user("boss", superuser=True), django_capture_on_commit_callbacks)

    response = boss.post(f"/api/integrations/{integration.pk}/resync/", {"incremental": True}, format="json")

    assert response.status_code == 202 and response.json()["full"] is False
    run = boss.get(f"/api/runs/{response.json()['id']}/").json()
    assert run["status"] == "succeeded" and run["counts"]["created"] == 1, run
    assert fake_entra.requests_to("/users/delta") and not fake_entra.requests_to("/members/microsoft.graph.user")
    assert "incremental" in boss.post(f"/api/integrations/{integration.pk}/resync/", {"incremental": "maybe"},
                                      format="json").json()


def test_r22_held_disables_applied_via_api(boss, corp):
    corp.disable_threshold_minimum = 1
    corp.save()
    boss.post("/api/mappings/apply/", {"integration": corp.pk, "folders": [folder_pk(corp, SALES), folder_pk(corp, IT)],
                                       "permission_level": level().pk}, format="json")
    run = push_directory(corp, [SALES, IT], PEOPLE[2:])
    assert run.status == "held"
    response = boss.post(f"/api/runs/{run.pk}/apply-held/")
    assert response.json()["held_resolution"] == "applied"
    assert boss.post(f"/api/runs/{run.pk}/discard-held/").status_code == 409
    assert PortalUser.objects.get(email="user1@corp.test").status == "disabled"


def test_r28_resync_user_and_r8_staff_enable_via_api(boss, corp):
    boss.post("/api/mappings/apply/", {"integration": corp.pk, "folders": [folder_pk(corp, SALES)],
                                       "permission_level": level().pk}, format="json")
    user = PortalUser.objects.get(email="user1@corp.test")
    runs = boss.post(f"/api/users/{user.pk}/resync/").json()
    assert len(runs) == 1 and runs[0]["trigger"] == "user" and runs[0]["status"] == "succeeded"
    # An agent integration: the run says it applied the agent's last upload, and the agent is asked for a fresh read.
    assert "not from Active Directory as it is now" in runs[0]["changes"]["source"]
    # ... which the suite's stand-in for the agent answers at once (test_agent_parity.py: the real agent).
    assert SyncRun.objects.filter(trigger="user", status="succeeded").count() == 2
    assert boss.post(f"/api/users/{user.pk}/enabled/", {"enabled": False}, format="json").json()["status"] == "disabled"
    assert boss.post(f"/api/users/{user.pk}/enabled/", {"enabled": "maybe"}, format="json").status_code == 400
    assert boss.post(f"/api/users/{user.pk}/enabled/", {"enabled": True}, format="json").json()["status"] == "pending"


def test_r25_secrets_are_write_only(boss, client_org):
    body = {"client": client_org.pk, "name": "DC", "kind": "ad", "ad_mode": "direct", "base_dn": "DC=corp,DC=test",
            "ldap_urls": "ldaps://dc.corp.test", "bind_dn": "svc@corp.test", "bind_password": "S3cret-bind-pw"}
    response = boss.post("/api/integrations/", body, format="json")
    assert response.status_code == 201, response.json()
    assert "bind_password" not in response.json() and response.json()["has_bind_password"]
    listing = boss.get("/api/integrations/").content.decode()
    assert "S3cret-bind-pw" not in listing
    assert str(Integration.objects.get().bind_password) == "S3cret-bind-pw"
    bad = boss.post("/api/integrations/", {**body, "ad_mode": ""}, format="json")
    assert bad.status_code == 400 and "ad_mode" in bad.json()


def test_r5_entra_integration_of_a_tenant_already_linked_is_refused(boss, vault, fake_entra):
    body = {"client": vault.pk, "name": "Entra", "kind": "entra", "entra_role": "primary",
            "tenant": fake_entra.tenant.domains[0], "app_client_id": fake_entra.app.client_id,
            "client_secret": fake_entra.app.secret, "entra_cloud": "custom", "login_host": fake_entra.login_host,
            "graph_base_url": fake_entra.graph_base_url, "graph_scope": f"{fake_entra.graph_resource}/.default",
            "tls_ca_pem": fake_entra.ca_pem}
    first = boss.post("/api/integrations/", body, format="json")
    assert first.status_code == 201 and first.json()["tenant_guid"] == fake_entra.tenant.guid
    assert "client_secret" not in first.json()
    second = boss.post("/api/integrations/", {**body, "entra_role": "additional",
                                              "tenant": fake_entra.tenant.domains[1]}, format="json")
    assert second.status_code == 400 and fake_entra.tenant.guid in str(second.json()["tenant"])


def test_r20_notifications_listed_and_marked_read(boss, corp):
    note = notify(NotificationKind.SYNC_FAILED, title="Corp AD: sync failed", integration=corp)
    listed = boss.get("/api/notifications/?unread=1").json()["results"]
    assert [n["id"] for n in listed] == [note.pk]
    assert boss.post(f"/api/notifications/{note.pk}/read/").json()["read_at"]
    assert boss.get("/api/notifications/?unread=1").json()["results"] == []


def test_folders_and_users_are_listed(boss, corp):
    folders = boss.get(f"/api/folders/?integration={corp.pk}").json()["results"]
    assert sorted(f["name"] for f in folders) == ["IT", "Sales"]
    users = boss.get(f"/api/users/?client={corp.client_id}").json()["results"]
    assert [u["email"] for u in users] == ["siteadmin@client.test"]
    assert "password" not in users[0]


ENDPOINTS = [
    ("get", "/api/clients/", "passportal.view_client"),
    ("get", "/api/integrations/", "directory.view_integration"),
    ("get", "/api/folders/", "directory.view_folder"),
    ("get", "/api/mappings/", "provisioning.view_mapping"),
    ("post", "/api/mappings/apply/", "provisioning.add_mapping"),
    ("get", "/api/runs/", "provisioning.view_syncrun"),
    ("get", "/api/users/", "passportal.view_portaluser"),
    ("get", "/api/notifications/", "notifications.view_notification"),
    ("post", "/api/integrations/{i}/resync/", "provisioning.add_syncrun"),
    ("post", "/api/integrations/{i}/link/", "directory.change_integration"),
    ("post", "/api/users/{u}/resync/", "passportal.change_portaluser"),
    ("post", "/api/users/{u}/enabled/", "passportal.change_portaluser"),
    ("post", "/api/runs/{r}/apply-held/", "provisioning.change_syncrun"),
    ("get", "/api/schema/", None),
]


def _urls(corp):
    user = PortalUser.objects.first()
    run = SyncRun.objects.first()
    return [(m, u.format(i=corp.pk, u=user.pk, r=run.pk), p) for m, u, p in ENDPOINTS]


def test_non_staff_and_anonymous_are_refused(corp):
    visitor = api_for(User.objects.create_user("visitor", "v@x.test", "Visitor-Passw0rd-123"))
    for method, url, _perm in _urls(corp):
        assert getattr(visitor, method)(url).status_code == 403, url
        assert getattr(APIClient(), method)(url).status_code == 401, url
    assert Integration.objects.get().link_enabled


def test_staff_without_the_permission_are_refused(corp):
    intern = api_for(staff_user("intern"))
    for method, url, perm in _urls(corp):
        if perm is None:
            continue
        assert getattr(intern, method)(url).status_code == 403, url


def test_staff_with_the_view_permission_can_read_but_not_act(corp):
    viewer = api_for(staff_user("viewer", "provisioning.view_syncrun", "directory.view_integration"))
    assert viewer.get("/api/runs/").status_code == 200
    assert viewer.get("/api/integrations/").status_code == 200
    assert viewer.post(f"/api/integrations/{corp.pk}/resync/").status_code == 403
    assert viewer.post(f"/api/integrations/{corp.pk}/link/", {"enabled": False}, format="json").status_code == 403


def test_openapi_schema_and_docs_are_published(boss):
    schema = boss.get("/api/schema/")
    assert schema.status_code == 200 and b"/api/mappings/apply/" in schema.content
    assert boss.get("/api/docs/").status_code == 200


def test_r25_the_api_docs_speak_in_words_without_rule_numbers(boss):
    """The published schema is read by operators: descriptions say what happens, rule numbers stay in the code."""
    schema = boss.get("/api/schema/", HTTP_ACCEPT="application/json").content.decode()
    assert "Switch the link on or off" in schema
    numbered = sorted(set(re.findall(r"\((?:R|G)\d+[^)]*\)", schema)))
    assert numbered == [], f"rule numbers in the API docs: {numbered}"
