"""The API does what the admin does: permission levels, security groups, creation issues, agent tokens, the
portal users staff create (a client's Site Admin), users' directory identities and groups; Token or Bearer."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from rest_framework.test import APIClient

from directory.models import Integration
from notifications.models import OutboxEmail
from passportal.models import Client, PermissionLevel, PortalUser, SecurityGroup
from provisioning import sync
from provisioning.api.authentication import issue_api_token
from provisioning.models import CreationIssue
from tests.fixtures_browser import activated_site_admin, agent_integration, ou, person, push_directory, staff_user

from .fixtures_entra import entra_integration_values

SALES, IT = ou(1, "Sales"), ou(2, "IT")


def api_for(user: User, *, keyword: str = "Token") -> APIClient:
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"{keyword} {issue_api_token(user)}")
    return api


@pytest.fixture
def boss(db) -> APIClient:
    return api_for(staff_user("boss", superuser=True))


@pytest.fixture
def corp(client_org):
    """An agent integration of a client: Sales (two users, one without email) and IT (one user)."""
    activated_site_admin(client_org)  # user mapping needs it
    people = [person(1, SALES), person(2, SALES, email=""), person(3, IT)]
    return agent_integration(client_org, [SALES, IT], people)


def level(kind: str, name: str) -> PermissionLevel:
    return PermissionLevel.objects.get(user_kind=kind, name=name)


def results(response) -> list[dict]:
    assert response.status_code == 200, response.content
    return response.json()["results"]


# ---------------------------------------------------------------- permission levels


def test_r11_the_two_read_only_levels_are_told_apart_by_their_kind(boss, corp):
    listed = results(boss.get("/api/permission-levels/?limit=50"))
    read_only = sorted(item["label"] for item in listed if item["name"] == "Read Only")
    assert read_only == ["Read Only (Pro-User)", "Read Only (Site-User)"]
    assert {item["kind"] for item in results(boss.get("/api/permission-levels/?kind=pro"))} == {"pro"}
    # Wherever a level is named: a user, a mapping, a client's Site Admins.
    boss.post("/api/mappings/apply/", {"integration": corp.pk, "folders": [corp.folders.get(name="Sales").pk],
                                       "permission_level": level("site", "Read Only").pk}, format="json")
    mapping = results(boss.get("/api/mappings/"))[0]
    assert mapping["permission_level_label"] == "Read Only (Site-User)"


def test_r13_levels_are_created_and_re_ranked_and_the_highest_rank_wins(boss, client_org, fake_entra):
    activated_site_admin(client_org)
    auditor = boss.post("/api/permission-levels/", {"name": "Auditor", "kind": "site", "rank": 5}, format="json")
    helper = boss.post("/api/permission-levels/", {"name": "Helper", "kind": "site", "rank": 6}, format="json")
    assert auditor.status_code == 201 and auditor.json()["label"] == "Auditor (Site-User)"
    # A user in two mapped AUs gets the higher-ranked level (R13); re-ranking changes which one.
    audit, help_desk = fake_entra.add_au("Audit"), fake_entra.add_au("Help desk")
    fake_entra.add_user("Ann", "Lee", mail="ann@contoso.com", aus=[audit, help_desk])
    integration = Integration.objects.create(client=client_org, name="Contoso", **entra_integration_values(fake_entra))
    sync.run_sync(integration, "force")
    for au, made in ((audit, auditor), (help_desk, helper)):
        applied = boss.post("/api/mappings/apply/", {"integration": integration.pk, "folders": [
            integration.folders.get(external_id=au.id).pk], "permission_level": made.json()["id"]}, format="json")
        assert applied.status_code == 202, applied.json()
    assert sync.run_sync(integration, "force").counts["created"] == 1
    ann = PortalUser.objects.get(email="ann@contoso.com")
    assert ann.permission_level.name == "Helper"

    reranked = boss.patch(f"/api/permission-levels/{auditor.json()['id']}/", {"rank": 7}, format="json")
    assert reranked.status_code == 200 and reranked.json()["rank"] == 7
    assert sync.run_sync(integration, "force").counts["updated"] == 1
    ann.refresh_from_db()
    assert ann.permission_level.name == "Auditor"


def test_r11_bad_levels_are_refused_on_their_field(boss, db):
    post = boss.post
    same = post("/api/permission-levels/", {"name": "Read Only", "kind": "site", "rank": 1}, format="json")
    assert same.status_code == 400 and "already a Site-User level named Read Only" in str(same.json()["name"])
    assert post("/api/permission-levels/", {"name": "Two\nlines", "kind": "pro", "rank": 1},
                format="json").json()["name"]
    assert "kind" in post("/api/permission-levels/", {"name": "X", "kind": "admin", "rank": 1}, format="json").json()
    assert "rank" in post("/api/permission-levels/", {"name": "X", "kind": "pro", "rank": -1}, format="json").json()
    read_only = level("pro", "Read Only")
    moved = boss.patch(f"/api/permission-levels/{read_only.pk}/", {"kind": "site"}, format="json")
    assert moved.status_code == 400 and "keeps its kind" in str(moved.json()["kind"])


# ---------------------------------------------------------------- security groups


def test_r12_security_groups_are_listed_and_created_per_client(boss, client_org, vault):
    made = boss.post("/api/security-groups/", {"client": client_org.pk, "name": "Sales team"}, format="json")
    assert made.status_code == 201 and made.json()["name"] == "Sales team"
    again = boss.post("/api/security-groups/", {"client": client_org.pk, "name": "sales TEAM"}, format="json")
    assert again.status_code == 400 and "already has a security group" in str(again.json()["name"])
    assert boss.post("/api/security-groups/", {"client": vault.pk, "name": "Sales team"}, format="json").status_code \
        == 201  # another client may have its own
    assert [g["client"] for g in results(boss.get(f"/api/security-groups/?client={client_org.pk}"))] == [client_org.pk]
    assert SecurityGroup.objects.count() == 2


# ---------------------------------------------------------------- creation issues


def test_r7_creation_issues_are_listed_and_filtered_by_client_integration_and_reason(boss, corp, client_org, vault):
    boss.post("/api/mappings/apply/", {"integration": corp.pk, "folders": [corp.folders.get(name="Sales").pk],
                                       "permission_level": level("site", "Site User").pk}, format="json")
    push_directory(corp, [SALES, IT], [person(1, SALES), person(2, SALES, email="")])
    other = agent_integration(vault, [SALES], [])
    issue = CreationIssue.objects.get()

    listed = results(boss.get(f"/api/creation-issues/?client={client_org.pk}&integration={corp.pk}&reason=no_email"))
    assert [(i["id"], i["reason"], i["open"], i["client"]) for i in listed] == [(issue.pk, "no_email", True,
                                                                               client_org.pk)]
    assert listed[0]["reason_label"] == "No email in the directory" and "First2 Last2" in listed[0]["message"]
    assert results(boss.get(f"/api/creation-issues/?integration={other.pk}")) == []
    assert results(boss.get(f"/api/creation-issues/?client={vault.pk}")) == []
    assert results(boss.get("/api/creation-issues/?reason=invalid_email")) == []
    assert results(boss.get("/api/creation-issues/?open=false")) == []
    refused = boss.get("/api/creation-issues/?reason=nonsense")
    assert refused.status_code == 400 and "reason" in refused.json()

    push_directory(corp, [SALES, IT], [person(1, SALES), person(2, SALES)])  # the email arrived: it closes
    closed = results(boss.get("/api/creation-issues/?open=false"))
    assert [i["id"] for i in closed] == [issue.pk] and closed[0]["closed_at"]


# ---------------------------------------------------------------- agent tokens


def test_r25_r26_agent_tokens_are_created_and_rotated_through_the_api_and_shown_once(boss, corp):
    created = boss.post(f"/api/integrations/{corp.pk}/agent-token/")
    assert created.status_code == 201 and created["Cache-Control"] == "no-store"
    first = created.json()["token"]
    assert first.startswith("pat_") and created.json()["rotated"] is False
    shown = boss.get(f"/api/integrations/{corp.pk}/").json()
    assert shown["has_agent_token"] and shown["agent_token_hint"] == first[:8] and first not in str(shown)

    agent = APIClient()
    agent.credentials(HTTP_AUTHORIZATION=f"Bearer {first}")
    assert agent.post("/api/agent/poll/", {}, format="json").status_code == 200

    rotated = boss.post(f"/api/integrations/{corp.pk}/agent-token/")
    assert rotated.status_code == 201 and rotated.json()["rotated"] is True
    assert rotated.json()["previous_token_works_until"]  # the old one works for a grace period (its own test)
    agent.credentials(HTTP_AUTHORIZATION=f"Bearer {rotated.json()['token']}")
    assert agent.post("/api/agent/poll/", {}, format="json").status_code == 200


def test_r26_agent_tokens_only_for_agent_integrations_and_only_with_the_change_permission(boss, corp, client_org):
    direct = Integration.objects.create(client=client_org, name="Direct", kind="ad", ad_mode="direct")
    refused = boss.post(f"/api/integrations/{direct.pk}/agent-token/")
    assert refused.status_code == 409 and "agent mode" in refused.json()["detail"]
    viewer = api_for(staff_user("viewer", "directory.view_integration"))
    assert viewer.post(f"/api/integrations/{corp.pk}/agent-token/").status_code == 403
    assert not Integration.objects.get(pk=corp.pk).agent_token_hash


# ---------------------------------------------------------------- Token or Bearer, and tokens that never cross


def test_r26_a_staff_token_works_as_token_or_bearer_and_never_crosses_with_an_agent_token(corp):
    boss = staff_user("boss", superuser=True)
    assert api_for(boss, keyword="Token").get("/api/clients/").status_code == 200
    assert api_for(boss, keyword="Bearer").get("/api/clients/").status_code == 200
    staff_token = issue_api_token(boss)

    agent_token = corp.issue_agent_token()
    as_staff = APIClient()
    for keyword in ("Token", "Bearer"):
        as_staff.credentials(HTTP_AUTHORIZATION=f"{keyword} {agent_token}")
        refused = as_staff.get("/api/clients/")
        assert refused.status_code == 401 and "agent push API" in refused.json()["detail"]
    as_agent = APIClient()
    for keyword in ("Token", "Bearer"):
        as_agent.credentials(HTTP_AUTHORIZATION=f"{keyword} {staff_token}")
        assert as_agent.post("/api/agent/poll/", {}, format="json").status_code in (401, 403)
    broken = APIClient()
    broken.credentials(HTTP_AUTHORIZATION="Bearer")
    assert broken.get("/api/clients/").status_code == 401


# ---------------------------------------------------------------- users: identities, groups, created by staff


def test_r3_r12_users_show_their_directory_identities_and_groups_and_staff_groups_come_and_go(boss, corp):
    sales_team = SecurityGroup.objects.create(client=corp.client, name="Sales team")
    boss.post("/api/mappings/apply/", {"integration": corp.pk, "folders": [corp.folders.get(name="Sales").pk],
                                       "permission_level": level("site", "Site User").pk,
                                       "security_groups": [sales_team.pk]}, format="json")
    push_directory(corp, [SALES, IT], [person(1, SALES), person(3, IT)])
    found = results(boss.get(f"/api/users/?integration={corp.pk}&external_id={person(1, SALES)['id'].upper()}"))
    assert [u["email"] for u in found] == ["user1@corp.test"]
    user = found[0]
    assert user["directory_identities"] == [{
        "integration": corp.pk, "integration_name": "Corp AD", "integration_kind": "ad", "directory_id": "corp.test",
        "external_id": person(1, SALES)["id"], "in_scope": True, "folder_ids": [SALES["id"]],
        "last_seen": user["directory_identities"][0]["last_seen"],
        "created_at": user["directory_identities"][0]["created_at"]}]
    assert [(g["name"], g["source"]) for g in user["security_groups"]] == [("Sales team", "mapping")]
    assert user["permission_level_label"] == "Site User (Site-User)"

    vip = SecurityGroup.objects.create(client=corp.client, name="VIP")
    added = boss.post(f"/api/users/{user['id']}/groups/", {"group": vip.pk}, format="json")
    assert sorted((g["name"], g["source"]) for g in added.json()["security_groups"]) == [
        ("Sales team", "mapping"), ("VIP", "staff")]
    elsewhere = SecurityGroup.objects.create(client=Client.objects.create(name="Other"), name="Theirs")
    assert "another client" in str(boss.post(f"/api/users/{user['id']}/groups/", {"group": elsewhere.pk},
                                             format="json").json()["group"])
    push_directory(corp, [SALES, IT], [person(1, SALES), person(3, IT)])  # a sync keeps what staff added
    assert {g["name"] for g in boss.get(f"/api/users/{user['id']}/").json()["security_groups"]} == {"Sales team",
                                                                                                  "VIP"}
    mapping_group = boss.delete(f"/api/users/{user['id']}/groups/{sales_team.pk}/")
    assert mapping_group.status_code == 409 and "a mapping grants it" in mapping_group.json()["detail"]
    removed = boss.delete(f"/api/users/{user['id']}/groups/{vip.pk}/")
    assert [g["name"] for g in removed.json()["security_groups"]] == ["Sales team"]


def test_r14_r18_a_clients_site_admin_is_created_and_shown_through_the_api(boss, client_org, settings,
                                                                         django_capture_on_commit_callbacks):
    site_admin = level("site", "Site Admin")
    blockers = boss.get(f"/api/clients/{client_org.pk}/").json()
    assert blockers["site_admins"] == [] and any("Site Admin" in b for b in blockers["mapping_blockers"])

    with django_capture_on_commit_callbacks(execute=True):
        made = boss.post("/api/users/", {"client": client_org.pk, "first_name": "Sam", "last_name": "Admin",
                                         "email": "sam@client.test", "permission_level": site_admin.pk},
                         format="json")
    assert made.status_code == 201, made.json()
    assert made.json()["status"] == "pending" and made.json()["permission_level_set_by_hand"] is True
    assert list(OutboxEmail.objects.values_list("recipient", flat=True)) == ["sam@client.test"]  # activation
    shown = boss.get("/api/clients/").json()["results"]
    [admins] = [c["site_admins"] for c in shown if c["id"] == client_org.pk]
    assert [(a["email"], a["activated"], a["permission_level_label"]) for a in admins] == [
        ("sam@client.test", False, "Site Admin (Site-User)")]

    with django_capture_on_commit_callbacks(execute=True):
        again = boss.post(f"/api/users/{made.json()['id']}/activation/")
    assert again.json()["queued"] is True and OutboxEmail.objects.filter(recipient="sam@client.test").count() == 2


def test_r4_r11_users_staff_create_are_checked_on_their_fields(boss, client_org):
    body = {"client": client_org.pk, "email": "ann@client.test", "permission_level": level("site", "Site User").pk}
    assert boss.post("/api/users/", body, format="json").status_code == 201
    duplicate = boss.post("/api/users/", {**body, "email": "ANN@client.test"}, format="json")
    assert duplicate.status_code == 400 and "already has a user" in str(duplicate.json()["email"])
    wrong_kind = boss.post("/api/users/", {**body, "email": "bob@client.test",
                                           "permission_level": level("pro", "Technician").pk}, format="json")
    assert "Pro-User level" in str(wrong_kind.json()["permission_level"])
    assert "email" in boss.post("/api/users/", {**body, "email": "not an email"}, format="json").json()
    assert "first_name" in boss.post("/api/users/", {**body, "email": "c@client.test", "first_name": "A\r\nBcc: x"},
                                     format="json").json()
    assert PortalUser.objects.count() == 1


# ---------------------------------------------------------------- permissions and the schema

NEW_ENDPOINTS = [
    ("get", "/api/permission-levels/", "passportal.view_permissionlevel"),
    ("post", "/api/permission-levels/", "passportal.add_permissionlevel"),
    ("patch", "/api/permission-levels/{level}/", "passportal.change_permissionlevel"),
    ("get", "/api/security-groups/", "passportal.view_securitygroup"),
    ("post", "/api/security-groups/", "passportal.add_securitygroup"),
    ("get", "/api/creation-issues/", "provisioning.view_creationissue"),
    ("post", "/api/integrations/{integration}/agent-token/", "directory.change_integration"),
    ("post", "/api/users/", "passportal.add_portaluser"),
    ("post", "/api/users/{user}/activation/", "passportal.change_portaluser"),
    ("post", "/api/users/{user}/groups/", "passportal.change_portaluser"),
]


def test_r26_the_new_endpoints_need_staff_and_their_model_permission(corp):
    ids = {"level": level("pro", "Read Only").pk, "integration": corp.pk, "user": PortalUser.objects.get().pk}
    anonymous, visitor = APIClient(), api_for(User.objects.create_user("visitor", "v@x.test", "Visitor-Passw0rd-1"))
    intern = api_for(staff_user("intern"))
    for n, (method, url, perm) in enumerate(NEW_ENDPOINTS):
        url = url.format(**ids)
        assert getattr(anonymous, method)(url).status_code == 401, url
        assert getattr(visitor, method)(url).status_code == 403, url
        assert getattr(intern, method)(url).status_code == 403, url
        allowed = api_for(staff_user(f"allowed-{n}", perm))
        assert getattr(allowed, method)(url, {}, format="json").status_code not in (401, 403), (url, perm)


def test_the_new_endpoints_and_both_token_schemes_are_in_the_openapi_schema(boss):
    schema = boss.get("/api/schema/?format=json").json()
    for path in ["/api/permission-levels/", "/api/permission-levels/{id}/", "/api/security-groups/",
                 "/api/creation-issues/", "/api/integrations/{id}/agent-token/", "/api/users/{id}/groups/",
                 "/api/users/{id}/groups/{group_id}/", "/api/users/{id}/activation/"]:
        assert path in schema["paths"], path
    assert "post" in schema["paths"]["/api/users/"]
    schemes = schema["components"]["securitySchemes"]
    assert schemes["staffBearer"] == {"type": "http", "scheme": "bearer",
                                      "description": "The same staff API token, sent as `Bearer <key>`."}
    assert schemes["staffToken"]["type"] == "apiKey" and schemes["staffToken"]["name"] == "Authorization"
    issues = schema["paths"]["/api/creation-issues/"]["get"]["parameters"]
    assert {"client", "integration", "reason", "open"} <= {p["name"] for p in issues}
