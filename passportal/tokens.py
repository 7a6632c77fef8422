"""Activation links (R18, R25, R26): their tokens, their single use, and the limit on refused links.

A link is `PORTAL_BASE_URL/activate/<token>/`. The token is 256 bits derived from a random nonce; only its
sha256 is stored. A link works once, for one user, until it expires, until a newer link replaces it, and only
while the user's email is the address it was sent to and the user is not disabled.

The emails that carry the links are the outbox's (notifications/activation.py): this module knows nothing of
them. It issues links and says which are still outstanding; the outbox asks before it sends one.
"""

from __future__ import annotations

import base64
import hmac
import logging
import secrets
from collections.abc import Iterable
from datetime import datetime, timedelta
from functools import lru_cache
from typing import NamedTuple

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.crypto import salted_hmac

from adread.batches import chunks

from . import ratelimit
from .bulk import copy_rows, pk_among, use_copy
from .crypto import hash_token
from .models import ActivationToken, PortalUser, UserStatus

logger = logging.getLogger(__name__)

CHUNK_SIZE = 5000
NONCE_BYTES = 16  # 128 random bits; the token derived from a nonce has 256 (token_from_nonce)
# The key's salt names the module the links were first made in: a new salt would break every link in flight.
LINK_KEY_SALT = "passportal.activation.link"


class IssuedLink(NamedTuple):
    """A fresh link and what its email needs to name: the nonce the link is derived from, never the token.

    A named tuple, not a dataclass: a large sync issues 100,000 at once, and a tuple is made in a third the time.
    """

    user_id: int
    email: str
    nonce: str
    first_name: str
    last_name: str
    organisation: str
    is_pro_user: bool
    expires_at: datetime


def _is_disabled(user: PortalUser) -> bool:
    return UserStatus.DISABLED in (user.status_now, user.status)


def _activatable_users(ids: Iterable[int]) -> QuerySet[PortalUser]:
    """Users that may still activate: not disabled (by staff or a sync) and not activated yet."""
    return PortalUser.objects.filter(
        pk_among(PortalUser, list(ids)), disabled_by_staff=False, disabled_reason="", activated_at__isnull=True
    ).exclude(status=UserStatus.DISABLED)


def _void_outstanding(user_ids: Iterable[int], now: datetime) -> int:
    return ActivationToken.objects.filter(
        user_id__in=user_ids, used_at__isnull=True, voided_at__isnull=True
    ).update(voided_at=now)


def issue_links(user_ids: Iterable[int], now: datetime, *, replace: bool = True) -> list[IssuedLink]:
    """A new link for each of these users that may still activate (one chunk: the caller's transaction).

    `replace`: void the users' older links first. A caller that created the users in this transaction
    knows they have none, and saves the statement. Queries: a fixed number, whatever the number of users.
    """
    expires_at = now + timedelta(days=settings.ACTIVATION_TOKEN_DAYS)
    users = list(_activatable_users(user_ids).values_list(
        "id", "first_name", "last_name", "email", "client__name", "client__is_company_vault"))
    if not users:
        return []
    if replace:
        _void_outstanding([user[0] for user in users], now)
    links = [IssuedLink(user_id, email, nonce, first_name, last_name, organisation, is_pro, expires_at)
             for (user_id, first_name, last_name, email, organisation, is_pro), nonce in zip(users, nonces(len(users)),
                                                                                            strict=True)]
    key = _link_key(settings.SECRET_KEY)
    if use_copy(len(links)):
        # COPY on PostgreSQL for large batches (bulk_create's per-value preparation dominates a big sync); each row
        # is made as the COPY takes it.
        copy_rows(ActivationToken, ["user_id", "token_hash", "email", "created_at", "expires_at"],
                  ((link.user_id, _digest(key, link.nonce), link.email, now, expires_at) for link in links))
    else:
        ActivationToken.objects.bulk_create(
            [ActivationToken(user_id=link.user_id, token_hash=_digest(key, link.nonce), email=link.email,
                             expires_at=expires_at) for link in links], batch_size=1000)
    return links


def nonces(count: int) -> list[str]:
    """`count` random nonces, each as secrets.token_urlsafe(16) makes one (16 bytes from the OS's CSPRNG, base64url
    without padding), drawn in one call instead of one each."""
    pool = secrets.token_bytes(NONCE_BYTES * count)
    encode = base64.urlsafe_b64encode
    return [encode(pool[i:i + NONCE_BYTES]).rstrip(b"=").decode() for i in range(0, len(pool), NONCE_BYTES)]


def token_from_nonce(nonce: str) -> str:
    """The link's token, derived from the nonce a queued email keeps (R25).

    A queued email stores only a random nonce; the token is an HMAC of it under a key derived from
    SECRET_KEY. A copy of the database alone therefore holds no working link, and the token itself
    is stored only as a hash. 256 bits, like a random token.
    """
    return _token(_link_key(settings.SECRET_KEY), nonce)


