"""A full Entra read fetches the mapped AUs' members several at once (ENTRA_READ_CONCURRENCY), against the HTTPS
Graph stand-in through real msal: the same snapshot as one AU after another (R2, R13), a 429's Retry-After held
by every worker (R21), one failing page failing the whole read and changing nobody (R21), and never more requests
in flight than the bound."""

from __future__ import annotations

import threading
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from directory.connectors.base import DirectoryUnavailable
from directory.connectors.entra import RetryPolicy
from passportal.models import PortalUser
from provisioning import sync
from testing.fake_entra import FakeEntraServer

from .fixtures_entra import (
    IN_FLIGHT_GRACE,
    assert_every_worker_held,
    entra_connector_for,
    synced_entra_integration,
)

MEMBERS = "/members/microsoft.graph.user"


def seed(server: FakeEntraServer, aus: int, users_per_au: int) -> list:
    made = [server.add_au(f"AU {n:02d}") for n in range(aus)]
    for n, au in enumerate(made):
        for i in range(users_per_au):
            server.add_user(f"U{n}x{i}", "Member", mail=f"u{n}x{i}@contoso.com", aus=[au])
    return made


# ------------------------------------------------------------------------- the same snapshot

tenant_shapes = st.fixed_dictionaries({
    "aus": st.integers(1, 7),
    "users": st.lists(st.tuples(st.sets(st.integers(0, 6), max_size=3), st.booleans(), st.booleans()), max_size=25),
    "others": st.lists(st.tuples(st.integers(0, 6), st.sampled_from(["group", "device"])), max_size=4),
    "page_size": st.integers(1, 4),
    "mapped": st.sets(st.integers(0, 6), max_size=7),
    "concurrency": st.integers(2, 6),
})


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(shape=tenant_shapes)
def test_r2_r13_a_concurrent_read_gives_exactly_the_sequential_snapshot(fake_entra_server: FakeEntraServer, shape):
    """Any tenant: overlapping AUs, several pages an AU, groups and devices among the members, disabled users and
    users without mail, every AU or some mapped: the snapshot read N at once equals the one read one by one."""
    server = fake_entra_server
    server.reset()
    aus = [server.add_au(f"AU {n}") for n in range(shape["aus"])]
    for n, (member_of, enabled, has_mail) in enumerate(shape["users"]):
        server.add_user(f"First{n}", f"Last{n}", mail=f"p{n}@contoso.com" if has_mail else None, enabled=enabled,
                        aus=[aus[i % len(aus)] for i in sorted(member_of)])
    for index, kind in shape["others"]:
        (server.add_group if kind == "group" else server.add_device)(f"{kind} {index}", aus=[aus[index % len(aus)]])
    server.page_size = shape["page_size"]
    mapped = sorted({aus[i % len(aus)].id for i in shape["mapped"]})  # empty: every AU

    one_by_one = entra_connector_for(server, read_concurrency=1).read_snapshot(mapped)
    together = entra_connector_for(server, read_concurrency=shape["concurrency"]).read_snapshot(mapped)

    assert together == one_by_one
    assert {u.id for u in together.users} == {
        u.id for u in server.tenant.users.values() if set(server.tenant.member_aus.get(u.id, ())) & {
            au.id for au in aus if not mapped or au.id in mapped}}


# ------------------------------------------------------------------------------- throttling

def test_r21_a_429_holds_every_worker_until_its_retry_after(fake_entra: FakeEntraServer):
    aus = seed(fake_entra, aus=12, users_per_au=3)
    fake_entra.page_delay = 0.05
    fake_entra.throttle(MEMBERS, times=5, retry_after=1)

    snapshot = entra_connector_for(fake_entra, read_concurrency=4).read_snapshot([au.id for au in aus])

    assert len(snapshot.users) == 36
    assert_every_worker_held(fake_entra, injected=5, in_flight=4)


