"""R15: every preview's counts are the counts of the run that follows it: apply, link off, link on, remove mapping."""

from __future__ import annotations

import pytest

from directory import upload_chunks, upload_start
from directory.models import Folder
from passportal.models import PermissionLevel, PortalUser, SecurityGroup
from provisioning import actions, agent_uploads, sync
from provisioning.models import Mapping, SyncTrigger
from provisioning.state import load_mappings
from tests.fixtures_browser import agent_integration, ou, person, push_directory

pytestmark = pytest.mark.django_db

SALES = ou(1, "Sales")


def counts_of(run) -> dict[str, int]:
    return {key: value for key, value in run.counts.items() if value}


@pytest.fixture
def integration(client_org, settings):
    settings.TASKS_RUN_INLINE = False  # the test starts each run itself, right after its preview
    integration = agent_integration(client_org, [SALES], [], name="Contoso AD")
    mapping = Mapping.objects.create(folder=Folder.objects.get(integration=integration, external_id=SALES["id"]),
                                     permission_level=PermissionLevel.objects.get(user_kind="site", name="Site User"))
    mapping.security_groups.add(SecurityGroup.objects.create(client=client_org, name="Sales team"))
    return integration


def directory(*, disabled: tuple[int, ...] = ()) -> list[dict]:
    return [person(n, SALES, enabled=n not in disabled) for n in range(1, 10)]


def test_r15_the_apply_preview_counts_the_groups_new_users_get(integration):
    upload = upload_start.start_upload(integration, directory_id="corp.test", agent_version="3.2.1")
    upload_chunks.add_folders(upload, [SALES])
    upload_chunks.add_users(upload, directory())
    agent_uploads.commit_upload(upload, folder_count=1, user_count=9)  # the directory now holds 9 users

    preview = sync.preview(integration)
    run = sync.run_sync(integration, SyncTrigger.FORCE)
    assert counts_of(preview.run) == counts_of(run)
    assert run.counts["created"] == 9 and run.counts["groups_added"] == 9


@pytest.fixture
def provisioned(integration):
    """9 users created; then 2 disabled in the directory and 1 disabled by staff."""
    push_directory(integration, [SALES], directory())
    sync.run_sync(integration, SyncTrigger.FORCE)
    push_directory(integration, [SALES], directory(disabled=(1, 2)))
    sync.run_sync(integration, SyncTrigger.FORCE)
    actions.staff_set_enabled(PortalUser.objects.get(email="user3@corp.test"), False, by=None)
    assert PortalUser.objects.filter(status="disabled").count() == 3
    return integration


def preview_then_switch(integration, enabled: bool):
    preview = sync.preview_link(integration, enabled)
    run = actions.set_link(integration, enabled, by=None)
    if enabled:  # switched on, the run waits for the agent's fresh read: the agent pushes AD as it still is
        assert (run.status, run.phase) == ("queued", "waiting for the on-prem agent")
        run = push_directory(integration, [SALES], directory(disabled=(1, 2)))
    return preview.run, run


def test_r10_r15_the_link_off_preview_disables_exactly_whom_the_run_disables(provisioned):
    preview, run = preview_then_switch(provisioned, False)
    assert counts_of(preview) == counts_of(run) == {"disabled": 6}


def test_r10_r15_the_link_on_preview_lists_no_already_disabled_user(provisioned):
    preview_then_switch(provisioned, False)
    preview, run = preview_then_switch(provisioned, True)
    assert counts_of(preview) == counts_of(run) == {"reenabled": 6}
    assert PortalUser.objects.filter(status="disabled").count() == 3


def test_r9_r15_the_remove_mapping_preview_matches_the_run(provisioned):
    folder = Folder.objects.get(integration=provisioned, external_id=SALES["id"])
    rules = {key: rule for key, rule in load_mappings(provisioned).items() if key != folder.external_id}
    preview = sync.preview(provisioned, mappings=rules)
    Mapping.objects.filter(folder=folder).delete()
    run = sync.run_sync(provisioned, SyncTrigger.APPLY)
    assert counts_of(preview.run) == counts_of(run)
    assert run.counts["disabled"] == 6 and run.counts["groups_removed"] == 9
