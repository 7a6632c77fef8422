"""django-q2 entry points (dotted paths stored in tasks and schedules): a few lines over the services."""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Iterator
from types import FrameType

from .outbox import SendReport, StopRequest, send_queued

# Leave the rest to the next run (the every-minute schedule), well inside the cluster's task timeout.
TIME_BUDGET_SECONDS = 240


@contextlib.contextmanager
def _stop_on_sigterm() -> Iterator[None]:
    """While sending, SIGTERM (a worker restart, systemd stopping the service) ends the batch cleanly.

    django-q2's workers die at once on SIGTERM; an email sent but not yet recorded would then be sent
    again after the reclaim timeout. Here the signal only asks the sender to stop after the message in
    hand, record what went out and give back the rest; then the worker exits as it would have.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    StopRequest.requested = False

    def request_stop(signum: int, frame: FrameType | None) -> None:
        StopRequest.requested = True

    previous = signal.signal(signal.SIGTERM, request_stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
        if StopRequest.requested:
            StopRequest.requested = False
            signal.raise_signal(signal.SIGTERM)  # now stop, as asked


def send_outbox() -> str:
    """Send due outbox emails, batch after batch, until none is left, the server is down or time is up."""
    total = SendReport()
    deadline = time.monotonic() + TIME_BUDGET_SECONDS
    with _stop_on_sigterm():
        while time.monotonic() < deadline:
            report = send_queued()
            total.add(report)
            if report.claimed == 0 or report.server_unreachable or StopRequest.requested:
                break
    return (
        f"{total.sent} sent, {total.retried} to retry, {total.failed} failed, {total.reclaimed} reclaimed"
        + (" (mail server unreachable)" if total.server_unreachable else "")
    )
