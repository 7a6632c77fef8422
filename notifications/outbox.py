"""The outbox: the one writer of outbox rows. Queue emails in the caller's transaction, cancel queued ones, and
send: claim queued emails, send a batch over one SMTP connection, record each outcome.

Two senders (two qcluster workers, two hosts) may run at once: a row is sent only by the sender
whose conditional update moved it from queued to sending (healthchecks' atomic claim). A server
that cannot be reached puts the batch back with a backoff; an address the server refuses for good
ends in failed and a notification. Rows left in sending by a worker that died are taken back after
a timeout: that email may go out twice, which beats losing it.

Never log an email's context: an activation's context holds the nonce its link is derived from.
"""

from __future__ import annotations

import contextlib
import logging
import smtplib
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.core.mail.backends.base import BaseEmailBackend
from django.db import transaction
from django.db.models import F, Func, JSONField, Value
from django.template import TemplateDoesNotExist, TemplateSyntaxError
from django.urls import reverse
from django.utils import timezone

from passportal import tokens
from passportal.bulk import copy_rows, use_copy

from .emails import Renderer
from .models import EmailKind, NotificationKind, OutboxEmail, OutboxStatus
from .services import notify

logger = logging.getLogger(__name__)

SECRET_CONTEXT_KEYS = ("nonce",)
SENDER_TASK = "notifications.tasks.send_outbox"
CLAIM_TRIES = 5
# What went out is recorded after settings.OUTBOX_RECORD_EVERY messages or OUTBOX_RECORD_AFTER_SECONDS, whichever
# comes first: a sender killed outright (SIGKILL, power) sends at most that again after the reclaim timeout. The
# count bounds the window when the server is fast (a local relay takes ~1 ms a message: 100 is a tenth of a
# second, one UPDATE per 100), the time when it is slow (a remote server at 100 ms a message: 2 or 3 messages).


class StopRequest:
    """Set when the process is asked to stop (SIGTERM): the batch ends after the message being sent."""

    requested = False


@dataclass
class SendReport:
    claimed: int = 0
    sent: int = 0
    retried: int = 0
    failed: int = 0
    reclaimed: int = 0
    released: int = 0  # claimed, then given back unsent because the process is stopping
    server_unreachable: bool = False
    errors: list[str] = field(default_factory=list)

    def add(self, other: SendReport) -> None:
        self.claimed += other.claimed
        self.sent += other.sent
        self.retried += other.retried
        self.failed += other.failed
        self.reclaimed += other.reclaimed
        self.released += other.released
        self.server_unreachable = self.server_unreachable or other.server_unreachable
        self.errors.extend(other.errors)


class _Refused(Exception):
    """The server answered this one message with an error code."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"{code} {reason}")
        self.code = code

    @property
    def permanent(self) -> bool:
        return self.code >= 500


def queue(kind: str, emails: list[tuple[int | None, str, dict]], now: datetime) -> int:
    """Write (portal user id, recipient, context) rows, queued, in the caller's transaction; returns how many.

    COPY on PostgreSQL for large batches (bulk_create's per-value preparation dominates a big sync). The
    sender is not started here: call send_soon() once the caller's batches are written.
    """
    if not use_copy(len(emails)):
        OutboxEmail.objects.bulk_create(
            [OutboxEmail(kind=kind, recipient=recipient, portal_user_id=uid, next_attempt_at=now, context=context)
             for uid, recipient, context in emails], batch_size=1000)
        return len(emails)
    from psycopg.types.json import Jsonb

    copy_rows(OutboxEmail, ["kind", "recipient", "context", "status", "attempts", "last_error", "next_attempt_at",
                            "created_at", "portal_user_id"],
              [(kind, recipient, Jsonb(context), OutboxStatus.QUEUED, 0, "", now, now, uid)
               for uid, recipient, context in emails])
    return len(emails)


def cancel_queued(kind: str, user_ids: Iterable[int]) -> int:
    """Cancel these users' queued emails of this kind; their context (an activation's nonce) goes with them."""
    return OutboxEmail.objects.filter(portal_user_id__in=user_ids, kind=kind, status=OutboxStatus.QUEUED).update(
        status=OutboxStatus.CANCELLED, context={}, claim=None)


def send_soon() -> None:
    """Start the sender once the caller's transaction commits (the every-minute schedule is the safety net)."""
    # robust: the rows are committed whatever happens to the task queue.
    transaction.on_commit(_enqueue_sender, robust=True)


