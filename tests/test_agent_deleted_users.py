"""Agent mode tells deleted users from moved ones (R8, R9) as direct mode does.

After its users, the agent asks which linked users its upload lacks, looks them up in AD (a tombstone or
nothing at all: deleted; alive elsewhere in the domain: moved) and names the deleted ones before it commits.
The push API is driven through its HTTP endpoints with the agent token; the whole flow runs with the real
agent process against the Samba AD DC and the live portal.
"""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from directory.models import Folder
from passportal.models import PortalUser
from provisioning import sync
from provisioning.models import Mapping, SyncRun
from tests import agent_env
from tests import test_agent_end_to_end as end_to_end
from tests.engine_helpers import site_level
from tests.fixtures_browser import ou, person, push_directory
from tests.test_agent_end_to_end import agent_integration, run_agent

# Fixtures: the agent's own environment, and the live portal behind HTTPS.
agent_python = agent_env.agent_python
https_portal = end_to_end.https_portal

SALES, IT = ou(1, "Sales"), ou(2, "IT")
ANN, BOB, CAT, DAN = person(1, SALES), person(2, SALES), person(3, SALES), person(4, IT)


@pytest.fixture
def linked(client_org):
    """An agent integration whose Sales and IT users are linked portal users; the agent's HTTP client."""
    integration, token = agent_integration(client_org)
    push_directory(integration, [SALES, IT], [ANN, BOB, CAT, DAN])
    for folder in Folder.objects.filter(integration=integration):
        Mapping.objects.create(folder=folder, permission_level=site_level())
    run = sync.run_sync(integration, "agent")
    assert run.counts["created"] == 4, run.error
    agent = APIClient()
    agent.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return integration, agent


def post(agent: APIClient, path: str, body: dict):
    return agent.post(f"/api/agent/{path}", body, format="json")


def open_upload(agent: APIClient, users: list[dict]) -> int:
    upload = post(agent, "uploads/", {"directory_id": "corp.test"}).json()["upload_id"]
    assert post(agent, f"uploads/{upload}/folders/", {"records": [SALES, IT]}).status_code == 200
    assert post(agent, f"uploads/{upload}/users/", {"records": users}).status_code == 200
    return upload


def reasons(*emails: str) -> dict[str, str]:
    return dict(PortalUser.objects.filter(email__in=emails).values_list("email", "disabled_reason"))


@pytest.mark.django_db
def test_r8_users_the_agent_names_deleted_are_disabled_as_deleted_the_others_missing_as_out_of_scope(linked):
    integration, agent = linked
    upload = open_upload(agent, [ANN, DAN])  # Bob and Cat are no longer under the agent's base DN

    missing = post(agent, f"uploads/{upload}/missing/", {})
    assert missing.status_code == 200 and missing.json() == {"user_ids": sorted([BOB["id"], CAT["id"]]),
                                                             "more": False}
    assert post(agent, f"uploads/{upload}/gone/", {"records": [BOB["id"].upper()]}).status_code == 200
    committed = post(agent, f"uploads/{upload}/commit/", {"folder_count": 2, "user_count": 2, "gone_count": 1})
    assert committed.status_code == 200 and committed.json()["gone_count"] == 1

    run = sync.execute_run(SyncRun.objects.get(integration=integration, status="queued").pk)
    assert run.status == "succeeded" and run.counts["disabled"] == 2, run.error
    assert reasons("user2@corp.test", "user3@corp.test") == {"user2@corp.test": "deleted",
                                                               "user3@corp.test": "out_of_scope"}


@pytest.mark.django_db
def test_r8_the_missing_users_come_in_pages(linked):
    _, agent = linked
    upload = open_upload(agent, [DAN])
    # A page of two: three missing take two pages.
    first = post(agent, f"uploads/{upload}/missing/", {"limit": 2}).json()
    assert first == {"user_ids": sorted([ANN["id"], BOB["id"], CAT["id"]])[:2], "more": True}
    second = post(agent, f"uploads/{upload}/missing/", {"after": first["user_ids"][-1], "limit": 2}).json()
    assert second == {"user_ids": sorted([ANN["id"], BOB["id"], CAT["id"]])[2:], "more": False}


