"""The request sequence Entra ID's provisioning service sends, replayed, with the portal users after each step.

Bodies as Microsoft documents them ("Develop and plan provisioning for a SCIM endpoint", and the known
compatibility issues): capitalised ops, "False" as a string, path-less PATCH keyed by attribute paths,
member removal by a value array and by a path filter, group reads without members, the DELETE ~30 days
after a soft delete.
"""

from __future__ import annotations

import uuid

from notifications.models import OutboxEmail
from passportal.models import PortalUser
from provisioning.models import SyncRun
from tests.engine_helpers import site_level
from tests.scim_helpers import CORE, ENTERPRISE, GROUP, Scim, map_all_users, map_scim_folder, scim_integration

USER_NAME = "Test_User_ab6490ee-1e48-479e-a20b-2d77186b5dd1@contoso.com"


def entra_create_body() -> dict:
    return {
        "schemas": [CORE, ENTERPRISE],
        "externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef",
        "userName": USER_NAME,
        "active": True,
        "displayName": "Test User",
        "emails": [{"primary": True, "type": "work", "value": "Test_User_fd0ea19b@contoso.com"}],
        "meta": {"resourceType": "User"},
        "name": {"formatted": "givenName familyName", "familyName": "familyName", "givenName": "givenName"},
        "roles": [],
        ENTERPRISE: {"department": "Engineering", "employeeNumber": "12"},
    }


def only(email: str = "Test_User_fd0ea19b@contoso.com") -> PortalUser:
    return PortalUser.objects.get(email__iexact=email)


def test_scim_entra_sequence_create_update_disable_groups_and_the_30_day_delete(
        client_org, django_capture_on_commit_callbacks):
    scim = Scim(scim_integration(client_org, "Entra ID provisioning"))
    map_all_users(scim.integration, site_level("Site User"), "Everyone")

    # Connection test: a random GUID, users and groups: 200 with an empty ListResponse.
    status, body = scim.get("/Users", filter=f'userName eq "{uuid.uuid4()}"')
    assert (status, body["totalResults"]) == (200, 0)
    status, body = scim.get("/Groups", excludedAttributes="members", filter=f'displayName eq "{uuid.uuid4()}"')
    assert (status, body["totalResults"]) == (200, 0)

    # Matching, then create.
    assert scim.get("/Users", filter=f'userName eq "{USER_NAME}"')[1]["totalResults"] == 0
    with django_capture_on_commit_callbacks(execute=True):
        status, created = scim.post("/Users", entra_create_body())
    assert status == 201, created
    user_id = created["id"]
    user = only()
    assert (user.first_name, user.last_name, user.status) == ("givenName", "familyName", "pending")
    assert user.permission_level.name == "Site User"
    assert OutboxEmail.objects.filter(recipient__iexact="Test_User_fd0ea19b@contoso.com").count() == 1
    assert scim.get("/Users", filter=f'userName eq "{USER_NAME.upper()}"')[1]["Resources"][0]["id"] == user_id

    # Update without the feature flag: capitalised ops, one attribute per operation, a manager as a plain id.
    status, _ = scim.patch(
        f"/Users/{user_id}",
        {"op": "Replace", "path": "displayName", "value": "Grace Hopper"},
        {"op": "Replace", "path": "name.givenName", "value": "Grace"},
        {"op": "Replace", "path": "name.familyName", "value": "Hopper"},
        {"op": "Replace", "path": 'emails[type eq "work"].value', "value": "grace.hopper@contoso.com"},
        {"op": "Add", "path": f"{ENTERPRISE}:manager", "value": "a-manager-id"},
        {"op": "Replace", "path": "title", "value": "Rear Admiral"},
    )
    assert status == 200
    user = only("grace.hopper@contoso.com")
    assert (user.first_name, user.last_name) == ("Grace", "Hopper")

    # Update with the feature flag: a path-less operation whose value is keyed by attribute paths.
    status, body = scim.patch(f"/Users/{user_id}", {"op": "replace", "value": {
        "name.givenName": "Amazing Grace", f"{ENTERPRISE}:employeeNumber": "13", "displayName": "AG"}})
    assert status == 200 and body[ENTERPRISE]["employeeNumber"] == "13"
    assert only("grace.hopper@contoso.com").first_name == "Amazing Grace"

    # Groups: created empty, members added by PATCH, read without members.
    status, group = scim.post("/Groups", {"schemas": [GROUP], "externalId": "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159",
                                          "displayName": "Group1DisplayName", "meta": {"resourceType": "Group"}})
    assert status == 201 and "members" not in group
    group_id = group["id"]
    map_scim_folder(scim.integration, group_id, site_level("Site Manager"), "Group one")
    status, _ = scim.patch(f"/Groups/{group_id}", {"op": "Add", "path": "members", "value": [{"value": user_id}]})
    assert status == 204
    user = only("grace.hopper@contoso.com")
    assert user.permission_level.name == "Site Manager"
    assert sorted(user.security_groups.values_list("name", flat=True)) == ["Everyone", "Group one"]
    status, got = scim.get(f"/Groups/{group_id}", excludedAttributes="members")
    assert status == 200 and "members" not in got and got["displayName"] == "Group1DisplayName"
    status, found = scim.get("/Groups", filter=f'id eq "{group_id}" and members[value eq "{user_id}"]',
                             excludedAttributes="members")
    assert found["totalResults"] == 1

    # Member removal without the flag (a value array), then with it (a path filter).
    status, _ = scim.patch(f"/Groups/{group_id}", {"op": "Remove", "path": "members", "value": [{"value": user_id}]})
    assert status == 204
    user = only("grace.hopper@contoso.com")
    assert user.permission_level.name == "Site User"  # out of the group: the level and groups follow the mappings
    assert list(user.security_groups.values_list("name", flat=True)) == ["Everyone"]
    scim.patch(f"/Groups/{group_id}", {"op": "Add", "path": "members", "value": [{"value": user_id}]})
    status, _ = scim.patch(f"/Groups/{group_id}", {"op": "remove", "path": f'members[value eq "{user_id}"]'})
    assert status == 204
    assert list(only("grace.hopper@contoso.com").security_groups.values_list("name", flat=True)) == ["Everyone"]
    status, _ = scim.patch(f"/Groups/{group_id}", {"op": "Replace", "path": "displayName", "value": "Renamed"})
    assert status == 204 and scim.get(f"/Groups/{group_id}")[1]["displayName"] == "Renamed"

    # Soft delete: active "False" (a string) disables; the user is still returned.
    status, body = scim.patch(f"/Users/{user_id}", {"op": "Replace", "path": "active", "value": "False"})
    assert status == 200 and body["active"] is False
    user = only("grace.hopper@contoso.com")
    assert (user.status, user.disabled_reason) == ("disabled", "directory")
    assert scim.get("/Users", filter=f'userName eq "{USER_NAME}"')[1]["Resources"][0]["active"] is False

    # Thirty days later: the hard delete. The portal user stays, disabled as deleted; the resource is gone.
    assert scim.delete(f"/Users/{user_id}")[0] == 204
    assert scim.get(f"/Users/{user_id}")[0] == 404
    assert scim.get("/Users", filter=f'userName eq "{USER_NAME}"')[1]["totalResults"] == 0
    user = only("grace.hopper@contoso.com")
    assert user.status == "disabled" and PortalUser.objects.count() == 1
    assert scim.delete(f"/Groups/{group_id}")[0] == 204
    assert SyncRun.objects.filter(trigger="scim", status="failed").count() == 0
