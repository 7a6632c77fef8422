"""Pages portal users see: account activation (R18) and their own sign-in and account page.

Thin: the rules live in passportal.tokens and passportal.accounts.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from . import accounts
from .addresses import client_address
from .forms import ChoosePasswordForm, SignInForm
from .tokens import activate, record_refused_link, token_digest, too_many_refused, user_for_digest

# Like Django's password reset, the token leaves the URL at once: the page the user types a password
# into has no token in its address. The session keeps only the token's digest, so a copy of the
# session table holds no working link.
SESSION_TOKEN_DIGEST = "_activation_token_digest"
SESSION_READY = "_activation_ready"


def _refused(request: HttpRequest, raw_token: str = "") -> HttpResponse:
    """The one answer for unknown, used, expired, replaced, void and disabled-user links alike."""
    address = client_address(request)
    if too_many_refused(address, raw_token):
        response = render(request, "passportal/activation_rate_limited.html", status=429)
        response["Retry-After"] = str(settings.ACTIVATION_RATE_WINDOW_SECONDS)
        return response
    record_refused_link(address, raw_token)
    return render(request, "passportal/activation_invalid.html")


@never_cache
@require_GET
@sensitive_variables("token")
def activation_link(request: HttpRequest, token: str) -> HttpResponse:
    digest = token_digest(token)
    if user_for_digest(digest) is None:
        # No session for a refused link: guessing links must not fill the session table.
        return _refused(request, token)
    request.session[SESSION_TOKEN_DIGEST] = digest
    request.session.set_expiry(settings.ACTIVATION_FORM_SECONDS)
    return redirect("activation-set-password")


@never_cache
@require_http_methods(["GET", "POST"])
@sensitive_post_parameters("password1", "password2")
def set_password(request: HttpRequest) -> HttpResponse:
    digest = request.session.get(SESSION_TOKEN_DIGEST, "")
    user = user_for_digest(digest)
    if user is None:
        return _refused(request)
    form = ChoosePasswordForm(user, request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        activated = activate(digest, form.cleaned_data["password1"])
        if activated is None:
            return _refused(request)
        del request.session[SESSION_TOKEN_DIGEST]
        request.session[SESSION_READY] = {"first_name": activated.first_name, "email": activated.email}
        return redirect("activation-ready")
    return render(request, "passportal/activation_set_password.html",
                  {"form": form, "portal_user": user, "organisation": user.client.name})


@never_cache
@require_GET
def account_ready(request: HttpRequest) -> HttpResponse:
    ready = request.session.get(SESSION_READY)
    if not ready:
        return _refused(request)
    return render(request, "passportal/activation_ready.html", {"first_name": ready.get("first_name", "")})


# ---------------------------------------------------------------- the end user's own pages


def _sign_in_page(request: HttpRequest, form: SignInForm, *, error: str = "",
                  choices: Sequence[tuple[int, str]] = (), status: int = 200) -> HttpResponse:
    return render(request, "passportal/sign_in.html",
                  {"form": form, "error": error, "choices": choices}, status=status)


@never_cache
@require_http_methods(["GET", "POST"])
@sensitive_post_parameters("password")
@sensitive_variables("password")
def sign_in(request: HttpRequest) -> HttpResponse:
    if request.method == "GET":
        if accounts.signed_in_user(request):
            return redirect("account")
        ready = request.session.get(SESSION_READY) or {}
        return _sign_in_page(request, SignInForm(initial={"email": ready.get("email", "")}))
    form = SignInForm(request.POST)
    if not form.is_valid():
        return _sign_in_page(request, form, error="Enter your email address and your password.")
    email, password = form.cleaned_data["email"], form.cleaned_data["password"]
    address = client_address(request)
    if accounts.too_many_failures(address, email):
        response = _sign_in_page(request, SignInForm(initial={"email": email}), status=429,
                                 error="Too many attempts to sign in. Wait a few minutes, then try again.")
        response["Retry-After"] = str(settings.ACCOUNT_SIGNIN_RATE_WINDOW_SECONDS)
        return response
    found = accounts.check_credentials(email, password)
    if not found.usable and not found.disabled:
        accounts.record_failure(address, email)
        return _sign_in_page(request, SignInForm(initial={"email": email}),
                             error="That email address and password do not match an active account.")
    accounts.clear_failures(address, email)
    if not found.usable:
        return _sign_in_page(request, SignInForm(initial={"email": email}),
                             error="This account cannot be used to sign in. Your administrator can tell you why.")
    chosen = [user for user in found.usable if user.client_id == form.cleaned_data["organisation"]]
    if len(found.usable) > 1 and not chosen:
        # Only someone who knows the password learns which organisations the email belongs to.
        return _sign_in_page(request, SignInForm(initial={"email": email}),
                             choices=[(user.client_id, user.client.name) for user in found.usable])
    accounts.sign_in(request, chosen[0] if chosen else found.usable[0])
    return redirect("account")


@never_cache
@require_GET
def account(request: HttpRequest) -> HttpResponse:
    user = accounts.signed_in_user(request)
    if user is None:
        return redirect("account-sign-in")
    links = user.directory_links.select_related("integration").order_by("integration__name")
    return render(request, "passportal/account.html", {
        "portal_user": user,
        "groups": user.security_groups.order_by("name").distinct(),
        "directories": [link.integration for link in links],
    })


@require_POST
def sign_out(request: HttpRequest) -> HttpResponse:
    accounts.sign_out(request)
    return redirect("account-sign-in")
