"""Runs of agent-mode integrations: fresh reads asked of the agent, its failures, and an agent gone quiet.

The portal cannot reach an agent's AD, and opens no way into the client's network: the agent polls. So a Force
Re-sync or a single user's resync of an agent integration is a queued run *waiting for the agent*: the agent's
next poll is told to read now, its upload's commit starts that run, and a run the agent does not answer within
AGENT_REQUEST_TIMEOUT_MINUTES fails as "agent not responding", never succeeding on an older upload. A read the
agent reports as failed is a failed run with the bell's notification, like a direct-mode read that fails (R21,
R24). An agent integration with no complete upload for AGENT_QUIET_AFTER_HOURS raises its own notification,
settled by the next upload.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.timesince import timesince

from directory.models import AdMode, AgentUpload, Integration, IntegrationKind, UploadStatus
from notifications.models import Notification, NotificationKind
from notifications.services import notify
from passportal.actors import Actor

from .models import SyncRun, SyncStatus, SyncTrigger

WAITING_FOR_AGENT = "waiting for the on-prem agent"  # the phase of a run the agent has been asked to read for
# Runs of an agent integration that wait for the agent's fresh read. Apply's and the link switch's among them: their
# confirmation showed a read the agent made for it, and the run must see AD at least as fresh, or it would apply
# less than it showed (a link switched off reads nothing and runs at once: actions.set_link).
FRESH_READ_TRIGGERS = frozenset({SyncTrigger.FORCE, SyncTrigger.USER, SyncTrigger.APPLY, SyncTrigger.LINK})


def read_at(upload: AgentUpload) -> datetime:
    """When a committed upload was read: a committed upload always carries its commit time."""
    assert upload.committed_at is not None, "a committed upload has its commit time"
    return upload.committed_at


def _ago(then: datetime, now: datetime | None = None) -> str:
    """"3 hours", with plain spaces (Django puts no-break spaces in, which a notification's plain text keeps);
    "less than a minute" rather than Django's "0 minutes"."""
    if (now or timezone.now()) - then < timedelta(minutes=1):
        return "less than a minute"
    return timesince(then, now).replace("\xa0", " ")


def is_agent(integration: Integration) -> bool:
    return integration.kind == IntegrationKind.ACTIVE_DIRECTORY and integration.ad_mode == AdMode.AGENT


def quiet_topic(integration_id: int) -> str:
    """An agent integration that has not pushed for too long: settled by its next complete upload."""
    return f"agent-quiet:{integration_id}"


def last_upload(integration: Integration) -> AgentUpload | None:
    return (integration.agent_uploads.filter(status=UploadStatus.COMMITTED)
            .order_by("-committed_at", "-pk").first())


def source_of_last_upload(integration: Integration) -> str:
    """What a preview of an agent integration was computed from, in words for the person reading it."""
    upload = last_upload(integration)
    if upload is None:
        return "The on-prem agent has not sent a complete read yet."
    return (f"This shows the on-prem agent's last upload, read {_ago(read_at(upload))} ago "
            f"({read_at(upload):%Y-%m-%d %H:%M %Z}), not Active Directory as it is now; a Force Re-sync "
            "asks the agent to read it again.")


def source_of_user_resync(integration: Integration) -> str:
    """What a single user's resync of an agent integration read, and what happens next, in words."""
    upload = last_upload(integration)
    read = f"read {_ago(read_at(upload))} ago" if upload else "none yet"
    return (f"Applied from the on-prem agent's last upload ({read}), not from Active Directory as it is now. "
            "The agent has been asked to read Active Directory again: the run that follows its upload applies "
            "any change since.")


# ---------------------------------------------------------------- asking the agent for a fresh read


def ask_agent(integration: Integration, trigger: str, *, full: bool = True, started_by: Actor = None) -> SyncRun:
    """A run that waits for the agent's fresh read (the one waiting already, if there is one; R23)."""
    for _ in range(3):
        waiting = SyncRun.objects.filter(integration=integration, status=SyncStatus.QUEUED, dry_run=False).first()
        if waiting is not None:
            SyncRun.objects.filter(pk=waiting.pk).update(phase=WAITING_FOR_AGENT, full=True)
            waiting.refresh_from_db()
            return waiting
        try:
            with transaction.atomic():
                return SyncRun.objects.create(integration=integration, trigger=trigger, full=full,
                                              started_by=started_by, phase=WAITING_FOR_AGENT)
        except IntegrityError:
            continue  # another trigger queued one meanwhile: wait with it
    raise RuntimeError(f"could not queue a sync for {integration}")


def agent_is_asked(integration: Integration) -> bool:
    """Whether the agent's next poll is told to read now."""
    return SyncRun.objects.filter(integration=integration, status=SyncStatus.QUEUED, dry_run=False,
                                  phase=WAITING_FOR_AGENT).exists()


# ---------------------------------------------------------------- an agent gone quiet


def notify_quiet(now: datetime) -> int:
    """Notify once per quiet spell for each agent integration that has not pushed within AGENT_QUIET_AFTER_HOURS."""
    hours = settings.AGENT_QUIET_AFTER_HOURS
    limit = now - timedelta(hours=hours)
    agents = Integration.objects.select_related("client").filter(
        kind=IntegrationKind.ACTIVE_DIRECTORY, ad_mode=AdMode.AGENT, link_enabled=True).exclude(agent_token_hash="")
    raised = 0
    for integration in agents:
        upload = last_upload(integration)
        since = read_at(upload) if upload else integration.created_at
        if since >= limit:
            continue
        topic = quiet_topic(integration.pk)
        if Notification.objects.filter(topic=topic, resolved_at__isnull=True).exists():
            continue  # already said; settled by the next upload
        heard = (f"It last contacted the portal {_ago(integration.agent_last_contact, now)} ago"
                 if integration.agent_last_contact else "It has never contacted the portal")
        pushed = f"its last complete upload was {_ago(since, now)} ago" if upload else "it has never sent one"
        notify(
            NotificationKind.SYNC_FAILED, integration=integration,
            title=f"{integration.client.name} / {integration.name}: the on-prem agent has not sent a read "
                  f"for {hours:g} hours",
            message=f"{heard}; {pushed}. Until it does, nobody is created, updated or disabled from this directory. "
                    "Check that the agent runs and can reach the portal.",
            url=f"/admin/directory/integration/{integration.pk}/change/", topic=topic,
        )
        raised += 1
    return raised
