"""The User Mapping page of a client: its integrations, their links, Force Re-sync and Add Domain."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypedDict

from django.contrib import messages
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.views.decorators.http import require_POST

from directory.connectors import DirectoryError
from directory.models import EntraRole, Integration, IntegrationKind
from passportal.actors import actor_of
from passportal.models import Client

from .. import actions, agent_requests, runs, sync
from ..forms import AddDomainForm
from ..models import SyncRun, SyncTrigger
from ..wording import ENTRA_APP_PERMISSIONS, labelled_counts
from . import agent_reads
from .common import integration_or_refusal, page, refused, require_perms

if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations


class _MappedCount(TypedDict):
    mapped_count: int  # user_mapping's annotation


@dataclass
class IntegrationRow:
    integration: Integration
    mapped_folders: int
    last_run: SyncRun | None


def _rows(integrations: Iterable[WithAnnotations[Integration, _MappedCount]]) -> list[IntegrationRow]:
    rows = []
    for integration in integrations:
        last = integration.runs.filter(dry_run=False).select_related("held_decided_by").first()
        rows.append(IntegrationRow(integration, integration.mapped_count, last))
    return rows


@require_perms("provisioning.view_mapping")
def user_mapping(request: HttpRequest, client_id: int) -> HttpResponse:
    client = get_object_or_404(Client, pk=client_id)
    if (refusal := refused(request, client)) is not None:
        return refusal
    integrations = list(
        client.integrations.annotate(mapped_count=Count("folders", filter=Q(folders__mapping__isnull=False)))
        .order_by("created_at", "pk")
    )
    on_prem = [i for i in integrations if i.kind in (IntegrationKind.ACTIVE_DIRECTORY, IntegrationKind.DEMO)]
    primary_entra = [i for i in integrations if i.kind == IntegrationKind.ENTRA and i.entra_role == EntraRole.PRIMARY]
    additional = [i for i in integrations if i.kind == IntegrationKind.ENTRA and i.entra_role != EntraRole.PRIMARY]
    scim = [i for i in integrations if i.kind == IntegrationKind.SCIM]
    return page(request, "provisioning/user_mapping.html", f"User Mapping: {client.name}", client=client,
                on_prem=_rows(on_prem), primary_entra=_rows(primary_entra), additional=_rows(additional),
                scim=_rows(scim))


@require_perms("directory.change_integration")
def link(request: HttpRequest, pk: int) -> HttpResponse:
    """Switch an integration's link; the confirmation says how many users switching it off disables (R10)."""
    integration, refusal = integration_or_refusal(request, pk)
    if refusal is not None:
        return refusal
    turn_on = (request.POST if request.method == "POST" else request.GET).get("enabled") == "1"
    if request.method == "POST" and "cancel" in request.POST:
        state = "on" if integration.link_enabled else "off"
        messages.info(request, f"Cancelled: the link of {integration.name} stays {state}; nothing was changed.")
        return redirect("provisioning:user-mapping", integration.client_id)
    if request.method == "POST" and "last_upload" in request.POST:  # offered when the agent did not answer
        return agent_reads.link_on_from_last_upload(request, integration)
    from_agent = turn_on and agent_requests.needs_agent(integration, link_on=True)
    if request.method == "POST":
        run = actions.set_link(integration, turn_on, by=actor_of(request.user))
        state = "on" if turn_on else "off"
        messages.success(request, f"The link of {integration.name} is {state}.")
        return redirect("provisioning:run", pk=run.pk)
    # The same planner as the run that follows, so the confirmation's figures are the run's (R15); an agent
    # integration's agent reads AD for it, as for Apply's confirmation.
    preview, unreadable = None, ""
    if from_agent:
        asked = agent_reads.link_on_preview(request, integration)
        if not isinstance(asked, SyncRun):
            return asked  # waiting for the agent's read, or it did not come
        preview = asked
    else:
        try:
            preview = sync.preview_link(integration, turn_on, started_by=actor_of(request.user)).run
        except DirectoryError as exc:
            unreadable = str(exc)
    counts = labelled_counts(preview.counts, preview=True, nonzero=True) if preview else []
    return page(request, "provisioning/link_confirm.html", f"Link of {integration.name}", integration=integration,
                client=integration.client, turn_on=turn_on, counts=counts, unreadable=unreadable, from_agent=from_agent,
                source=preview.changes.get("source", "") if preview else "",
                affected=preview.counts.get("disabled", 0) if preview else 0)


@require_POST
@require_perms("provisioning.add_syncrun")
def force_resync(request: HttpRequest, pk: int) -> HttpResponse:
    """R17: a full sync now; the nightly schedule is left as it was."""
    integration, refusal = integration_or_refusal(request, pk)
    if refusal is not None:
        return refusal
    run = runs.request_sync(integration, SyncTrigger.FORCE, full=True, started_by=actor_of(request.user))
    messages.success(request, f"Force Re-sync of {integration.name} started.")
    return redirect("provisioning:run", pk=run.pk)


@require_perms("directory.add_integration")
def add_domain(request: HttpRequest, client_id: int) -> HttpResponse:
    client = get_object_or_404(Client, pk=client_id)
    if (refusal := refused(request, client)) is not None:
        return refusal
    if request.method == "POST" and "cancel" in request.POST:
        messages.info(request, "Cancelled: no domain was added; nothing was changed.")
        return redirect("provisioning:user-mapping", client.pk)
    form = AddDomainForm(client, data=request.POST or None)
    if request.method == "POST" and form.is_valid():
        integration = form.save()
        messages.success(request, f"Entra ID domain {integration.name} added (tenant {integration.tenant_guid}). "
                                  "Use its cog to set up auto-provisioning.")
        return redirect(reverse("provisioning:user-mapping", args=[client.pk]))
    return page(request, "provisioning/add_domain.html", f"Add Entra ID Domain: {client.name}", client=client,
                form=form, permissions=ENTRA_APP_PERMISSIONS)
