"""Throttling and transient failures (R21): waited out within bounds, then the run fails whole."""

from __future__ import annotations

import pytest

from directory.connectors.base import DirectoryUnavailable
from directory.connectors.entra import RetryPolicy
from testing.fake_entra import FakeEntraServer

from .fixtures_entra import entra_connector_for


def test_r21_429_waits_the_retry_after_then_reads(fake_entra: FakeEntraServer):
    au = fake_entra.add_au("Sales")
    fake_entra.add_user("Adele", "Vance", mail="adele@contoso.com", aus=[au])
    fake_entra.throttle("/members/microsoft.graph.user", times=1, retry_after=1)

    snapshot = entra_connector_for(fake_entra).read_snapshot([au.id])

    assert len(snapshot.users) == 1
    throttled, retried = fake_entra.requests_to("/members/microsoft.graph.user")
    assert (throttled.status, retried.status) == (429, 200)
    assert retried.at - throttled.answered_at >= 1.0  # Retry-After: 1 was honoured


def test_r21_retry_after_is_capped(fake_entra: FakeEntraServer):
    fake_entra.throttle("/directory/administrativeUnits?", times=1, retry_after=3600)
    connector = entra_connector_for(fake_entra, retry=RetryPolicy(max_attempts=3, cap_seconds=0.3))

    assert connector.read_folders() == []

    throttled, retried = fake_entra.requests_to("/directory/administrativeUnits?")
    assert 0.3 <= retried.at - throttled.answered_at < 5


def test_r21_503_then_success_backs_off_and_reads(fake_entra: FakeEntraServer):
    au = fake_entra.add_au("Sales")
    fake_entra.unavailable("/directory/administrativeUnits?", times=2)
    connector = entra_connector_for(fake_entra, retry=RetryPolicy(max_attempts=4, backoff_base_seconds=0.1))

    assert [f.id for f in connector.read_folders()] == [au.id]

    first, second, third = fake_entra.requests_to("/directory/administrativeUnits?")
    assert [first.status, second.status, third.status] == [503, 503, 200]
    assert second.at - first.answered_at >= 0.1
    assert third.at - second.answered_at >= 0.2  # exponential: base * 2


def test_r21_503_for_ever_gives_up_with_directory_unavailable(fake_entra: FakeEntraServer):
    au = fake_entra.add_au("Sales")
    fake_entra.unavailable(f"/administrativeUnits/{au.id}/members", times=None)
    connector = entra_connector_for(fake_entra, retry=RetryPolicy(max_attempts=3, backoff_base_seconds=0.01))

    with pytest.raises(DirectoryUnavailable) as failure:
        connector.read_snapshot([au.id])

    assert f"/administrativeUnits/{au.id}/members" in str(failure.value)
    assert "503" in str(failure.value) and "3 attempts" in str(failure.value)
    assert len(fake_entra.requests_to(f"/administrativeUnits/{au.id}/members")) == 3


def test_r21_504_is_retried_like_503(fake_entra: FakeEntraServer):
    fake_entra.unavailable("/organization", times=1, status=504)

    assert "Token OK" in entra_connector_for(fake_entra).test()


def test_r21_a_failing_next_page_fails_the_whole_read(fake_entra: FakeEntraServer):
    au = fake_entra.add_au("Sales")
    for i in range(5):
        fake_entra.add_user(f"U{i}", "Sales", mail=f"u{i}@contoso.com", aus=[au])
    fake_entra.page_size = 2
    fake_entra.fail_next_pages("/members/microsoft.graph.user", status=500)
    connector = entra_connector_for(fake_entra, retry=RetryPolicy(max_attempts=2, backoff_base_seconds=0.01))

    with pytest.raises(DirectoryUnavailable, match=r"\$skiptoken"):
        connector.read_snapshot([au.id])


def test_a_401_from_graph_refreshes_the_token_once(fake_entra: FakeEntraServer):
    fake_entra.add_au("Sales")
    connector = entra_connector_for(fake_entra)
    connector.read_folders()
    tokens_before = len(fake_entra.requests_to("/oauth2/v2.0/token"))

    fake_entra.revoke_tokens()
    assert len(connector.read_folders()) == 1

    assert len(fake_entra.requests_to("/oauth2/v2.0/token")) == tokens_before + 1
    statuses = [r.status for r in fake_entra.requests_to("/directory/administrativeUnits?")]
    assert statuses == [200, 401, 200]


def test_r21_the_token_endpoint_unreachable_is_directory_unavailable(fake_entra: FakeEntraServer):
    fake_entra.unavailable("/oauth2/v2.0/token", times=None)

    with pytest.raises(DirectoryUnavailable):
        entra_connector_for(fake_entra).read_folders()


def test_r21_oidc_discovery_failing_is_directory_unavailable(fake_entra: FakeEntraServer):
    fake_entra.unavailable("/.well-known/openid-configuration", times=None)

    with pytest.raises(DirectoryUnavailable, match="OIDC discovery"):
        entra_connector_for(fake_entra).read_folders()
