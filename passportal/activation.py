"""Account activation (R18, R25, R26): links, their single use, and the emails that carry them.

A link is `PORTAL_BASE_URL/activate/<token>/`. The token is 256 random bits; only its sha256 is
stored. A link works once, for one user, until it expires, until a newer link replaces it, and only
while the user's email is the address it was sent to and the user is not disabled.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets
from collections.abc import Iterable
from datetime import datetime, timedelta
from functools import lru_cache

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.crypto import salted_hmac

from adread.batches import chunks
from notifications.models import EmailKind, OutboxEmail, OutboxStatus

from . import ratelimit
from .bulk import copy_rows, use_copy
from .crypto import hash_token
from .models import ActivationToken, Client, PortalUser, UserStatus

logger = logging.getLogger(__name__)

CHUNK_SIZE = 5000
SENDER_TASK = "notifications.tasks.send_outbox"


def _is_disabled(user: PortalUser) -> bool:
    return UserStatus.DISABLED in (user.status_now, user.status)


def _activatable_users(ids: list[int]):
    """Users that may still activate: not disabled (by staff or a sync) and not activated yet."""
    return PortalUser.objects.filter(
        pk__in=ids, disabled_by_staff=False, disabled_reason="", activated_at__isnull=True
    ).exclude(status=UserStatus.DISABLED)


def _cancel_queued_emails(user_ids: list[int]) -> None:
    # A queued email would carry a link that no longer works; its plain token goes with it.
    OutboxEmail.objects.filter(
        portal_user_id__in=user_ids, kind=EmailKind.ACTIVATION, status=OutboxStatus.QUEUED
    ).update(status=OutboxStatus.CANCELLED, context={}, claim=None)


def _void_outstanding(user_ids: list[int], now: datetime) -> None:
    ActivationToken.objects.filter(user_id__in=user_ids, used_at__isnull=True, voided_at__isnull=True).update(
        voided_at=now
    )


def queue_activation_emails(user_ids: Iterable[int], *, just_created: bool = False) -> int:
    """Give each user a fresh link (replacing older ones) and queue its email; returns how many were queued.

    `just_created`: the users were created by the caller's committed transaction, so they have no
    older links or queued emails to void (saves two statements per chunk in a large sync).

    Query count grows with the number of chunks, never with the number of users, so a sync that
    creates 100,000 users stays fast. Disabled or already activated users get nothing. The sender
    runs as a django-q2 task after commit, so a sync never waits on SMTP.
    """
    ids = sorted({int(pk) for pk in user_ids})
    if not ids:
        return 0
    now = timezone.now()
    expires_at = now + timedelta(days=settings.ACTIVATION_TOKEN_DAYS)
    msp_name = Client.objects.filter(is_company_vault=True).values_list("name", flat=True).first() or ""
    queued = 0
    for chunk in chunks(ids, CHUNK_SIZE):
        with transaction.atomic():
            users = list(
                _activatable_users(chunk).values_list(
                    "id", "first_name", "last_name", "email", "client__name", "client__is_company_vault"
                )
            )
            if not users:
                continue
            user_ids_in_chunk = [user[0] for user in users]
            if not just_created:
                _void_outstanding(user_ids_in_chunk, now)
                _cancel_queued_emails(user_ids_in_chunk)
            tokens: list[tuple] = []
            emails: list[tuple] = []
            for user_id, first_name, last_name, email, organisation, is_pro in users:
                nonce = secrets.token_urlsafe(16)
                tokens.append((user_id, hash_token(token_from_nonce(nonce)), email, expires_at))
                emails.append((user_id, email, {
                    "nonce": nonce,
                    "first_name": first_name,
                    "last_name": last_name,
                    "organisation": organisation,
                    "is_pro_user": is_pro,
                    "msp_name": msp_name,
                    "expires_at": expires_at.isoformat(),
                }))
            _insert(tokens, emails, now)
            queued += len(emails)
    if queued:
        # robust: the rows are committed whatever happens; the every-minute schedule is the safety net.
        transaction.on_commit(_enqueue_sender, robust=True)
    logger.info("Queued %d activation emails for %d requested users", queued, len(ids))
    return queued


def token_from_nonce(nonce: str) -> str:
    """The link's token, derived from the nonce a queued email keeps (R25).

    A queued email stores only a random nonce; the token is an HMAC of it under a key derived from
    SECRET_KEY. A copy of the database alone therefore holds no working link, and the token itself
    is stored only as a hash. 256 bits, like a random token.
    """
    digest = hmac.new(_link_key(settings.SECRET_KEY), nonce.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


@lru_cache(maxsize=2)
def _link_key(secret_key: str) -> bytes:
    # Derived once, not per link: a sync may queue 100,000 of them.
    return salted_hmac("passportal.activation.link", b"key", secret=secret_key, algorithm="sha256").digest()


def _insert(tokens: list[tuple], emails: list[tuple], now: datetime) -> None:
    """COPY on PostgreSQL for large batches (bulk_create's per-value preparation dominates a big sync)."""
    if not use_copy(len(tokens)):
        ActivationToken.objects.bulk_create(
            [ActivationToken(user_id=uid, token_hash=digest, email=email, expires_at=expires)
             for uid, digest, email, expires in tokens], batch_size=1000)
        OutboxEmail.objects.bulk_create(
            [OutboxEmail(kind=EmailKind.ACTIVATION, recipient=email, portal_user_id=uid, next_attempt_at=now,
                         context=context) for uid, email, context in emails], batch_size=1000)
        return
    from psycopg.types.json import Jsonb

    copy_rows(ActivationToken, ["user_id", "token_hash", "email", "created_at", "expires_at"],
              [(uid, digest, email, now, expires) for uid, digest, email, expires in tokens])
    copy_rows(OutboxEmail, ["kind", "recipient", "context", "status", "attempts", "last_error", "next_attempt_at",
                            "created_at", "portal_user_id"],
              [(EmailKind.ACTIVATION, email, Jsonb(context), OutboxStatus.QUEUED, 0, "", now, now, uid)
               for uid, email, context in emails])


def _enqueue_sender() -> None:
    from django_q.tasks import async_task

    # TASKS_RUN_INLINE (tests, single-process demos) sends at once, like the engine's own tasks.
    async_task(SENDER_TASK, task_name="send activation emails", sync=settings.TASKS_RUN_INLINE)


def void_tokens_for(user_ids: Iterable[int]) -> int:
    """Void every outstanding link of these users (their email changed); returns how many were voided."""
    ids = sorted({int(pk) for pk in user_ids})
    now = timezone.now()
    voided = 0
    for chunk in chunks(ids, CHUNK_SIZE):
        with transaction.atomic():
            voided += ActivationToken.objects.filter(
                user_id__in=chunk, used_at__isnull=True, voided_at__isnull=True
            ).update(voided_at=now)
            _cancel_queued_emails(chunk)
    return voided


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
    password must already have passed the validators (the form does that, knowing the user).
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
        _cancel_queued_emails([user.pk])
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
