"""django-q2 entry points (dotted paths stored in tasks and schedules): a few lines over the services."""

from __future__ import annotations

import time

from .outbox import SendReport, send_queued

# Leave the rest to the next run (the every-minute schedule), well inside the cluster's task timeout.
TIME_BUDGET_SECONDS = 240


def send_outbox() -> str:
    """Send due outbox emails, batch after batch, until none is left, the server is down or time is up."""
    total = SendReport()
    deadline = time.monotonic() + TIME_BUDGET_SECONDS
    while time.monotonic() < deadline:
        report = send_queued()
        total.add(report)
        if report.claimed == 0 or report.server_unreachable:
            break
    return (
        f"{total.sent} sent, {total.retried} to retry, {total.failed} failed, {total.reclaimed} reclaimed"
        + (" (mail server unreachable)" if total.server_unreachable else "")
    )
