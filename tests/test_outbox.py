"""The email outbox and its sender, over a real SMTP server (R18, R20)."""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone
from django_q.models import Schedule

from notifications.activation import queue_activation_emails
from notifications.models import Notification, NotificationKind, OutboxEmail, OutboxStatus
from notifications.outbox import claim_batch, send_queued
from notifications.tasks import send_outbox
from passportal.models import Client, PortalUser
from passportal.schedules import SCHEDULES, ensure_schedules
from passportal.tokens import activate, token_digest, token_from_nonce


def make_users(client: Client, *emails: str) -> list[PortalUser]:
    return [PortalUser.objects.create(client=client, email=email, first_name=email.split("@")[0]) for email in emails]


def queue(*users: PortalUser) -> None:
    assert queue_activation_emails([user.pk for user in users]) == len(users)


def make_due_now() -> None:
    """The controlled clock: the backoff has passed."""
    OutboxEmail.objects.update(next_attempt_at=timezone.now() - timedelta(seconds=1))


def test_r18_a_batch_goes_over_one_smtp_connection(smtp, client_org):
    queue(*make_users(client_org, *(f"user{i}@contoso.test" for i in range(5))))
    report = send_queued()
    assert (report.claimed, report.sent) == (5, 5)
    assert len(smtp.delivered) == 5
    assert len({item.peer for item in smtp.delivered}) == 1
    assert set(OutboxEmail.objects.values_list("status", flat=True)) == {OutboxStatus.SENT}
    assert all(row.sent_at and row.attempts == 1 for row in OutboxEmail.objects.all())


def test_r18_smtp_down_is_retried_later_and_delivered_nothing_lost(smtp, client_org):
    users = make_users(client_org, "ann@contoso.test", "bob@contoso.test", "cy@contoso.test")
    queue(*users)
    smtp.stop()

    report = send_queued()
    assert report.server_unreachable and report.retried == 3 and report.sent == 0
    for row in OutboxEmail.objects.all():
        assert row.status == OutboxStatus.QUEUED and row.attempts == 1
        assert row.next_attempt_at > timezone.now() + timedelta(seconds=30)
        assert "unreachable" in row.last_error
        assert "nonce" in row.context, "the link must survive until the email is delivered"

    assert send_queued().claimed == 0, "not due before its backoff"
    smtp.start()
    assert send_queued().claimed == 0
    make_due_now()
    report = send_queued()
    assert report.sent == 3
    assert sorted(rcpt for item in smtp.delivered for rcpt in item.rcpt_tos) == [
        "ann@contoso.test", "bob@contoso.test", "cy@contoso.test",
    ]
    assert set(OutboxEmail.objects.values_list("status", flat=True)) == {OutboxStatus.SENT}
    assert not Notification.objects.exists()


def test_r18_backoff_grows_with_each_failed_attempt(smtp, client_org):
    queue(*make_users(client_org, "ann@contoso.test"))
    smtp.stop()
    waits = []
    for _ in range(3):
        make_due_now()
        before = timezone.now()
        send_queued()
        waits.append((OutboxEmail.objects.get().next_attempt_at - before).total_seconds())
    assert waits[0] < waits[1] < waits[2]
    assert OutboxEmail.objects.get().attempts == 3


def test_r20_a_refused_address_fails_with_a_notification_and_the_batch_goes_on(smtp, client_org):
    bad, good = make_users(client_org, "nobody@contoso.test", "ann@contoso.test")
    smtp.refuse("nobody@contoso.test")
    queue(bad, good)

    report = send_queued()
    assert (report.sent, report.failed) == (1, 1)
    assert [item.rcpt_tos for item in smtp.delivered] == [("ann@contoso.test",)]
    failed = OutboxEmail.objects.get(recipient="nobody@contoso.test")
    assert failed.status == OutboxStatus.FAILED
    assert "550" in failed.last_error and "No such user" in failed.last_error
    assert "nonce" not in failed.context

    [note] = Notification.objects.all()
    assert note.kind == NotificationKind.EMAIL_FAILED
    assert note.client == client_org
    assert "nobody@contoso.test" in note.title and "550" in note.message
    assert note.url == f"/admin/passportal/portaluser/{bad.pk}/change/"

    make_due_now()
    assert send_queued().claimed == 0, "a failed email is not retried"


def test_r18_a_temporary_refusal_is_retried_then_given_up(smtp, client_org, settings):
    settings.OUTBOX_MAX_ATTEMPTS = 2
    queue(*make_users(client_org, "busy@contoso.test"))
    smtp.refuse("busy@contoso.test", "450 4.2.1 Mailbox busy, try later")

    assert send_queued().retried == 1
    row = OutboxEmail.objects.get()
    assert row.status == OutboxStatus.QUEUED and "450" in row.last_error
    make_due_now()
    assert send_queued().failed == 1
    assert OutboxEmail.objects.get().status == OutboxStatus.FAILED
    assert Notification.objects.filter(kind=NotificationKind.EMAIL_FAILED).count() == 1


