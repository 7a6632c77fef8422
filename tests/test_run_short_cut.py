"""A run that could change nothing finishes without reading or planning, and only then (issue 19, section 3).

The short cut: the latest complete run planned nothing from the same agent upload and the same portal
state (sync._finish_if_unchanged, applier.inputs_digest). These tests prove it records what a full run
would, and that each thing the planner reads defeats it: a new upload that differs, mappings, levels,
groups, links, issues, other integrations' links, folders, thresholds and staff edits of users.
"""

from __future__ import annotations

import gc
import threading
import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from directory import upload_chunks, upload_start
from directory.models import AdMode, Folder, Integration, IntegrationKind
from passportal.models import GroupMembership, MembershipSource, PermissionLevel, PortalUser, SecurityGroup
from provisioning import actions, agent_uploads, sync
from provisioning.models import CreationIssue, DirectoryLink, Mapping, SyncRun
from provisioning.state import inputs_digest, load_current
from tests.engine_helpers import site_level

SALES, IT = str(uuid.UUID(int=901)), str(uuid.UUID(int=902))
FOLDERS = [{"id": SALES, "name": "Sales", "path": "Corp/Sales", "parent_id": None},
           {"id": IT, "name": "IT", "path": "Corp/IT", "parent_id": None}]


def person(n: int, folder: str = SALES, **changes) -> dict:
    record = {"id": str(uuid.UUID(int=n)), "first_name": f"First{n}", "last_name": "Lee",
              "email": f"user{n}@corp.test", "enabled": True, "folder_ids": [folder],
              "display_name": f"First{n} Lee", "upn": f"user{n}@corp.test", "dn": f"CN=First{n} Lee,DC=corp,DC=test"}
    return {**record, **changes}


PEOPLE = [person(1), person(2), person(3, IT), person(4, email="")]  # the last one: a creation issue


def push(integration: Integration, people=None, folders=None) -> None:
    upload = upload_start.start_upload(integration, directory_id="corp.test", agent_version="test")
    upload_chunks.add_folders(upload, folders or FOLDERS)
    people = PEOPLE if people is None else people
    if people:
        upload_chunks.add_users(upload, people)
    agent_uploads.commit_upload(upload, folder_count=len(folders or FOLDERS), user_count=len(people))


def run(integration: Integration) -> tuple[SyncRun, bool]:
    """Run as a worker does; returns the run and whether it read the upload (False: it took the short cut)."""
    integration.refresh_from_db()
    with CaptureQueriesContext(connection) as queries:
        finished = sync.run_sync(integration, "agent")
    assert finished.status in ("succeeded", "held"), finished.error
    read = any('"directory_agentuploadrecord"."data"' in q["sql"] for q in queries.captured_queries)
    return finished, read


@pytest.fixture
def steady(client_org):
    """An agent integration with both OUs mapped, whose latest run planned nothing from the latest upload."""
    integration = Integration.objects.create(client=client_org, name="Corp AD", kind=IntegrationKind.ACTIVE_DIRECTORY,
                                             ad_mode=AdMode.AGENT)
    push(integration)
    group = SecurityGroup.objects.create(client=client_org, name="Everyone")
    for external_id in (SALES, IT):
        mapping = Mapping.objects.create(folder=Folder.objects.get(integration=integration, external_id=external_id),
                                         permission_level=site_level())
        mapping.security_groups.add(group)
    first, _ = run(integration)
    assert first.counts["created"] == 3 and first.counts["issues_opened"] == 1
    # A setting the planner reads, which changes nothing here: the next run plans in full, and plans nothing.
    Integration.objects.filter(pk=integration.pk).update(disable_threshold_percent=40)
    push(integration)
    second, read = run(integration)
    assert read and not any(second.counts.values())
    assert second.changes["digests"]["read"] and second.changes["digests"]["inputs"]
    return integration


def plans_nothing(integration: Integration) -> bool:
    """What a full plan of the latest upload from the portal's state now would change: a dry run (R15)."""
    integration.refresh_from_db()
    return not any(sync.preview(integration).plan.counts.values())


