"""R17 schedules and `manage.py resync`'s argument handling."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command
from django_q.models import Schedule

from provisioning import services
from provisioning.models import SyncRun
from provisioning.schedules import ensure_schedules
from tests.engine_helpers import folders, integration_with


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
    run = services.request_sync(integration, "force", full=True, enqueue=False)
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
