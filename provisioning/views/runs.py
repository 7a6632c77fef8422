"""The run page (R16): progress while it runs, then the result; a held run's disables (R22)."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect
from django.views.decorators.http import require_POST

from passportal.actors import actor_of

from .. import actions
from ..models import HeldResolution, SyncRun, SyncStatus
from ..wording import labelled_counts, run_outcome
from .common import page, require_perms
from .rows import change_rows

FINISHED = (SyncStatus.SUCCEEDED, SyncStatus.FAILED, SyncStatus.HELD)


def progress_text(run: SyncRun) -> str:
    """Where a run is: "Planning: step 2 of 3" while it runs, where it stopped if it failed, "Done" at the end."""
    phase = run.phase or ""
    if run.status == SyncStatus.QUEUED:
        return _sentence(phase) if phase else "Waiting for a worker"
    step = f": step {min(run.progress_done + 1, run.progress_total)} of {run.progress_total}" \
        if run.progress_total else ""
    if run.status == SyncStatus.RUNNING:
        return _sentence(phase or "starting") + step
    if run.status == SyncStatus.FAILED:
        return f"Stopped while {phase}{step}" if phase and phase not in ("failed", "done") else "Stopped"
    return "Done"


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


def run_state(run: SyncRun) -> dict:
    return {
        "id": run.pk, "status": run.status, "status_display": run_outcome(run), "phase": run.phase,
        "progress_display": progress_text(run),
        "progress_done": run.progress_done, "progress_total": run.progress_total, "counts": run.counts,
        "finished": run.status in FINISHED, "error": run.error,
        "held_waiting": run.status == SyncStatus.HELD and not run.held_resolution,
    }


@require_perms("provisioning.view_syncrun")
def run_detail(request: HttpRequest, pk: int) -> HttpResponse:
    run = get_object_or_404(SyncRun.objects.select_related("integration__client", "started_by", "portal_user",
                                                   "held_decided_by"), pk=pk)
    kind = run.integration.kind
    rows = change_rows(run.changes, client_id=run.integration.client_id, directory_kind=kind)
    paged = Paginator(rows, settings.LIST_PAGE_SIZE).get_page(request.GET.get("page"))
    held = change_rows({"held": run.changes.get("held", [])}, directory_kind=kind)
    held_page = Paginator(held, settings.LIST_PAGE_SIZE).get_page(request.GET.get("held_page"))
    counts = labelled_counts(run.counts, preview=run.dry_run)
    return page(request, "provisioning/run.html", f"Sync run {run.pk}: {run.integration.name}", run=run,
                state=run_state(run), finished=run.status in FINISHED, counts=counts, page_obj=paged,
                held_page=held_page, held_waiting=run.status == SyncStatus.HELD and not run.held_resolution,
                may_decide=request.user.has_perm("provisioning.change_syncrun"))


@require_perms("provisioning.view_syncrun")
def run_status(request: HttpRequest, pk: int) -> HttpResponse:
    """The small JSON the run page polls."""
    return JsonResponse(run_state(get_object_or_404(SyncRun.objects.select_related("held_decided_by"), pk=pk)))


@require_POST
@require_perms("provisioning.change_syncrun")
def held_decision(request: HttpRequest, pk: int) -> HttpResponse:
    run = get_object_or_404(SyncRun, pk=pk)
    action = request.POST.get("action")
    try:
        if action == HeldResolution.APPLIED:
            count = actions.apply_held_disables(run, by=actor_of(request.user))
            messages.success(request, f"{count} held disable(s) applied.")
        elif action == HeldResolution.DISCARDED:
            actions.discard_held_disables(run, by=actor_of(request.user))
            messages.success(request, "The held disables were discarded: nobody was disabled.")
        else:
            messages.error(request, "Choose Apply these disables or Discard.")
    except ValueError as exc:
        messages.error(request, str(exc))
    return redirect("provisioning:run", pk=run.pk)