def test_an_unchanged_push_finishes_without_reading_and_records_what_a_full_run_records(steady):
    full = SyncRun.objects.filter(integration=steady).order_by("-pk").first()
    folders_seen = dict(Folder.objects.filter(integration=steady).values_list("external_id", "last_seen"))
    users = list(PortalUser.objects.order_by("pk").values())
    push(steady)

    short, read = run(steady)

    assert not read
    assert short.status == full.status == "succeeded"
    assert short.counts == full.counts
    assert short.changes == full.changes
    assert list(PortalUser.objects.order_by("pk").values()) == users
    after = dict(Folder.objects.filter(integration=steady).values_list("external_id", "last_seen"))
    assert all(after[f] > folders_seen[f] for f in (SALES, IT)), "the folders were seen, as a full run records"
    again, read = run(steady)  # and the steady state stays short
    assert not read and not any(again.counts.values())


def _created(integration):
    return [*PEOPLE, person(5)]


def _renamed(integration):
    return [person(1, first_name="Renamed", display_name="Renamed Lee"), *PEOPLE[1:]]


def _disabled_in_the_directory(integration):
    return [person(1, enabled=False), *PEOPLE[1:]]


def _gone_from_the_directory(integration):
    return PEOPLE[1:]


def _moved_to_an_ou_with_another_group(integration):
    group = SecurityGroup.objects.create(client=integration.client, name="IT team")
    Mapping.objects.get(folder__external_id=IT).security_groups.set([group])  # planned in full: the mapping changed
    Mapping.objects.get(folder__external_id=IT).save()
    return [person(1, IT), *PEOPLE[1:]]


def _enabled_again(integration):
    push(integration, [person(1, enabled=False), *PEOPLE[1:]])
    disabled, _ = run(integration)
    assert disabled.counts["disabled"] == 1
    return PEOPLE


def _email_given(integration):
    return [*PEOPLE[:3], person(4)]  # the creation issue closes: user 4 is created


CHANGING = [_created, _renamed, _disabled_in_the_directory, _gone_from_the_directory,
            _moved_to_an_ou_with_another_group, _enabled_again, _email_given]


@pytest.mark.parametrize("change", CHANGING, ids=[c.__name__.strip("_") for c in CHANGING])
def test_r6_the_first_unchanged_push_after_a_changing_run_takes_the_short_cut_and_a_full_plan_agrees(steady, change):
    """The run that changed things remembers the state it left (digested after its writes, in their transaction):
    the agent's next push of the same directory finishes without reading, and planning it in full changes nothing."""
    people = change(steady)
    push(steady, people)
    changed, read = run(steady)
    assert read and any(changed.counts.values()) and changed.status == "succeeded"
    assert changed.changes["digests"]["inputs"] == inputs_digest(steady), "the state as the run left it"

    push(steady, people)
    after, read = run(steady)

    assert not read and not any(after.counts.values()), "the short cut"
    assert plans_nothing(steady), "a full plan of the same upload changes nothing either"


def test_r4_a_run_that_opened_an_issue_over_a_shared_email_is_not_remembered(steady):
    """Who holds an email is what the run itself changes: such an issue is planned again, never skipped."""
    people = [*PEOPLE, person(6, email="user1@corp.test")]
    push(steady, people)
    shared, read = run(steady)
    assert read and shared.counts["issues_opened"] == 1 and "digests" not in shared.changes
    push(steady, people)
    again, read = run(steady)
    assert read, "planned in full"
    assert not any(again.counts.values()) and plans_nothing(steady)


