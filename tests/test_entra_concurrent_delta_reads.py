"""An incremental Entra read fetches its changed users (their AUs, their groups through nesting) several at once
(ENTRA_READ_CONCURRENCY), against the HTTPS Graph stand-in through real msal: the same snapshot as one user after
another (R17, G6), never more requests in flight than the bound, a 429's Retry-After held by every worker (R21),
and one user that cannot be read failing the whole round and changing nobody (R21)."""

from __future__ import annotations

import pytest

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


def tenant(server: FakeEntraServer, users: int):
    """Sales > EMEA (nested), an AU, `users` people: the even ones in EMEA, the odd ones in Sales and the AU."""
    people = [server.add_user(f"P{n:02d}", "Staff", mail=f"p{n}@contoso.com") for n in range(users)]
    au = server.add_au("Branch")
    emea = server.add_security_group("EMEA", members=people[0::2])
    sales = server.add_security_group("Sales", members=[emea, *people[1::2]])
    for person in people[1::2]:
        server.add_member(au, person)
    return people, au, sales


def first_read(server: FakeEntraServer, mapped: list[str]):
    return entra_connector_for(server, read_concurrency=1).read_snapshot(mapped).delta_state


# ------------------------------------------------------------------------------ concurrency

def test_g6_r17_changed_users_are_read_together_giving_the_one_by_one_snapshot(fake_entra: FakeEntraServer):
    people, au, sales = tenant(fake_entra, users=12)
    mapped = [au.id, sales.id]
    links = first_read(fake_entra, mapped)
    for person in people:
        fake_entra.rename_user(person, f"New{person.given_name}", "Staff")
    fake_entra.page_delay = 0.05
    fake_entra.max_in_flight = 0

    together = entra_connector_for(fake_entra, read_concurrency=4, delta_state=links).read_snapshot(
        mapped, incremental=True)

    assert together.incremental and len(together.users) == 12
    assert fake_entra.max_in_flight == 4  # the users' reads overlapped, up to the bound and no further
    fake_entra.page_delay = 0.0
    one_by_one = entra_connector_for(fake_entra, read_concurrency=1, delta_state=links).read_snapshot(
        mapped, incremental=True)
    assert together == one_by_one
    even = next(u for u in together.users if u.first_name == "NewP00")
    assert (sales.id, "Sales", "EMEA") in even.chains  # the chain through which, read by its worker (G5)


def test_r17_changed_users_of_an_au_only_tenant_are_read_together(fake_entra: FakeEntraServer):
    au = fake_entra.add_au("Branch")
    people = [fake_entra.add_user(f"P{n}", "Staff", mail=f"p{n}@contoso.com", aus=[au]) for n in range(10)]
    links = first_read(fake_entra, [au.id])
    for person in people:
        fake_entra.disable_user(person)
    fake_entra.page_delay = 0.05
    fake_entra.max_in_flight = 0

    snapshot = entra_connector_for(fake_entra, read_concurrency=3, delta_state=links).read_snapshot(
        [au.id], incremental=True)

    assert snapshot.incremental and {u.enabled for u in snapshot.users} == {False} and len(snapshot.users) == 10
    assert fake_entra.max_in_flight == 3


# ------------------------------------------------------------------------------- throttling

def test_r21_a_429_in_an_incremental_round_holds_every_worker_until_its_retry_after(fake_entra: FakeEntraServer):
    people, au, sales = tenant(fake_entra, users=12)
    links = first_read(fake_entra, [au.id, sales.id])
    for person in people:
        fake_entra.rename_user(person, "Renamed", "Staff")
    fake_entra.page_delay = 0.05
    fake_entra.max_in_flight = 0
    fake_entra.requests_seen.clear()
    fake_entra.throttle("/transitiveMemberOf", times=3, retry_after=1)

    snapshot = entra_connector_for(fake_entra, read_concurrency=4, delta_state=links).read_snapshot(
        [au.id, sales.id], incremental=True)

    assert snapshot.incremental and len(snapshot.users) == 12
    assert_every_worker_held(fake_entra, injected=3, in_flight=4)


