"""R25: bind passwords, client secrets, agent tokens and API tokens never appear in admin pages, API responses,
logs or error reports, and tokens are stored only as digests."""

from __future__ import annotations

import json
import logging
import sys

import pytest
from django.core import mail
from django.db import connection
from django.test import RequestFactory
from django.urls import reverse
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from directory.models import Integration, hash_token
from notifications.models import Notification
from provisioning import sync
from provisioning.api.authentication import issue_api_token, token_digest
from provisioning.models import SyncRun
from tests.fixtures_browser import staff_user

from .fixtures_entra import entra_integration_values

pytestmark = pytest.mark.django_db

BIND_PASSWORD = "Bind-S3cret-0f-the-DC-7731"


def everything_logged(caplog) -> str:
    parts = []
    for record in caplog.records:
        parts.append(record.getMessage())
        if record.exc_info:
            parts.append(logging.Formatter().formatException(record.exc_info))
    return "\n".join(parts)


@pytest.fixture
def integrations(client_org, fake_entra):
    ad = Integration.objects.create(client=client_org, name="Corp AD", kind="ad", ad_mode="direct",
                                    ldap_urls="ldaps://127.0.0.1:1", base_dn="DC=corp,DC=test",
                                    bind_dn="CN=svc,DC=corp,DC=test", bind_password=BIND_PASSWORD)
    agent = Integration.objects.create(client=client_org, name="Branch AD", kind="ad", ad_mode="agent")
    agent_token = agent.issue_agent_token()
    entra = Integration.objects.create(client=client_org, name="Contoso Entra", **entra_integration_values(fake_entra))
    return {"ad": ad, "agent": agent, "agent_token": agent_token, "entra": entra,
            "secrets": [BIND_PASSWORD, fake_entra.app.secret, agent_token]}


def test_r25_secrets_are_never_in_admin_pages_or_api_responses(client, integrations):
    boss = staff_user("boss", superuser=True)
    client.force_login(boss)
    api = APIClient()
    api_token = issue_api_token(boss)
    api.credentials(HTTP_AUTHORIZATION=f"Token {api_token}")
    secrets = [*integrations["secrets"], api_token, integrations["agent"].agent_token_hash]

    pages = [reverse("admin:directory_integration_changelist"), reverse("admin:authtoken_tokenproxy_changelist")]
    pages += [reverse("admin:directory_integration_change", args=[integrations[kind].pk])
              for kind in ("ad", "agent", "entra")]
    bodies = [client.get(url).content.decode() for url in pages]
    bodies += [json.dumps(api.get(url).json()) for url in
               ["/api/integrations/", *(f"/api/integrations/{integrations[k].pk}/" for k in ("ad", "agent", "entra"))]]
    for body in bodies:
        for secret in secrets:
            assert secret not in body
    assert "Stored (hidden)" in bodies[2] and integrations["agent_token"][:8] in bodies[3]  # a hint, not the token


def test_r25_secrets_are_never_logged_nor_in_run_errors_or_notifications(integrations, fake_entra, caplog, settings):
    settings.ENTRA_RETRY_MAX_ATTEMPTS = 2
    settings.ENTRA_BACKOFF_BASE_SECONDS = 0.01
    caplog.set_level(logging.DEBUG)  # every logger, every level: msal, requests, ldap3, ours
    agent = APIClient()
    agent.credentials(HTTP_AUTHORIZATION=f"Bearer {integrations['agent_token']}")
    assert agent.post("/api/agent/uploads/", {"directory_id": "corp.test"}, format="json").status_code == 201
    assert sync.run_sync(integrations["ad"], "command").status == "failed"  # nothing listens on port 1
    assert sync.run_sync(integrations["entra"], "force").status == "succeeded"
    fake_entra.unavailable("/directory/administrativeUnits?", times=None)
    assert sync.run_sync(integrations["entra"], "force").status == "failed"
    Integration.objects.filter(pk=integrations["entra"].pk).update(client_secret="Wrong-Secret-Value-991")
    entra = Integration.objects.get(pk=integrations["entra"].pk)
    refused = sync.run_sync(entra, "force")
    assert refused.status == "failed" and "client secret is wrong" in refused.error

    stored = "\n".join([everything_logged(caplog), *SyncRun.objects.values_list("error", flat=True),
                        *Notification.objects.values_list("title", "message").values_list("message", flat=True)])
    assert "msal" in {r.name.split(".")[0] for r in caplog.records}, "the libraries' own debug logs were captured"
    for secret in [*integrations["secrets"], "Wrong-Secret-Value-991"]:
        assert secret not in stored


