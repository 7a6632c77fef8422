"""A full Entra read fetches the mapped groups' members several at once (ENTRA_READ_CONCURRENCY), as it does the
AUs', against the HTTPS Graph stand-in through real msal: the same snapshot as one group after another (G2, G5),
never more requests in flight than the bound, a 429's Retry-After held by every worker (R21), and one group that
cannot be read failing the whole read and changing nobody (G4, R21)."""

from __future__ import annotations

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

USERS_OF = "/transitiveMembers/microsoft.graph.user"


def seed_groups(server: FakeEntraServer, groups: int, users_per_group: int) -> list:
    made = []
    for n in range(groups):
        users = [server.add_user(f"G{n}x{i}", "Member", mail=f"g{n}x{i}@contoso.com") for i in range(users_per_group)]
        made.append(server.add_security_group(f"Group {n:02d}", members=users))
    return made


# ------------------------------------------------------------------------- the same snapshot

group_shapes = st.fixed_dictionaries({
    "groups": st.integers(1, 6),
    "nesting": st.lists(st.tuples(st.integers(0, 5), st.integers(0, 5)), max_size=6),  # (inner, outer), cycles too
    "users": st.lists(st.sets(st.integers(0, 5), max_size=3), max_size=15),
    "aus": st.lists(st.booleans(), max_size=15),  # which users are also in the one AU
    "page_size": st.integers(1, 4),
    "mapped": st.sets(st.integers(0, 5), min_size=1, max_size=6),
    "concurrency": st.integers(2, 6),
})


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(shape=group_shapes)
def test_g2_g5_groups_read_together_give_exactly_the_one_by_one_snapshot(fake_entra_server: FakeEntraServer, shape):
    """Any nesting (cycles included), users in several groups and in an AU, several pages a collection, some groups
    mapped: the snapshot read N at once equals the one read one by one, chains included."""
    server = fake_entra_server
    server.reset()
    au = server.add_au("Branch")
    users = [server.add_user(f"First{n}", f"Last{n}", mail=f"p{n}@contoso.com") for n in range(len(shape["users"]))]
    groups = [server.add_security_group(f"Group {n}") for n in range(shape["groups"])]
    for user, member_of in zip(users, shape["users"], strict=True):
        for index in sorted(member_of):
            server.add_group_member(groups[index % len(groups)], user)
    for inner, outer in shape["nesting"]:
        inner_group, outer_group = groups[inner % len(groups)], groups[outer % len(groups)]
        if inner_group is not outer_group and inner_group.id not in outer_group.members:
            server.add_group_member(outer_group, inner_group)
    for user, in_au in zip(users, shape["aus"], strict=False):
        if in_au:
            server.add_member(au, user)
    server.page_size = shape["page_size"]
    mapped = sorted({groups[i % len(groups)].id for i in shape["mapped"]} | {au.id})

    one_by_one = entra_connector_for(server, read_concurrency=1).read_snapshot(mapped)
    together = entra_connector_for(server, read_concurrency=shape["concurrency"]).read_snapshot(mapped)

    assert together == one_by_one


# ------------------------------------------------------------------------------ concurrency

def test_g2_the_mapped_groups_are_read_together_never_more_than_the_bound(fake_entra: FakeEntraServer):
    groups = seed_groups(fake_entra, groups=12, users_per_group=3)
    fake_entra.page_size = 2  # two user pages a group, then the look for nested groups
    fake_entra.page_delay = 0.05

    snapshot = entra_connector_for(fake_entra, read_concurrency=4).read_snapshot([g.id for g in groups])

    assert len(snapshot.users) == 36
    assert fake_entra.max_in_flight == 4  # the groups' reads overlapped, up to the bound and no further
    assert len(fake_entra.requests_to(USERS_OF)) == 12 * 2


def test_g5_the_chains_of_a_group_with_many_nested_groups_are_read_together(fake_entra: FakeEntraServer):
    """One mapped group holding eight nested ones: their direct members (the links of the chains) are read
    several at once, and each nested group's once, though it is under two mapped groups."""
    inner = seed_groups(fake_entra, groups=8, users_per_group=1)
    outer = fake_entra.add_security_group("Everyone", members=inner)
    other = fake_entra.add_security_group("Some", members=inner[:2])
    fake_entra.page_delay = 0.05

    snapshot = entra_connector_for(fake_entra, read_concurrency=4).read_snapshot([outer.id, other.id])

    assert fake_entra.max_in_flight == 4
    by_name = {u.first_name: u for u in snapshot.users}
    assert set(by_name["G0x0"].chains) == {(outer.id, "Everyone", "Group 00"), (other.id, "Some", "Group 00")}
    assert by_name["G7x0"].chains == ((outer.id, "Everyone", "Group 07"),)
    assert len(fake_entra.requests_to(f"/groups/{inner[0].id}/members")) == 1