# --------------------------------------------------------------------------------- failures

def test_r21_a_changed_user_failing_past_its_retries_fails_the_round_and_stops_the_other_workers(
        fake_entra: FakeEntraServer):
    people, au, sales = tenant(fake_entra, users=16)
    links = first_read(fake_entra, [au.id, sales.id])
    for person in people:
        fake_entra.rename_user(person, "Renamed", "Staff")
    fake_entra.page_delay = 0.05
    fake_entra.requests_seen.clear()
    failing = sorted(p.id for p in people)[1]  # read in the first wave
    fake_entra.unavailable(f"/users/{failing}/transitiveMemberOf", status=500)
    connector = entra_connector_for(fake_entra, read_concurrency=4, delta_state=links,
                                    retry=RetryPolicy(max_attempts=2, backoff_base_seconds=0.01))

    with pytest.raises(DirectoryUnavailable) as failure:
        connector.read_snapshot([au.id, sales.id], incremental=True)

    assert f"/users/{failing}/transitiveMemberOf" in str(failure.value) and "500" in str(failure.value)
    gave_up = [r for r in fake_entra.requests_to(failing) if r.status == 500][-1]
    later = [r for r in fake_entra.requests_to("/v1.0/") if r.at > gave_up.answered_at + IN_FLIGHT_GRACE]
    assert not later, "the other workers went on after the round failed"
    read = {p.id for p in people if fake_entra.requests_to(f"/users/{p.id}/memberOf")}
    assert len(read) < len(people)


def test_r21_a_nested_group_gone_mid_round_fails_the_round_rather_than_drop_the_user(fake_entra: FakeEntraServer):
    people, au, sales = tenant(fake_entra, users=4)
    links = first_read(fake_entra, [au.id, sales.id])
    fake_entra.rename_user(people[0], "Renamed", "Staff")  # in Sales only through EMEA: Sales' member groups read
    fake_entra.unavailable(f"/groups/{sales.id}/members", status=404)

    with pytest.raises(DirectoryUnavailable, match="404"):
        entra_connector_for(fake_entra, delta_state=links).read_snapshot([au.id, sales.id], incremental=True)


def test_r8_a_user_whose_memberships_are_gone_mid_round_is_removed(fake_entra: FakeEntraServer):
    people, au, sales = tenant(fake_entra, users=4)
    links = first_read(fake_entra, [au.id, sales.id])
    for person in people:
        fake_entra.rename_user(person, "Renamed", "Staff")
    fake_entra.unavailable(f"/users/{people[2].id}/transitiveMemberOf", status=404)  # deleted after the delta

    snapshot = entra_connector_for(fake_entra, read_concurrency=4, delta_state=links).read_snapshot(
        [au.id, sales.id], incremental=True)

    assert snapshot.removed_user_ids == {people[2].id}
    assert {u.id for u in snapshot.users} == {p.id for p in people} - {people[2].id}


@pytest.mark.django_db
def test_r21_a_failing_changed_user_in_a_concurrent_incremental_run_changes_nobody(
        fake_entra: FakeEntraServer, client_org, settings):
    settings.ENTRA_READ_CONCURRENCY = 4
    settings.ENTRA_RETRY_MAX_ATTEMPTS = 2
    settings.ENTRA_BACKOFF_BASE_SECONDS = 0.01
    people, au, sales = tenant(fake_entra, users=12)
    integration = synced_entra_integration(fake_entra, client_org, [au.id, sales.id], created=12)
    before = dict(PortalUser.objects.filter(client=client_org).values_list("email", "status"))
    for person in people:
        fake_entra.disable_user(person)  # a complete round would disable all twelve
    fake_entra.page_delay = 0.02
    failing = sorted(p.id for p in people)[5]
    fake_entra.unavailable(f"/users/{failing}/memberOf", status=500)

    run = sync.run_sync(integration, "schedule", full=False)

    assert run.status == "failed" and run.counts == {}, (run.counts, run.error)
    assert failing in run.error and "500" in run.error, run.error
    assert dict(PortalUser.objects.filter(client=client_org).values_list("email", "status")) == before
