"""SCIM bearer tokens: issued once, stored as a digest, rotated with a grace period (R25, R26)."""

from __future__ import annotations

import secrets
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from directory.models import Integration, IntegrationKind
from passportal.actors import Actor, stored
from passportal.crypto import hash_token

from .models import ScimToken

PREFIX = "scim_"
LAST_USED_EVERY = timedelta(minutes=1)  # last_used_at is written at most this often (not on every request)


def grace() -> timedelta:
    return timedelta(minutes=settings.SCIM_TOKEN_GRACE_MINUTES)


def issue_token(integration: Integration, *, by: Actor = None, grace_period: timedelta | None = None) -> str:
    """A new token for the integration; tokens issued before it keep working for the grace period only.

    Only its digest is stored, so the caller shows the token once.
    """
    if integration.kind != IntegrationKind.SCIM:
        raise ValueError(f"{integration} is not a SCIM integration")
    token = PREFIX + secrets.token_urlsafe(32)
    now = timezone.now()
    until = now + (grace() if grace_period is None else grace_period)
    with transaction.atomic():
        integration.scim_tokens.filter(Q(expires_at__isnull=True) | Q(expires_at__gt=until)).update(expires_at=until)
        ScimToken.objects.create(integration=integration, token_hash=hash_token(token), hint=token[:9],
                                 created_by=stored(by))
    from .sync import ensure_folders

    ensure_folders(integration)  # the "all users" folder can be mapped before the first push
    return token


def revoke_tokens(integration: Integration) -> int:
    """Every token of the integration stops at once."""
    return integration.scim_tokens.filter(Q(expires_at__isnull=True) | Q(expires_at__gt=timezone.now())).update(
        expires_at=timezone.now())


def authenticate(integration_id: int, header: str) -> Integration | None:
    """The integration this Authorization header acts for, if it is a valid token of exactly that one."""
    scheme, _, token = (header or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    row = (ScimToken.objects.select_related("integration__client")
           .filter(token_hash=hash_token(token.strip()), integration_id=integration_id).first())
    now = timezone.now()
    if row is None or (row.expires_at is not None and row.expires_at <= now):
        return None
    if row.integration.kind != IntegrationKind.SCIM:
        return None
    if row.last_used_at is None or now - row.last_used_at > LAST_USED_EVERY:
        ScimToken.objects.filter(pk=row.pk).update(last_used_at=now)
    return row.integration
