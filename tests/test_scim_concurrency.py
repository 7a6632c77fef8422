"""SCIM requests arriving together, and while a full run of the integration is running (R23)."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import httpx2
import pytest
from django.utils import timezone

from passportal.models import PortalUser
from provisioning.models import SyncRun
from scim.models import ScimUser
from scim.tokens import issue_token
from tests.engine_helpers import site_level
from tests.scim_helpers import Scim, entra_user, map_all_users, scim_integration
from tests.test_scim_compliance import live_url  # noqa: F401  (the fixture)


def test_scim_r23_a_push_while_a_full_run_is_running_is_its_own_run(client_org):
    scim = Scim(scim_integration(client_org))
    map_all_users(scim.integration, site_level("Site User"))
    SyncRun.objects.create(integration=scim.integration, trigger="force", status="running",
                           started_at=timezone.now(), heartbeat_at=timezone.now())
    assert scim.post("/Users", entra_user("ada@contoso.com"))[0] == 201
    assert PortalUser.objects.filter(email="ada@contoso.com").exists()


@pytest.mark.usefixtures("transactional_db")
def test_scim_parallel_creates_each_user_once_and_refuse_a_taken_user_name(live_url, client_org):  # noqa: F811
    integration = scim_integration(client_org)
    token = issue_token(integration)
    map_all_users(integration, site_level("Site User"))
    bodies = [entra_user(f"user{n}@contoso.com") for n in range(12)] + [entra_user("same@contoso.com")] * 6

    def post(body: dict) -> int:
        with httpx2.Client(base_url=f"{live_url}/scim/v2/{integration.pk}", timeout=60,
                           headers={"Authorization": f"Bearer {token}",
                                    "Content-Type": "application/scim+json"}) as http:
            return http.post("/Users", content=json.dumps(body)).status_code

    with ThreadPoolExecutor(max_workers=6) as pool:
        statuses = list(pool.map(post, bodies))
    assert statuses[:12] == [201] * 12
    assert sorted(statuses[12:]) == [201] + [409] * 5
    assert ScimUser.objects.count() == 13 and PortalUser.objects.filter(client=client_org).count() == 13