# ------------------------------------------------------------------------------- throttling

def test_r21_a_429_on_a_group_read_holds_every_worker_until_its_retry_after(fake_entra: FakeEntraServer):
    groups = seed_groups(fake_entra, groups=12, users_per_group=2)
    fake_entra.page_delay = 0.05
    fake_entra.throttle(USERS_OF, times=5, retry_after=1)

    snapshot = entra_connector_for(fake_entra, read_concurrency=4).read_snapshot([g.id for g in groups])

    assert len(snapshot.users) == 24
    assert_every_worker_held(fake_entra, injected=5, in_flight=4)


# --------------------------------------------------------------------------------- failures

def test_g4_r21_a_group_failing_past_its_retries_fails_the_whole_read_and_stops_the_other_workers(
        fake_entra: FakeEntraServer):
    groups = seed_groups(fake_entra, groups=16, users_per_group=4)
    fake_entra.page_size = 2  # two user pages a group
    fake_entra.page_delay = 0.05
    failing = sorted(groups, key=lambda g: g.id)[0]  # read in the first wave
    fake_entra.fail_next_pages(f"/groups/{failing.id}{USERS_OF}", status=500)
    connector = entra_connector_for(fake_entra, read_concurrency=4,
                                    retry=RetryPolicy(max_attempts=2, backoff_base_seconds=0.01))

    with pytest.raises(DirectoryUnavailable) as failure:
        connector.read_snapshot([g.id for g in groups])

    assert f"/groups/{failing.id}/transitiveMembers" in str(failure.value) and "500" in str(failure.value)
    gave_up = [r for r in fake_entra.requests_to(failing.id) if r.status == 500][-1]
    later = [r for r in fake_entra.requests_to("/v1.0/") if r.at > gave_up.answered_at + IN_FLIGHT_GRACE]
    assert not later, "the other workers went on after the read failed"
    read = {g.id for g in groups if fake_entra.requests_to(f"/groups/{g.id}{USERS_OF}")}
    assert len(read) < len(groups)


def test_g4_a_group_deleted_while_others_are_read_fails_the_read_naming_it(fake_entra: FakeEntraServer):
    groups = seed_groups(fake_entra, groups=6, users_per_group=2)
    connector = entra_connector_for(fake_entra, read_concurrency=4)
    folders = [f for f in connector.read_folders() if f.id in {g.id for g in groups}]
    fake_entra.delete_group(groups[3])

    from directory.connectors.entra_groups import read_group_members
    with pytest.raises(DirectoryUnavailable, match="Group 03 could not be read"):
        read_group_members(connector.graph, folders)


@pytest.mark.django_db
def test_g4_r21_a_failing_group_in_a_concurrent_run_changes_nobody(fake_entra: FakeEntraServer, client_org,
                                                                   settings):
    settings.ENTRA_READ_CONCURRENCY = 4
    settings.ENTRA_RETRY_MAX_ATTEMPTS = 2
    settings.ENTRA_BACKOFF_BASE_SECONDS = 0.01
    groups = seed_groups(fake_entra, groups=8, users_per_group=3)
    integration = synced_entra_integration(fake_entra, client_org, [g.id for g in groups], created=24)
    before = dict(PortalUser.objects.filter(client=client_org).values_list("email", "status"))
    gone = fake_entra.tenant.users[groups[0].members[0]]
    fake_entra.remove_group_member(groups[0], gone)  # a complete read would put this one out of scope
    fake_entra.page_size = 2
    fake_entra.page_delay = 0.02
    failing = sorted(groups[1:], key=lambda g: g.id)[2]  # three members: a second page
    fake_entra.fail_next_pages(f"/groups/{failing.id}{USERS_OF}", status=500)

    run = sync.run_sync(integration, "force")

    assert run.status == "failed" and run.counts == {}, (run.counts, run.error)
    assert failing.id in run.error and "500" in run.error and "nothing was changed" in run.error, run.error
    assert dict(PortalUser.objects.filter(client=client_org).values_list("email", "status")) == before
