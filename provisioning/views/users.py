"""One portal user's page: where it came from, why it is disabled; Resync this user (R28), staff disable/enable (R8)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.views.decorators.http import require_POST

from passportal.actors import actor_of
from passportal.models import PortalUser

from .. import actions, wording
from ..models import SyncRun, SyncStatus
from ..wording import counts_in_words
from .common import require_perms


def _back(user: PortalUser) -> HttpResponse:
    return redirect("admin:passportal_portaluser_change", user.pk)


@require_POST
@require_perms("passportal.change_portaluser", "provisioning.add_syncrun")
def resync_user(request: HttpRequest, pk: int) -> HttpResponse:
    user = get_object_or_404(PortalUser, pk=pk)
    runs = actions.resync_user(user, by=actor_of(request.user))
    if not runs:
        messages.warning(request, f"{user.email} came from no directory: there is nothing to resync.")
    for run in runs:
        if run.status == SyncStatus.FAILED:
            messages.error(request, f"Resync from {run.integration.name} failed: {run.error}")
        else:
            source = run.changes.get("source", "")  # an agent integration: what was read, and what was asked
            messages.success(request, f"Resynced from {run.integration.name}: {counts_in_words(run.counts)}."
                                      + (f" {source}" if source else ""))
    return _back(user)


@require_POST
@require_perms("passportal.change_portaluser")
def set_enabled(request: HttpRequest, pk: int) -> HttpResponse:
    user = get_object_or_404(PortalUser, pk=pk)
    enabled = request.POST.get("enabled") == "1"
    actions.staff_set_enabled(user, enabled, by=actor_of(request.user))
    if enabled:
        causes = why_disabled(user)
        still = f" It stays disabled: {causes[0].sentence}." if causes else ""
        messages.success(request, f"The staff disable of {user.email} was lifted.{still}")
    else:
        messages.success(request, f"{user.email} was disabled by staff; only staff can enable them again.")
    return _back(user)


@dataclass(frozen=True)
class DisableCause:
    """One reason a user is disabled, with when, and the run or staff member behind it."""

    code: str  # a DisabledReason value, or "staff"
    sentence: str
    at: datetime | None = None
    run: SyncRun | None = None
    staff: str = ""


def why_disabled(user: PortalUser) -> list[DisableCause]:
    """What keeps this user disabled: a staff disable and a sync's reason are kept apart (R8), so both may show."""
    causes: list[DisableCause] = []
    if user.disabled_by_staff:
        staff = wording.staff_name(user.staff_disabled_by) if user.staff_disabled_at else ""
        causes.append(DisableCause(wording.STAFF, wording.disable_reason(wording.STAFF), user.staff_disabled_at,
                                   staff=staff))
    if user.disabled_reason:
        run = user.disabled_by_run
        causes.append(DisableCause(user.disabled_reason, wording.disable_reason(user.disabled_reason,
                                                                                 directory_kind_of(user)),
                                   user.disabled_at, run))
    return causes


def directory_kind_of(user: PortalUser) -> str:
    """The kind of directory a user's sync disable came from: the run's integration, else the user's first link."""
    if user.disabled_by_run is not None:
        return user.disabled_by_run.integration.kind
    link = user.directory_links.select_related("integration").order_by("pk").first()
    return link.integration.kind if link else ""
