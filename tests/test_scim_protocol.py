"""SCIM 2.0 protocol behaviour of /scim/v2/<integration>/: discovery, lookups, paging, errors, tokens."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from scim.models import ScimEvent, ScimToken
from scim.tokens import issue_token
from tests.scim_helpers import Scim, entra_user, scim_integration


@pytest.fixture
def scim(client_org) -> Scim:
    return Scim(scim_integration(client_org))


def test_scim_connection_test_random_guid_filter_is_an_empty_list_response(scim):
    status, body = scim.get("/Users", filter=f'userName eq "{uuid.uuid4()}"')
    assert status == 200
    assert body["totalResults"] == 0 and body["Resources"] == []
    assert body["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:ListResponse"]
    status, body = scim.get("/Groups", filter=f'displayName eq "{uuid.uuid4()}"')
    assert status == 200 and body["totalResults"] == 0


def test_scim_responses_are_application_scim_json(scim):
    response = scim.http.get(f"{scim.base}/Users", HTTP_AUTHORIZATION=f"Bearer {scim.token}")
    assert response["Content-Type"] == "application/scim+json"


def test_scim_create_then_get_by_id_and_by_filters(scim):
    status, created = scim.post("/Users", entra_user("Ada.Lovelace@contoso.com", external_id="ext-1"))
    assert status == 201, created
    user_id = created["id"]
    assert created["meta"]["location"].endswith(f"/Users/{user_id}")
    assert scim.get(f"/Users/{user_id}")[1]["userName"] == "Ada.Lovelace@contoso.com"
    for text in ('userName eq "ada.lovelace@CONTOSO.com"', 'externalId eq "ext-1"', f'id eq "{user_id}"',
                 'emails[type eq "work"].value eq "ada.lovelace@contoso.com"', 'displayName eq "Ada Lovelace"',
                 'userName eq "Ada.Lovelace@contoso.com" and active eq true'):
        status, body = scim.get("/Users", filter=text)
        assert status == 200 and body["totalResults"] == 1, text
    assert scim.get("/Users", filter='externalId eq "EXT-1"')[1]["totalResults"] == 0  # externalId: caseExact


def test_scim_username_is_unique_case_insensitively(scim):
    assert scim.post("/Users", entra_user("bob@contoso.com"))[0] == 201
    status, body = scim.post("/Users", entra_user("BOB@contoso.com", email="bob2@contoso.com"))
    assert status == 409 and body["scimType"] == "uniqueness"


def test_scim_unknown_attributes_are_ignored_not_refused(scim):
    body = entra_user("carol@contoso.com")
    body["somethingNew"] = {"x": 1}
    body[ENTERPRISE_KEY] = {"manager": {"value": "not-a-known-id"}, "costCenter": "7"}
    status, created = scim.post("/Users", body)
    assert status == 201, created
    assert "somethingNew" not in created


ENTERPRISE_KEY = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"


def test_scim_paging_start_index_and_count(scim):
    for n in range(5):
        scim.post("/Users", entra_user(f"user{n}@contoso.com"))
    status, body = scim.get("/Users", startIndex="2", count="2")
    assert status == 200
    assert body["totalResults"] == 5 and body["itemsPerPage"] == 2 and body["startIndex"] == 2
    assert [r["userName"] for r in body["Resources"]] == ["user1@contoso.com", "user2@contoso.com"]


def test_scim_bad_filter_is_400_invalid_filter(scim):
    status, body = scim.get("/Users", filter="userName eq")
    assert status == 400 and body["scimType"] == "invalidFilter"
    status, body = scim.get("/Users", filter='title eq "x"')
    assert status == 400 and body["scimType"] == "invalidFilter"


def test_scim_discovery_endpoints(scim):
    status, config = scim.get("/ServiceProviderConfig")
    assert status == 200 and config["patch"]["supported"] is True and config["bulk"]["supported"] is False
    status, schemas = scim.get("/Schemas")
    user_schema = next(s for s in schemas["Resources"] if s["id"].endswith(":User") and "core" in s["id"])
    emails = next(a for a in user_schema["attributes"] if a["name"] == "emails")
    assert emails["required"] is True
    status, types = scim.get("/ResourceTypes")
    assert {t["id"] for t in types["Resources"]} == {"User", "Group"}
    assert scim.get("/ResourceTypes/User")[0] == 200
    status, body = scim.get("/Nothing/here")
    assert status == 404 and body["status"] == "404"


def test_scim_r26_requests_without_a_valid_token_get_401_with_a_scim_error(scim):
    for token in ("", "nope", "scim_" + "x" * 43):
        status, body = scim.request("GET", "/Users", token=token)
        assert status == 401
        assert body["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"] and body["status"] == "401"


def test_scim_r26_token_of_client_a_gets_404_for_client_b_ids(client_org):
    from passportal.models import Client

    other = Client.objects.create(name="Fabrikam", site_enabled=True)
    a, b = Scim(scim_integration(client_org, "A")), Scim(scim_integration(other, "B"))
    _, b_user = b.post("/Users", entra_user("eve@fabrikam.com"))
    _, b_group = b.post("/Groups", {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "B"})
    for path in (f"/Users/{b_user['id']}", f"/Groups/{b_group['id']}"):
        assert a.get(path)[0] == 404
        assert a.patch(path, {"op": "replace", "path": "displayName", "value": "x"})[0] == 404
        assert a.delete(path)[0] == 404
    assert a.get("/Users", filter=f'id eq "{b_user["id"]}"')[1]["totalResults"] == 0
    # A's token on B's URL: refused outright (401), not served from A.
    assert a.request("GET", f"{b.base}/Users/{b_user['id']}")[0] == 401
    assert b.get(f"/Users/{b_user['id']}")[0] == 200


def test_scim_r25_token_is_stored_hashed_and_rotation_keeps_the_old_one_for_the_grace_period(client_org):
    integration = scim_integration(client_org)
    old = issue_token(integration)
    assert not ScimToken.objects.filter(token_hash=old).exists()
    new = issue_token(integration)
    scim_old, scim_new = Scim(integration, old), Scim(integration, new)
    assert scim_old.get("/Users")[0] == 200 and scim_new.get("/Users")[0] == 200
    ScimToken.objects.filter(expires_at__isnull=False).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert scim_old.get("/Users")[0] == 401 and scim_new.get("/Users")[0] == 200


def test_scim_r24_writes_are_recorded_with_their_result(scim):
    scim.post("/Users", entra_user("dan@contoso.com"))
    scim.post("/Users", entra_user("dan@contoso.com"))
    events = list(ScimEvent.objects.order_by("pk").values_list("method", "status"))
    assert events == [("POST", 201), ("POST", 409)]


def test_scim_a_filtered_path_with_no_match_creates_the_entry_it_names(scim):
    """Entra adds a work email to a user that has none with `emails[type eq "work"].value`."""
    _, created = scim.post("/Users", {**entra_user("frank@contoso.com", email="")})
    status, body = scim.patch(f"/Users/{created['id']}", {"op": "Add", "path": 'emails[type eq "work"].value',
                                                          "value": "frank@contoso.com"})
    assert status == 200
    assert body["emails"] == [{"type": "work", "value": "frank@contoso.com"}]


def test_scim_writes_to_discovery_endpoints_are_405(scim):
    assert scim.post("/ServiceProviderConfig", {})[0] == 405
    assert scim.request("PUT", "/Schemas", {})[0] == 405
