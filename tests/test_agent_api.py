"""The agent push API: token auth for one integration (R26), validation that names record and field,
nothing used before a complete commit (R21), and the connector that reads the committed upload."""

from __future__ import annotations

import json
import uuid

import pytest
from rest_framework.test import APIClient

from directory.connectors.base import DirectoryUnavailable
from directory.models import AdMode, AgentUpload, Integration, IntegrationKind, UploadStatus
from directory.sources import connector_for
from directory.upload_records import MAX_RECORDS_PER_CHUNK
from directory.uploads import UploadConnector
from provisioning.models import SyncRun, SyncTrigger

pytestmark = pytest.mark.django_db


def agent_integration(client, name="Corp AD") -> tuple[Integration, str]:
    integration = Integration.objects.create(client=client, name=name, kind=IntegrationKind.ACTIVE_DIRECTORY,
                                             ad_mode=AdMode.AGENT)
    return integration, integration.issue_agent_token()


def folder(name="Sales", id=None, parent_id=None) -> dict:
    return {"id": id or str(uuid.uuid4()), "name": name, "path": f"Corp/{name}", "parent_id": parent_id}


def user(folder_id, first="Ann", email=None, enabled=True, id=None) -> dict:
    return {"id": id or str(uuid.uuid4()), "first_name": first, "last_name": "Lee",
            "email": email if email is not None else f"{first.lower()}@corp.test", "enabled": enabled,
            "folder_ids": [folder_id], "display_name": f"{first} Lee", "upn": f"{first.lower()}@corp.test",
            "dn": f"CN={first} Lee,OU=Sales,DC=corp,DC=test"}


class Agent:
    """The API as an agent sees it: one token, JSON in, JSON out."""

    def __init__(self, token: str) -> None:
        self.api = APIClient()
        self.api.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")

    def post(self, path: str, body: dict):
        return self.api.post(f"/api/agent/{path}", data=json.dumps(body), content_type="application/json")

    def start(self) -> int:
        response = self.post("uploads/", {"directory_id": "corp.test", "agent_version": "test 1"})
        assert response.status_code == 201, response.content
        return response.json()["upload_id"]

    def push(self, folders: list[dict], users: list[dict], commit: bool = True) -> int:
        upload_id = self.start()
        assert self.post(f"uploads/{upload_id}/folders/", {"records": folders}).status_code == 200
        if users:
            response = self.post(f"uploads/{upload_id}/users/", {"records": users})
            assert response.status_code == 200, response.content
        if commit:
            response = self.post(f"uploads/{upload_id}/commit/",
                                 {"folder_count": len(folders), "user_count": len(users)})
            assert response.status_code == 200, response.content
        return upload_id


def test_a_committed_upload_fills_the_folder_tree_and_is_what_the_connector_reads(client_org):
    integration, token = agent_integration(client_org)
    corp = folder("Corp")
    sales = folder("Sales", parent_id=corp["id"])
    ann = user(sales["id"], "Ann")
    bob = user(sales["id"], "Bob", email="", enabled=False)

    upload_id = Agent(token).push([corp, sales], [ann, bob])

    # The commit started the run that applies this upload (R17): one run, the agent's.
    runs = SyncRun.objects.filter(integration=integration)
    assert [run.trigger for run in runs] == [SyncTrigger.AGENT]
    assert AgentUpload.objects.get(pk=upload_id).status == UploadStatus.COMMITTED
    tree = {f.name: f for f in integration.folders.all()}
    assert set(tree) == {"Corp", "Sales"} and tree["Sales"].parent == tree["Corp"]
    integration.refresh_from_db()
    assert integration.agent_version == "test 1" and integration.agent_last_contact is not None

    reader = connector_for(integration)
    assert isinstance(reader, UploadConnector)
    snapshot = reader.read_snapshot([sales["id"]])
    assert snapshot.complete and snapshot.directory_id == "corp.test"
    assert {u.id: (u.first_name, u.email, u.enabled) for u in snapshot.users} == {
        ann["id"]: ("Ann", "ann@corp.test", True), bob["id"]: ("Bob", "", False)}
    assert reader.read_snapshot([corp["id"]]).users == ()
    assert reader.read_user(ann["id"]).folder_ids == frozenset({sales["id"]})
    assert reader.read_user(str(uuid.uuid4())) is None
    assert "2 OUs and 2 users" in reader.test()


