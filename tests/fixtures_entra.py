"""Fixtures for the Microsoft login + Graph stand-in (testing/fake_entra.py).

One HTTPS server per test session; `fake_entra` gives each test fresh state on it (one tenant
"Contoso" with contoso.onmicrosoft.com and contoso.com, one app with a secret, no faults).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from directory.connectors.entra import EntraConnector, EntraSettings, RetryPolicy
from testing.fake_entra import FakeEntraServer

# Waits short enough for a test suite, long enough to observe (a Retry-After of 1 s is honoured).
FAST_RETRY = RetryPolicy(max_attempts=4, cap_seconds=1.5, backoff_base_seconds=0.05)


@pytest.fixture(scope="session")
def fake_entra_server() -> Iterator[FakeEntraServer]:
    server = FakeEntraServer().start()
    yield server
    server.stop()


@pytest.fixture
def fake_entra(fake_entra_server: FakeEntraServer) -> FakeEntraServer:
    fake_entra_server.reset()
    return fake_entra_server


def entra_settings_for(server: FakeEntraServer, **overrides: Any) -> EntraSettings:
    """Connector settings that reach the stand-in's default tenant with its default app."""
    values: dict[str, Any] = {
        "tenant": server.tenant.domains[0],
        "client_id": server.app.client_id,
        "client_secret": server.app.secret,
        "login_host": server.login_host,
        "graph_base_url": server.graph_base_url,
        "ca_pem": server.ca_pem,
        "retry": FAST_RETRY,
    }
    values.update(overrides)
    return EntraSettings(**values)


def entra_connector_for(server: FakeEntraServer, **overrides: Any) -> EntraConnector:
    return EntraConnector(entra_settings_for(server, **overrides))


def entra_integration_values(server: FakeEntraServer, **overrides: Any) -> dict[str, Any]:
    """Field values for an Integration(kind="entra") pointed at the stand-in: a custom cloud, as any host that
    is not Microsoft's (a proxy, say) must be."""
    values: dict[str, Any] = {
        "kind": "entra",
        "entra_role": "primary",
        "tenant": server.tenant.domains[0],
        "app_client_id": server.app.client_id,
        "client_secret": server.app.secret,
        "entra_cloud": "custom",
        "login_host": server.login_host,
        "graph_base_url": server.graph_base_url,
        "graph_scope": f"{server.graph_resource}/.default",
        "tls_ca_pem": server.ca_pem,
        "tls_verify": True,
    }
    values.update(overrides)
    return values


# A request another worker had already sent when a 429 reached its worker may arrive just after the 429 left.
IN_FLIGHT_GRACE = 0.1


def assert_every_worker_held(server: FakeEntraServer, *, injected: int, in_flight: int,
                             retry_after: float = 1.0) -> None:
    """R21 under a shared budget: the only 429s are the ones the stand-in injected, no worker asked anything within
    the Retry-After of any of them, the workers did run together (up to `in_flight`), and one token served them all."""
    graph = server.requests_to("/v1.0/")
    throttled = [r for r in graph if r.status == 429]
    assert len(throttled) == injected  # what the stand-in injected, no more
    for answer in throttled:
        inside = [r for r in graph if answer.answered_at + IN_FLIGHT_GRACE < r.at < answer.answered_at + retry_after]
        assert not inside, f"{len(inside)} request(s) within the Retry-After of a 429"
    assert server.max_in_flight == in_flight
    assert len(server.requests_to("/oauth2/v2.0/token")) == 1


def synced_entra_integration(server: FakeEntraServer, client: Any, folder_ids: list[str], *, created: int) -> Any:
    """An integration of the stand-in's tenant with these folders mapped, after a first run that created `created`
    users: a discovery run (the folders appear, R19, G1), the mappings, then the run."""
    from directory.models import Folder, Integration
    from provisioning import sync
    from provisioning.models import Mapping
    from tests.engine_helpers import site_level

    integration = Integration.objects.create(client=client, name="Contoso Entra", **entra_integration_values(server))
    assert sync.run_sync(integration, "force").status == "succeeded"
    for folder_id in folder_ids:
        Mapping.objects.create(folder=Folder.objects.get(integration=integration, external_id=folder_id),
                               permission_level=site_level())
    first = sync.run_sync(integration, "force")
    assert first.status == "succeeded" and first.counts["created"] == created, first.error
    return integration
