"""User Auto-Provisioning Setup: tick folders, choose level and groups, Apply -> confirmation (R15) -> Yes/Cancel."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse

from directory.connectors import DirectoryError
from directory.folders import record_folders
from directory.models import Folder, Integration
from directory.sources import connector_for
from passportal.actors import actor_of
from passportal.models import PermissionLevel, SecurityGroup

from .. import actions, agent_requests, runs, sync
from ..forms import SetupForm
from ..models import SyncRun, SyncStatus, SyncTrigger
from ..planner import MappingRule
from ..state import load_mappings
from ..wording import labelled_counts
from . import agent_reads
from .common import integration_or_refusal, page, require_perms
from .folder_counts import folder_counts
from .rows import change_rows, folder_rows


def _session_key(run_id: int) -> str:
    return f"provisioning-proposal-{run_id}"


def refresh_folders(integration: Integration) -> int:
    """Read the folder tree now (R19) so a new integration has something to tick. Raises DirectoryError."""
    records = connector_for(integration).read_folders()
    record_folders(integration, records)
    return len(records)


def _rule(folder: Folder, level: PermissionLevel, group_ids: frozenset[int]) -> MappingRule:
    return MappingRule(folder_id=folder.external_id, level_id=level.pk, level_rank=level.rank,
                       group_ids=group_ids, folder_path=folder.path or folder.name)


@require_perms("provisioning.view_mapping", "provisioning.add_mapping", "provisioning.change_mapping")
def setup(request: HttpRequest, pk: int) -> HttpResponse:
    integration, refusal = integration_or_refusal(request, pk)
    if refusal is not None:
        return refusal
    wants_refresh = request.method == "POST" and "refresh" in request.POST
    if agent_requests.needs_agent(integration) and (wants_refresh or not integration.folders.exists()):
        # The agent reads the folders: asked now, this page waits for them (agent_reads).
        if wants_refresh or agent_reads.folder_read(request, integration) is None:
            agent_reads.ask_for_folders(request, integration)
        if wants_refresh:
            return redirect("provisioning:setup", pk=integration.pk)
    elif wants_refresh or (request.method == "GET" and not integration.folders.exists()):
        try:
            count = refresh_folders(integration)
            if wants_refresh:
                messages.success(request, f"Read {count} folders from the directory.")
        except DirectoryError as exc:
            messages.error(request, f"The folders could not be read from the directory: {exc}")
        if wants_refresh:
            return redirect("provisioning:setup", pk=integration.pk)

    form = SetupForm(integration, data=request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        level = form.cleaned_data["permission_level"]
        groups = list(form.cleaned_data["security_groups"])
        chosen = list(form.cleaned_data["folders"])
        rules = load_mappings(integration)
        group_ids = frozenset(g.pk for g in groups)
        for folder in chosen:
            rules[folder.external_id] = _rule(folder, level, group_ids)
        proposal = {"folders": [f.pk for f in chosen], "level": level.pk, "groups": [g.pk for g in groups],
                    "new_group": form.cleaned_data["new_group"], "remove": []}
        response = _preview(request, integration, rules, proposal)
        if response is not None:
            return response
        form.add_error(None, "The directory could not be read, so nothing can be applied now. Try again later.")

    selected = {str(v) for v in (form["folders"].value() or [])}
    counts = folder_counts(integration)
    asking = agent_reads.folder_read(request, integration) if agent_requests.needs_agent(integration) else None
    return page(request, "provisioning/setup.html", f"User Auto-Provisioning Setup: {integration.name}",
                asking=asking, refresh_seconds=agent_reads.REFRESH_SECONDS if asking and not asking.done else None,
                integration=integration, client=integration.client, form=form,
                rows=folder_rows(integration, counts), counts=counts, selected=selected, max_folders=100,
                has_groups=form.groups.exists())


def _preview(request: HttpRequest, integration: Integration, rules: dict, proposal: dict) -> HttpResponse | None:
    """Dry-run the proposal (R15); remember it in the session until Yes or Cancel. None if the read failed.

    An agent integration's preview waits for the agent's fresh read: the confirmation page waits with it.
    """
    if agent_requests.needs_agent(integration):
        waiting = agent_requests.start_preview(integration, SyncTrigger.APPLY, mappings=rules,
                                               started_by=actor_of(request.user))
        request.session[_session_key(waiting.pk)] = proposal
        return redirect("provisioning:confirm", pk=integration.pk, run_id=waiting.pk)
    try:
        preview = sync.preview(integration, mappings=rules, started_by=actor_of(request.user))
    except DirectoryError as exc:
        messages.error(request, f"The directory could not be read: {exc}")
        return None
    request.session[_session_key(preview.run.pk)] = proposal
    return redirect("provisioning:confirm", pk=integration.pk, run_id=preview.run.pk)


@require_perms("provisioning.view_mapping", "provisioning.delete_mapping")
def remove_mapping(request: HttpRequest, pk: int, folder_id: int) -> HttpResponse:
    """Remove a folder's mapping: the same preview first, showing who will be disabled (R9, R15)."""
    integration, refusal = integration_or_refusal(request, pk)
    if refusal is not None:
        return refusal
    folder = get_object_or_404(Folder, pk=folder_id, integration=integration, mapping__isnull=False)
    rules = load_mappings(integration)
    rules.pop(folder.external_id, None)
    proposal = {"folders": [], "level": None, "groups": [], "new_group": "", "remove": [folder.pk]}
    response = _preview(request, integration, rules, proposal)
    return response or redirect("provisioning:setup", pk=integration.pk)


