"""What every staff view needs: a permission check, the admin's page context, the R14 gate."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render

from directory.models import Integration
from passportal.models import Client

from ..access import mapping_blockers


def require_perms(*perms: str) -> Callable[[Callable[..., HttpResponse]], Callable[..., HttpResponse]]:
    """Staff without every one of these Django model permissions get 403 (admin_view already demands staff)."""

    def decorate(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @functools.wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if not request.user.has_perms(perms):
                raise PermissionDenied(f"You need the permission(s) {', '.join(perms)} for this page.")
            return view(request, *args, **kwargs)

        return wrapped

    return decorate


def page(request: HttpRequest, template: str, title: str, status: int = 200, **context: Any) -> HttpResponse:
    """Render a page with the admin's own context, so it looks like the rest of the admin."""
    return render(request, template, {**admin.site.each_context(request), "title": title, **context}, status=status)


def refused(request: HttpRequest, client: Client) -> HttpResponse | None:
    """R14: the refusal page naming what is missing, or None when mapping may be configured."""
    blockers = mapping_blockers(client)
    if not blockers:
        return None
    return page(request, "provisioning/refused.html", "User mapping is not available yet", status=403,
                client=client, blockers=blockers)


def integration_or_refusal(request: HttpRequest, pk: int) -> tuple[Integration, HttpResponse | None]:
    integration = get_object_or_404(Integration.objects.select_related("client"), pk=pk)
    return integration, refused(request, integration.client)