def _enqueue_sender() -> None:
    from django_q.tasks import async_task

    # TASKS_RUN_INLINE (tests, single-process demos) sends at once, like the engine's own tasks.
    async_task(SENDER_TASK, task_name="send activation emails", sync=settings.TASKS_RUN_INLINE)


def backoff(attempts: int) -> timedelta:
    """1, 2, 4, 8 ... minutes after each failed attempt, never more than an hour."""
    base = settings.OUTBOX_RETRY_BASE_SECONDS
    cap = settings.OUTBOX_RETRY_MAX_SECONDS
    return timedelta(seconds=min(cap, base * 2 ** max(0, attempts - 1)))


def reclaim_stuck(now: datetime) -> int:
    """Put back rows a sender claimed and never finished (its worker died)."""
    timeout = timedelta(seconds=settings.OUTBOX_SENDING_TIMEOUT_SECONDS)
    return OutboxEmail.objects.filter(status=OutboxStatus.SENDING, claimed_at__lt=now - timeout).update(
        status=OutboxStatus.QUEUED, claim=None, claimed_at=None, next_attempt_at=now
    )


def claim_batch(batch_size: int, now: datetime) -> tuple[uuid.UUID, list[OutboxEmail]]:
    """Claim up to batch_size due rows; returns only the rows this call's update moved to sending."""
    claim = uuid.uuid4()
    for _ in range(CLAIM_TRIES):
        due = list(
            OutboxEmail.objects.filter(status=OutboxStatus.QUEUED, next_attempt_at__lte=now)
            # Oldest due first; ties in the (status, next_attempt_at) index's order. A tie-break on id made the
            # database sort every due row for each batch: a sync queues thousands due at the same instant.
            .order_by("next_attempt_at")
            .values_list("pk", flat=True)[:batch_size]
        )
        if not due:
            return claim, []
        # The status condition makes the claim atomic: a row another sender claimed first is not ours.
        if OutboxEmail.objects.filter(pk__in=due, status=OutboxStatus.QUEUED, next_attempt_at__lte=now).update(
            status=OutboxStatus.SENDING, claim=claim, claimed_at=now
        ):
            break
        # Another sender took every row we saw: look again, the next ones are free.
    rows = list(
        OutboxEmail.objects.filter(claim=claim, status=OutboxStatus.SENDING).order_by("id")
    )
    return claim, _without_dead_links(rows, claim)


def _without_dead_links(rows: list[OutboxEmail], claim: uuid.UUID) -> list[OutboxEmail]:
    """Cancel the activation emails whose link was used or voided since they were queued; returns the others.

    The vault voids links without knowing of the outbox (an activation voids the user's other links), so the
    outbox asks, once per batch, which links are still outstanding. A row with no nonce is left to fail.
    """
    digests = {row.pk: tokens.link_digest(row.context["nonce"]) for row in rows
               if row.kind == EmailKind.ACTIVATION and isinstance(row.context.get("nonce"), str)}
    if not digests:
        return rows
    live = tokens.outstanding(digests.values())
    dead = {pk for pk, digest in digests.items() if digest not in live}
    if dead:
        OutboxEmail.objects.filter(pk__in=dead, claim=claim).update(
            status=OutboxStatus.CANCELLED, context={}, claim=None)
    return [row for row in rows if row.pk not in dead]


def _public_context(context: dict) -> dict:
    return {key: value for key, value in context.items() if key not in SECRET_CONTEXT_KEYS}


def _finish(row: OutboxEmail, owner: uuid.UUID, **fields: Any) -> bool:
    # Conditional on our claim: if the row was reclaimed meanwhile, the other sender owns it now.
    return bool(OutboxEmail.objects.filter(pk=row.pk, claim=owner).update(**fields))


