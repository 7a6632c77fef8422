"""The Content-Security-Policy header on every response.

Django 5.2 has no CSP of its own (6.0 adds one). The policy here is one fixed set of directives with no
nonces and no per-view changes, so a dozen lines do it and no extra package is needed. The setting has
the shape of Django 6.0's SECURE_CSP (directive -> list of sources), so moving to 6.0 means swapping
this middleware for django.middleware.csp.ContentSecurityPolicyMiddleware and nothing else.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

HEADER = "Content-Security-Policy"


def policy_header(directives: dict[str, list[str]]) -> str:
    """{"default-src": ["'self'"], "upgrade-insecure-requests": []}
    -> "default-src 'self'; upgrade-insecure-requests" (a directive with no sources stands alone)."""
    return "; ".join(" ".join([name, *sources]) for name, sources in directives.items())


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        directives = settings.SECURE_CSP
        # A view that set its own policy keeps it; otherwise every response gets the site's.
        if directives and HEADER not in response:
            response[HEADER] = policy_header(directives)
        return response
