"""The sender records what went out as it goes, so that a sender killed outright sends little again (R18, R25).

Recorded: after OUTBOX_RECORD_EVERY messages or OUTBOX_RECORD_AFTER_SECONDS, whichever comes first, and at the end
of a batch.
"""

from __future__ import annotations

import contextlib
import math
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.db import connection, transaction

from notifications.activation import queue_activation_emails
from notifications.models import OutboxEmail, OutboxStatus
from notifications.outbox import send_queued
from passportal.models import Client, PortalUser
from testing.smtp import SmtpServer
from tests.test_engine_qcluster import database_url_of_this_test

ROOT = Path(__file__).resolve().parent.parent
SLOW_SERVER_SECONDS = 0.05  # each message takes at least this long: a remote server, not a local relay


def queue_for(client: Client, count: int) -> list[PortalUser]:
    users = PortalUser.objects.bulk_create(
        [PortalUser(client=client, email=f"u{n}@contoso.test", first_name=f"U{n}") for n in range(count)])
    with transaction.atomic():
        assert queue_activation_emails([user.pk for user in users]) == count
    return users


@pytest.fixture
def slow_smtp(settings) -> Iterator[SmtpServer]:
    server = SmtpServer()
    server.handler.delay_seconds = SLOW_SERVER_SECONDS
    server.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = server.host, server.port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    yield server
    server.stop()


@contextlib.contextmanager
def deliveries_at_each_record(server: SmtpServer) -> Iterator[list[int]]:
    """How many messages the server had accepted each time the sender recorded deliveries."""
    seen: list[int] = []

    def note(execute, sql, params, many, context):
        if sql.startswith("UPDATE") and '"sent_at"' in sql:
            seen.append(len(server.delivered))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(note):
        yield seen


def test_r25_a_delivered_email_keeps_its_context_but_not_its_nonce(smtp, client_org):
    queue_for(client_org, 3)
    queued = dict(OutboxEmail.objects.values_list("pk", "context"))
    assert all("nonce" in context for context in queued.values())
    assert send_queued().sent == 3
    for pk, context in OutboxEmail.objects.values_list("pk", "context"):
        assert context == {key: value for key, value in queued[pk].items() if key != "nonce"}


def test_r18_deliveries_are_recorded_every_record_every_messages_on_a_fast_server(smtp, client_org, settings):
    settings.OUTBOX_RECORD_EVERY = 5
    settings.OUTBOX_RECORD_AFTER_SECONDS = 3600
    queue_for(client_org, 23)
    with deliveries_at_each_record(smtp) as seen:
        assert send_queued().sent == 23
    assert seen == [5, 10, 15, 20, 23]
    assert OutboxEmail.objects.filter(status=OutboxStatus.SENT).count() == 23


def test_r18_deliveries_are_recorded_every_quarter_second_on_a_slow_server(slow_smtp, client_org, settings):
    queue_for(client_org, 12)
    with deliveries_at_each_record(slow_smtp) as seen:
        assert send_queued().sent == 12
    # Each message takes at least SLOW_SERVER_SECONDS: a record comes after this many at most.
    most = math.ceil(settings.OUTBOX_RECORD_AFTER_SECONDS / SLOW_SERVER_SECONDS)
    gaps = [after - before for before, after in zip([0, *seen], seen, strict=False)]
    assert seen[-1] == 12 and len(seen) >= 3 and max(gaps) <= most, seen


@pytest.mark.django_db(transaction=True)
def test_r18_a_sender_killed_outright_sends_again_at_most_a_quarter_second_of_emails(client_org, slow_smtp, settings):
    emails = 60
    queue_for(client_org, emails)
    env = {**os.environ, "DATABASE_URL": database_url_of_this_test(),
           "EMAIL_URL": f"smtp://{slow_smtp.host}:{slow_smtp.port}", "TASKS_RUN_INLINE": "false"}
    sender = subprocess.Popen(
        [sys.executable, "manage.py", "shell", "-c", "from notifications.tasks import send_outbox; send_outbox()"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while len(slow_smtp.delivered) < 20 and time.monotonic() < deadline and sender.poll() is None:
            time.sleep(0.01)
        assert len(slow_smtp.delivered) >= 20, sender.stdout.read() if sender.poll() is not None else "too slow"
        sender.kill()  # SIGKILL: no chance to record what went out
        sender.communicate(timeout=20)
    finally:
        if sender.poll() is None:
            sender.kill()
            sender.communicate(timeout=10)
    delivered_before_the_kill = len(slow_smtp.delivered)
    assert delivered_before_the_kill < emails, "the sender was killed mid-batch"

    settings.OUTBOX_SENDING_TIMEOUT_SECONDS = 0  # the next sender takes back what the dead one held
    while send_queued().claimed:
        pass
    per_recipient = Counter(rcpt for mail in slow_smtp.delivered for rcpt in mail.rcpt_tos)
    sent_twice = [rcpt for rcpt, times in per_recipient.items() if times > 1]
    assert len(per_recipient) == emails and set(per_recipient.values()) <= {1, 2}
    # At most what went out in the last OUTBOX_RECORD_AFTER_SECONDS, and the message in hand when it died.
    assert len(sent_twice) <= math.ceil(settings.OUTBOX_RECORD_AFTER_SECONDS / SLOW_SERVER_SECONDS) + 1, sent_twice
