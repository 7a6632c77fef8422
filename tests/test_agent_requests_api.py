"""The poll channel for reads a person waits for (issue 15): a preview or a folder read asked of the on-prem agent.

The agent's side of it through the real API (a token, JSON); the agent as a real process is in
tests/test_agent_asked_reads.py. An answer is never the integration's last read and never starts a run (R15, R19,
R26), and when it is late the page says the agent is not responding.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from directory import agent_requests
from directory.models import AgentRequest, AgentUpload, UploadStatus
from directory.upload_limits import expire_uploads
from directory.uploads import UploadConnector
from provisioning import agent_requests as asked
from provisioning.models import SyncRun
from tests.test_agent_api import Agent, agent_integration, folder, user

pytestmark = pytest.mark.django_db


def answer(agent: Agent, request_id: int, folders: list[dict], users: list[dict]):
    response = agent.post("uploads/", {"directory_id": "corp.test", "agent_version": "t", "request_id": request_id})
    assert response.status_code == 201, response.content
    upload_id = response.json()["upload_id"]
    assert agent.post(f"uploads/{upload_id}/folders/", {"records": folders}).status_code == 200
    if users:
        assert agent.post(f"uploads/{upload_id}/users/", {"records": users}).status_code == 200
    return agent.post(f"uploads/{upload_id}/commit/", {"folder_count": len(folders), "user_count": len(users)})


def test_r15_a_preview_request_is_handed_to_the_poll_and_its_answer_is_never_the_last_read(client_org):
    integration, token = agent_integration(client_org)
    agent = Agent(token)
    sales = folder("Sales")
    last = agent.push([sales], [user(sales["id"], "Ann")])
    runs_before = SyncRun.objects.count()

    request = asked.ask_preview(integration)
    assert asked.progress(request).state == asked.WAITING
    poll = agent.post("poll/", {"agent_version": "t"}).json()
    assert poll["requests"] == [{"id": request.pk, "kind": "preview"}]
    assert asked.progress(request).state == asked.READING
    assert agent.post("poll/", {}).json()["requests"] == poll["requests"]  # again, until answered

    committed = answer(agent, request.pk, [sales], [user(sales["id"], "Ann"), user(sales["id"], "Bob")])
    assert committed.status_code == 200 and committed.json()["status"] == UploadStatus.ANSWERED
    done = asked.progress(request)
    assert done.state == asked.ANSWERED and done.upload.user_count == 2
    assert SyncRun.objects.count() == runs_before  # no run started
    assert [u.first_name for u in UploadConnector(integration).read_users(())] == ["Ann"]  # the last read stays
    assert {u.first_name for u in asked.connector_for_answer(request, done.upload).read_users(())} == {"Ann", "Bob"}
    assert AgentUpload.objects.filter(pk=last, status=UploadStatus.COMMITTED).exists()
    assert agent.post("poll/", {}).json()["requests"] == []
    again = agent.post("uploads/", {"directory_id": "corp.test", "request_id": request.pk})
    assert again.status_code == 409 and "already answered" in again.json()["detail"]


def test_r19_a_folder_request_updates_the_tree_and_starts_no_run(client_org):
    integration, token = agent_integration(client_org)
    agent = Agent(token)
    sales = folder("Sales")
    agent.push([sales], [])
    request = asked.ask_folders(integration)
    runs_before = SyncRun.objects.count()

    assert answer(agent, request.pk, [sales, folder("Legal")], []).status_code == 200

    assert set(integration.folders.values_list("name", flat=True)) == {"Sales", "Legal"}
    assert SyncRun.objects.count() == runs_before
    assert asked.progress(request).state == asked.ANSWERED


def test_r26_a_request_of_another_integration_is_refused(client_org, vault):
    _, token = agent_integration(client_org)
    theirs, _ = agent_integration(vault, name="Other AD")
    request = asked.ask_preview(theirs)
    response = Agent(token).post("uploads/", {"directory_id": "corp.test", "request_id": request.pk})
    assert response.status_code == 400 and response.json()["field"] == "request_id"
    assert Agent(token).post("poll/", {}).json()["requests"] == []
    failure = Agent(token).post("failures/", {"stage": "read", "message": "x", "request_id": request.pk})
    assert failure.status_code == 409
    assert AgentRequest.objects.get(pk=request.pk).error == ""


def test_r21_a_failed_read_for_a_request_is_said_on_its_page_and_records_no_run(client_org):
    integration, token = agent_integration(client_org)
    request = asked.ask_preview(integration)
    response = Agent(token).post("failures/", {"stage": "read", "message": "cannot reach dc1.corp.test:636",
                                               "request_id": request.pk})
    assert response.status_code == 201 and response.json() == {"run_id": None}
    state = asked.progress(request)
    assert state.state == asked.FAILED and "could not read Active Directory: cannot reach dc1" in state.message
    assert not SyncRun.objects.exists()


def test_a_request_not_picked_up_in_time_is_agent_not_responding(client_org, settings):
    settings.AGENT_PREVIEW_TIMEOUT_MINUTES = 2
    integration, _ = agent_integration(client_org)
    request = asked.ask_preview(integration)
    later = timezone.now() + timedelta(minutes=3)
    state = asked.progress(request, now=later)
    assert state.state == asked.NOT_RESPONDING and state.done
    assert "The on-prem agent is not responding" in state.message and "within 2 minutes" in state.message


def test_request_states_follow_their_times():
    now = timezone.now()
    limits = {"pick_up_minutes": 3, "answer_minutes": 15}
    ago = lambda minutes: now - timedelta(minutes=minutes)  # noqa: E731
    assert asked.state_of(ago(1), None, False, "", now, **limits) == asked.WAITING
    assert asked.state_of(ago(4), None, False, "", now, **limits) == asked.NOT_RESPONDING
    assert asked.state_of(ago(10), ago(9), False, "", now, **limits) == asked.READING
    assert asked.state_of(ago(16), ago(15), False, "", now, **limits) == asked.NOT_RESPONDING
    assert asked.state_of(ago(16), ago(15), True, "", now, **limits) == asked.ANSWERED
    assert asked.state_of(ago(1), ago(1), False, "bind refused", now, **limits) == asked.FAILED


def test_answers_and_requests_go_after_a_day(client_org):
    integration, token = agent_integration(client_org)
    request = asked.ask_preview(integration)
    sales = folder("Sales")
    answer(Agent(token), request.pk, [sales], [])
    assert expire_uploads(timezone.now() + timedelta(days=2)) == 0
    assert not AgentUpload.objects.filter(status=UploadStatus.ANSWERED).exists()
    assert not AgentRequest.objects.exists()
    assert agent_requests.waiting(integration).count() == 0