def test_r7_a_staff_edit_while_a_changing_run_plans_is_planned_again_and_not_remembered(steady):
    """Staff rename a user between the run's plan and its apply: the inputs digest under the client's lock differs
    from the one planned from, so the run plans again (the rename is put back, R6) and is not remembered: it
    planned from a state no digest it took describes. The next push plans in full."""
    push(steady, _renamed(steady))
    applying = []

    def staff_edit_when_the_run_applies(execute, sql, params, many, context):
        if not applying and sql.startswith('UPDATE "provisioning_syncrun" SET "phase"') and \
                "applying the changes" in (params or ()):
            applying.append(True)
            PortalUser.objects.filter(email="user2@corp.test").update(first_name="Staff")
        return execute(sql, params, many, context)

    with connection.execute_wrapper(staff_edit_when_the_run_applies):
        changed, read = run(steady)
    # Planned again under the client's lock from the state with the edit: the directory's name is back (R6).
    assert applying and read and changed.counts["updated"] == 2 and "digests" not in changed.changes
    assert PortalUser.objects.get(email="user2@corp.test").first_name == "First2"
    push(steady, _renamed(steady))
    again, read = run(steady)
    assert read, "not remembered: planned in full"
    assert not any(again.counts.values()) and plans_nothing(steady)


def _staff_rename(integration):
    PortalUser.objects.filter(email="user1@corp.test").update(first_name="Edited")


def _staff_email(integration):
    PortalUser.objects.filter(email="user1@corp.test").update(email="other@corp.test")


def _staff_disable(integration):
    user = PortalUser.objects.get(email="user1@corp.test")
    actions.staff_set_enabled(user, False, by=None)


def _staff_level(integration):
    PortalUser.objects.filter(email="user1@corp.test").update(
        permission_level=PermissionLevel.objects.get(user_kind="site", name="Site Admin"),
        permission_level_set_by_hand=True)


def _staff_removes_group(integration):
    GroupMembership.objects.filter(user__email="user1@corp.test", source=MembershipSource.MAPPING).delete()


def _staff_adds_user(integration):
    PortalUser.objects.create(client=integration.client, first_name="New", last_name="Hire",
                              email="user5@corp.test", permission_level=site_level())


def _mapping_removed(integration):
    Mapping.objects.filter(folder__external_id=IT).delete()


def _mapping_level(integration):
    Mapping.objects.filter(folder__external_id=IT).update(
        permission_level=PermissionLevel.objects.get(user_kind="site", name="Site Admin"))


def _level_rank(integration):
    PermissionLevel.objects.filter(user_kind="site", name="Site User").update(rank=999)


def _mapping_group(integration):
    group = SecurityGroup.objects.create(client=integration.client, name="Sales team")
    Mapping.objects.get(folder__external_id=SALES).security_groups.add(group)


def _link_removed(integration):
    DirectoryLink.objects.filter(integration=integration, external_id=PEOPLE[0]["id"]).delete()


def _link_state_forgotten(integration):
    DirectoryLink.objects.filter(integration=integration, external_id=PEOPLE[0]["id"]).update(state_hash="")


def _issue_closed(integration):
    CreationIssue.objects.filter(integration=integration).delete()


def _held_elsewhere(integration):
    other = Integration.objects.create(client=integration.client, name="Other AD",
                                       kind=IntegrationKind.ACTIVE_DIRECTORY, ad_mode=AdMode.AGENT)
    DirectoryLink.objects.filter(integration=integration, external_id=PEOPLE[0]["id"]).update(integration=other)


def _folder_renamed(integration):
    Folder.objects.filter(integration=integration, external_id=SALES).update(path="Corp/Sales (old)")


def _threshold(integration):
    Integration.objects.filter(pk=integration.pk).update(disable_threshold_percent=50)


def _upload_differs(integration):
    push(integration, [person(1, first_name="Renamed"), *PEOPLE[1:]])


def _upload_reordered(integration):
    push(integration, list(reversed(PEOPLE)))


def _upload_user_moved(integration):
    push(integration, [person(1, IT), *PEOPLE[1:]])


CHANGES = [_staff_rename, _staff_email, _staff_disable, _staff_level, _staff_removes_group, _staff_adds_user,
           _mapping_removed, _mapping_level, _level_rank, _mapping_group, _link_removed, _link_state_forgotten,
           _issue_closed, _held_elsewhere, _folder_renamed, _threshold, _upload_differs, _upload_reordered,
           _upload_user_moved]


