"""The portal's schedules come from one table (passportal/schedules.py): migrate creates each once, and the overview
reads each kind's next run by the schedules' keys (R17, R27)."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone
from django_q.models import Schedule

from directory.models import Integration, IntegrationKind
from passportal.schedules import SCHEDULES, ensure_schedules, next_runs
from provisioning.views.overview import overview_rows


def test_r17_every_schedule_of_the_table_exists_once_after_migrate_with_its_task(db):
    ensure_schedules()
    for schedule in SCHEDULES.values():
        [stored] = Schedule.objects.filter(name=schedule.name)
        assert (stored.func, stored.args or "", stored.minutes, stored.repeats) == (
            schedule.func, schedule.args, schedule.every_minutes, -1), schedule.key
    assert set(Schedule.objects.values_list("name", flat=True)) == {s.name for s in SCHEDULES.values()}


def test_r17_a_schedule_brought_back_in_line_keeps_its_next_run(db):
    nightly = Schedule.objects.get(name=SCHEDULES["entra_nightly"].name)
    Schedule.objects.filter(pk=nightly.pk).update(func="somewhere.else")
    ensure_schedules()
    again = Schedule.objects.get(pk=nightly.pk)
    assert (again.func, again.next_run) == (SCHEDULES["entra_nightly"].func, nightly.next_run)


def test_r27_the_overview_shows_the_soonest_next_run_of_the_schedules_reading_each_kind(client_org):
    entra = Integration.objects.create(client=client_org, name="Contoso Entra", kind=IntegrationKind.ENTRA)
    demo = Integration.objects.create(client=client_org, name="Demo", kind=IntegrationKind.DEMO,
                                      base_dn="DC=contoso,DC=demo")
    direct = Integration.objects.create(client=client_org, name="Corp AD", kind=IntegrationKind.ACTIVE_DIRECTORY,
                                        ad_mode="direct", base_dn="DC=corp,DC=test")
    soon, later = timezone.now() + timedelta(minutes=3), timezone.now() + timedelta(hours=5)
    for key, when in [("entra_incremental", later), ("entra_nightly", soon), ("ad_direct", later)]:
        Schedule.objects.filter(name=SCHEDULES[key].name).update(next_run=when)
    Schedule.objects.filter(name=SCHEDULES["demo"].name).delete()

    rows = {row.integration.pk: row for row in overview_rows()}
    assert (rows[entra.pk].next_run, rows[entra.pk].next_run_note) == (soon, "")
    assert (rows[direct.pk].next_run, rows[direct.pk].next_run_note) == (later, "")
    assert (rows[demo.pk].next_run, rows[demo.pk].next_run_note) == (None, "no schedule (start the task cluster)")
    assert next_runs(["demo", "ad_direct"]) == {"demo": None, "ad_direct": later}