def test_r18_rows_left_sending_by_a_dead_worker_are_reclaimed(smtp, client_org, settings):
    settings.OUTBOX_SENDING_TIMEOUT_SECONDS = 600
    stuck, busy = make_users(client_org, "stuck@contoso.test", "busy@contoso.test")
    queue(stuck, busy)
    OutboxEmail.objects.filter(recipient="stuck@contoso.test").update(
        status=OutboxStatus.SENDING, claim=uuid.uuid4(), claimed_at=timezone.now() - timedelta(hours=1)
    )
    OutboxEmail.objects.filter(recipient="busy@contoso.test").update(
        status=OutboxStatus.SENDING, claim=uuid.uuid4(), claimed_at=timezone.now()
    )

    report = send_queued()
    assert report.reclaimed == 1 and report.sent == 1
    assert [item.rcpt_tos for item in smtp.delivered] == [("stuck@contoso.test",)]
    assert OutboxEmail.objects.get(recipient="busy@contoso.test").status == OutboxStatus.SENDING


def test_r18_an_email_whose_link_was_used_meanwhile_is_cancelled_not_sent_again(smtp, client_org, settings):
    """A sender died after delivering, before recording: the user activates through the delivered link, and the
    reclaimed row is cancelled (its nonce wiped), not sent a second time with a dead link."""
    settings.OUTBOX_SENDING_TIMEOUT_SECONDS = 600
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    [ann] = make_users(client_org, "ann@contoso.test")
    queue(ann)
    row = OutboxEmail.objects.get()
    delivered_link = token_digest(token_from_nonce(row.context["nonce"]))
    OutboxEmail.objects.filter(pk=row.pk).update(
        status=OutboxStatus.SENDING, claim=uuid.uuid4(), claimed_at=timezone.now() - timedelta(hours=1)
    )
    assert activate(delivered_link, "correct-horse-battery-staple-42") is not None

    report = send_queued()
    assert (report.reclaimed, report.claimed, report.sent) == (1, 0, 0)
    assert not smtp.delivered
    row.refresh_from_db()
    assert (row.status, row.context, row.claim) == (OutboxStatus.CANCELLED, {}, None)


def test_r18_a_row_claimed_by_one_sender_is_not_claimed_by_another(client_org):
    queue(*make_users(client_org, "ann@contoso.test", "bob@contoso.test"))
    now = timezone.now()
    first_claim, first_rows = claim_batch(10, now)
    second_claim, second_rows = claim_batch(10, now)
    assert len(first_rows) == 2 and second_rows == []
    assert first_claim != second_claim
    assert set(OutboxEmail.objects.values_list("claim", flat=True)) == {first_claim}


@pytest.mark.django_db(transaction=True)
def test_r18_two_senders_at_once_never_send_one_email_twice(smtp):
    """Two threads, each with its own database connection, race for the same rows."""
    org = Client.objects.create(name="Race Ltd", site_enabled=True)
    users = PortalUser.objects.bulk_create(
        [PortalUser(client=org, email=f"user{i}@race.test", first_name=f"U{i}") for i in range(120)]
    )
    queue(*users)
    start = threading.Barrier(2)
    errors: list[BaseException] = []
    claimed: list[int] = []

    def sender() -> None:
        try:
            start.wait(timeout=10)
            while True:
                report = send_queued(batch_size=15)
                claimed.append(report.claimed)
                if report.claimed == 0:
                    break
        except BaseException as exc:  # reported below; a thread's exception is otherwise lost
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=sender) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    counts = Counter(rcpt for item in smtp.delivered for rcpt in item.rcpt_tos)
    assert len(counts) == 120 and set(counts.values()) == {1}, "every email exactly once"
    assert sum(claimed) == 120
    assert OutboxEmail.objects.filter(status=OutboxStatus.SENT).count() == 120


def test_the_send_outbox_task_sends_everything_due(smtp, client_org):
    queue(*make_users(client_org, *(f"user{i}@contoso.test" for i in range(3))))
    assert send_outbox() == "3 sent, 0 to retry, 0 failed, 0 reclaimed"
    assert len(smtp.delivered) == 3
    assert send_outbox() == "0 sent, 0 to retry, 0 failed, 0 reclaimed"


def test_the_send_outbox_task_stops_when_the_server_is_down(smtp, client_org):
    queue(*make_users(client_org, "ann@contoso.test"))
    smtp.stop()
    assert send_outbox() == "0 sent, 1 to retry, 0 failed, 0 reclaimed (mail server unreachable)"


def test_an_email_that_cannot_be_rendered_fails_alone(smtp, client_org):
    ann, bob = make_users(client_org, "ann@contoso.test", "bob@contoso.test")
    queue(ann, bob)
    OutboxEmail.objects.filter(recipient="ann@contoso.test").update(context={"first_name": "Ann"})
    report = send_queued()
    assert (report.sent, report.failed) == (1, 1)
    assert "Could not render" in OutboxEmail.objects.get(recipient="ann@contoso.test").last_error


def test_the_every_minute_schedule_exists_once_after_migrate_and_stays_one(db):
    assert Schedule.objects.filter(name=SCHEDULES["outbox"].name).count() == 1
    ensure_schedules()
    ensure_schedules()
    schedule = Schedule.objects.get(name=SCHEDULES["outbox"].name)
    assert schedule.func == "notifications.tasks.send_outbox"
    assert (schedule.schedule_type, schedule.minutes, schedule.repeats) == (Schedule.MINUTES, 1, -1)