def test_r21_a_chunked_upload_without_its_commit_changes_nothing(client_org):
    integration, token = agent_integration(client_org)
    agent = Agent(token)
    sales = folder("Sales")
    with pytest.raises(DirectoryUnavailable, match="has not completed an upload"):
        UploadConnector(integration).read_snapshot(())

    agent.push([sales], [user(sales["id"], "Ann")], commit=False)
    assert integration.folders.count() == 0
    with pytest.raises(DirectoryUnavailable):
        UploadConnector(integration).read_snapshot(())

    agent.push([sales], [user(sales["id"], "Ann")])  # a complete push (the open one is aborted)
    it = folder("IT")
    agent.push([it], [user(it["id"], "Carl"), user(it["id"], "Dana")], commit=False)
    snapshot = UploadConnector(integration).read_snapshot(())
    assert [u.first_name for u in snapshot.users] == ["Ann"]
    assert list(integration.folders.values_list("name", flat=True)) == ["Sales"]


def test_wrong_counts_are_refused_and_the_upload_stays_uncommitted(client_org):
    integration, token = agent_integration(client_org)
    agent = Agent(token)
    sales = folder("Sales")
    upload_id = agent.push([sales], [user(sales["id"])], commit=False)

    response = agent.post(f"uploads/{upload_id}/commit/", {"folder_count": 1, "user_count": 2})

    assert response.status_code == 400
    assert "1 users" in response.json()["detail"] and response.json()["field"] == "user_count"
    assert AgentUpload.objects.get(pk=upload_id).status == UploadStatus.OPEN
    assert integration.folders.count() == 0


def test_r26_a_wrong_token_gets_401(client_org):
    agent_integration(client_org)
    response = Agent("pat_not-a-token").post("uploads/", {"directory_id": "corp.test"})
    assert response.status_code == 401
    assert response.json()["detail"] == "The agent token is not valid."
    assert APIClient().post("/api/agent/uploads/", {}, format="json").status_code == 401


def test_r26_a_rotated_token_stops_working_when_its_grace_ends(client_org, settings):
    integration, old = agent_integration(client_org)
    new = integration.issue_agent_token()
    assert Agent(old).post("uploads/", {"directory_id": "corp.test"}).status_code == 201  # AGENT_TOKEN_GRACE_MINUTES
    assert Agent(new).post("uploads/", {"directory_id": "corp.test"}).status_code == 201
    settings.AGENT_TOKEN_GRACE_MINUTES = 0  # no grace: the token replaced stops at once
    newest = integration.issue_agent_token()
    assert Agent(old).post("uploads/", {"directory_id": "corp.test"}).status_code == 401
    assert Agent(new).post("uploads/", {"directory_id": "corp.test"}).status_code == 401
    assert Agent(newest).post("uploads/", {"directory_id": "corp.test"}).status_code == 201


def test_r26_one_integrations_token_cannot_push_to_anothers_upload(client_org, vault):
    mine, my_token = agent_integration(client_org, "Contoso AD")
    _theirs, their_token = agent_integration(vault, "MSP AD")
    sales = folder("Sales")
    upload_id = Agent(my_token).push([sales], [], commit=False)
    intruder = Agent(their_token)

    for path, body in (("folders/", {"records": [folder("Evil")]}),
                       ("users/", {"records": [user(sales["id"], "Mallory")]}),
                       ("commit/", {"folder_count": 1, "user_count": 0})):
        assert intruder.post(f"uploads/{upload_id}/{path}", body).status_code == 404

    upload = AgentUpload.objects.get(pk=upload_id)
    assert (upload.status, upload.folder_count, upload.user_count) == (UploadStatus.OPEN, 1, 0)
    assert upload.integration == mine and mine.folders.count() == 0


def test_a_token_of_an_integration_not_in_agent_mode_is_refused(client_org):
    integration, token = agent_integration(client_org)
    Integration.objects.filter(pk=integration.pk).update(ad_mode=AdMode.DIRECT)
    response = Agent(token).post("uploads/", {"directory_id": "corp.test"})
    assert response.status_code == 403 and "agent mode" in response.json()["detail"]


SALES_ID = str(uuid.uuid4())


