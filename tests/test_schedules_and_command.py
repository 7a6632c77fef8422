"""R17 schedules and `manage.py resync`'s argument handling."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command
from django_q.models import Schedule

from directory.models import Folder, Integration
from passportal.models import PortalUser
from passportal.schedules import ensure_schedules
from provisioning import runs, sync
from provisioning.models import Mapping, SyncRun
from tests.engine_helpers import folders, integration_with, site_level
from tests.fixtures_entra import entra_integration_values


def test_r17_schedules_exist_after_migrate_with_the_documented_cadence(db):
    by_name = {s.name: s for s in Schedule.objects.all()}
    ad = by_name["provisioning: Active Directory (direct) every 6 hours"]
    entra = by_name["provisioning: Entra ID incremental every 5 minutes"]
    nightly = by_name["provisioning: Entra ID full every night at 02:00"]
    assert (ad.schedule_type, ad.minutes) == (Schedule.MINUTES, 360)
    assert (entra.schedule_type, entra.minutes, entra.args) == (Schedule.MINUTES, 5, "'entra', False")
    assert nightly.schedule_type == Schedule.DAILY
    from django.utils import timezone
    assert timezone.localtime(nightly.next_run).hour == 2


def test_r17_creating_schedules_again_is_idempotent_and_keeps_the_nightly_time(db):
    before = Schedule.objects.count()
    nightly = Schedule.objects.get(name__contains="every night")
    ensure_schedules()
    ensure_schedules()
    assert Schedule.objects.count() == before
    assert Schedule.objects.get(pk=nightly.pk).next_run == nightly.next_run


def test_r17_force_resync_queues_a_full_run_and_leaves_the_schedules_alone(client_org):
    integration = integration_with(client_org, folders("Sales"))
    schedules = list(Schedule.objects.values_list("name", "next_run"))
    run = runs.request_sync(integration, "force", full=True, enqueue=False)
    assert run.full and run.status == "queued" and run.trigger == "force"
    assert list(Schedule.objects.values_list("name", "next_run")) == schedules


def test_resync_without_a_target_says_which_arguments_it_needs(db):
    with pytest.raises(CommandError, match="--integration ID"):
        call_command("resync")


def test_resync_names_unknown_integrations_and_clients(db):
    with pytest.raises(CommandError, match="No integration with id 999, 1000"):
        call_command("resync", "--integration", "999", "--integration", "1000")
    with pytest.raises(CommandError, match="No client with id or name 'Nobody Inc'"):
        call_command("resync", "--client", "Nobody Inc")


def test_resync_queues_a_run_per_integration_of_a_client(client_org, capsys):
    a = integration_with(client_org, folders("Sales"), name="A")
    b = integration_with(client_org, folders("IT"), name="B")
    call_command("resync", "--client", "contoso ltd")
    out = capsys.readouterr().out
    assert "queued as run" in out and "/ A:" in out and "/ B:" in out
    assert set(SyncRun.objects.values_list("integration_id", flat=True)) == {a.pk, b.pk}


@pytest.fixture
def entra_sales(fake_entra, client_org):
    """An Entra integration on the Graph stand-in, its AU mapped and provisioned by full runs (delta links stored)."""
    au = fake_entra.add_au("Sales")
    ann = fake_entra.add_user("Ann", "Lee", mail="ann@contoso.com", aus=[au])
    integration = Integration.objects.create(client=client_org, name="Contoso Entra",
                                             **entra_integration_values(fake_entra))
    assert sync.run_sync(integration, "force").status == "succeeded"
    Mapping.objects.create(folder=Folder.objects.get(integration=integration, external_id=au.id),
                           permission_level=site_level())
    first = sync.run_sync(integration, "force")
    assert first.counts["created"] == 1, first.error
    integration.refresh_from_db()
    assert integration.delta_state, "a full run stores the delta links the incremental runs follow"
    return {"integration": integration, "au": au, "ann": ann}


def test_r17_resync_incremental_runs_the_delta_sync_now(fake_entra, entra_sales, capsys):
    integration = entra_sales["integration"]
    fake_entra.rename_user(entra_sales["ann"], "Anna", "Lee")
    fake_entra.add_user("Bob", "Ray", mail="bob@contoso.com", aus=[entra_sales["au"]])
    fake_entra.requests_seen.clear()

    call_command("resync", "--integration", str(integration.pk), "--incremental", "--wait")

    out = capsys.readouterr().out
    assert "only what changed in Entra ID since the last run" in out and "Succeeded" in out, out
    run = SyncRun.objects.filter(integration=integration).latest("pk")
    assert (run.trigger, run.full, run.counts["created"], run.counts["updated"]) == ("command", False, 1, 1)
    assert PortalUser.objects.get(email="ann@contoso.com").first_name == "Anna"
    # The delta path: the stored delta links were followed, no AU's members were listed.
    followed = fake_entra.requests_to("/users/delta")
    assert followed and all("$deltatoken=" in r.query and "latest" not in r.query for r in followed)
    assert not fake_entra.requests_to("/members/microsoft.graph.user")
    assert Integration.objects.get(pk=integration.pk).delta_state != integration.delta_state  # new links kept


def test_r17_resync_incremental_says_when_it_reads_everything(client_org, capsys):
    ad = integration_with(client_org, folders("Sales"), name="AD")
    call_command("resync", "--integration", str(ad.pk), "--incremental")
    out = capsys.readouterr().out
    assert "Active Directory has no incremental read, it is read in full" in out and "queued as run" in out
    assert SyncRun.objects.get(integration=ad).full is False  # asked for; the AD read is whole either way


def test_r17_resync_incremental_and_dry_run_together_are_refused(client_org):
    ad = integration_with(client_org, folders("Sales"), name="AD")
    with pytest.raises(CommandError, match="--dry-run previews a full read"):
        call_command("resync", "--integration", str(ad.pk), "--incremental", "--dry-run")
    assert not SyncRun.objects.exists()
