"""A staff edit made while a run plans is never lost: the applier writes a field only where the row still holds
the value the plan was computed from (R11, R6, R8, R23).

The run is held open between planning and applying by doing its steps one by one, as the pipeline does them;
staff act in between through the API, as they would from another browser.
"""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from directory import upload_chunks, upload_start
from directory.models import Folder
from directory.sources import connector_for
from passportal.models import PermissionLevel, PortalUser
from provisioning import agent_uploads, sync
from provisioning.applier import apply_plan
from provisioning.models import DirectoryLink, Mapping, SyncRun, SyncStatus, SyncTrigger
from provisioning.planner import plan
from provisioning.state import load_current, load_mappings
from tests.fixtures_browser import agent_integration, ou, person, push_directory, staff_user

pytestmark = pytest.mark.django_db

SALES = ou(1, "Sales")


def level(name: str) -> PermissionLevel:
    return PermissionLevel.objects.get(user_kind="site", name=name)


@pytest.fixture
def corp(client_org, settings):
    settings.TASKS_RUN_INLINE = False
    integration = agent_integration(client_org, [SALES], [])
    Mapping.objects.create(folder=Folder.objects.get(integration=integration, external_id=SALES["id"]),
                           permission_level=level("Site User"))
    push_directory(integration, [SALES], [person(n, SALES) for n in (1, 2, 3)])
    assert PortalUser.objects.filter(client=client_org).count() == 3
    return integration


def planned_run(integration):
    """A run that has read and planned, and not yet applied."""
    run = SyncRun.objects.create(integration=integration, trigger=SyncTrigger.SCHEDULE, status=SyncStatus.RUNNING)
    rules = load_mappings(integration)
    snapshot = connector_for(integration).read_snapshot(list(rules))
    loaded = load_current(integration)
    return run, plan(snapshot, rules, loaded.current), loaded


def staff_api():
    api = APIClient()
    api.force_authenticate(staff_user("tom", superuser=True))
    return api


def test_r11_a_level_staff_set_while_the_run_planned_is_kept_and_counted(corp):
    Mapping.objects.update(permission_level=level("Site Manager"))
    run, result, loaded = planned_run(corp)
    assert len(result.updates) == 3

    ann = PortalUser.objects.get(email="user1@corp.test")
    api = staff_api()
    etag = api.get(f"/api/users/{ann.pk}/")["ETag"]  # the change is sent over the version staff read
    response = api.patch(f"/api/users/{ann.pk}/", {"permission_level": level("Site Admin").pk}, format="json",
                         HTTP_IF_MATCH=etag)
    assert response.status_code == 200, response.content

    applied = apply_plan(run, corp, result, loaded, directory_id="corp.test")
    ann.refresh_from_db()
    assert ann.permission_level.name == "Site Admin" and ann.permission_level_set_by_hand
    assert set(PortalUser.objects.exclude(pk=ann.pk).values_list("permission_level__name", flat=True)) == {
        "Site Manager"}
    assert applied.counts["updated"] == 2 and applied.counts["left_as_staff_set"] == 1
    # The next run does not overwrite it either, and finds the other two in step.
    follow_up = sync.run_sync(corp, SyncTrigger.FORCE)
    ann.refresh_from_db()
    assert ann.permission_level.name == "Site Admin" and follow_up.counts.get("updated", 0) == 0


def test_r6_a_name_staff_corrected_during_the_run_stays_and_the_directorys_other_change_lands(corp):


    upload = upload_start.start_upload(corp, directory_id="corp.test", agent_version="3.2.1")
    upload_chunks.add_folders(upload, [SALES])
    upload_chunks.add_users(upload, [person(1, SALES, first="First1", last="Archer-Lee"),
                                     person(2, SALES, first="Bo"), person(3, SALES)])
    agent_uploads.commit_upload(upload, folder_count=1, user_count=3)
    SyncRun.objects.filter(integration=corp, status=SyncStatus.QUEUED).delete()  # this test runs it by hand
    run, result, loaded = planned_run(corp)

    one, two = (PortalUser.objects.get(email=f"user{n}@corp.test") for n in (1, 2))
    PortalUser.objects.filter(pk=one.pk).update(first_name="Annie")  # staff fix the first name
    PortalUser.objects.filter(pk=two.pk).update(first_name="Robert")  # staff and directory change the same field

    applied = apply_plan(run, corp, result, loaded, directory_id="corp.test")
    one.refresh_from_db()
    two.refresh_from_db()
    assert (one.first_name, one.last_name) == ("Annie", "Archer-Lee"), "different fields combine"
    assert two.first_name == "Robert", "the same field is left as staff set it"
    assert applied.counts["left_as_staff_set"] == 1
    assert DirectoryLink.objects.get(portal_user=two).state_hash == "", "the next run looks at it again"


def test_r8_a_staff_disable_during_the_run_holds(corp):
    Mapping.objects.update(permission_level=level("Site Manager"))
    run, result, loaded = planned_run(corp)
    ann = PortalUser.objects.get(email="user1@corp.test")
    assert staff_api().post(f"/api/users/{ann.pk}/enabled/", {"enabled": False}, format="json").status_code == 200
    apply_plan(run, corp, result, loaded, directory_id="corp.test")
    ann.refresh_from_db()
    assert ann.status == "disabled" and ann.disabled_by_staff


def test_r24_the_run_page_says_how_many_users_were_left_as_staff_set_them(corp, admin_client):
    Mapping.objects.update(permission_level=level("Site Manager"))
    run, result, loaded = planned_run(corp)
    PortalUser.objects.filter(email="user1@corp.test").update(permission_level_set_by_hand=True)
    sync.apply_and_record(run, corp, result, loaded, "corp.test")
    page = admin_client.get(f"/admin/provisioning/flow/runs/{run.pk}/").content.decode()
    assert "Users changed by staff during the run, left as staff set them" in page
