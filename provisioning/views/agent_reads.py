"""The staff pages' side of reads asked of the on-prem agent: the preview a confirmation waits for, and the folder
tree's refresh. A page that waits refreshes itself (a meta refresh: the CSP allows no inline script) until the read
arrives, and says plainly when the agent could not read or is not responding; the last upload only on request."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse

from directory.models import AgentRequest, Integration
from passportal.actors import actor_of

from .. import agent_requests, sync
from ..agent_runs import last_upload
from ..models import SyncRun, SyncStatus, SyncTrigger
from .common import page

REFRESH_SECONDS = 2  # how often a waiting page reloads itself


def _folders_key(integration: Integration) -> str:
    return f"provisioning-folder-request-{integration.pk}"


def last_upload_age(integration: Integration) -> str:
    upload = last_upload(integration)
    if upload is None:
        return ""
    assert upload.committed_at is not None, "the last upload is a committed one"
    return agent_requests.ago(upload.committed_at)


def waiting_context(integration: Integration, run: SyncRun, asking: agent_requests.Progress, fallback_url: str
                    ) -> dict:
    """What a page waiting for the agent's preview shows: where it stands, and (when it did not come) the offer of
    the last upload with its age."""
    has_upload = last_upload(integration) is not None
    return {"asking": asking, "refresh_seconds": None if asking.done else REFRESH_SECONDS,
            "fallback_url": fallback_url if asking.done and has_upload else "",
            "last_upload_age": last_upload_age(integration) if has_upload else "", "preview": run}


def preview_from_last_upload(run: SyncRun, request: HttpRequest) -> SyncRun:
    """The explicit fallback: the same preview planned against the agent's last upload (which says its age)."""
    return sync.preview(run.integration, mappings=agent_requests.mappings_of(run), started_by=actor_of(request.user),
                        trigger=run.trigger).run


def link_on_preview(request: HttpRequest, integration: Integration) -> SyncRun | HttpResponse:
    """The link switch's preview of an agent integration (R10, R15): the agent reads AD for it, as for Apply's.

    The first visit asks the agent and comes back with the waiting run's id in the address; the page then refreshes
    itself until the read has arrived (the preview run, returned) or did not come (a page saying so, with no Yes).
    """
    here = reverse("provisioning:link", args=[integration.pk])
    run_id = request.GET.get("preview", "")
    run = SyncRun.objects.filter(pk=run_id, integration=integration, dry_run=True,
                                 trigger=SyncTrigger.LINK).first() if run_id.isdigit() else None
    if run is None:
        run = agent_requests.start_preview(integration, SyncTrigger.LINK, link_on=True,
                                           started_by=actor_of(request.user))
        return redirect(f"{here}?enabled=1&preview={run.pk}")
    asking = agent_requests.settle(run)
    if run.status == SyncStatus.SUCCEEDED:
        return run
    back = reverse("provisioning:user-mapping", args=[integration.client_id])
    return page(request, "provisioning/confirm_waiting.html", f"Link of {integration.name}", integration=integration,
                client=integration.client, cancel_url=back, link_on=True,
                **waiting_context(integration, run, asking, here))


def link_on_from_last_upload(request: HttpRequest, integration: Integration) -> HttpResponse:
    """The explicit fallback when the agent did not answer: the link-on preview from its last upload (which says
    its age); Yes still waits for the agent's fresh read."""
    run = sync.preview_link(integration, True, started_by=actor_of(request.user)).run
    return redirect(f"{reverse('provisioning:link', args=[integration.pk])}?enabled=1&preview={run.pk}")


def ask_for_folders(request: HttpRequest, integration: Integration) -> None:
    """The folder tree's refresh of an agent integration: ask the agent to read the folders now."""
    asked = agent_requests.ask_folders(integration)
    request.session[_folders_key(integration)] = asked.pk
    messages.info(request, "Asking the on-prem agent to read the folders now.")


def folder_read(request: HttpRequest, integration: Integration) -> agent_requests.Progress | None:
    """Where the agent's folder read this person asked for stands (None: none asked). Said once it is over."""
    request_id = request.session.get(_folders_key(integration))
    asked = AgentRequest.objects.filter(pk=request_id, integration=integration).first() if request_id else None
    if asked is None:
        return None
    current = agent_requests.progress(asked)
    if current.state == agent_requests.ANSWERED:
        del request.session[_folders_key(integration)]
        messages.success(request, f"The on-prem agent read {current.upload.folder_count if current.upload else 0} "
                                  "folders from Active Directory just now.")
        return None
    if current.done:
        del request.session[_folders_key(integration)]
    return current


def preview_done(run: SyncRun) -> bool:
    return run.status == SyncStatus.SUCCEEDED
