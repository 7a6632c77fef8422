"""End users' own sign-in: a portal user (not a Django staff user) signs in with email and password.

The session holds the user's id and a digest of its password hash, as Django's own auth does, so a
new password ends every other session; each request checks again that the account may still be used.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.http import HttpRequest
from django.utils.crypto import constant_time_compare, salted_hmac

from . import ratelimit
from .models import PortalUser, UserStatus

SESSION_USER = "_portal_user_id"
SESSION_HASH = "_portal_user_hash"


@dataclass(frozen=True)
class SignInResult:
    """What a sign-in attempt found: the accounts whose password matched, split by whether they may sign in."""

    usable: tuple[PortalUser, ...] = ()
    disabled: tuple[PortalUser, ...] = ()


def may_sign_in(user: PortalUser) -> bool:
    return user.status_now == UserStatus.ACTIVE and user.status != UserStatus.DISABLED


def check_credentials(email: str, password: str) -> SignInResult:
    """Every account with this email (one per client at most) whose password is this one."""
    candidates = list(
        PortalUser.objects.select_related("client").filter(email__iexact=email.strip()).exclude(password="")
    )
    if not candidates:
        # As long as a real check, so the answer's timing says nothing about whether the email exists.
        make_password(password)
        return SignInResult()
    matched = [user for user in candidates if user.check_password(password)]
    return SignInResult(
        usable=tuple(user for user in matched if may_sign_in(user)),
        disabled=tuple(user for user in matched if not may_sign_in(user)),
    )


def _session_hash(user: PortalUser) -> str:
    return salted_hmac("passportal.accounts.session", user.password, algorithm="sha256").hexdigest()


def sign_in(request: HttpRequest, user: PortalUser) -> None:
    request.session.cycle_key()  # a new session id at sign-in, so a planted one is worth nothing
    request.session.set_expiry(None)
    request.session[SESSION_USER] = user.pk
    request.session[SESSION_HASH] = _session_hash(user)


def sign_out(request: HttpRequest) -> None:
    request.session.flush()


def signed_in_user(request: HttpRequest) -> PortalUser | None:
    """The signed-in portal user, or None (and the session ended) once the account may no longer be used."""
    user_id = request.session.get(SESSION_USER)
    if user_id is None:
        return None
    user = PortalUser.objects.select_related("client", "permission_level").filter(pk=user_id).first()
    if user is None or not may_sign_in(user) or not constant_time_compare(
        request.session.get(SESSION_HASH, ""), _session_hash(user)
    ):
        sign_out(request)
        return None
    return user


def _window() -> tuple[int, int]:
    return settings.ACCOUNT_SIGNIN_RATE_LIMIT, settings.ACCOUNT_SIGNIN_RATE_WINDOW_SECONDS


def too_many_failures(address: str, email: str) -> bool:
    limit, window = _window()
    return ratelimit.count("signin", address, email.strip().casefold(), window_seconds=window) >= limit


def record_failure(address: str, email: str) -> None:
    _limit, window = _window()
    ratelimit.record("signin", address, email.strip().casefold(), window_seconds=window)


def clear_failures(address: str, email: str) -> None:
    ratelimit.clear("signin", address, email.strip().casefold())
