"""What one agent token can make the portal store and do (R26; issue 13, items 5, 9 and 10): records and bytes
per upload, bytes per request, JSON nesting, requests per minute, and the expiry of uploads never committed.

Each limit is a setting (README, Security); a refusal is JSON naming it: 413 for size, 429 with Retry-After
for rate. How the agent keeps to them is in test_agent_end_to_end.py.
"""

from __future__ import annotations

import json
import threading
import time
from datetime import timedelta

import pytest
import requests
from django.utils import timezone
from django.utils.module_loading import import_string
from django_q.models import Schedule

from directory.models import AgentUpload, AgentUploadRecord, UploadStatus
from passportal.schedules import SCHEDULES, ensure_schedules
from tests.test_agent_api import Agent, agent_integration, folder, user


def quiet_minute(needed: float = 10.0) -> None:
    """Start a burst of requests well inside one clock minute: the rate limit counts per minute."""
    left = 60 - time.time() % 60
    if left < needed:
        time.sleep(left + 0.1)


def refused_with(response, status: int, limit: str, maximum: int) -> str:
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert (body["limit"], body["maximum"]) == (limit, maximum), body
    assert limit in body["detail"]
    return body["detail"]


# ---------------------------------------------------------------- records and bytes per upload (item 5)


@pytest.mark.django_db
def test_r26_upload_over_record_cap_is_refused_with_413(client_org, settings):
    settings.AGENT_UPLOAD_MAX_RECORDS = 5
    _, token = agent_integration(client_org)
    agent = Agent(token)
    sales = folder("Sales")
    upload_id = agent.push([sales, folder("IT")], [user(sales["id"], "Ann")], commit=False)

    response = agent.post(f"uploads/{upload_id}/users/",
                          {"records": [user(sales["id"], name) for name in ("Bob", "Cat", "Dan")]})

    detail = refused_with(response, 413, "AGENT_UPLOAD_MAX_RECORDS", 5)
    assert "6 records" in detail and "at most 5" in detail
    upload = AgentUpload.objects.get(pk=upload_id)
    assert (upload.folder_count, upload.user_count, upload.records.count()) == (2, 1, 3)  # nothing of the chunk
    # Up to the cap is fine, and the upload commits.
    two = [user(sales["id"], "Bob"), user(sales["id"], "Cat")]
    assert agent.post(f"uploads/{upload_id}/users/", {"records": two}).status_code == 200
    assert agent.post(f"uploads/{upload_id}/commit/", {"folder_count": 2, "user_count": 3}).status_code == 200


@pytest.mark.django_db
def test_r26_upload_over_byte_cap_is_refused_with_413(client_org, settings):
    settings.AGENT_UPLOAD_MAX_BYTES = 2000
    _, token = agent_integration(client_org)
    agent = Agent(token)
    sales = folder("Sales")
    upload_id = agent.push([sales], [user(sales["id"], f"U{n}") for n in range(5)], commit=False)
    stored = AgentUpload.objects.get(pk=upload_id).byte_count
    assert 5 * 250 < stored < 2000  # the JSON of what is stored, counted as it arrives

    response = agent.post(f"uploads/{upload_id}/users/", {"records": [user(sales["id"], f"V{n}") for n in range(8)]})

    detail = refused_with(response, 413, "AGENT_UPLOAD_MAX_BYTES", 2000)
    assert "at most 2,000" in detail
    upload = AgentUpload.objects.get(pk=upload_id)
    assert (upload.user_count, upload.byte_count) == (5, stored)


# ---------------------------------------------------------------- bytes per request and JSON nesting (items 10, 9)


@pytest.mark.django_db
def test_r26_a_3_mb_chunk_under_AGENT_CHUNK_MAX_BYTES_is_accepted_not_djangos_html_400(client_org, settings):
    """One limit: Django's own 2.5 MB DATA_UPLOAD_MAX_MEMORY_SIZE no longer decides for the agent API."""
    assert settings.AGENT_CHUNK_MAX_BYTES == 8 * 1024 * 1024  # the documented default
    _, token = agent_integration(client_org)
    agent = Agent(token)
    upload_id = agent.start()
    folders = [{**folder(f"F{n}"), "path": "p" * 1500} for n in range(1900)]
    assert 2_621_440 < len(json.dumps({"records": folders})) < settings.AGENT_CHUNK_MAX_BYTES

    response = agent.post(f"uploads/{upload_id}/folders/", {"records": folders})

    assert response.status_code == 200, response.content[:300]
    assert response.json()["folder_count"] == 1900


@pytest.mark.django_db
def test_r26_a_body_over_AGENT_CHUNK_MAX_BYTES_gets_json_413_naming_the_limit(client_org, settings):
    settings.AGENT_CHUNK_MAX_BYTES = 100_000
    _, token = agent_integration(client_org)
    agent = Agent(token)
    upload_id = agent.start()

    response = agent.post(f"uploads/{upload_id}/folders/", {"records": [folder(f"F{n}") for n in range(1000)]})

    detail = refused_with(response, 413, "AGENT_CHUNK_MAX_BYTES", 100_000)
    assert "too large" in detail and "fewer records per chunk" in detail
    assert AgentUpload.objects.get(pk=upload_id).folder_count == 0


@pytest.mark.django_db
@pytest.mark.parametrize("body", [
    '{"records": ' + "[" * 100_000 + "]" * 100_000 + "}",  # 200 KB: deeper than Python's stack
    '{"records": [' + '{"a": ' * 900 + "1" + "}" * 900 + "]}",  # parses, but too deep to re-encode safely
    '{"records": [{"id": [[[[[[[[["x"]]]]]]]]]}]}',  # 11 levels
], ids=["200KB-of-brackets", "900-objects", "11-levels"])
def test_r26_deeply_nested_json_gets_400_naming_the_nesting_not_a_500(client_org, body):
    _, token = agent_integration(client_org)
    agent = Agent(token)
    upload_id = agent.start()

    response = agent.api.post(f"/api/agent/uploads/{upload_id}/users/", data=body, content_type="application/json")

    assert response.status_code == 400, response.content[:300]
    assert "nested more than 10 levels deep" in response.json()["detail"]