@pytest.mark.parametrize("change", CHANGES, ids=[c.__name__.strip("_") for c in CHANGES])
def test_each_thing_the_planner_reads_defeats_the_short_cut(steady, change):
    before = inputs_digest(steady)
    push(steady)  # the agent's next push, unchanged unless the change is the upload itself
    change(steady)
    steady.refresh_from_db()
    changed = inputs_digest(steady)

    _, read = run(steady)

    assert read, f"{change.__name__}: the run must read and plan in full"
    assert (changed != before) != change.__name__.startswith("_upload"), "the portal's state, or the read, differs"


def test_an_unchanged_push_after_a_held_run_is_planned_again(steady):
    Integration.objects.filter(pk=steady.pk).update(disable_threshold_percent=1, disable_threshold_minimum=1)
    push(steady, PEOPLE[2:])  # two of three provisioned users gone: over the threshold, held
    held, read = run(steady)
    assert read and held.status == "held" and "digests" not in held.changes
    push(steady, PEOPLE[2:])
    again, read = run(steady)
    assert read and again.status == "held", "held disables are held again, never skipped"


def test_load_current_reads_users_with_their_mapping_groups_in_one_query(steady):
    user = PortalUser.objects.get(email="user1@corp.test")
    staff_group = SecurityGroup.objects.create(client=steady.client, name="Staff added")
    GroupMembership.objects.create(user=user, group=staff_group, source=MembershipSource.STAFF)
    lonely = PortalUser.objects.create(client=steady.client, first_name="No", last_name="Groups",
                                       email="nogroups@corp.test")
    everyone = SecurityGroup.objects.get(name="Everyone")

    current = load_current(steady).current

    assert current.users[user.pk].mapping_group_ids == frozenset({everyone.pk}), "staff grants are not mapping's"
    assert current.users[lonely.pk].mapping_group_ids == frozenset()
    assert set(current.users) == set(PortalUser.objects.filter(client=steady.client).values_list("pk", flat=True))


def test_cyclic_gc_is_paused_while_runs_execute_and_resumed_when_the_last_ends():
    assert gc.isenabled()
    started, release = threading.Event(), threading.Event()

    def other_run():
        with sync._cyclic_gc_paused():
            started.set()
            release.wait(5)

    thread = threading.Thread(target=other_run)
    with sync._cyclic_gc_paused():
        assert not gc.isenabled()
        thread.start()
        started.wait(5)
    assert not gc.isenabled(), "another run still executes"
    release.set()
    thread.join()
    assert gc.isenabled()


