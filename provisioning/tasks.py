"""django-q2 entry points: module-level, a few lines, ids in, services called."""

from __future__ import annotations

from directory.models import AdMode, Integration, IntegrationKind

from . import runs, sync
from .models import SyncTrigger


def execute_run_task(run_id: int) -> str:
    run = sync.execute_run(run_id)
    return f"run {run.pk}: {run.status}"


def sync_scheduled(kind: str, full: bool = True, trigger: str = SyncTrigger.SCHEDULE) -> int:
    """Queue a run for every enabled integration of a kind ("ad_direct", "entra", "demo"); returns how many."""
    integrations = Integration.objects.filter(link_enabled=True)
    if kind == "ad_direct":
        integrations = integrations.filter(kind=IntegrationKind.ACTIVE_DIRECTORY, ad_mode=AdMode.DIRECT)
    elif kind == "entra":
        integrations = integrations.filter(kind=IntegrationKind.ENTRA)
    elif kind == "demo":
        integrations = integrations.filter(kind=IntegrationKind.DEMO)
    else:
        raise ValueError(f"unknown integration kind for a schedule: {kind!r}")
    count = 0
    for integration in integrations:
        runs.request_sync(integration, trigger, full=full)
        count += 1
    return count


def check_agents_task() -> str:
    """Every 5 minutes: requests no agent answered fail, quiet agents raise a notification (agent_runs)."""
    from .agent_outcomes import check_agents

    done = check_agents()
    return f"{done['not_answered']} requests not answered, {done['quiet']} quiet agents notified"
