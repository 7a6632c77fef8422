"""Reads a person waits for on a page, asked of an on-prem agent through its poll: a preview, or the folder tree.

Direct mode reads AD while the page loads; the portal cannot reach an agent's AD, so a preview of an agent integration
(Apply's confirmation, the link switch, `resync --dry-run`, the API's dry run) asks the agent to read AD now and
upload it as a preview (an answer: never applied, never the integration's last read), and plans against it when it
arrives. The page says it is waiting, and after the timeout that the agent is not responding, never showing an older
read as if it were fresh: the last upload, with its age, only when the person asks for it.
"""

from __future__ import annotations

import copy
import dataclasses
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone
from django.utils.timesince import timesince

from directory import agent_requests
from directory.connectors import DirectoryError
from directory.models import AgentRequest, AgentRequestKind, AgentUpload, Integration
from directory.uploads import UploadConnector
from passportal.actors import Actor

from .agent_runs import WAITING_FOR_AGENT, is_agent
from .models import SyncRun, SyncStatus
from .planner import MappingRule

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


def needs_agent(integration: Integration, *, link_on: bool | None = None) -> bool:
    """Whether a preview of this integration must ask its on-prem agent to read AD (with the link off it reads
    nothing: the preview disables the link's users)."""
    return is_agent(integration) and (integration.link_enabled if link_on is None else link_on)


def ask_preview(integration: Integration) -> AgentRequest:
    return agent_requests.ask(integration, AgentRequestKind.PREVIEW)


def ask_folders(integration: Integration) -> AgentRequest:
    return agent_requests.ask(integration, AgentRequestKind.FOLDERS)


def progress(request: AgentRequest, now: datetime | None = None) -> Progress:
    """Where the request stands now, said plainly."""
    request.refresh_from_db()
    now = now or timezone.now()
    upload = agent_requests.answered_upload(request) if request.answered_at else None
    state = state_of(request.requested_at, request.picked_up_at, request.answered_at is not None, request.error, now,
                     pick_up_minutes=settings.AGENT_PREVIEW_TIMEOUT_MINUTES,
                     answer_minutes=settings.AGENT_REQUEST_TIMEOUT_MINUTES)
    return Progress(state, _words(state, request, now), upload)


def ago(then: datetime, now: datetime | None = None) -> str:
    """How long ago, for people: "less than a minute" rather than Django's "0 minutes", plain spaces."""
    now = now or timezone.now()
    return "less than a minute" if now - then < timedelta(minutes=1) else timesince(then, now).replace("\xa0", " ")


def _within(minutes: float) -> str:
    """A timeout in words: "3 minutes", "1 minute", or seconds when it is shorter than a minute."""
    if minutes < 1:
        return f"{round(minutes * 60)} seconds"
    return "1 minute" if minutes == 1 else f"{minutes:g} minutes"


def _words(state: str, request: AgentRequest, now: datetime) -> str:
    what = "the folders" if request.kind == AgentRequestKind.FOLDERS else "Active Directory"
    asked = ago(request.requested_at, now)
    if state == WAITING:
        return (f"Asking the on-prem agent to read {what} now: waiting for it to pick up the request (asked {asked} "
                f"ago; the agent checks in every minute unless it was set otherwise).")
    if state == READING:
        return f"The on-prem agent is reading {what} now (asked {asked} ago)."
    if state == FAILED:
        return f"The on-prem agent could not read {what}: {request.error}"
    if state == NOT_RESPONDING:
        unseen = request.picked_up_at is None
        minutes = settings.AGENT_PREVIEW_TIMEOUT_MINUTES if unseen else settings.AGENT_REQUEST_TIMEOUT_MINUTES
        return (f"The on-prem agent is not responding: it did not {'pick up' if unseen else 'answer'} the request "
                f"to read {what} within {_within(minutes)}. Check that the agent runs and can reach the portal.")
    assert request.answered_at is not None, "an answered request has its answer's time"
    return f"The on-prem agent read {what} {ago(request.answered_at, now)} ago."


def connector_for_answer(request: AgentRequest, upload: AgentUpload) -> UploadConnector:
    """The connector over the agent's answer: a preview plans against exactly what the agent read just now."""
    return UploadConnector(request.integration, upload)


# ---------------------------------------------------------------- a preview carried out by the agent