def _token(key: bytes, nonce: str) -> str:
    # hmac.digest: the one-shot HMAC in C, the same bytes as hmac.new(...).digest() without building an object.
    return base64.urlsafe_b64encode(hmac.digest(key, nonce.encode(), "sha256")).rstrip(b"=").decode()


def link_digest(nonce: str) -> str:
    """The stored form of the link an email with this nonce carries."""
    return hash_token(token_from_nonce(nonce))


def _digest(key: bytes, nonce: str) -> str:
    """link_digest with the key derived once by the caller (a sync issues thousands of links at once)."""
    return hash_token(_token(key, nonce))


@lru_cache(maxsize=2)
def _link_key(secret_key: str) -> bytes:
    # Derived once, not per link: a sync may queue 100,000 of them.
    return salted_hmac(LINK_KEY_SALT, b"key", secret=secret_key, algorithm="sha256").digest()


def outstanding(digests: Iterable[str]) -> set[str]:
    """Of these stored links, the ones neither used nor void (one query: the outbox asks per batch)."""
    return set(ActivationToken.objects.filter(
        token_hash__in=list(digests), used_at__isnull=True, voided_at__isnull=True
    ).values_list("token_hash", flat=True))


def void_links(user_ids: Iterable[int]) -> int:
    """Void every outstanding link of these users (their email changed); returns how many were voided."""
    ids = sorted({int(pk) for pk in user_ids})
    now = timezone.now()
    return sum(_void_outstanding(list(chunk), now) for chunk in chunks(ids, CHUNK_SIZE))


def _usable(token: ActivationToken, user: PortalUser, now: datetime) -> bool:
    return (
        token.used_at is None
        and token.voided_at is None
        and token.expires_at > now
        and user.activated_at is None
        and not _is_disabled(user)
        and token.email.casefold() == user.email.casefold()
    )


def token_digest(raw_token: str) -> str:
    """The stored form of a link's token; "" for a string that cannot be a token (they are 43 characters)."""
    return hash_token(raw_token) if raw_token and len(raw_token) <= 100 else ""


def user_for_digest(digest: str) -> PortalUser | None:
    """The user a link may activate now, or None: unknown, used, expired, replaced, void or disabled look alike."""
    if not digest:
        return None
    token = ActivationToken.objects.select_related("user", "user__client").filter(token_hash=digest).first()
    if token is None or not _usable(token, token.user, timezone.now()):
        return None
    return token.user


def activate(digest: str, password: str) -> PortalUser | None:
    """Set the password chosen through a link and use the link up; None when the link no longer works.

    `digest` is the token's stored hash (the session keeps only that, never the token itself). The
    password must already have passed the validators (the form does that, knowing the user). The user's
    other links are voided with it; an email still queued with one is cancelled by the outbox, which
    sends only outstanding links.
    """
    if not digest:
        return None
    now = timezone.now()
    with transaction.atomic():
        # Row locks: two submissions of one link cannot both pass the "not used" check.
        token = ActivationToken.objects.select_for_update().filter(token_hash=digest).first()
        if token is None:
            return None
        user = PortalUser.objects.select_for_update().select_related("client").get(pk=token.user_id)
        if not _usable(token, user, now):
            return None
        token.used_at = now
        token.save(update_fields=["used_at"])
        user.set_password(password)
        user.activated_at = now
        user.refresh_status()
        user.save(update_fields=["password", "activated_at", "status", "updated_at"])
        _void_outstanding([user.pk], now)
    logger.info("Portal user %s activated their account", user.pk)
    return user


def _rate_window() -> tuple[int, int]:
    return settings.ACTIVATION_RATE_LIMIT, settings.ACTIVATION_RATE_WINDOW_SECONDS


def _refusal_keys(address: str, raw_token: str) -> list[tuple[str, ...]]:
    # By address (one machine guessing) and by token prefix (one link tried from many addresses).
    return [("activation-address", address), ("activation-token", raw_token[:8])]


def too_many_refused(address: str, raw_token: str = "") -> bool:
    """True once this address, or links starting like this one, had too many links refused in the window.

    Only refused links count, and a link that works is never refused for them (callers check the
    link first): a whole office behind one NAT address activating its accounts on the same morning
    is never held up, and neither is anyone whose neighbour mistyped a link.
    """
    limit, window = _rate_window()
    return any(ratelimit.count(*key, window_seconds=window) >= limit for key in _refusal_keys(address, raw_token))


def record_refused_link(address: str, raw_token: str = "") -> None:
    _limit, window = _rate_window()
    for key in _refusal_keys(address, raw_token):
        ratelimit.record(*key, window_seconds=window)
