"""What the engine does when the on-prem agent speaks: an upload starts a run (R17), a failed read is a failed
run (R21, R24), a poll is told whether a fresh read is wanted (see agent_runs) and what to read (the changes since
the kept mark, or everything: agent_marks), and an upload is told which linked users it did not hold (so the agent
can say which of them AD deleted, R8)."""

from __future__ import annotations

from typing import Any

from django.dispatch import receiver

from directory.models import Integration
from directory.signals import (
    agent_expected_users,
    agent_mark_refused,
    agent_polled,
    agent_read_failed,
    agent_read_from,
    agent_upload_committed,
)

from . import agent_marks, agent_runs
from .models import DirectoryLink, SyncRun


@receiver(agent_upload_committed, dispatch_uid="provisioning-agent-upload")
def start_run_after_agent_upload(sender: object, integration: Integration, **kwargs: Any) -> None:
    agent_runs.upload_arrived(integration)


@receiver(agent_read_failed, dispatch_uid="provisioning-agent-read-failed")
def record_agent_read_failure(sender: object, integration: Integration, message: str, permanent: bool, host: str = "",
                              **kwargs: Any) -> SyncRun:
    return agent_runs.read_failed(integration, message, permanent=permanent, host=host)


@receiver(agent_polled, dispatch_uid="provisioning-agent-polled")
def tell_agent_whether_to_read(sender: object, integration: Integration, **kwargs: Any) -> bool:
    return agent_runs.agent_is_asked(integration)


@receiver(agent_expected_users, dispatch_uid="provisioning-agent-expected-users")
def linked_users_of(sender: object, integration: Integration, **kwargs: Any) -> list[str]:
    return list(DirectoryLink.objects.filter(integration=integration).values_list("external_id", flat=True))


@receiver(agent_read_from, dispatch_uid="provisioning-agent-read-from")
def tell_agent_what_to_read(sender: object, integration: Integration, **kwargs: Any) -> dict:
    return agent_marks.read_from(integration)


@receiver(agent_mark_refused, dispatch_uid="provisioning-agent-mark-refused")
def forget_refused_mark(sender: object, integration: Integration, **kwargs: Any) -> None:
    agent_marks.forget(integration)
