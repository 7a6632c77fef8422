"""Pages portal users see: account activation (R18). Thin: the rules live in passportal.activation."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables
from django.views.decorators.http import require_GET, require_http_methods

from .activation import activate, over_rate_limit, record_refused_link, user_for_token
from .forms import ChoosePasswordForm

# Like Django's password reset: the token moves from the URL into the session, so the page the
# user types a password into has no token in its URL and no Referer can carry it away.
SESSION_TOKEN = "_activation_token"
SESSION_READY = "_activation_ready_first_name"


def _page(request: HttpRequest, template: str, context: dict | None = None, status: int = 200) -> HttpResponse:
    response = render(request, template, context or {}, status=status)
    response["Referrer-Policy"] = "no-referrer"
    return response


def _client_ip(request: HttpRequest) -> str:
    return request.META.get("REMOTE_ADDR", "")


def _over_limit(request: HttpRequest) -> HttpResponse | None:
    if not over_rate_limit(_client_ip(request)):
        return None
    response = _page(request, "passportal/activation_rate_limited.html", status=429)
    response["Retry-After"] = str(getattr(settings, "ACTIVATION_RATE_WINDOW_SECONDS", 600))
    return response


def _link_not_valid(request: HttpRequest) -> HttpResponse:
    """The one page for unknown, used, expired, replaced, void and disabled-user links alike."""
    record_refused_link(_client_ip(request))
    return _page(request, "passportal/activation_invalid.html")


@never_cache
@require_GET
@sensitive_variables("token")
def activation_link(request: HttpRequest, token: str) -> HttpResponse:
    if limited := _over_limit(request):
        return limited
    # Tokens are 43 characters; a longer string cannot be one, and the session need not hold it.
    request.session[SESSION_TOKEN] = token if len(token) <= 100 else ""
    response = redirect("activation-set-password")
    response["Referrer-Policy"] = "no-referrer"
    return response


@never_cache
@require_http_methods(["GET", "POST"])
@sensitive_post_parameters("password1", "password2")
@sensitive_variables("token")
def set_password(request: HttpRequest) -> HttpResponse:
    if limited := _over_limit(request):
        return limited
    token = request.session.get(SESSION_TOKEN, "")
    user = user_for_token(token)
    if user is None:
        return _link_not_valid(request)
    form = ChoosePasswordForm(user, request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        activated = activate(token, form.cleaned_data["password1"])
        if activated is None:
            return _link_not_valid(request)
        del request.session[SESSION_TOKEN]
        request.session[SESSION_READY] = activated.first_name
        return redirect("activation-ready")
    return _page(
        request,
        "passportal/activation_set_password.html",
        {"form": form, "portal_user": user, "organisation": user.client.name},
    )


@never_cache
@require_GET
def account_ready(request: HttpRequest) -> HttpResponse:
    if limited := _over_limit(request):
        return limited
    if SESSION_READY not in request.session:
        return _link_not_valid(request)
    return _page(request, "passportal/activation_ready.html", {"first_name": request.session[SESSION_READY]})
