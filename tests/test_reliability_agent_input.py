"""Bad input from an on-prem agent, through the push API and then the engine: each request is refused with
HTTP 400 naming the record and field where there is one, nothing is applied, and the last committed state
(folders, users, what the next run reads) stays as it was (R21)."""

from __future__ import annotations

import json
import uuid

import pytest

from directory.models import AgentUpload, UploadStatus
from passportal.models import PortalUser
from provisioning import sync
from provisioning.models import Mapping, SyncRun
from tests.engine_helpers import site_level
from tests.fixtures_browser import agent_integration, ou, person
from tests.test_agent_api import Agent

pytestmark = pytest.mark.django_db

SALES = ou(1, "Sales")
PEOPLE = [person(1, SALES, first="Ann"), person(2, SALES, first="Bob")]


@pytest.fixture
def provisioned(client_org):
    integration = agent_integration(client_org, [SALES], PEOPLE)
    Mapping.objects.create(folder=integration.folders.get(), permission_level=site_level())
    assert sync.run_sync(integration, "command").counts["created"] == 2
    return integration, Agent(integration.issue_agent_token())


def state(integration) -> tuple:
    upload = integration.agent_uploads.get(status=UploadStatus.COMMITTED)
    return (upload.pk, list(integration.folders.values_list("external_id", "name", "gone")),
            list(PortalUser.objects.filter(client=integration.client).order_by("pk")
                 .values_list("email", "first_name", "status", "updated_at")))


def open_upload(agent: Agent) -> int:
    upload_id = agent.start()
    assert agent.post(f"uploads/{upload_id}/folders/", {"records": [SALES]}).status_code == 200
    return upload_id


def test_r21_bad_uploads_are_refused_by_field_and_the_committed_state_stays(provisioned):
    integration, agent = provisioned
    before = state(integration)
    runs = SyncRun.objects.count()
    upload_id = open_upload(agent)
    users = f"uploads/{upload_id}/users/"

    def refused(response, *, record=None, field=None, says: str) -> None:
        assert response.status_code == 400, response.content[:300]
        body = response.json()
        assert says in body["detail"], body
        assert (body.get("record"), body.get("field")) == (record, field), body

    # Malformed JSON: refused before anything is read.
    refused(agent.api.post(f"/api/agent/{users}", data=b'{"records": [{"id": ', content_type="application/json"),
            says="JSON parse error")
    # Wrong types.
    refused(agent.post(users, {"records": "Ann"}), field="records", says="must be a list")
    refused(agent.post(users, {"records": [PEOPLE[0], {**PEOPLE[1], "enabled": "false"}]}), record=1,
            field="enabled", says="true or false")
    refused(agent.post(users, {"records": [{**PEOPLE[0], "email": ["ann@corp.test"]}]}), record=0, field="email",
            says="must be text")
    refused(agent.post(f"uploads/{upload_id}/commit/", {"folder_count": "one", "user_count": 0}),
            field="folder_count", says="valid integer")
    # A 1 MB field is named; a 10 MB request is refused before it is parsed (413, naming the limit).
    refused(agent.post(users, {"records": [{**PEOPLE[0], "first_name": "A" * 1_000_000}]}), record=0,
            field="first_name", says="at most 150")
    too_large = agent.post(users, {"records": [{**PEOPLE[0], "last_name": "L" * 10_000_000}]})
    assert too_large.status_code == 413 and "too large" in too_large.json()["detail"]
    # Unknown folders and duplicate ids.
    stray = person(3, ou(9, "Nowhere"))
    refused(agent.post(users, {"records": [PEOPLE[0], stray]}), record=1, field="folder_ids",
            says="not a folder of this upload")
    refused(agent.post(users, {"records": [PEOPLE[0], {**PEOPLE[1], "id": PEOPLE[0]["id"].upper()}]}), record=1,
            field="id", says="appears twice")
    refused(agent.post(f"uploads/{upload_id}/folders/", {"records": [SALES]}), record=0, field="id",
            says="already sent")
    # Counts that do not match what arrived: the upload stays uncommitted.
    assert agent.post(users, {"records": [PEOPLE[0]]}).status_code == 200
    refused(agent.post(f"uploads/{upload_id}/commit/", {"folder_count": 1, "user_count": 2}), field="user_count",
            says="counts do not match")
    assert AgentUpload.objects.get(pk=upload_id).status == UploadStatus.OPEN

    # An upload never committed (it says Bob is gone) is never read: the next run changes nothing.
    assert state(integration) == before and SyncRun.objects.count() == runs
    run = sync.run_sync(integration, "schedule")
    assert run.status == "succeeded" and not any(run.counts.values()), run.counts
    assert state(integration) == before

    # The agent starts over and commits properly: that upload, and only it, is what counts now.
    newcomer = person(4, SALES, first="Cat")
    agent.push([SALES], [*PEOPLE, newcomer])
    assert not AgentUpload.objects.filter(pk=upload_id, status=UploadStatus.OPEN).exists()  # aborted, then dropped
    after = sync.run_sync(integration, "schedule")
    assert after.counts["created"] == 1 and PortalUser.objects.filter(email="user4@corp.test").exists()


def test_r7_odd_values_from_an_agent_are_stored_safely_or_reported(provisioned):
    """Directory values through the agent path: the same cleaning as for a direct read, never a crashed run."""
    integration, agent = provisioned
    odd = [
        {**person(10, SALES), "first_name": "\u202eevil\u202c", "last_name": "ب" * 150, "email": "RTL@Corp.test"},
        {**person(11, SALES), "first_name": "🦄", "last_name": " Spaces ", "email": " zoe+tag@bücher.de "},
        {**person(12, SALES), "first_name": "Nul\x00l", "last_name": "x", "email": "nul\x00@corp.test"},
        {**person(13, SALES), "first_name": "*)(cn=*", "last_name": "Inject", "email": "inject@corp.test"},
    ]
    agent.push([SALES], [*PEOPLE, *odd])
    run = sync.run_sync(integration, "schedule")
    assert run.status == "succeeded", run.error
    users = {u.email: u for u in PortalUser.objects.filter(client=integration.client)}
    assert users["RTL@Corp.test"].first_name == "evil" and len(users["RTL@Corp.test"].last_name) == 150
    assert (users["zoe+tag@bücher.de"].first_name, users["zoe+tag@bücher.de"].last_name) == ("🦄", "Spaces")
    assert users["inject@corp.test"].first_name == "*)(cn=*"
    issue = integration.creation_issues.get()
    assert issue.reason == "invalid_email" and issue.external_id == str(uuid.UUID(int=12))
    assert "\x00" not in json.dumps([issue.user_name, issue.email, issue.message])
