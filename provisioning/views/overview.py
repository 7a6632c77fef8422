"""R27: every integration of every client at a glance, sortable."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Count, OuterRef, Q, Subquery
from django.http import HttpRequest, HttpResponse

from directory.models import AdMode, Integration, IntegrationKind
from passportal.schedules import next_runs

from ..models import SyncRun, SyncStatus
from .common import page, require_perms

AGENT_PUSHES = "when the agent pushes (every 6 hours and at agent start)"


@dataclass
class OverviewRow:
    integration: Integration
    last_run: SyncRun | None
    next_run: datetime | None
    next_run_note: str
    open_issues: int
    held_disables: int
    held_run: SyncRun | None

    @property
    def duration(self) -> timedelta | None:
        return self.last_run.duration if self.last_run else None


NO_SCHEDULE = "no schedule (start the task cluster)"
# The schedules that read each kind of integration, by their keys in passportal/schedules.py: the overview shows
# the soonest. An Active Directory read by the on-prem agent has none (the agent pushes), SCIM neither (pushed).
SCHEDULES_READING = {
    IntegrationKind.ENTRA: ("entra_incremental", "entra_nightly"),
    IntegrationKind.DEMO: ("demo",),
    IntegrationKind.ACTIVE_DIRECTORY: ("ad_direct",),
}


def _schedule_next_runs() -> dict[str, datetime | None]:
    """Next run per integration kind, from the R17 schedules (one query)."""
    runs = next_runs(key for keys in SCHEDULES_READING.values() for key in keys)
    soonest: dict[str, datetime | None] = {}
    for kind, keys in SCHEDULES_READING.items():
        times = [when for key in keys if (when := runs[key])]
        soonest[kind] = min(times) if times else None
    return soonest


def _next_run(integration: Integration, nexts: dict[str, datetime | None]) -> tuple[datetime | None, str]:
    if not integration.link_enabled:
        return None, "link off"
    if integration.kind == IntegrationKind.SCIM:
        from scim.activity import summary

        return None, summary(integration)
    if integration.kind not in (IntegrationKind.ENTRA, IntegrationKind.DEMO) and integration.ad_mode == AdMode.AGENT:
        return None, AGENT_PUSHES
    next_run = nexts.get(integration.kind)
    return next_run, "" if next_run else NO_SCHEDULE


SORT_KEYS = {
    "client": lambda r: (r.integration.client.name.lower(), r.integration.name.lower()),
    "integration": lambda r: r.integration.name.lower(),
    "kind": lambda r: r.integration.get_kind_display(),
    "link": lambda r: r.integration.link_enabled,
    "last_run": lambda r: (r.last_run is not None, r.last_run.requested_at if r.last_run else None),
    "outcome": lambda r: r.last_run.status if r.last_run else "",
    "issues": lambda r: r.open_issues,
    "held": lambda r: r.held_disables,
    "next_run": lambda r: (r.next_run is None, r.next_run),
}


def overview_rows(sort: str = "client") -> list[OverviewRow]:
    last_run_id = Subquery(SyncRun.objects.filter(integration=OuterRef("pk"), dry_run=False)
                           .order_by("-requested_at", "-id").values("pk")[:1])
    integrations = list(
        Integration.objects.select_related("client")
        .annotate(last_run_id=last_run_id,
                  open_issues=Count("creation_issues", filter=Q(creation_issues__closed_at__isnull=True)))
    )
    runs = SyncRun.objects.select_related("held_decided_by").in_bulk(
        [i.last_run_id for i in integrations if i.last_run_id])
    held_runs: dict[int, SyncRun] = {}
    for run in SyncRun.objects.filter(status=SyncStatus.HELD, held_resolution="").order_by("-requested_at"):
        held_runs.setdefault(run.integration_id, run)
    nexts = _schedule_next_runs()
    rows = []
    for integration in integrations:
        held = held_runs.get(integration.pk)
        next_run, note = _next_run(integration, nexts)
        rows.append(OverviewRow(integration, runs.get(integration.last_run_id), next_run, note,
                                integration.open_issues, len(held.held_disables) if held else 0, held))
    descending = sort.startswith("-")
    key = SORT_KEYS.get(sort.lstrip("-"), SORT_KEYS["client"])
    return sorted(rows, key=lambda r: _comparable(key(r)), reverse=descending)


def _comparable(value: object) -> tuple[object, ...]:
    # None sorts first without comparing None to a datetime.
    if isinstance(value, tuple):
        return tuple(_comparable(v) for v in value)
    return (value is not None, value if value is not None else 0)


COLUMNS = [("client", "Client"), ("integration", "Integration"), ("kind", "Kind"), ("link", "Link"),
           ("last_run", "Last run"), ("outcome", "Outcome"), ("next_run", "Next run"),
           ("issues", "Open creation issues"), ("held", "Held disables")]


@require_perms("directory.view_integration", "provisioning.view_syncrun")
def overview(request: HttpRequest) -> HttpResponse:
    sort = request.GET.get("o", "client")
    if sort.lstrip("-") not in SORT_KEYS:
        sort = "client"
    columns = [(key, label, ("-" + key) if sort == key else key, sort.lstrip("-") == key, sort.startswith("-"))
               for key, label in COLUMNS]
    return page(request, "provisioning/overview.html", "All integrations at a glance", rows=overview_rows(sort),
                columns=columns, sort=sort)
