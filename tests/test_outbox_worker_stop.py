"""A worker stopped while sending (SIGTERM to the whole service, as systemd does it) sends no email twice:
it records what went out, gives back the rest, and exits (R18; issue: concurrency of the outbox)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from django.db import transaction

from notifications.activation import queue_activation_emails
from notifications.models import OutboxEmail, OutboxStatus
from notifications.outbox import send_queued
from passportal.models import PortalUser
from testing.smtp import SmtpServer
from tests.test_engine_qcluster import database_url_of_this_test

ROOT = Path(__file__).resolve().parent.parent
EMAILS = 150


@pytest.fixture
def slow_smtp(settings):
    server = SmtpServer()
    server.handler.delay_seconds = 0.05
    server.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = server.host, server.port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    yield server
    server.stop()


@pytest.mark.django_db(transaction=True)
def test_r18_a_worker_stopped_mid_batch_sends_no_email_twice(client_org, slow_smtp, settings):
    settings.TASKS_RUN_INLINE = False
    users = PortalUser.objects.bulk_create(
        [PortalUser(client=client_org, email=f"u{n}@contoso.test", first_name="U") for n in range(EMAILS)])
    with transaction.atomic():
        assert queue_activation_emails([u.pk for u in users]) == EMAILS  # the sender task is queued on commit

    env = {**os.environ, "DATABASE_URL": database_url_of_this_test(), "Q_WORKERS": "1",
           "EMAIL_URL": f"smtp://{slow_smtp.host}:{slow_smtp.port}", "TASKS_RUN_INLINE": "false"}
    cluster = subprocess.Popen([sys.executable, "manage.py", "qcluster"], cwd=ROOT, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while len(slow_smtp.delivered) < 30 and time.monotonic() < deadline and cluster.poll() is None:
            time.sleep(0.05)
        assert len(slow_smtp.delivered) >= 30, cluster.stdout.read() if cluster.poll() is not None else "too slow"
        os.killpg(cluster.pid, signal.SIGTERM)  # the whole service, workers included, as systemd stops it
        # Then systemd sends SIGKILL (TimeoutStopSec): what was recorded by now is what counts.
        with contextlib.suppress(subprocess.TimeoutExpired):
            cluster.communicate(timeout=20)
    finally:
        if cluster.poll() is None:
            os.killpg(cluster.pid, signal.SIGKILL)
            cluster.communicate(timeout=10)

    delivered_while_running = len(slow_smtp.delivered)
    assert delivered_while_running < EMAILS, "the worker was stopped mid-batch"
    assert not OutboxEmail.objects.filter(status=OutboxStatus.SENDING).exists(), "nothing left claimed"
    assert OutboxEmail.objects.filter(status=OutboxStatus.SENT).count() == delivered_while_running

    while send_queued().claimed:  # the next worker finishes the job
        pass
    per_recipient = Counter(rcpt for mail in slow_smtp.delivered for rcpt in mail.rcpt_tos)
    assert len(per_recipient) == EMAILS and set(per_recipient.values()) == {1}