def test_r21_a_token_refused_mid_read_is_renewed_once_for_every_worker(fake_entra: FakeEntraServer):
    aus = seed(fake_entra, aus=16, users_per_au=2)
    fake_entra.page_delay = 0.1

    def revoke_once_the_workers_run() -> None:
        deadline = time.monotonic() + 10
        while len(fake_entra.requests_to(MEMBERS)) < 4 and time.monotonic() < deadline:
            time.sleep(0.005)
        fake_entra.revoke_tokens()  # every worker's next request carries a token Graph now refuses

    revoker = threading.Thread(target=revoke_once_the_workers_run)
    revoker.start()
    snapshot = entra_connector_for(fake_entra, read_concurrency=4).read_snapshot([au.id for au in aus])
    revoker.join()

    assert len(snapshot.users) == 32
    refused = [r for r in fake_entra.requests_to(MEMBERS) if r.status == 401]
    assert len(refused) >= 2, "several workers met the refused token"
    assert len(fake_entra.requests_to("/oauth2/v2.0/token")) == 2  # the first token and one new one, shared


def test_r21_the_read_never_has_more_requests_in_flight_than_its_bound(fake_entra: FakeEntraServer):
    aus = seed(fake_entra, aus=20, users_per_au=2)
    fake_entra.page_delay = 0.05

    snapshot = entra_connector_for(fake_entra, read_concurrency=3).read_snapshot([au.id for au in aus])

    assert len(snapshot.users) == 40
    assert fake_entra.max_in_flight == 3


# --------------------------------------------------------------------------------- failures

def test_r21_a_page_failing_past_its_retries_fails_the_whole_read_and_stops_the_other_workers(
        fake_entra: FakeEntraServer):
    aus = seed(fake_entra, aus=16, users_per_au=4)
    fake_entra.page_size = 2  # two pages an AU
    fake_entra.page_delay = 0.05
    failing = sorted(au.id for au in aus)[0]  # read in the first wave
    fake_entra.fail_next_pages(f"/administrativeUnits/{failing}/members", status=500)
    connector = entra_connector_for(fake_entra, read_concurrency=4,
                                    retry=RetryPolicy(max_attempts=2, backoff_base_seconds=0.01))

    with pytest.raises(DirectoryUnavailable) as failure:
        connector.read_snapshot([au.id for au in aus])

    assert f"/administrativeUnits/{failing}/members" in str(failure.value) and "$skiptoken" in str(failure.value)
    assert "500" in str(failure.value) and "2 attempts" in str(failure.value)
    gave_up = [r for r in fake_entra.requests_to(failing) if r.status == 500][-1]
    later = [r for r in fake_entra.requests_to("/v1.0/") if r.at > gave_up.answered_at + IN_FLIGHT_GRACE]
    assert not later, "the other workers went on after the read failed"
    read = {au.id for au in aus if fake_entra.requests_to(f"/administrativeUnits/{au.id}/members")}
    assert len(read) < len(aus)


@pytest.mark.django_db
def test_r21_a_failing_au_in_a_concurrent_run_changes_nobody(fake_entra: FakeEntraServer, client_org, settings):
    settings.ENTRA_READ_CONCURRENCY = 4
    settings.ENTRA_RETRY_MAX_ATTEMPTS = 2
    settings.ENTRA_BACKOFF_BASE_SECONDS = 0.01
    aus = seed(fake_entra, aus=8, users_per_au=3)
    integration = synced_entra_integration(fake_entra, client_org, [au.id for au in aus], created=24)
    before = dict(PortalUser.objects.filter(client=client_org).values_list("email", "status"))
    gone = fake_entra.tenant.users[fake_entra.tenant.au_members[aus[0].id][0]]
    fake_entra.remove_member(aus[0], gone)  # a complete read would put this one out of scope
    fake_entra.page_size = 2
    fake_entra.page_delay = 0.02
    failing = sorted(au.id for au in aus[1:])[2]  # three members: a second page (aus[0] now has two: one page)
    fake_entra.fail_next_pages(f"/administrativeUnits/{failing}/members", status=500)

    run = sync.run_sync(integration, "force")

    assert run.status == "failed" and run.counts == {}, (run.counts, run.error)
    assert failing in run.error and "500" in run.error and "nothing was changed" in run.error, run.error
    assert dict(PortalUser.objects.filter(client=client_org).values_list("email", "status")) == before