def test_r25_error_reports_hide_every_secret_field_whatever_the_view(integrations, settings):
    """Django's error email (what ADMINS get on a 500) for a request that carried secrets in its form."""
    settings.ADMINS = [("Ops", "ops@msp.test")]
    settings.DEBUG = False
    request = RequestFactory().post(
        reverse("admin:directory_integration_change", args=[integrations["ad"].pk]),
        {"name": "Corp AD", "new_bind_password": BIND_PASSWORD, "new_client_secret": integrations["secrets"][1]},
        HTTP_AUTHORIZATION=f"Bearer {integrations['agent_token']}",
    )
    try:
        raise RuntimeError("the database went away while saving")
    except RuntimeError:
        logging.getLogger("django.request").error("Internal Server Error: %s", request.path, exc_info=sys.exc_info(),
                                                  extra={"status_code": 500, "request": request})
    [report] = mail.outbox
    text = report.body + "".join(str(a[0]) for a in report.alternatives)
    assert "the database went away" in text and "new_bind_password" in text
    for secret in integrations["secrets"]:
        assert secret not in text


def test_r25_api_and_agent_tokens_are_stored_only_as_digests(integrations):
    boss = staff_user("boss", superuser=True)
    secret = issue_api_token(boss)
    stored = Token.objects.get(user=boss).key
    assert stored == token_digest(secret) and secret not in stored
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {secret}")
    assert api.get("/api/clients/").status_code == 200
    api.credentials(HTTP_AUTHORIZATION=f"Token {stored}")  # a copy of the database is no key
    assert api.get("/api/clients/").status_code == 401
    assert issue_api_token(boss) != secret and Token.objects.filter(user=boss).count() == 1  # replaced

    agent = Integration.objects.get(pk=integrations["agent"].pk)
    assert agent.agent_token_hash == hash_token(integrations["agent_token"])
    with connection.cursor() as cursor:  # the rows as stored, without the field that decrypts them
        cursor.execute(f"SELECT * FROM {Integration._meta.db_table}")
        rows = json.dumps(cursor.fetchall(), default=str)
    assert agent.agent_token_hash in rows and integrations["agent_token"] not in rows
    assert BIND_PASSWORD not in rows and integrations["secrets"][1] not in rows


def test_r26_an_agent_token_acts_for_its_own_integration_only(integrations, client_org):
    other = Integration.objects.create(client=client_org, name="Other AD", kind="ad", ad_mode="agent")
    other.issue_agent_token()
    agent = APIClient()
    agent.credentials(HTTP_AUTHORIZATION=f"Bearer {integrations['agent_token']}")
    theirs = agent.post("/api/agent/uploads/", {"directory_id": "corp.test"}, format="json").json()["upload_id"]
    assert other.agent_uploads.count() == 0 and integrations["agent"].agent_uploads.get().pk == theirs
    # The agent token is no key to the staff API, and a staff API token is no agent token.
    assert agent.get("/api/integrations/").status_code in (401, 403)
    staff = APIClient()
    staff.credentials(HTTP_AUTHORIZATION=f"Token {issue_api_token(staff_user('boss', superuser=True))}")
    assert staff.post("/api/agent/uploads/", {"directory_id": "corp.test"}, format="json").status_code in (401, 403)