class _WithoutKeys(Func):
    """A JSON column without these top-level keys, computed by the database: one short statement for any rows."""

    function = "JSON_REMOVE"  # SQLite, MySQL and MariaDB: JSON_REMOVE(column, '$."key"', ...)
    output_field = JSONField()

    def __init__(self, column: str, keys: tuple[str, ...]) -> None:
        super().__init__(F(column), *[Value(f'$."{key}"') for key in keys])
        self.keys = keys

    def as_postgresql(self, compiler: Any, connection: Any, **extra_context: Any) -> tuple[str, tuple]:
        column, params = compiler.compile(self.source_expressions[0])
        return f"({column} - %s::text[])", (*params, list(self.keys))


def _mark_sent(rows: list[OutboxEmail], claim: uuid.UUID, now: datetime) -> None:
    """Record deliveries in one statement (one commit per email cost more than sending it).

    Once delivered, the plain token lives only in the recipient's mailbox: each row keeps its public context.
    """
    if not rows:
        return
    # Conditional on our claim, like _finish: a row reclaimed meanwhile belongs to the other sender.
    OutboxEmail.objects.filter(pk__in=[row.pk for row in rows], claim=claim).update(
        status=OutboxStatus.SENT, sent_at=now, attempts=F("attempts") + 1, last_error="", claim=None,
        context=_WithoutKeys("context", SECRET_CONTEXT_KEYS),
    )


def _release(rows: list[OutboxEmail], claim: uuid.UUID, now: datetime) -> int:
    """Give back rows this sender claimed and did not try: queued again at once, no attempt counted."""
    if not rows:
        return 0
    return OutboxEmail.objects.filter(pk__in=[row.pk for row in rows], claim=claim).update(
        status=OutboxStatus.QUEUED, claim=None, claimed_at=None, next_attempt_at=now,
    )


def _requeue(row: OutboxEmail, claim: uuid.UUID, now: datetime, error: str) -> None:
    attempts = row.attempts + 1
    _finish(
        row, claim, status=OutboxStatus.QUEUED, attempts=attempts, last_error=error[:2000],
        next_attempt_at=now + backoff(attempts), claim=None, claimed_at=None,
    )


def _mark_failed(row: OutboxEmail, claim: uuid.UUID, error: str) -> None:
    finished = _finish(
        row, claim, status=OutboxStatus.FAILED, attempts=row.attempts + 1, last_error=error[:2000],
        claim=None, context=_public_context(row.context),
    )
    if not finished:
        return
    user = row.portal_user
    notify(
        NotificationKind.EMAIL_FAILED,
        title=f"{row.get_kind_display()} email to {row.recipient} could not be delivered",
        message=f"{error}\nFix the address (or the mail server) and resend the email from the user's page.",
        client=user.client if user else None,
        url=reverse("admin:passportal_portaluser_change", args=[user.pk]) if user else "",
    )


def _build_message(row: OutboxEmail, connection: BaseEmailBackend, renderer: Renderer) -> EmailMultiAlternatives:
    rendered = renderer.render(row.kind, row.context)
    message = EmailMultiAlternatives(
        subject=rendered.subject,
        body=rendered.text,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[row.recipient],
        connection=connection,
        headers={"Auto-Submitted": "auto-generated"},
    )
    message.attach_alternative(rendered.html, "text/html")
    return message


def _send_one(connection: BaseEmailBackend, message: EmailMultiAlternatives) -> None:
    """Send over the open connection; a refusal of this message becomes _Refused, a broken link raises."""
    try:
        connection.send_messages([message])
    except smtplib.SMTPRecipientsRefused as exc:
        code, reason = min(exc.recipients.values(), key=lambda answer: answer[0])
        raise _Refused(code, _text(reason)) from exc
    except smtplib.SMTPDataError as exc:
        raise _Refused(exc.smtp_code, _text(exc.smtp_error)) from exc
    # SMTPSenderRefused is not about this address (our From is refused): like a server down, retry later.


def _text(reason: bytes | str) -> str:
    return reason.decode(errors="replace") if isinstance(reason, bytes) else str(reason)


