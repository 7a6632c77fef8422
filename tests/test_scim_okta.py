"""The request sequence Okta's SCIM app sends, replayed: the probe, exists-check, create, full PUTs that
leave `active` out, a path-less deactivate, and group push (add, replace, rename, PUT, delete)."""

from __future__ import annotations

from passportal.models import PortalUser
from scim.models import ScimUser
from tests.engine_helpers import site_level
from tests.scim_helpers import CORE, GROUP, Scim, map_all_users, map_scim_folder, scim_integration


def okta_user(**changes) -> dict:
    body = {
        "schemas": [CORE], "userName": "isaac.brock@example.com",
        "name": {"givenName": "Isaac", "familyName": "Brock"},
        "emails": [{"primary": True, "value": "isaac.brock@example.com", "type": "work"}],
        "displayName": "Isaac Brock", "locale": "en-US", "externalId": "00ujl29u0le5T6Aj10h7", "groups": [],
        "password": "1mz050nq", "active": True,
    }
    body.update(changes)
    return body


def isaac() -> PortalUser:
    return PortalUser.objects.get(email="isaac.brock@example.com")


def test_scim_okta_sequence_probe_create_full_put_deactivate_and_group_push(client_org):
    scim = Scim(scim_integration(client_org, "Okta"))
    map_all_users(scim.integration, site_level("Site User"))

    # Test connection: startIndex=1&count=2, before any user exists and after.
    status, body = scim.get("/Users", startIndex="1", count="2")
    assert status == 200 and body["totalResults"] == 0 and body["startIndex"] == 1 and body["itemsPerPage"] == 0

    # Exists check, then create (Okta sends a password: never stored).
    status, body = scim.get("/Users", filter='userName eq "isaac.brock@example.com"', startIndex="1", count="100")
    assert (status, body["totalResults"]) == (200, 0)
    status, created = scim.post("/Users", okta_user())
    assert status == 201 and "password" not in created
    assert "1mz050nq" not in str(ScimUser.objects.get().data)
    user_id = created["id"]
    assert isaac().status == "pending"
    status, body = scim.get("/Users", startIndex="1", count="2")
    assert body["totalResults"] == 1 and len(body["Resources"]) == 1

    # Profile update: GET then a full PUT that leaves `active` out: the name changes, the user stays enabled.
    status, current = scim.get(f"/Users/{user_id}")
    put = {k: v for k, v in current.items() if k not in ("active", "meta")}
    put["name"] = {"givenName": "Isaac", "familyName": "Brock-Smith"}
    status, body = scim.put(f"/Users/{user_id}", put)
    assert status == 200 and body["active"] is True
    assert (isaac().last_name, isaac().status) == ("Brock-Smith", "pending")

    # Deactivate: a path-less PATCH; then a full PUT without `active` does not bring the user back.
    status, body = scim.patch(f"/Users/{user_id}", {"op": "replace", "value": {"active": False}})
    assert status == 200 and body["active"] is False
    assert isaac().disabled_reason == "directory"
    status, body = scim.put(f"/Users/{user_id}", put)
    assert body["active"] is False and isaac().status == "disabled"
    status, body = scim.put(f"/Users/{user_id}", {**put, "active": True})
    assert body["active"] is True and isaac().status == "pending"

    # Group push: create, add members, rename by a path-less PATCH carrying the id, replace members, PUT, delete.
    _, other = scim.post("/Users", okta_user(userName="ann@example.com", externalId="00u2",
                                             emails=[{"primary": True, "value": "ann@example.com", "type": "work"}]))
    status, group = scim.post("/Groups", {"schemas": [GROUP], "displayName": "Test SCIMv2", "members": []})
    assert status == 201
    group_id = group["id"]
    map_scim_folder(scim.integration, group_id, site_level("Site Manager"), "Okta push")
    status, _ = scim.patch(f"/Groups/{group_id}", {"op": "add", "path": "members",
                                                   "value": [{"value": user_id, "display": "isaac.brock@example.com"}]})
    assert status == 204 and isaac().permission_level.name == "Site Manager"
    status, _ = scim.patch(f"/Groups/{group_id}", {"op": "replace", "value": {"id": group_id,
                                                                               "displayName": "Test SCIMv2 (renamed)"}})
    assert status == 204
    status, _ = scim.patch(f"/Groups/{group_id}", {"op": "replace", "path": "members",
                                                   "value": [{"value": other["id"], "display": "ann@example.com"}]})
    assert status == 204
    assert list(isaac().security_groups.values_list("name", flat=True)) == []
    assert list(PortalUser.objects.get(email="ann@example.com").security_groups.values_list("name", flat=True)) == [
        "Okta push"]
    status, body = scim.put(f"/Groups/{group_id}", {"schemas": [GROUP], "id": group_id, "displayName": "Final",
                                                    "members": [{"value": user_id}, {"value": other["id"]}]})
    assert status == 200 and {m["value"] for m in body["members"]} == {user_id, other["id"]}
    assert list(isaac().security_groups.values_list("name", flat=True)) == ["Okta push"]
    assert scim.delete(f"/Groups/{group_id}")[0] == 204
    assert list(isaac().security_groups.values_list("name", flat=True)) == []
    assert isaac().status == "pending"  # still in the all-users folder
