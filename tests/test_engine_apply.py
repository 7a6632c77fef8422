"""The applier and the sync service, fed snapshots directly, against the real database."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from notifications.models import Notification, OutboxEmail
from passportal.models import ActivationToken, GroupMembership, PortalUser
from provisioning import actions, runs
from provisioning.models import CreationIssue, DirectoryLink, SyncRun
from provisioning.sync import execute_run, sync_snapshot
from tests.engine_helpers import (
    folders,
    integration_with,
    map_folder,
    pro_level,
    site_level,
    snapshot,
    user,
)

SALES, IT, OTHER = folders("Sales", "IT", "Other")
ALL = (SALES, IT, OTHER)


@pytest.fixture
def corp(client_org):
    integration = integration_with(client_org, ALL)
    map_folder(integration, SALES, site_level("Site User"), "Sales team")
    map_folder(integration, IT, site_level("Site Manager"), "IT team")
    return integration


def sync(integration, *users, **kw):
    return sync_snapshot(integration, snapshot(ALL, users, **kw), "command")


def emails(client):
    return sorted(PortalUser.objects.filter(client=client).values_list("email", flat=True))


def test_r2_first_run_creates_site_users_with_level_groups_and_activation_emails(
    corp, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        run = sync(corp, user(1, SALES), user(2, IT), user(3, OTHER), user(4, SALES, enabled=False))
    assert run.status == "succeeded" and run.counts["created"] == 2
    assert emails(corp.client) == ["user1@corp.test", "user2@corp.test"]
    u2 = PortalUser.objects.get(email="user2@corp.test")
    assert u2.kind == "site" and u2.permission_level.name == "Site Manager" and u2.status == "pending"
    assert list(u2.security_groups.values_list("name", flat=True)) == ["IT team"]
    assert sorted(OutboxEmail.objects.values_list("recipient", flat=True)) == ["user1@corp.test", "user2@corp.test"]


def test_r2_in_the_company_vault_the_users_are_pro_users(vault):
    integration = integration_with(vault, ALL)
    map_folder(integration, SALES, pro_level("Technician"))
    sync(integration, user(1, SALES))
    assert PortalUser.objects.get().kind == "pro"


def test_r24_a_second_run_with_nothing_changed_changes_nothing(corp):
    sync(corp, user(1, SALES), user(2, IT))
    before = list(PortalUser.objects.values_list("id", "updated_at"))
    run = sync(corp, user(1, SALES), user(2, IT))
    assert run.status == "succeeded" and not any(run.counts.values())
    assert list(PortalUser.objects.values_list("id", "updated_at")) == before
    assert run.trigger == "command" and run.started_at and run.finished_at


def test_r3_rename_move_and_new_email_keep_the_same_portal_user(corp):
    sync(corp, user(1, SALES))
    original = PortalUser.objects.get()
    run = sync(corp, user(1, IT, first="Renamed", email="renamed@corp.test"))
    moved = PortalUser.objects.get()
    assert moved.pk == original.pk and run.counts["updated"] == 1
    assert (moved.first_name, moved.email, moved.permission_level.name) == ("Renamed", "renamed@corp.test",
                                                                           "Site Manager")
    assert list(moved.security_groups.values_list("name", flat=True)) == ["IT team"]
    assert DirectoryLink.objects.get().folder_ids == [IT.id]


def test_r8_disabled_then_enabled_again_in_the_directory(corp):
    sync(corp, user(1, SALES))
    sync(corp, user(1, SALES, enabled=False))
    assert PortalUser.objects.get().status == "disabled"
    assert PortalUser.objects.get().disabled_reason == "directory"
    sync(corp, user(1, SALES))
    assert PortalUser.objects.get().status == "pending"  # not activated yet, so pending, not active


def test_r8_a_staff_disable_survives_the_directory_enabling_the_user(corp):
    sync(corp, user(1, SALES, enabled=False))
    sync(corp, user(1, SALES))
    portal_user = PortalUser.objects.get()
    actions.staff_set_enabled(portal_user, False, by=None)
    sync(corp, user(1, SALES, enabled=False))
    sync(corp, user(1, SALES))
    portal_user.refresh_from_db()
    assert portal_user.status == "disabled" and portal_user.disabled_by_staff
    actions.staff_set_enabled(portal_user, True, by=None)
    assert PortalUser.objects.get().status == "pending"


def test_r8_portal_users_are_never_deleted_by_a_sync(corp):
    sync(corp, user(1, SALES), user(2, SALES))
    sync(corp, user(1, SALES))
    assert PortalUser.objects.count() == 2
    assert PortalUser.objects.get(email="user2@corp.test").disabled_reason == "out_of_scope"


def test_r9_removing_a_folder_mapping_disables_its_users(corp):
    sync(corp, user(1, SALES), user(2, IT))
    corp.folders.get(external_id=SALES.id).mapping.delete()
    sync(corp, user(2, IT))
    assert PortalUser.objects.get(email="user1@corp.test").status == "disabled"
    assert PortalUser.objects.get(email="user2@corp.test").status == "pending"
    assert not GroupMembership.objects.filter(user__email="user1@corp.test").exists()


def test_r10_link_off_disables_at_once_and_link_on_brings_them_back(corp):
    sync(corp, user(1, SALES), user(2, IT))
    run = actions.set_link(corp, False, by=None)
    assert run.status == "succeeded" and run.counts["disabled"] == 2
    assert set(PortalUser.objects.values_list("disabled_reason", flat=True)) == {"link_off"}
    corp.refresh_from_db()
    corp.link_enabled = True
    corp.save()
    sync(corp, user(1, SALES), user(2, IT))
    assert set(PortalUser.objects.values_list("status", flat=True)) == {"pending"}


def test_r11_a_hand_set_level_survives_and_r4_adoption_keeps_the_level(corp):
    manager = site_level("Site Admin")
    existing = PortalUser.objects.create(client=corp.client, email="USER1@corp.test", permission_level=manager)
    sync(corp, user(1, SALES))
    adopted = PortalUser.objects.get()
    assert adopted.pk == existing.pk and adopted.permission_level == manager and adopted.permission_level_set_by_hand
    assert DirectoryLink.objects.get().portal_user_id == existing.pk


def test_r12_staff_groups_are_never_touched(corp):
    sync(corp, user(1, SALES))
    portal_user = PortalUser.objects.get()
    staff_group = corp.client.security_groups.create(name="Hand picked")
    GroupMembership.objects.create(user=portal_user, group=staff_group, source="staff")
    sync(corp, user(1, OTHER))
    assert list(portal_user.security_groups.values_list("name", flat=True)) == ["Hand picked"]


def test_r7_creation_issue_is_recorded_once_notified_once_and_closes_itself(corp):
    sync(corp, user(1, SALES, email=""))
    sync(corp, user(1, SALES, email=""))
    issue = CreationIssue.objects.get()
    assert issue.closed_at is None and issue.reason == "no_email" and "Corp/Sales" in issue.message
    assert Notification.objects.filter(kind="creation_issue").count() == 1
    assert "Contoso Ltd" in Notification.objects.get().title
    sync(corp, user(1, SALES))
    issue.refresh_from_db()
    assert issue.closed_at is not None and PortalUser.objects.count() == 1


def test_r22_over_the_threshold_is_held_then_applied_by_staff(corp):
    people = [user(n, SALES) for n in range(1, 41)]
    sync(corp, *people)
    run = sync(corp, *people[:10], user(100, IT))
    assert run.status == "held" and len(run.held_disables) == 30
    assert PortalUser.objects.filter(status="disabled").count() == 0
    assert PortalUser.objects.filter(email="user100@corp.test").exists(), "creations still applied"
    assert Notification.objects.filter(kind="disables_held").count() == 1
    assert actions.apply_held_disables(run, by=None) == 30
    assert PortalUser.objects.filter(status="disabled").count() == 30
    with pytest.raises(ValueError, match="no disables waiting"):
        actions.discard_held_disables(run, by=None)


def test_r22_discarding_held_disables_changes_nobody(corp):
    people = [user(n, SALES) for n in range(1, 41)]
    sync(corp, *people)
    run = sync(corp, *people[:5])
    actions.discard_held_disables(run, by=None)
    assert PortalUser.objects.filter(status="disabled").count() == 0
    assert SyncRun.objects.get(pk=run.pk).held_resolution == "discarded"


def test_r23_a_trigger_while_one_is_queued_folds_into_it(corp):
    first = runs.request_sync(corp, "schedule", full=False, enqueue=False)
    second = runs.request_sync(corp, "force", full=True, enqueue=False)
    assert first.pk == second.pk and SyncRun.objects.get(pk=first.pk).full
    assert SyncRun.objects.filter(integration=corp, status="queued").count() == 1


def test_r23_a_trigger_during_a_run_becomes_one_follow_up(corp):
    running = runs.request_sync(corp, "schedule", enqueue=False)
    SyncRun.objects.filter(pk=running.pk).update(status="running")
    follow_ups = {runs.request_sync(corp, "force", enqueue=False).pk for _ in range(10)}
    assert len(follow_ups) == 1 and running.pk not in follow_ups
    assert execute_run(follow_ups.pop()).status == "queued", "waits while the other runs"


def test_r23_a_run_that_dies_half_way_leaves_nothing_and_the_next_completes(corp):
    """A real database fault inside the applier (a trigger refusing one link row), not a patched function."""
    table = DirectoryLink._meta.db_table
    poisoned = user(2, SALES)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "CREATE FUNCTION refuse_link() RETURNS trigger AS $$ BEGIN "
                f"IF NEW.external_id = '{poisoned.id}' THEN RAISE EXCEPTION 'disk on fire'; END IF; "
                "RETURN NEW; END $$ LANGUAGE plpgsql")
            cursor.execute(f"CREATE TRIGGER refuse_link BEFORE INSERT ON {table} "
                           "FOR EACH ROW EXECUTE FUNCTION refuse_link()")
        else:
            cursor.execute(f"CREATE TRIGGER refuse_link BEFORE INSERT ON {table} "
                           f"WHEN NEW.external_id = '{poisoned.id}' BEGIN SELECT RAISE(ABORT, 'disk on fire'); END")
    with pytest.raises(Exception, match="disk on fire"):
        sync(corp, user(1, SALES), poisoned)
    assert PortalUser.objects.count() == 0 and DirectoryLink.objects.count() == 0
    failed = SyncRun.objects.get()
    assert failed.status == "failed" and "disk on fire" in failed.error
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TRIGGER refuse_link{' ON ' + table if connection.vendor == 'postgresql' else ''}")
    run = sync(corp, user(1, SALES), poisoned)
    assert run.status == "succeeded" and PortalUser.objects.count() == 2


def _statements(integration, users) -> list[str]:
    with CaptureQueriesContext(connection) as queries:
        sync(integration, *users)
    return [q["sql"] for q in queries.captured_queries]


def _expected_inserts(rows: int, model, batch: int = 2000) -> int:
    """Statements one bulk insert needs: one per batch of rows, or fewer rows where the database caps parameters."""
    columns = len([f for f in model._meta.concrete_fields if f.name != "id"])
    cap = connection.features.max_query_params
    per_statement = min(batch, cap // columns) if cap else batch
    return -(-rows // per_statement)


def test_statements_per_run_grow_with_batches_not_users(client_org, vault):
    small = integration_with(client_org, ALL, name="small")
    large = integration_with(vault, ALL, name="large")
    map_folder(small, SALES, site_level(), "Sales team")
    map_folder(large, SALES, pro_level(), "Sales team")
    few = _statements(small, [user(n, SALES) for n in range(1, 11)])
    many = _statements(large, [user(n, SALES) for n in range(1, 2001)])
    inserts = [q for q in many if q.startswith("INSERT") and "syncrun" not in q]
    # Activation emails are queued in the run's transaction: their tokens and outbox rows are bulk inserts too.
    assert len(inserts) <= (_expected_inserts(2000, PortalUser) + _expected_inserts(2000, DirectoryLink)
                            + _expected_inserts(2000, GroupMembership) + _expected_inserts(2000, ActivationToken, 1000)
                            + _expected_inserts(2000, OutboxEmail, 1000)), len(inserts)
    others = [q for q in many if not (q.startswith("INSERT") and "syncrun" not in q)]
    assert len(others) <= len(few), "everything but the bulk inserts is the same for 10 users and for 2,000"
    # An update of every user: one bulk statement per batch, never one per user.
    renamed = _statements(large, [user(n, SALES, first=f"New{n}") for n in range(1, 2001)])
    assert len(renamed) < len(few) + 40, len(renamed)