# ---------------------------------------------------------------- requests per minute (item 5)


@pytest.mark.django_db
def test_r26_agent_requests_past_AGENT_REQUESTS_PER_MINUTE_get_429_with_retry_after(client_org, vault, settings):
    settings.AGENT_REQUESTS_PER_MINUTE = 3
    _, token = agent_integration(client_org)
    _, other_token = agent_integration(vault, "MSP AD")
    agent = Agent(token)
    quiet_minute()
    upload_id = agent.start()
    for name in ("Sales", "IT"):
        assert agent.post(f"uploads/{upload_id}/folders/", {"records": [folder(name)]}).status_code == 200

    response = agent.post(f"uploads/{upload_id}/folders/", {"records": [folder("HR")]})

    detail = refused_with(response, 429, "AGENT_REQUESTS_PER_MINUTE", 3)
    assert "at most 3 a minute" in detail
    assert 1 <= int(response["Retry-After"]) <= 60
    assert AgentUpload.objects.get(pk=upload_id).folder_count == 2
    assert Agent(other_token).start()  # the limit is per integration: another agent is not held up


@pytest.mark.django_db(transaction=True)
def test_r26_parallel_agent_requests_are_each_counted_once(live_server, client_org, settings):
    """8 agents' connections sending 3 requests each, all at once, against a limit of 10: exactly 10 get through,
    however the cache interleaves them (8 connections: the live server's listen queue holds 10)."""
    settings.AGENT_REQUESTS_PER_MINUTE = 10
    _, token = agent_integration(client_org)
    url = f"{live_server.url}/api/agent/uploads/999999/commit/"  # answered 404 once past the limit check
    statuses: list[int] = []
    start = threading.Barrier(8)

    def three() -> None:
        with requests.Session() as session:
            session.headers["Authorization"] = f"Bearer {token}"
            start.wait()
            for _ in range(3):
                response = session.post(url, json={"folder_count": 0, "user_count": 0}, timeout=60)
                statuses.append(response.status_code)

    quiet_minute(needed=20)
    threads = [threading.Thread(target=three) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(90)

    assert sorted(statuses) == [404] * 10 + [429] * 14


# ---------------------------------------------------------------- expiry of uploads never committed (item 5)


def run_scheduled_expiry() -> int:
    """What django-q2 runs: the schedule's function, found by its dotted path."""
    return import_string(Schedule.objects.get(name=SCHEDULES["upload_expiry"].name).func)()


def idle_for(upload_id: int, **delta) -> None:
    AgentUpload.objects.filter(pk=upload_id).update(last_chunk_at=timezone.now() - timedelta(**delta))


@pytest.mark.django_db
def test_r26_an_open_upload_idle_past_AGENT_UPLOAD_EXPIRE_MINUTES_expires_and_its_records_go(client_org, vault,
                                                                                              settings):
    settings.AGENT_UPLOAD_EXPIRE_MINUTES = 60
    integration, token = agent_integration(client_org)
    _, busy_token = agent_integration(vault, "MSP AD")
    agent, busy = Agent(token), Agent(busy_token)
    sales = folder("Sales")
    committed_id = agent.push([sales], [user(sales["id"], "Ann")])
    idle_for(committed_id, days=30)  # a committed upload is the snapshot in use: never expired
    stale_id = agent.push([sales], [user(sales["id"], "Bob")], commit=False)
    idle_for(stale_id, minutes=61)
    busy_id = busy.push([sales], [user(sales["id"], "Cat")], commit=False)
    idle_for(busy_id, minutes=61)
    # A chunk arriving now keeps an upload alive, however long ago it was opened.
    assert busy.post(f"uploads/{busy_id}/users/", {"records": [user(sales["id"], "Dan")]}).status_code == 200

    assert run_scheduled_expiry() == 1

    stale = AgentUpload.objects.get(pk=stale_id)
    assert stale.status == UploadStatus.EXPIRED and not AgentUploadRecord.objects.filter(upload=stale).exists()
    assert AgentUpload.objects.get(pk=busy_id).status == UploadStatus.OPEN
    assert AgentUploadRecord.objects.filter(upload_id=busy_id).count() == 3
    assert AgentUpload.objects.get(pk=committed_id).records.count() == 2
    response = agent.post(f"uploads/{stale_id}/users/", {"records": [user(sales["id"], "Eve")]})
    assert response.status_code == 409 and "expired" in response.json()["detail"]
    assert run_scheduled_expiry() == 0

    # A day later the expired upload's row goes too (the agent has long since started over).
    idle_for(stale_id, hours=25)
    run_scheduled_expiry()
    assert not AgentUpload.objects.filter(pk=stale_id).exists()
    assert AgentUpload.objects.filter(pk__in=[committed_id, busy_id]).count() == 2
    assert integration.folders.count() == 1


def test_r26_the_upload_expiry_runs_every_15_minutes_from_one_schedule_created_idempotently(db):
    schedule = Schedule.objects.get(name=SCHEDULES["upload_expiry"].name)  # created by migrate
    assert (schedule.func, schedule.schedule_type, schedule.minutes, schedule.repeats) == (
        "directory.upload_limits.expire_uploads", Schedule.MINUTES, 15, -1)
    ensure_schedules()
    ensure_schedules()
    assert Schedule.objects.filter(name=SCHEDULES["upload_expiry"].name).count() == 1
