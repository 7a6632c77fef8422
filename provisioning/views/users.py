"""Actions on one portal user's page: Resync this user (R28), staff disable and enable (R8)."""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect
from django.views.decorators.http import require_POST

from passportal.models import PortalUser

from .. import services
from ..models import SyncStatus
from ..wording import counts_in_words
from .common import require_perms


def _back(user: PortalUser):
    return redirect("admin:passportal_portaluser_change", user.pk)


@require_POST
@require_perms("passportal.change_portaluser", "provisioning.add_syncrun")
def resync_user(request, pk: int):
    user = get_object_or_404(PortalUser, pk=pk)
    runs = services.resync_user(user, by=request.user)
    if not runs:
        messages.warning(request, f"{user.email} came from no directory: there is nothing to resync.")
    for run in runs:
        if run.status == SyncStatus.FAILED:
            messages.error(request, f"Resync from {run.integration.name} failed: {run.error}")
        else:
            messages.success(request, f"Resynced from {run.integration.name}: {counts_in_words(run.counts)}.")
    return _back(user)


@require_POST
@require_perms("passportal.change_portaluser")
def set_enabled(request, pk: int):
    user = get_object_or_404(PortalUser, pk=pk)
    enabled = request.POST.get("enabled") == "1"
    services.staff_set_enabled(user, enabled)
    if enabled:
        still = f" It stays disabled: {user.get_disabled_reason_display()}." if user.disabled_reason else ""
        messages.success(request, f"The staff disable of {user.email} was lifted.{still}")
    else:
        messages.success(request, f"{user.email} was disabled by staff; only staff can enable them again.")
    return _back(user)


def directory_origins(user: PortalUser) -> list[dict]:
    """Each directory identity of a portal user: its integration, the folders it was last seen in, when."""
    from directory.models import Folder

    origins = []
    for link in user.directory_links.select_related("integration").order_by("integration__name"):
        paths = list(Folder.objects.filter(integration=link.integration, external_id__in=link.folder_ids)
                     .values_list("path", flat=True))
        origins.append({"link": link, "integration": link.integration, "folders": paths or link.folder_ids})
    return origins