def start_preview(integration: Integration, trigger: str, *, mappings: dict[str, MappingRule] | None = None,
                  link_on: bool = False, started_by: Actor = None) -> SyncRun:
    """A dry run waiting for the agent's fresh read: the request goes out with the agent's next poll.

    The run keeps what it will plan with (`mappings`, or the stored ones when None; the link switched on), so
    whoever looks at it first once the read has arrived (the page, the command, the API) plans it: `settle`.
    """
    request = ask_preview(integration)
    rules = None if mappings is None else [_rule_data(rule) for rule in mappings.values()]
    return SyncRun.objects.create(integration=integration, trigger=trigger, dry_run=True, started_by=started_by,
                                  status=SyncStatus.QUEUED, phase=WAITING_FOR_AGENT,
                                  changes={"agent_request": request.pk, "rules": rules, "link_on": link_on})


def waits_for_agent(run: SyncRun) -> bool:
    return run.dry_run and "agent_request" in (run.changes or {}) and run.status == SyncStatus.QUEUED


def settle(run: SyncRun) -> Progress:
    """Where a preview waiting for the agent stands; plans it (once) when the agent's read has arrived, and records
    it failed, with the reason in plain words, when the agent could not read or did not answer in time."""
    if not waits_for_agent(run):
        state = FAILED if run.status == SyncStatus.FAILED else ANSWERED
        return Progress(state, run.error)
    request = AgentRequest.objects.filter(pk=run.changes["agent_request"]).first()
    if request is None:  # gone with its integration, or a day old
        current = Progress(NOT_RESPONDING, "The on-prem agent is not responding: the request to read Active "
                                           "Directory is no longer waiting.")
    else:
        current = progress(request)
    now = timezone.now()
    if request is not None and current.state == ANSWERED:
        if SyncRun.objects.filter(pk=run.pk, status=SyncStatus.QUEUED).update(
                status=SyncStatus.RUNNING, started_at=now, phase="planning") == 1:
            _plan(run, request, current.upload)
    elif current.done:
        SyncRun.objects.filter(pk=run.pk, status=SyncStatus.QUEUED).update(
            status=SyncStatus.FAILED, started_at=now, finished_at=now, phase="", error=current.message)
    run.refresh_from_db()
    return current


def _plan(run: SyncRun, request: AgentRequest, upload: AgentUpload | None) -> None:
    from . import sync

    integration = run.integration
    if run.changes.get("link_on"):
        integration = copy.copy(integration)
        integration.link_enabled = True
    mappings = mappings_of(run)
    try:
        if upload is None:
            raise DirectoryError("The on-prem agent's read for this preview is no longer kept: ask again.")
        sync.preview(integration, mappings=mappings, connector=connector_for_answer(request, upload), run=run)
        # The page says whose read it shows: the agent's, made for this preview.
        SyncRun.objects.filter(pk=run.pk).update(changes={**run.changes, "read_by_agent": True})
    except DirectoryError as exc:
        SyncRun.objects.filter(pk=run.pk).update(status=SyncStatus.FAILED, finished_at=timezone.now(),
                                                 error=str(exc))
    finally:
        discard(upload)


def mappings_of(run: SyncRun) -> dict[str, MappingRule] | None:
    """The mappings a preview waiting for the agent plans with (None: the stored ones)."""
    rules = run.changes.get("rules")
    return None if rules is None else {r["folder_id"]: _rule(r) for r in rules}


def _rule_data(rule: MappingRule) -> dict:
    return {**dataclasses.asdict(rule), "group_ids": sorted(rule.group_ids)}


def _rule(data: dict) -> MappingRule:
    return MappingRule(**{**data, "group_ids": frozenset(data["group_ids"])})


def wait_for_preview(run: SyncRun, *, timeout_seconds: float | None = None, interval: float = 0.5) -> Progress:
    """Wait here until the agent's read for the preview has arrived and is planned, failed, or is too late (the
    command line). `timeout_seconds` shortens the wait: past it the agent is not responding, and the run says so."""
    deadline = None if timeout_seconds is None else time.monotonic() + timeout_seconds
    while True:
        current = settle(run)
        if current.done:
            return current
        if deadline is not None and time.monotonic() >= deadline:
            message = (f"The on-prem agent is not responding: it did not answer within {timeout_seconds:g} seconds. "
                       "Check that the agent runs and can reach the portal.")
            now = timezone.now()
            SyncRun.objects.filter(pk=run.pk, status=SyncStatus.QUEUED).update(
                status=SyncStatus.FAILED, started_at=now, finished_at=now, phase="", error=message)
            run.refresh_from_db()
            return Progress(NOT_RESPONDING, message)
        time.sleep(interval)


def discard(upload: AgentUpload | None) -> None:
    """A preview's upload once planned against: no longer needed (the preview's run keeps what it showed)."""
    if upload is not None:
        upload.delete()
