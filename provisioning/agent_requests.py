"""Reads a person waits for on a page, asked of an on-prem agent through its poll: a preview, or the folder tree.

Direct mode reads AD while the page loads; the portal cannot reach an agent's AD, so a preview of an agent integration
(Apply's confirmation, the link switch, `resync --dry-run`, the API's dry run) asks the agent to read AD now and
upload it as a preview (an answer: never applied, never the integration's last read), and plans against it when it
arrives. The page says it is waiting, and after the timeout that the agent is not responding, never showing an older
read as if it were fresh: the last upload, with its age, only when the person asks for it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone
from django.utils.timesince import timesince

from directory import agent_requests
from directory.models import AgentRequest, AgentRequestKind, AgentUpload, Integration
from directory.uploads import UploadConnector

from .agent_runs import is_agent

WAITING, READING, ANSWERED, FAILED, NOT_RESPONDING = "waiting", "reading", "answered", "failed", "not responding"
ASKING = "Asking the on-prem agent to read Active Directory now"  # the words every waiting page starts with


@dataclass(frozen=True)
class Progress:
    """Where a request stands, in words for the person waiting for it."""

    state: str
    message: str
    upload: AgentUpload | None = None

    @property
    def done(self) -> bool:
        return self.state in (ANSWERED, FAILED, NOT_RESPONDING)


def state_of(requested_at: datetime, picked_up_at: datetime | None, answered: bool, error: str, now: datetime, *,
             pick_up_minutes: float, answer_minutes: float) -> str:
    """A request's state from its times (pure): not picked up within `pick_up_minutes`, or not answered within
    `answer_minutes` of being asked, the agent is not responding."""
    if answered:
        return ANSWERED
    if error:
        return FAILED
    if picked_up_at is None:
        return NOT_RESPONDING if now - requested_at > timedelta(minutes=pick_up_minutes) else WAITING
    return NOT_RESPONDING if now - requested_at > timedelta(minutes=answer_minutes) else READING


def needs_agent(integration: Integration) -> bool:
    """Whether a read of this integration now must be asked of its on-prem agent."""
    return is_agent(integration)


def ask_preview(integration: Integration) -> AgentRequest:
    return agent_requests.ask(integration, AgentRequestKind.PREVIEW)


def ask_folders(integration: Integration) -> AgentRequest:
    return agent_requests.ask(integration, AgentRequestKind.FOLDERS)


def progress(request: AgentRequest, now: datetime | None = None) -> Progress:
    """Where the request stands now, said plainly."""
    request.refresh_from_db()
    now = now or timezone.now()
    upload = agent_requests.answered_upload(request) if request.answered_at else None
    state = state_of(request.requested_at, request.picked_up_at, upload is not None, request.error, now,
                     pick_up_minutes=settings.AGENT_PREVIEW_TIMEOUT_MINUTES,
                     answer_minutes=settings.AGENT_REQUEST_TIMEOUT_MINUTES)
    return Progress(state, _words(state, request, now), upload)


def _words(state: str, request: AgentRequest, now: datetime) -> str:
    what = "the folders" if request.kind == AgentRequestKind.FOLDERS else "Active Directory"
    asked = timesince(request.requested_at, now).replace("\xa0", " ")
    if state == WAITING:
        return (f"Asking the on-prem agent to read {what} now: waiting for it to pick up the request (asked {asked} "
                f"ago; it checks in every minute).")
    if state == READING:
        return f"The on-prem agent is reading {what} now (asked {asked} ago)."
    if state == FAILED:
        return f"The on-prem agent could not read {what}: {request.error}"
    if state == NOT_RESPONDING:
        unseen = request.picked_up_at is None
        minutes = settings.AGENT_PREVIEW_TIMEOUT_MINUTES if unseen else settings.AGENT_REQUEST_TIMEOUT_MINUTES
        return (f"The on-prem agent is not responding: it did not {'pick up' if unseen else 'answer'} the request "
                f"to read {what} within {minutes:g} minutes. Check that the agent runs and can reach the portal.")
    return f"The on-prem agent read {what} {timesince(request.answered_at, now).replace(chr(160), ' ')} ago."


def connector_for_answer(request: AgentRequest, upload: AgentUpload) -> UploadConnector:
    """The connector over the agent's answer: a preview plans against exactly what the agent read just now."""
    return UploadConnector(request.integration, upload)


def wait(request: AgentRequest, *, timeout_seconds: float | None = None, interval: float = 1.0) -> Progress:
    """Wait here until the request is answered, fails or times out (the command line and the API's bounded wait).

    `timeout_seconds` shortens the wait: past it the agent is not responding, whatever the settings allow.
    """
    deadline = None if timeout_seconds is None else time.monotonic() + timeout_seconds
    while True:
        current = progress(request)
        if current.done:
            return current
        if deadline is not None and time.monotonic() >= deadline:
            return Progress(NOT_RESPONDING, f"The on-prem agent is not responding: it did not answer within "
                                            f"{timeout_seconds:g} seconds. Check that the agent runs and can reach "
                                            "the portal.")
        time.sleep(interval)


def discard(upload: AgentUpload | None) -> None:
    """A preview's upload once planned against: no longer needed (the preview's run keeps what it showed)."""
    if upload is not None:
        upload.delete()
