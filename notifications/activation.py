"""Activation emails (R18): a fresh link for each user (passportal.tokens) and the email that carries it (the outbox).

Query count grows with the number of chunks, never with the number of users, so a sync that creates 100,000
users stays fast. Disabled or already activated users get nothing. The sender runs as a django-q2 task after
commit, so a sync never waits on SMTP.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from adread.batches import chunks
from passportal import tokens
from passportal.models import Client

from . import outbox
from .models import EmailKind

logger = logging.getLogger(__name__)

CHUNK_SIZE = tokens.CHUNK_SIZE


def _context(link: tokens.IssuedLink, msp_name: str, expires_at: str) -> dict:
    # The nonce, not the token: see tokens.token_from_nonce (R25). `expires_at`: link.expires_at as ISO text,
    # written once for a chunk (its links share it).
    return {"nonce": link.nonce, "first_name": link.first_name, "last_name": link.last_name,
            "organisation": link.organisation, "is_pro_user": link.is_pro_user, "msp_name": msp_name,
            "expires_at": expires_at}


def _emails(links: list[tokens.IssuedLink], msp_name: str) -> list[tuple[int | None, str, dict]]:
    """(user id, recipient, context) of each link's email."""
    iso: dict[datetime, str] = {}  # the links of a chunk share their expiry: its text is written once
    emails: list[tuple[int | None, str, dict]] = []
    for link in links:
        if link.expires_at not in iso:
            iso[link.expires_at] = link.expires_at.isoformat()
        emails.append((link.user_id, link.email, _context(link, msp_name, iso[link.expires_at])))
    return emails


def queue_activation_emails(user_ids: Iterable[int], *, just_created: bool = False) -> int:
    """Give each user a fresh link (replacing older ones) and queue its email; returns how many were queued.

    `just_created`: the users were created by the caller's transaction, so they have no older links or
    queued emails to void (saves two statements per chunk in a large sync).
    """
    ids = sorted({int(pk) for pk in user_ids})
    if not ids:
        return 0
    now = timezone.now()
    msp_name = Client.objects.filter(is_company_vault=True).values_list("name", flat=True).first() or ""
    queued = 0
    for chunk in chunks(ids, CHUNK_SIZE):
        with transaction.atomic():
            links = tokens.issue_links(chunk, now, replace=not just_created)
            if not links:
                continue
            if not just_created:
                # A queued email would carry a link that no longer works; its nonce goes with it.
                outbox.cancel_queued(EmailKind.ACTIVATION, [link.user_id for link in links])
            queued += outbox.queue(EmailKind.ACTIVATION, _emails(links, msp_name), now)
    if queued:
        outbox.send_soon()
    logger.info("Queued %d activation emails for %d requested users", queued, len(ids))
    return queued


def void_tokens_for(user_ids: Iterable[int]) -> int:
    """Void every outstanding link of these users (their email changed) and cancel the emails still queued with
    them; returns how many links were voided."""
    ids = sorted({int(pk) for pk in user_ids})
    voided = 0
    for chunk in chunks(ids, CHUNK_SIZE):
        with transaction.atomic():
            voided += tokens.void_links(chunk)
            outbox.cancel_queued(EmailKind.ACTIVATION, chunk)
    return voided
