"""What provisioning's notifications are about, named so that settling the thing resolves them.

A notification raised with one of these topics needs nobody once provisioning resolves the topic: the creation
issue closed, the held run decided, the integration read again.
"""

from __future__ import annotations

CREATION_ISSUES_OF_RUN = "creation-issues-of-run:"


def creation_issue(integration_id: int, external_id: str, reason: str) -> str:
    """One creation issue: at most one is open per integration, directory user and reason at a time."""
    return f"creation-issue:{integration_id}:{external_id}:{reason}"


def creation_issues_of_run(run_id: int) -> str:
    """The "N more creation issues" summary of one run: settled when that run's issues are all closed."""
    return f"{CREATION_ISSUES_OF_RUN}{run_id}"


def run_id_of_summary(topic: str) -> int:
    return int(topic.removeprefix(CREATION_ISSUES_OF_RUN))


def held_disables(run_id: int) -> str:
    return f"held-disables:{run_id}"


def sync_failed(integration_id: int) -> str:
    """An integration's failed reads: settled by its next read that completes."""
    return f"sync-failed:{integration_id}"
