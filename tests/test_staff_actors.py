"""Staff actions keep who acted, on the rows they change (R8, R10, R15, R28), and every run that applies changes takes
the one claim of its integration (R23), a user's resync included."""

from __future__ import annotations

import pytest
from django.utils import timezone

from passportal.models import PermissionLevel, PortalUser
from provisioning import actions, runs
from provisioning.models import Mapping, SyncRun
from provisioning.sync import sync_snapshot
from tests.engine_helpers import folders, integration_with, snapshot, user
from tests.fixtures_browser import agent_integration, ou, person, push_directory, staff_user

SALES = ou(1, "Sales")
PEOPLE = [person(1, SALES), person(2, SALES)]


@pytest.fixture
def corp(client_org):
    """An on-prem agent's integration with Sales mapped and its two users provisioned."""
    integration = agent_integration(client_org, [SALES], PEOPLE)
    level = PermissionLevel.objects.get(user_kind="site", name="Site User")
    actions.save_proposal(integration, {"folders": list(integration.folders.values_list("pk", flat=True)),
                                        "level": level.pk, "groups": [], "new_group": "", "remove": []}, by=None)
    actions.set_link(integration, True, by=None)  # its run waits for the agent's fresh read: the agent pushes
    push_directory(integration, [SALES], PEOPLE)
    assert PortalUser.objects.filter(client=client_org).count() == 2
    return integration


def _running(integration) -> SyncRun:
    """Another run of the integration, running now (a worker is on it: its heartbeat is fresh)."""
    now = timezone.now()
    return SyncRun.objects.create(integration=integration, trigger="schedule", status="running", started_at=now,
                                  heartbeat_at=now)


def test_r8_a_staff_disable_and_its_lifting_keep_who_and_when_on_the_user(corp):
    tom, ann = staff_user("tom"), staff_user("ann")
    before = timezone.now()
    actions.staff_set_enabled(PortalUser.objects.get(email="user1@corp.test"), False, by=tom)
    row = PortalUser.objects.get(email="user1@corp.test")
    assert row.disabled_by_staff and row.staff_disabled_by == tom and before <= row.staff_disabled_at
    assert row.staff_enabled_by is None and row.staff_enabled_at is None

    lifted = timezone.now()
    actions.staff_set_enabled(row, True, by=ann)
    row = PortalUser.objects.get(email="user1@corp.test")
    assert not row.disabled_by_staff and row.staff_disabled_by is None and row.staff_disabled_at is None
    assert row.staff_enabled_by == ann and lifted <= row.staff_enabled_at <= timezone.now()


def test_r8_enabling_a_user_staff_never_disabled_records_no_lifting(corp):
    actions.staff_set_enabled(PortalUser.objects.get(email="user2@corp.test"), True, by=staff_user("tom"))
    row = PortalUser.objects.get(email="user2@corp.test")
    assert row.staff_enabled_by is None and row.staff_enabled_at is None


def test_r10_the_run_of_a_link_switch_keeps_who_switched_it(corp):
    tom = staff_user("tom")
    run = actions.set_link(corp, False, by=tom)
    assert SyncRun.objects.get(pk=run.pk).started_by == tom
    assert PortalUser.objects.filter(client=corp.client, status="disabled").count() == 2


def test_r15_saved_mappings_keep_who_made_them(client_org):
    integration = agent_integration(client_org, [SALES], PEOPLE)
    tom = staff_user("tom")
    level = PermissionLevel.objects.get(user_kind="site", name="Site User")
    actions.save_proposal(integration, {"folders": list(integration.folders.values_list("pk", flat=True)),
                                        "level": level.pk, "groups": [], "new_group": "", "remove": []}, by=tom)
    assert Mapping.objects.get(folder__integration=integration).created_by == tom


def test_r28_a_users_resync_keeps_who_asked_and_is_claimed_as_every_run(corp):
    tom = staff_user("tom")
    [run] = actions.resync_user(PortalUser.objects.get(email="user1@corp.test"), by=tom)
    row = SyncRun.objects.get(pk=run.pk)
    assert row.status == "succeeded" and row.started_by == tom and row.portal_user.email == "user1@corp.test"
    assert row.started_at is not None and row.finished_at is not None and row.phase == "done"
    assert not SyncRun.objects.filter(integration=corp, status="running").exists()  # it let go of the claim


def test_r23_a_users_resync_while_another_run_is_running_waits_for_nothing_and_changes_nobody(corp):
    other = _running(corp)
    PortalUser.objects.filter(email="user1@corp.test").update(first_name="Changed")
    [run] = actions.resync_user(PortalUser.objects.get(email="user1@corp.test"), by=staff_user("tom"))
    row = SyncRun.objects.get(pk=run.pk)
    assert row.status == "failed" and "is running now" in row.error
    assert PortalUser.objects.get(email="user1@corp.test").first_name == "Changed"  # not read again
    assert list(SyncRun.objects.filter(integration=corp, status="running")) == [other]


def test_r23_a_snapshot_in_hand_is_applied_only_by_a_claimed_run(client_org):
    records = folders("Staff")
    integration = integration_with(client_org, records)
    _running(integration)
    with pytest.raises(runs.RunBusy):
        sync_snapshot(integration, snapshot(records, [user(1, records[0])]), "command")
    assert not PortalUser.objects.filter(client=client_org).exists()