@require_perms("provisioning.view_mapping", "provisioning.add_mapping", "provisioning.change_mapping")
def confirm(request: HttpRequest, pk: int, run_id: int) -> HttpResponse:
    integration, refusal = integration_or_refusal(request, pk)
    if refusal is not None:
        return refusal
    preview_run = get_object_or_404(SyncRun, pk=run_id, integration=integration, dry_run=True)
    key = _session_key(preview_run.pk)
    proposal = request.session.get(key)
    if proposal is None:
        messages.warning(request, "This confirmation was already answered or has expired: nothing was changed.")
        return redirect("provisioning:setup", pk=integration.pk)
    if preview_run.status != SyncStatus.SUCCEEDED:
        waiting = _waiting_for_agent(request, integration, preview_run, key, proposal)
        if waiting is not None:
            return waiting
    if request.method == "POST":
        del request.session[key]
        if "yes" not in request.POST:
            messages.info(request, "Cancelled: nothing was changed.")
            return redirect("provisioning:setup", pk=integration.pk)
        if proposal["remove"] and not request.user.has_perm("provisioning.delete_mapping"):
            messages.error(request, "You may not remove mappings: nothing was changed.")
            return redirect("provisioning:setup", pk=integration.pk)
        actions.save_proposal(integration, proposal, by=actor_of(request.user))
        run = runs.request_sync(integration, SyncTrigger.APPLY, full=True, started_by=actor_of(request.user))
        messages.success(request, "Mappings saved; the sync has started.")
        return redirect("provisioning:run", pk=run.pk)

    rows = change_rows(preview_run.changes, directory_kind=integration.kind)
    paged = Paginator(rows, settings.LIST_PAGE_SIZE).get_page(request.GET.get("page"))
    counts = labelled_counts(preview_run.counts, preview=True)
    return page(request, "provisioning/confirm.html", "Confirm: apply these mappings?", integration=integration,
                client=integration.client, preview=preview_run, counts=counts, page_obj=paged,
                total_changes=len(rows), cancel_url=reverse("provisioning:setup", args=[integration.pk]),
                **_proposal_context(proposal))


def _proposal_context(proposal: dict) -> dict:
    """What the confirmation asks about, by name: the folders, the level and the groups."""
    folders = Folder.objects.filter(pk__in=proposal["folders"] + proposal["remove"]).order_by("path")
    level = PermissionLevel.objects.filter(pk=proposal["level"]).first() if proposal["level"] else None
    groups = list(SecurityGroup.objects.filter(pk__in=proposal["groups"]).values_list("name", flat=True))
    if proposal["new_group"]:
        groups.append(f"{proposal['new_group']} (new)")
    return {"proposal": proposal, "folders": folders, "level": level, "groups": groups}


def _waiting_for_agent(request: HttpRequest, integration: Integration, preview_run: SyncRun, key: str,
                       proposal: dict) -> HttpResponse | None:
    """The confirmation while the agent reads AD for it, or when it did not: never a Yes to a preview not shown.
    None once the preview is there (a GET shows it)."""
    if request.method == "POST" and "last_upload" in request.POST and preview_run.status == SyncStatus.FAILED:
        fallback = agent_reads.preview_from_last_upload(preview_run, request)
        request.session[_session_key(fallback.pk)] = proposal
        del request.session[key]
        return redirect("provisioning:confirm", pk=integration.pk, run_id=fallback.pk)
    asking = agent_requests.settle(preview_run)
    if preview_run.status == SyncStatus.SUCCEEDED:
        return None  # the preview has arrived: shown now, or answered (Yes, Cancel)
    here = reverse("provisioning:confirm", args=[integration.pk, preview_run.pk])
    return page(request, "provisioning/confirm_waiting.html", "Confirm: apply these mappings?",
                integration=integration, client=integration.client,
                cancel_url=reverse("provisioning:setup", args=[integration.pk]), **_proposal_context(proposal),
                **agent_reads.waiting_context(integration, preview_run, asking, here))
