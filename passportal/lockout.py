"""The page a locked-out admin login gets (django-axes calls this through AXES_LOCKOUT_CALLABLE)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


def locked_out_response(request: HttpRequest, original_response: HttpResponse | None = None,
                        credentials: dict[str, Any] | None = None) -> HttpResponse:
    """429 with the admin's look and the wait in minutes; axes' own page is a bare line of text."""
    minutes = max(1, int(settings.AXES_COOLOFF_TIME.total_seconds() // 60))
    context = {
        **admin.site.each_context(request),
        "is_nav_sidebar_enabled": False,  # as on the login page: nobody is signed in, there is nothing to list
        "title": "Sign-in paused",
        "minutes": minutes,
    }
    return render(request, "admin/login_locked.html", context, status=429)