@pytest.mark.django_db
def test_r26_an_agent_may_name_deleted_only_the_linked_users_its_upload_lacks(linked, client_org):
    _, agent = linked
    upload = open_upload(agent, [ANN, DAN])
    gone = f"uploads/{upload}/gone/"
    in_upload = post(agent, gone, {"records": [BOB["id"], ANN["id"]]})
    assert in_upload.status_code == 400 and in_upload.json()["record"] == 1 and "lacks" in in_upload.json()["detail"]
    assert post(agent, gone, {"records": [person(99, SALES)["id"]]}).status_code == 400  # linked to nobody
    assert post(agent, gone, {"records": ["*)(objectClass=*"]}).json()["field"] == "id"
    assert post(agent, gone, {"records": [BOB["id"], BOB["id"]]}).status_code == 400
    assert post(agent, gone, {"records": [BOB["id"]]}).status_code == 200
    assert "already sent" in post(agent, gone, {"records": [BOB["id"]]}).json()["detail"]
    mismatch = post(agent, f"uploads/{upload}/commit/", {"folder_count": 2, "user_count": 2, "gone_count": 2})
    assert mismatch.status_code == 400 and mismatch.json()["field"] == "gone_count"
    assert post(agent, f"uploads/{upload}/commit/", {"folder_count": 2, "user_count": 2, "gone_count": 1}) \
        .status_code == 200
    assert post(agent, f"uploads/{upload}/missing/", {}).status_code == 409  # committed: closed

    # Another integration's linked users are not this token's to hear about, nor to name.
    other, _ = agent_integration(client_org)
    eve = person(5, SALES)
    push_directory(other, [SALES], [eve])
    Mapping.objects.create(folder=other.folders.get(), permission_level=site_level())
    assert sync.run_sync(other, "agent").counts["created"] == 1
    second = open_upload(agent, [ANN, BOB, CAT, DAN])
    assert post(agent, f"uploads/{second}/missing/", {}).json()["user_ids"] == []
    assert post(agent, f"uploads/{second}/gone/", {"records": [eve["id"]]}).status_code == 400


@pytest.mark.django_db
def test_r8_an_agent_that_names_nobody_still_commits_as_before(linked):
    integration, agent = linked
    upload = open_upload(agent, [ANN, BOB, DAN])
    assert post(agent, f"uploads/{upload}/commit/", {"folder_count": 2, "user_count": 3}).status_code == 200
    run = sync.execute_run(SyncRun.objects.get(integration=integration, status="queued").pk)
    assert reasons("user3@corp.test") == {"user3@corp.test": "out_of_scope"}, run.error


@pytest.mark.samba
@pytest.mark.django_db(transaction=True)
def test_r8_user_deleted_in_ad_is_disabled_as_deleted_in_agent_mode_and_moved_users_as_out_of_scope(
        agent_python, samba_dc, samba_ou, https_portal, client_org, tmp_path):
    sales = samba_dc.make_ou("Sales", samba_ou)
    helpdesk = samba_dc.make_ou("Helpdesk", sales)  # a child OU, not mapped
    sam = samba_dc.unique_sam
    people = {name: samba_dc.add_user(sales, sam(name), name.title(), "Agent", f"{name}@corp.example.test")
              for name in ("ann", "bob", "cat", "dan")}
    integration, token = agent_integration(client_org)
    assert run_agent(agent_python, samba_dc, samba_ou, https_portal, token, tmp_path).returncode == 0
    Mapping.objects.create(folder=integration.folders.get(external_id=samba_dc.guid_of(sales)),
                           permission_level=site_level())
    first = sync.execute_run(SyncRun.objects.get(integration=integration, status="queued").pk)
    assert first.counts["created"] == 4, first.error

    elsewhere = samba_dc.unique_ou("away")  # outside the agent's base DN, in the same domain
    try:
        samba_dc.delete_user(people["ann"])
        samba_dc.move_user(people["bob"], elsewhere)
        samba_dc.move_user(people["cat"], helpdesk)
        result = run_agent(agent_python, samba_dc, samba_ou, https_portal, token, tmp_path)
    finally:
        samba_dc.delete_tree(elsewhere)

    assert result.returncode == 0, result.stderr
    assert "1 linked users deleted in AD" in result.stdout, result.stdout
    run = sync.execute_run(SyncRun.objects.get(integration=integration, status="queued").pk)
    assert run.status == "succeeded" and run.counts["disabled"] == 3, run.error
    assert reasons(*(f"{n}@corp.example.test" for n in people)) == {
        "ann@corp.example.test": "deleted", "bob@corp.example.test": "out_of_scope",
        "cat@corp.example.test": "out_of_scope", "dan@corp.example.test": ""}


@pytest.mark.django_db
@pytest.mark.parametrize("limit", [0, 2001, "two"])
def test_r8_a_page_size_out_of_range_is_refused_and_named(linked, limit):
    _, agent = linked
    upload = open_upload(agent, [DAN])
    response = post(agent, f"uploads/{upload}/missing/", {"limit": limit})
    assert response.status_code == 400 and response.json()["field"] == "limit"