@pytest.mark.parametrize(("kind", "records", "index", "field", "says"), [
    ("folders", [folder(), {"name": "No id"}], 1, "id", "missing"),
    ("folders", [folder(id="not-a-guid")], 0, "id", "not a GUID"),
    ("folders", [folder(name="")], 0, "name", "missing"),
    ("folders", [folder(name="x" * 501)], 0, "name", "at most 500"),
    ("folders", [folder(parent_id="nope")], 0, "parent_id", "not a GUID"),
    ("folders", ["Sales"], 0, None, "must be an object"),
    ("users", [user(SALES_ID), {**user(SALES_ID), "enabled": "yes"}], 1, "enabled", "true or false"),
    ("users", [{**user(SALES_ID), "first_name": 42}], 0, "first_name", "must be text"),
    ("users", [user(SALES_ID, email="a" * 250 + "@corp.test")], 0, "email", "at most 254"),
    ("users", [user(SALES_ID, id="{" + "1" * 8 + "}")], 0, "id", "not a GUID"),
    ("users", [{**user(SALES_ID), "folder_ids": "Sales"}], 0, "folder_ids", "must be a list"),
    ("users", [user(str(uuid.uuid4()))], 0, "folder_ids", "not a folder of this upload"),
    ("users", [user(SALES_ID, id=SALES_ID), user(SALES_ID, "Bob", id=SALES_ID)], 1, "id", "appears twice"),
])
def test_malformed_records_get_400_naming_the_record_and_field(client_org, kind, records, index, field, says):
    _integration, token = agent_integration(client_org)
    agent = Agent(token)
    upload_id = agent.push([folder(id=SALES_ID)], [], commit=False)

    response = agent.post(f"uploads/{upload_id}/{kind}/", {"records": records})

    assert response.status_code == 400, response.content
    body = response.json()
    assert body.get("record") == index and body.get("field") == field, body
    assert says in body["detail"]
    if index is not None:
        assert f"{kind[:-1]} {index}" in body["detail"]
    upload = AgentUpload.objects.get(pk=upload_id)
    assert (upload.folder_count, upload.user_count) == (1, 0)  # the bad chunk stored nothing


def test_an_id_sent_again_in_a_later_chunk_is_refused(client_org):
    _, token = agent_integration(client_org)
    agent = Agent(token)
    sales = folder("Sales")
    ann = user(sales["id"])
    upload_id = agent.push([sales], [ann], commit=False)

    response = agent.post(f"uploads/{upload_id}/users/", {"records": [user(sales["id"], "Bob"), ann]})

    assert response.status_code == 400
    assert response.json()["record"] == 1 and "already sent in an earlier chunk" in response.json()["detail"]


def test_oversized_chunks_and_requests_are_refused(client_org):
    _, token = agent_integration(client_org)
    agent = Agent(token)
    upload_id = agent.push([folder()], [], commit=False)

    too_many = [folder(f"F{i}") for i in range(MAX_RECORDS_PER_CHUNK + 1)]
    response = agent.post(f"uploads/{upload_id}/folders/", {"records": too_many})
    assert response.status_code == 400 and f"at most {MAX_RECORDS_PER_CHUNK}" in response.json()["detail"]

    huge = {"records": [folder(), {"id": str(uuid.uuid4()), "name": "x" * (9 * 1024 * 1024)}]}
    response = agent.post(f"uploads/{upload_id}/folders/", huge)
    assert response.status_code == 413 and "too large" in response.json()["detail"]
    assert response.json()["limit"] == "AGENT_CHUNK_MAX_BYTES"


def test_a_committed_upload_takes_no_more_chunks(client_org):
    _, token = agent_integration(client_org)
    agent = Agent(token)
    upload_id = agent.push([folder()], [])
    response = agent.post(f"uploads/{upload_id}/folders/", {"records": [folder("Late")]})
    assert response.status_code == 409 and "committed" in response.json()["detail"]


def test_r19_a_later_upload_marks_missing_folders_gone_and_keeps_renamed_ones(client_org):
    integration, token = agent_integration(client_org)
    agent = Agent(token)
    sales, it = folder("Sales"), folder("IT")
    agent.push([sales, it], [])
    agent.push([{**sales, "name": "Sales & Marketing", "path": "Corp/Sales & Marketing"}], [])

    rows = {f.external_id: f for f in integration.folders.all()}
    assert rows[sales["id"]].name == "Sales & Marketing" and not rows[sales["id"]].gone
    assert rows[it["id"]].gone
    assert AgentUpload.objects.filter(integration=integration).count() == 1  # older uploads are dropped
