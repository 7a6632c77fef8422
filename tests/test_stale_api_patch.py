"""A change to a portal user through the staff API is made only over the version the client read (R11, R23):
GET gives the version as an ETag, PATCH and PUT must send it in If-Match."""

from __future__ import annotations

import datetime

import pytest
from rest_framework.test import APIClient

from passportal.models import PermissionLevel, PortalUser
from tests.fixtures_browser import staff_user


def site_level(name: str) -> PermissionLevel:
    return PermissionLevel.objects.get(user_kind="site", name=name)


@pytest.fixture
def ann(client_org) -> PortalUser:
    return PortalUser.objects.create(client=client_org, email="ann@contoso.test", first_name="Ann",
                                     permission_level=site_level("Site User"))


@pytest.fixture
def api(db) -> APIClient:
    api = APIClient()
    api.force_authenticate(staff_user("boss", superuser=True))
    return api


def a_sync_changes_the_level(user: PortalUser, level: PermissionLevel) -> None:
    """What a run's compare-and-set update does to the row: a new level and a newer updated_at."""
    PortalUser.objects.filter(pk=user.pk).update(
        permission_level=level, updated_at=user.updated_at + datetime.timedelta(seconds=5))


def test_r23_a_stale_api_patch_is_refused_with_412(api, ann):
    url = f"/api/users/{ann.pk}/"
    read = api.get(url)
    etag = read["ETag"]
    assert etag == f'"{read.json()["version"]}"'
    manager = site_level("Site Manager")
    a_sync_changes_the_level(ann, manager)

    response = api.patch(url, {"permission_level": site_level("Site Admin").pk}, format="json", HTTP_IF_MATCH=etag)
    assert response.status_code == 412
    body = response.json()
    assert "changed since you read it" in body["detail"] and "Nothing was saved" in body["detail"]
    assert body["current"]["permission_level"] == manager.pk
    assert body["etag"] == response["ETag"] != etag
    ann.refresh_from_db()
    assert (ann.permission_level, ann.permission_level_set_by_hand) == (manager, False)

    # Reviewed and sent again with the version it now holds: the change lands, with the next version.
    response = api.patch(url, {"permission_level": site_level("Site Admin").pk}, format="json",
                         HTTP_IF_MATCH=body["etag"])
    assert response.status_code == 200, response.content
    ann.refresh_from_db()
    assert (ann.permission_level.name, ann.permission_level_set_by_hand) == ("Site Admin", True)
    assert response["ETag"] == f'"{response.json()["version"]}"' != body["etag"]
    assert api.get(url)["ETag"] == response["ETag"]


def test_r23_a_stale_api_put_is_refused_with_412_too(api, ann):
    url = f"/api/users/{ann.pk}/"
    etag = api.get(url)["ETag"]
    a_sync_changes_the_level(ann, site_level("Site Manager"))
    response = api.put(url, {"permission_level": site_level("Site Admin").pk}, format="json", HTTP_IF_MATCH=etag)
    assert response.status_code == 412
    ann.refresh_from_db()
    assert ann.permission_level.name == "Site Manager"


def test_r23_an_api_patch_without_if_match_is_refused_with_428(api, ann):
    response = api.patch(f"/api/users/{ann.pk}/", {"permission_level": site_level("Site Admin").pk}, format="json")
    assert response.status_code == 428
    assert "If-Match" in response.json()["detail"] and "Nothing was saved" in response.json()["detail"]
    ann.refresh_from_db()
    assert ann.permission_level.name == "Site User"


@pytest.mark.parametrize("if_match", ['W/"{v}"', '"{v}x"', "{v}", '"1999-01-01T00:00:00+00:00"'])
def test_r23_an_api_patch_over_a_weak_or_other_etag_is_refused_with_412(api, ann, if_match):
    version = api.get(f"/api/users/{ann.pk}/").json()["version"]
    response = api.patch(f"/api/users/{ann.pk}/", {"permission_level": site_level("Site Admin").pk}, format="json",
                         HTTP_IF_MATCH=if_match.format(v=version))
    assert response.status_code == 412
    ann.refresh_from_db()
    assert ann.permission_level.name == "Site User"


def test_r23_an_api_patch_naming_the_current_etag_among_others_or_star_is_applied(api, ann):
    url = f"/api/users/{ann.pk}/"
    etag = api.get(url)["ETag"]
    response = api.patch(url, {"permission_level": site_level("Site Manager").pk}, format="json",
                         HTTP_IF_MATCH=f'"old", {etag}')
    assert response.status_code == 200, response.content
    # "*" is a deliberate overwrite of whatever the user holds now.
    a_sync_changes_the_level(PortalUser.objects.get(pk=ann.pk), site_level("Site User"))
    response = api.patch(url, {"permission_level": site_level("Site Admin").pk}, format="json", HTTP_IF_MATCH="*")
    assert response.status_code == 200, response.content
    ann.refresh_from_db()
    assert ann.permission_level.name == "Site Admin"


def test_r23_an_api_patch_writes_only_the_level_not_columns_as_it_read_them(api, ann):
    url = f"/api/users/{ann.pk}/"
    etag = api.get(url)["ETag"]
    response = api.patch(url, {"permission_level": site_level("Site Manager").pk, "first_name": "Zed"},
                         format="json", HTTP_IF_MATCH=etag)
    assert response.status_code == 200
    ann.refresh_from_db()
    assert (ann.first_name, ann.permission_level.name) == ("Ann", "Site Manager")


def test_r23_the_schema_says_a_user_change_needs_if_match_and_answers_412_or_428(api):
    schema = api.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    for method in ("patch", "put"):
        operation = schema["paths"]["/api/users/{id}/"][method]
        if_match = next(p for p in operation["parameters"] if p["name"] == "If-Match")
        assert if_match["in"] == "header" and if_match["required"] is True
        assert {"200", "412", "428"} <= set(operation["responses"])
        assert "ETag" in operation["responses"]["200"]["headers"]
    assert "ETag" in schema["paths"]["/api/users/{id}/"]["get"]["responses"]["200"]["headers"]
