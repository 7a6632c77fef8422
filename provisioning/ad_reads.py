"""AD runs that cost what changed: which read a run of an AD integration makes, and the mark it keeps.

A run of an AD integration the portal reads itself reads only the changes since the mark the last good run kept
(adread.incremental: uSNChanged above the DC's highestCommittedUSN, per DC and invocation id), or everything when
it must: a Force Re-sync or any run asked to be full, no mark, other mapped folders than the mark's read
covered, the periodic full read due (AD_FULL_READ_EVERY_HOURS), or a directory change a read of changes cannot
follow (an OU or a group changed, another DC, a DC restored). The mark is replaced only when the run that used the
read succeeded (R21): a failed read or run keeps the old one and the next run reads the same changes again.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeGuard

from django.conf import settings
from django.utils import timezone

from adread.incremental import ChangesRead, ReadMark, read_changes
from adread.ldap import LdapConnector
from directory.models import Integration

from .models import AdReadMark, DirectoryLink, SyncRun, SyncStatus

CHANGES_ONLY = "changes since the last read"
FULL = "full read"


@dataclass(frozen=True)
class AdRead:
    """What a run read: the read itself, the digest of the folders it covered, and when it started."""

    read: ChangesRead
    folders_digest: str
    started_at: datetime
    searches: int = 0  # LDAP search requests the read made (pages included)
    by_agent: bool = False  # the on-prem agent read AD (provisioning.agent_marks), not the portal

    @property
    def words(self) -> str:
        """The kind of read for the run page: "changes since the last read", or "full read (why)"; and who read."""
        words = CHANGES_ONLY if self.read.changes_only else f"{FULL} ({self.read.full_because})"
        return f"{words}, by the on-prem agent" if self.by_agent else words


def reads_changes(connector: object) -> TypeGuard[LdapConnector]:
    """The portal's own LDAP reads (the on-prem agent's reads keep theirs through provisioning.agent_marks)."""
    return isinstance(connector, LdapConnector) and connector.tracks_changes


def folders_digest(folder_ids: Collection[str]) -> str:
    return hashlib.blake2b("\n".join(sorted(folder_ids)).encode(), digest_size=16).hexdigest()


def full_read_every() -> timedelta:
    return timedelta(hours=settings.AD_FULL_READ_EVERY_HOURS)


def mark_to_read_from(stored: AdReadMark | None, *, digest: str, full: bool, now: datetime,
                      every: timedelta) -> tuple[ReadMark | None, str]:
    """The mark a run reads changes from, or None and why it reads everything (a pure decision)."""
    if full:
        return None, "this run was asked to read everything"
    if stored is None:
        return None, "no earlier read to start from"
    if stored.folders_digest != digest:
        return None, "the mapped folders changed since the last read"
    if now - stored.full_read_at >= every:
        return None, "the periodic full read is due"
    return ReadMark(stored.host, stored.invocation_id, stored.usn), ""


def read(integration: Integration, connector: LdapConnector, mapped: Collection[str], *, full: bool) -> AdRead:
    """Read the changes since the kept mark, or everything; raises DirectoryError as any read does (R21)."""
    digest, now = folders_digest(mapped), timezone.now()
    stored = AdReadMark.objects.filter(integration=integration).first()
    since, why = mark_to_read_from(stored, digest=digest, full=full, now=now, every=full_read_every())
    linked = DirectoryLink.objects.filter(integration=integration).values_list("external_id", flat=True)
    known_folders = integration.folders.values_list("external_id", flat=True)
    result = read_changes(connector, mapped, since, known_user_ids=list(linked), known_folder_ids=list(known_folders))
    if why:  # the portal chose to read everything: its reason, not "no earlier read to start from"
        result = dataclasses.replace(result, full_because=why)
    return AdRead(read=result, folders_digest=digest, started_at=now, searches=connector.last_read.search_requests)


def said(ad_read: AdRead) -> dict:
    """Which read a run made, as its page says it (the run's `changes["read"]`)."""
    return {"changes_only": ad_read.read.changes_only, "words": ad_read.words, "searches": ad_read.searches}


def record(run: SyncRun, ad_read: AdRead, *, finished_as: str | None = None, mark_kept: bool = True) -> None:
    """Say on the run which read it made; keep the read's mark when the run succeeded (R21).

    `finished_as`: the status the run was finished with, its changes already saying the read (`said`, written
    with the run's result: one statement fewer each); None reads the run back and adds the read to its changes.
    `mark_kept` False: the caller knows no mark is kept (nothing to drop).
    """
    status = finished_as
    if status is None:
        run.refresh_from_db(fields=["status", "changes"])
        SyncRun.objects.filter(pk=run.pk).update(changes={**run.changes, "read": said(ad_read)})
        status = run.status
    if status != SyncStatus.SUCCEEDED:
        return  # failed, or disables held for staff: the next run reads these changes again
    mark = ad_read.read.mark
    if mark is None:  # an agent that keeps no mark read everything: a mark kept before would be stale
        if mark_kept:
            AdReadMark.objects.filter(integration_id=run.integration_id).delete()
        return
    # One statement (INSERT ... ON CONFLICT DO UPDATE): a read of changes only keeps the last full read's time,
    # by leaving that column out of the update; a first mark starts the count from this read.
    keep = ["host", "invocation_id", "usn", "folders_digest", "kept_by", "updated_at"]
    AdReadMark.objects.bulk_create(
        [AdReadMark(integration_id=run.integration_id, host=mark.host, invocation_id=mark.invocation_id, usn=mark.usn,
                    folders_digest=ad_read.folders_digest, full_read_at=ad_read.started_at, kept_by=run)],
        update_conflicts=True, unique_fields=["integration"],
        update_fields=keep if ad_read.read.changes_only else [*keep, "full_read_at"])