def send_queued(batch_size: int = 200) -> SendReport:
    """Send one batch of due emails; returns what happened. Safe to run in several processes at once."""
    now = timezone.now()
    report = SendReport(reclaimed=reclaim_stuck(now))
    claim, rows = claim_batch(batch_size, now)
    report.claimed = len(rows)
    if not rows:
        return report
    connection = get_connection(fail_silently=False)
    try:
        connection.open()
    except (OSError, smtplib.SMTPException) as exc:
        _put_back(rows, claim, now, f"Mail server unreachable: {exc.__class__.__name__}: {exc}", report)
        return report
    _send_batch(connection, rows, claim, now, report)
    logger.info(
        "Outbox batch: %d claimed, %d sent, %d to retry, %d failed", report.claimed, report.sent,
        report.retried, report.failed,
    )
    return report


def _send_batch(connection: BaseEmailBackend, rows: list[OutboxEmail], claim: uuid.UUID, now: datetime,
                report: SendReport) -> None:
    """Render the claimed rows, then send them over one open connection, recording what went out as it goes
    (OUTBOX_RECORD_EVERY messages, OUTBOX_RECORD_AFTER_SECONDS) and at the end."""
    every, after_seconds = settings.OUTBOX_RECORD_EVERY, settings.OUTBOX_RECORD_AFTER_SECONDS
    sent: list[OutboxEmail] = []
    recorded_at = time.monotonic()
    try:
        # All rendered first (a few ms for a batch): the send loop then does nothing else between messages.
        renderer = Renderer()
        messages = [_rendered(row, connection, renderer, claim, report) for row in rows]
        for index, (row, message) in enumerate(zip(rows, messages, strict=True)):
            if StopRequest.requested:
                report.released = _release(rows[index:], claim, now)
                logger.info("Outbox: stopping; %d claimed emails given back unsent", report.released)
                break
            if sent and (len(sent) >= every or time.monotonic() - recorded_at >= after_seconds):
                _mark_sent(sent, claim, timezone.now())
                sent, recorded_at = [], time.monotonic()
            if message is None:
                continue
            try:
                _send_one(connection, message)
            except _Refused as refusal:
                _refused(row, claim, now, refusal, report)
            except (OSError, smtplib.SMTPException) as exc:
                # The connection broke: this row and the rest wait for the next attempt (those that rendered).
                _put_back([waiting for waiting, built in zip(rows[index:], messages[index:], strict=True)
                           if built is not None], claim, now,
                          f"Mail server connection lost: {exc.__class__.__name__}: {exc}", report)
                break
            else:
                sent.append(row)
                report.sent += 1
    finally:
        with contextlib.suppress(OSError, smtplib.SMTPException):
            connection.close()
        # Even when something unexpected stops the batch, what went out is recorded. A sender that dies
        # before this line leaves its rows in sending: they are reclaimed and may go out twice (see above).
        _mark_sent(sent, claim, timezone.now())


def _rendered(row: OutboxEmail, connection: BaseEmailBackend, renderer: Renderer, claim: uuid.UUID,
              report: SendReport) -> EmailMultiAlternatives | None:
    """The row's message, or None when it cannot be rendered: then it fails for good (a retry renders the same)."""
    try:
        return _build_message(row, connection, renderer)
    except (KeyError, ValueError, TypeError, TemplateDoesNotExist, TemplateSyntaxError) as exc:
        _mark_failed(row, claim, f"Could not render the {row.kind} email: {exc.__class__.__name__}")
        report.failed += 1
        return None


def _refused(row: OutboxEmail, claim: uuid.UUID, now: datetime, refusal: _Refused, report: SendReport) -> None:
    """The server refused this one email: failed for good when permanent or out of attempts, else retried later."""
    error = f"Refused by the mail server: {refusal}"
    if refusal.permanent or row.attempts + 1 >= settings.OUTBOX_MAX_ATTEMPTS:
        _mark_failed(row, claim, error)
        report.failed += 1
    else:
        _requeue(row, claim, now, error)
        report.retried += 1
    report.errors.append(f"outbox email {row.pk}: {error}")
    logger.warning("Outbox email %s to %s: %s", row.pk, row.recipient, error)


def _put_back(rows: list[OutboxEmail], claim: uuid.UUID, now: datetime, error: str, report: SendReport) -> None:
    """The mail server cannot be reached or was lost: these rows wait for the next attempt."""
    for row in rows:
        _requeue(row, claim, now, error)
    report.retried += len(rows)
    report.server_unreachable = True
    report.errors.append(error)
    logger.warning("Outbox: %s; %d emails put back for a retry", error, len(rows))
