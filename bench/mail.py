"""Activation email: 10,000 queued emails sent by the outbox sender to a local SMTP server.

The bench group "email" (bench/email.py would shadow the standard library's email package for every
script in bench/, which runs with bench/ first on sys.path).

The SMTP server (aiosmtpd, a handler that only counts) runs in a process of its own. Case `outbox`:
10,000 portal users get their activation emails queued (`queue_activation_emails`, timed on its own:
it only writes rows and enqueues the sender task, so a sync never waits on SMTP), then the sender
task (`notifications.tasks.send_outbox`) is run until the outbox is empty. Floor: Django's
`get_connection().send_messages` over one connection with 10,000 prepared messages of the same size.

Both processes render one activation email before their clock starts (the floor needs it for its messages): Django
loads its URLconf, and every view module it names, at the first `reverse()`, ~0.7 s that a running worker pays once.
The case reports that warm-up on its own (`warmup_seconds`), beside `queue_seconds`.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import dispatch, measured, setup_django  # noqa: E402
from testing.net import LOOPBACK, free_port  # noqa: E402

EMAILS = 10_000


# ---------------------------------------------------------------- the SMTP server, in its own process


def smtpd() -> None:
    """Accept every message and count it; print the port, then answer "count" lines until stdin closes."""
    from aiosmtpd.controller import Controller

    class Counting:
        received = 0

        async def handle_DATA(self, server, session, envelope) -> str:
            Counting.received += 1
            return "250 OK"

    port = free_port()  # aiosmtpd's start() connects to its port to check it: name a real one
    controller = Controller(Counting(), hostname=LOOPBACK, port=port)
    controller.start()
    print(port, flush=True)
    for line in sys.stdin:
        if line.strip() == "count":
            print(Counting.received, flush=True)
    controller.stop()


class SmtpServer:
    def __enter__(self) -> SmtpServer:
        self.process = subprocess.Popen([sys.executable, __file__, "smtpd", "{}"], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, text=True)
        self.port = int(self.process.stdout.readline())
        os.environ["EMAIL_URL"] = f"smtp://127.0.0.1:{self.port}"  # read by the settings at django.setup()
        return self

    def received(self) -> int:
        self.process.stdin.write("count\n")
        self.process.stdin.flush()
        return int(self.process.stdout.readline())

    def __exit__(self, *exc) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=30)


# ---------------------------------------------------------------- the cases


def one_email():
    """One activation email rendered as the sender would."""
    from django.utils import timezone

    from notifications.emails import render_email

    return render_email("activation", {
        "nonce": "x" * 22, "first_name": "First1234", "last_name": "Last1234", "organisation": "Bench Client",
        "is_pro_user": False, "msp_name": "Bench MSP", "expires_at": timezone.now().isoformat(),
    })


def portal_users(count: int) -> list[int]:
    from passportal.models import Client, PermissionLevel, PortalUser

    Client.objects.create(name="Bench MSP", is_company_vault=True, site_enabled=True)
    client = Client.objects.create(name="Bench Client", site_enabled=True)
    level = PermissionLevel.objects.get(user_kind="site", name="Site User")
    PortalUser.objects.bulk_create(
        [PortalUser(client=client, first_name=f"First{n}", last_name=f"Last{n}", email=f"user{n}@bench.example.test",
                    permission_level=level) for n in range(count)], batch_size=2000)
    return list(PortalUser.objects.values_list("pk", flat=True))


def case_outbox(params: dict) -> dict:
    with SmtpServer() as server:
        setup_django(fresh=True)
        from django.db import transaction

        from notifications.activation import queue_activation_emails
        from notifications.models import OutboxEmail, OutboxStatus
        from notifications.tasks import send_outbox

        ids = portal_users(EMAILS)
        warmup: dict = {}
        with measured(warmup):
            one_email()  # as the floor does before its clock
        queued: dict = {}
        with measured(queued), transaction.atomic():
            queue_activation_emails(ids)  # commits; the sender task is only enqueued (TASKS_RUN_INLINE off)
        result: dict = {"warmup_seconds": warmup["seconds"], "queue_seconds": queued["seconds"]}
        with measured(result):
            outcome = send_outbox()
            while OutboxEmail.objects.filter(status=OutboxStatus.QUEUED).exists():
                outcome = send_outbox()  # the task stops at its time budget; the schedule would run it again
        sent = OutboxEmail.objects.filter(status=OutboxStatus.SENT).count()
        received = server.received()
    if sent != EMAILS or received != EMAILS:
        raise SystemExit(f"expected {EMAILS} emails sent and received, got {sent} sent, {received} received "
                         f"({outcome})")
    result["rate_per_s"] = EMAILS / result["seconds"]
    return result


def case_floor(params: dict) -> dict:
    """One activation email rendered as the sender would, copied to 10,000 recipients, sent in one call."""
    with SmtpServer() as server:
        setup_django(fresh=False)
        from django.conf import settings
        from django.core.mail import EmailMultiAlternatives, get_connection

        rendered = one_email()
        messages = []
        for n in range(EMAILS):
            message = EmailMultiAlternatives(rendered.subject, rendered.text, settings.DEFAULT_FROM_EMAIL,
                                             [f"user{n}@bench.example.test"],
                                             headers={"Auto-Submitted": "auto-generated"})
            message.attach_alternative(rendered.html, "text/html")
            messages.append(message)
        result: dict = {}
        with measured(result):
            sent = get_connection(fail_silently=False).send_messages(messages)
        received = server.received()
    if sent != EMAILS or received != EMAILS:
        raise SystemExit(f"expected {EMAILS} emails sent and received, got {sent} sent, {received} received")
    result["rate_per_s"] = EMAILS / result["seconds"]
    return result


if __name__ == "__main__":
    if sys.argv[1] == "smtpd":
        smtpd()
    else:
        dispatch({"outbox": case_outbox, "floor": case_floor})