def _raw_sql_rename(integration):
    """A writer that goes around the ORM (no updated_at, no signal): still a new row version."""
    table = connection.ops.quote_name(PortalUser._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {table} SET first_name = %s WHERE email = %s", ["Raw", "user1@corp.test"])


def _group_removed_and_granted_again(integration):
    """The same membership deleted and added again: the same content, a new row."""
    membership = GroupMembership.objects.filter(user__email="user1@corp.test", source=MembershipSource.MAPPING).first()
    membership.delete()
    GroupMembership.objects.create(user_id=membership.user_id, group_id=membership.group_id,
                                   source=MembershipSource.MAPPING)


@pytest.mark.parametrize("change", [_raw_sql_rename, _group_removed_and_granted_again],
                         ids=["raw_sql_rename", "group_removed_and_granted_again"])
def test_r6_any_write_to_a_table_the_planner_reads_plans_the_next_run_in_full(steady, change):
    """PostgreSQL digests the large tables by row version (xmin): no writer can change a row without a new one.

    A write the ORM never saw is caught; a write that leaves the content as it was plans in full too (the safe
    side: the short cut only skips what it can prove unchanged). SQLite digests the rows' text: there the
    content decides, and a write back to the same content may be skipped, as the same plan would follow.
    """
    before = inputs_digest(steady)
    push(steady)
    change(steady)

    _, read = run(steady)

    rewritten = change is _group_removed_and_granted_again
    if connection.vendor == "postgresql" or not rewritten:
        assert read, f"{change.__name__}: the run must read and plan in full"
    else:
        assert not read and inputs_digest(steady) == before
    if not rewritten:  # and the directory's name is back (R6)
        assert PortalUser.objects.get(email="user1@corp.test").first_name == "First1"


def test_the_upload_digest_is_stored_at_commit_and_is_the_records_digest(steady):
    from directory.models import AgentUpload
    from directory.upload_digest import records_digest

    push(steady)
    upload = AgentUpload.objects.filter(integration=steady, status="committed").get()
    assert upload.records_digest == records_digest(upload.pk, upload.directory_id)

    _, read = run(steady)
    assert not read, "the stored digest is the last run's: nothing to read"


def test_an_upload_committed_before_digests_were_stored_is_digested_by_the_run(steady):
    from directory.models import AgentUpload

    push(steady)
    AgentUpload.objects.filter(integration=steady, status="committed").update(records_digest="")

    _, read = run(steady)
    assert not read, "the digest is computed from the records, equal to the last run's"
    push(steady, [person(1, first_name="Renamed"), *PEOPLE[1:]])
    AgentUpload.objects.filter(integration=steady, status="committed").update(records_digest="")
    changed, read = run(steady)
    assert read and changed.counts["updated"] == 1


def test_r21_a_run_the_short_cut_finishes_says_and_keeps_the_agents_read_as_a_full_run_would(steady):
    """An agent that keeps a mark pushes the same directory: the run reads nothing, yet says which read the
    agent made and keeps its mark (the agent's next read may be one of changes only), as the full run would."""
    from directory.partial_uploads import ReadTold
    from provisioning.models import AdReadMark

    mark = {"host": "dc1.corp.test", "invocation_id": str(uuid.UUID(int=77)), "usn": 5000}
    upload = upload_start.start_upload(steady, directory_id="corp.test", agent_version="test",
                                       told=ReadTold(mark=mark, why="asked for a full read"))
    upload_chunks.add_folders(upload, FOLDERS)
    upload_chunks.add_users(upload, PEOPLE)
    agent_uploads.commit_upload(upload, folder_count=len(FOLDERS), user_count=len(PEOPLE))

    short, read = run(steady)

    assert not read and short.status == "succeeded"
    assert short.changes["read"]["words"].startswith("full read (asked for a full read)")
    kept = AdReadMark.objects.get(integration=steady)
    assert (kept.host, kept.invocation_id, kept.usn, kept.kept_by_id) == (
        "dc1.corp.test", mark["invocation_id"], 5000, short.pk)


def test_r9_a_full_upload_holding_what_a_partial_one_held_is_planned_in_full(steady):
    """A partial upload (only the changes) planned nothing; a full upload with the very same records comes next:
    a full read sweeps whom it lacks (R9), so it is not the same read and the run plans it."""
    from directory.models import AgentUpload, AgentUploadRecord
    from directory.upload_digest import records_digest

    last = AgentUpload.objects.get(integration=steady, status="committed")
    full_digest = _read_digest(steady)
    partial = AgentUpload.objects.create(integration=steady, directory_id=last.directory_id, status="committed",
                                         partial=True, committed_at=last.committed_at + timezone.timedelta(seconds=1),
                                         user_count=last.user_count)
    AgentUploadRecord.objects.bulk_create([AgentUploadRecord(upload=partial, kind=r.kind, external_id=r.external_id,
                                                             data=r.data) for r in last.records.order_by("pk")])
    AgentUpload.objects.filter(pk=partial.pk).update(records_digest=records_digest(partial.pk, partial.directory_id))
    assert AgentUpload.objects.get(pk=partial.pk).records_digest == last.records_digest, "the very same records"

    assert _read_digest(steady) != full_digest
    assert _read_digest(steady).endswith(":changes") and full_digest.endswith(":full")


def _read_digest(integration: Integration) -> str:
    from provisioning.agent_marks import latest_upload

    return latest_upload(integration).read_digest
