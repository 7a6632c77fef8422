"""Graph faults through the engine (provisioning.sync.run_sync on an Entra integration and the HTTPS
stand-in): throttling is waited out, endless 5xx and a failing @odata.nextLink page fail the run whole (R21)."""

from __future__ import annotations

import time

import pytest

from directory.models import Folder, Integration
from notifications.models import Notification
from passportal.models import PortalUser
from provisioning import sync
from provisioning.models import Mapping
from testing.fake_entra import FakeEntraServer
from tests.engine_helpers import site_level

from .fixtures_entra import entra_integration_values

pytestmark = pytest.mark.django_db

USERS_PATH = "/members/microsoft.graph.user"


@pytest.fixture(autouse=True)
def fast_retries(settings):
    settings.ENTRA_RETRY_MAX_ATTEMPTS = 6
    settings.ENTRA_RETRY_CAP_SECONDS = 0.2  # whatever Retry-After says
    settings.ENTRA_BACKOFF_BASE_SECONDS = 0.01


@pytest.fixture
def sales(fake_entra: FakeEntraServer, client_org):
    """A tenant with an AU of five users, mapped and provisioned by one successful run."""
    au = fake_entra.add_au("Sales")
    people = [fake_entra.add_user(f"User{n}", "Sales", mail=f"user{n}@contoso.com", aus=[au]) for n in range(5)]
    integration = Integration.objects.create(client=client_org, name="Contoso Entra",
                                             **entra_integration_values(fake_entra))
    assert sync.run_sync(integration, "force").status == "succeeded"  # discovers the AUs (R19)
    Mapping.objects.create(folder=Folder.objects.get(integration=integration, external_id=au.id),
                           permission_level=site_level())
    first = sync.run_sync(integration, "force")
    assert first.status == "succeeded" and first.counts["created"] == 5, first.error
    return {"integration": integration, "au": au, "people": people}


def statuses(client) -> dict[str, str]:
    return dict(PortalUser.objects.filter(client=client).values_list("email", "status"))


def test_r21_a_storm_of_429s_is_waited_out_and_the_run_completes(fake_entra, sales, client_org):
    fake_entra.add_user("New", "Hire", mail="new@contoso.com", aus=[sales["au"]])
    fake_entra.requests_seen.clear()
    fake_entra.throttle("/directory/administrativeUnits?", times=4, retry_after=30)
    fake_entra.throttle(USERS_PATH, times=5, retry_after=30)

    run = sync.run_sync(sales["integration"], "force")

    assert run.status == "succeeded", run.error
    assert run.counts["created"] == 1 and "new@contoso.com" in statuses(client_org)
    throttled = [r for r in fake_entra.requests_seen if r.status == 429]
    assert len(throttled) == 9, [(r.path, r.status) for r in fake_entra.requests_seen]


def test_r21_5xx_for_ever_fails_the_run_cleanly_and_disables_nobody(fake_entra, sales, client_org):
    before = statuses(client_org)
    fake_entra.remove_member(sales["au"], sales["people"][0])  # a complete read would disable this one
    fake_entra.unavailable(USERS_PATH, times=None, status=503)
    fake_entra.requests_seen.clear()

    run = sync.run_sync(sales["integration"], "force")

    assert run.status == "failed"
    assert "503" in run.error and "6 attempts" in run.error and "nothing was changed" in run.error, run.error
    assert statuses(client_org) == before
    note = Notification.objects.filter(kind="sync_failed", integration=sales["integration"]).get()
    assert "directory unreachable" in note.title and "Contoso Ltd" in note.title
    assert len(fake_entra.requests_to(USERS_PATH)) == 6

    fake_entra.clear_faults()
    back = sync.run_sync(sales["integration"], "force")
    assert back.status == "succeeded" and back.counts["disabled"] == 1, (back.error, back.counts)


