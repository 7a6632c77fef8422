"""An independent checker, scim2-tester (python-scim), against a live server: every check that applies to
what /ServiceProviderConfig declares, zero failures. What it cannot check (client quirks, tenancy, the
portal users) is in the other test_scim_* modules."""

from __future__ import annotations

import httpx2
import pytest
from django.contrib.staticfiles.handlers import StaticFilesHandler
from django.test.testcases import LiveServerThread, QuietWSGIRequestHandler
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_tester import Status, check_server

from scim.tokens import issue_token
from tests.scim_helpers import scim_integration

PASSING = {Status.SUCCESS, Status.COMPLIANT, Status.ACCEPTABLE, Status.SKIPPED}


class _NoDelayHandler(QuietWSGIRequestHandler):
    # Django's test server writes headers and body apart: with Nagle's algorithm and delayed ACKs every
    # keep-alive request then waits ~40 ms (the checker sends hundreds).
    disable_nagle_algorithm = True


class _ServerThread(LiveServerThread):
    def _create_server(self, connections_override=None):
        return self.server_class((self.host, self.port), _NoDelayHandler, allow_reuse_address=False,
                                 connections_override=connections_override)


@pytest.fixture
def live_url(transactional_db):
    thread = _ServerThread("localhost", StaticFilesHandler)
    thread.daemon = True
    thread.start()
    thread.is_ready.wait()
    if thread.error:
        raise thread.error
    yield f"http://localhost:{thread.port}"
    thread.terminate()


def test_scim_compliance_scim2_tester_finds_no_failure_against_a_live_server(live_url, client_org):
    integration = scim_integration(client_org)
    token = issue_token(integration)
    http = httpx2.Client(base_url=f"{live_url}/scim/v2/{integration.pk}",
                         headers={"Authorization": f"Bearer {token}"}, timeout=30)
    with http:
        results = check_server(SyncSCIMClient(http))
    failures = [f"{r.title} [{r.resource_type}] {r.status.name}: {r.reason}" for r in results
                if r.status not in PASSING]
    assert not failures, "\n".join(failures)
    succeeded = [r for r in results if r.status == Status.SUCCESS]
    assert len(succeeded) > 50  # discovery, CRUD and PATCH of every attribute ran, not just the first checks
    skipped = sorted({r.title for r in results if r.status == Status.SKIPPED})
    print(f"scim2-tester: {len(succeeded)} checks passed, skipped: {skipped}")