@pytest.mark.parametrize("status", [500, 404])
def test_r21_a_next_link_page_that_errors_fails_the_run_without_disables(fake_entra, sales, client_org, status):
    before = statuses(client_org)
    fake_entra.page_size = 2  # five members: three pages, two of them followed nextLinks
    fake_entra.remove_member(sales["au"], sales["people"][4])
    fake_entra.fail_next_pages(USERS_PATH, status=status)

    run = sync.run_sync(sales["integration"], "force")

    assert run.status == "failed", (run.counts, run.error)
    assert "$skiptoken" in run.error and str(status) in run.error, run.error
    assert statuses(client_org) == before
    assert run.counts == {}  # nothing was applied
    assert [r.status for r in fake_entra.requests_to(USERS_PATH) if "skiptoken" in r.query][-1] == status


def graph_requests(fake_entra: FakeEntraServer):
    return fake_entra.requests_to("/v1.0/")


def test_r21_graph_down_stops_the_read_at_the_first_request_that_exhausts_its_retries(
        fake_entra, sales, client_org, settings):
    """Graph answers 503 to everything: one request is retried, then the run fails naming it; no second one."""
    settings.ENTRA_RETRY_MAX_ATTEMPTS = 4
    settings.ENTRA_RETRY_CAP_SECONDS = 1.0
    before = statuses(client_org)
    fake_entra.unavailable("/v1.0/", times=None, status=503, retry_after=1)  # the login host still answers
    fake_entra.requests_seen.clear()

    started = time.monotonic()
    run = sync.run_sync(sales["integration"], "force")
    elapsed = time.monotonic() - started

    assert run.status == "failed"
    tried = graph_requests(fake_entra)
    assert len(tried) == 4, [(r.path, r.query, r.status) for r in tried]  # the first request, 4 times; no other
    assert {(r.path, r.query) for r in tried} == {(tried[0].path, tried[0].query)}
    assert tried[0].path == "/v1.0/users/delta"
    # Three waits of Retry-After: 1 s for the one request; a read that went on to the next request waits 3 s more.
    assert 3.0 <= elapsed < 5.5, elapsed
    assert "GET https://" in run.error and "/v1.0/users/delta?" in run.error, run.error
    assert "4 attempts" in run.error and "503" in run.error and "nothing was changed" in run.error, run.error
    assert "Bearer" not in run.error and fake_entra.app.secret not in run.error
    assert statuses(client_org) == before


def test_r21_one_aus_failing_next_page_fails_the_run_at_that_page(fake_entra, sales, client_org):
    """A partial outage: only the second page of one AU's members fails; the read stops there, quickly."""
    others = [fake_entra.add_au(f"Region {n}") for n in range(3)]
    for n, au in enumerate(others):
        for i in range(4):
            fake_entra.add_user(f"R{n}U{i}", "Region", mail=f"r{n}u{i}@contoso.com", aus=[au])
        Mapping.objects.create(folder=Folder.objects.get_or_create(
            integration=sales["integration"], external_id=au.id, defaults={"kind": "au", "name": au.display_name})[0],
            permission_level=site_level())
    fake_entra.page_size = 2
    failing = sorted([sales["au"].id, *(au.id for au in others)])[1]  # read second: one AU before it, two after
    fake_entra.fail_next_pages(f"/administrativeUnits/{failing}/members", status=503)
    before = statuses(client_org)
    fake_entra.requests_seen.clear()

    started = time.monotonic()
    run = sync.run_sync(sales["integration"], "force")
    elapsed = time.monotonic() - started

    assert run.status == "failed" and run.counts == {}
    pages = [r for r in graph_requests(fake_entra) if "skiptoken" in r.query and failing in r.path]
    assert [r.status for r in pages] == [503] * 6
    # The AUs are read together (ENTRA_READ_CONCURRENCY), so the others may be read beside the failing one; once
    # it gave up, nothing more (tests/test_entra_concurrent_reads.py stops workers still reading).
    assert graph_requests(fake_entra)[-1] == pages[-1], "no request after the page that gave up"
    assert elapsed < 5 * 0.2 + 3.0, elapsed  # five waits capped at 0.2 s for the one page, then stop
    assert f"GET https://127.0.0.1:{fake_entra.port}/v1.0/directory/administrativeUnits/{failing}/members" \
        in run.error and "$skiptoken=" in run.error and "6 attempts" in run.error and "503" in run.error, run.error
    assert statuses(client_org) == before
