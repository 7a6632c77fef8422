"""Agent runs that cost what changed: the mark the on-prem agent is told to read from, and the read its upload made.

Direct mode's read of changes (provisioning.ad_reads over adread.incremental) done by the agent: the portal keeps
the mark (AdReadMark), and decides as for direct mode whether the next read may be one of changes only (no mark,
other mapped folders, AD_FULL_READ_EVERY_HOURS since the last full read, or a run waiting for a full read such as a
Force Re-sync: everything). Each poll hands that decision out (`read_from`); the agent reads with the same
adread.incremental code and says in its upload what it read (directory/partial_uploads.py). The run plans a partial
upload as a partial snapshot and keeps the upload's mark only when it succeeded (R21, as direct mode: ad_reads.record).
A partial upload from a mark the portal does not hand out now is refused and the mark forgotten (`forget`), so the
agent's next read is a full one; an upload that says nothing of a mark (an older agent) is a full read, after which
no mark is kept.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, TypeGuard

from django.db.models import Exists, OuterRef
from django.utils import timezone

from adread.incremental import ChangesRead, ReadMark
from directory.connectors.base import Snapshot
from directory.models import AgentUpload, Integration, UploadStatus
from directory.uploads import UploadConnector

from . import ad_reads
from .agent_runs import WAITING_FOR_AGENT
from .models import AdReadMark, SyncRun, SyncStatus

OLD_AGENT = "the on-prem agent read everything (it does not read changes only)"


def reads_uploads(connector: object) -> TypeGuard[UploadConnector]:
    return isinstance(connector, UploadConnector)


def _mapped(integration: Integration) -> list[str]:
    return list(integration.folders.filter(mapping__isnull=False).values_list("external_id", flat=True))


def read_from(integration: Integration) -> dict[str, Any]:
    """What the agent is to read now: {"read_from": "full" or the kept mark, "why", "folders_digest"}."""
    digest = ad_reads.folders_digest(_mapped(integration))
    asked_full = SyncRun.objects.filter(integration=integration, status=SyncStatus.QUEUED, dry_run=False,
                                        phase=WAITING_FOR_AGENT, full=True).exists()
    stored = AdReadMark.objects.filter(integration=integration).first()
    since, why = ad_reads.mark_to_read_from(stored, digest=digest, full=asked_full, now=timezone.now(),
                                            every=ad_reads.full_read_every())
    return {"read_from": since.as_dict() if since else "full", "why": why, "folders_digest": digest}


def forget(integration: Integration) -> None:
    """The portal refused a partial upload from the agent's mark: no mark, so the next read is a full one."""
    AdReadMark.objects.filter(integration=integration).delete()


def agent_read(integration: Integration, connector: UploadConnector,
               mapped: Collection[str]) -> tuple[Snapshot, ad_reads.AdRead]:
    """The latest upload as the run plans it (partial or full) and the read it was, to say and to keep its mark."""
    snapshot, upload = connector.read_latest(mapped)
    return snapshot, _read_of(upload, snapshot, mapped)


@dataclass(frozen=True)
class LatestUpload:
    """What a run knows of the latest committed upload before reading it (one query)."""

    read_digest: str  # what the read would return: its records' digest, and whether it was a full read
    mark_kept: bool  # whether the portal keeps a mark for the agent now


def latest_upload(integration: Integration) -> LatestUpload | None:
    """The latest committed upload's digest (its records, in order, and its domain: computed once at its commit)
    and whether a mark is kept; None when the integration is not read from uploads (it must be read) or has none."""
    from directory.sources import connector_for
    from directory.upload_digest import records_digest

    if not reads_uploads(connector_for(integration)):
        return None
    upload = (integration.agent_uploads.filter(status=UploadStatus.COMMITTED).order_by("-committed_at", "-pk")
              .values_list("pk", "directory_id", "records_digest", "partial",
                           Exists(AdReadMark.objects.filter(integration_id=OuterRef("integration_id")))).first())
    if upload is None:
        return None
    pk, directory_id, stored, partial, mark_kept = upload
    digest = stored or records_digest(pk, directory_id)  # committed before digests were stored: computed now
    # The same records read in full or as changes only are not the same read: a full one sweeps whom it lacks.
    return LatestUpload(f"{digest}:{'changes' if partial else 'full'}", mark_kept)


def latest_read(integration: Integration) -> ad_reads.AdRead | None:
    """The read the latest committed upload made, its records left unread: for a run the short cut finished
    (sync._finish_if_unchanged), which says and keeps the same as the full run it stands for."""
    upload = (integration.agent_uploads.filter(status=UploadStatus.COMMITTED).order_by("-committed_at", "-pk")
              .first())
    if upload is None:
        return None
    nothing = Snapshot(directory_id=upload.directory_id, folders=(), users=(), complete=True)
    return _read_of(upload, nothing, _mapped(integration))


def _read_of(upload: AgentUpload, snapshot: Snapshot, mapped: Collection[str]) -> ad_reads.AdRead:
    why = "" if upload.partial else (upload.read_why or OLD_AGENT)
    mark = ReadMark.from_dict(upload.read_mark)  # None from an older agent: ad_reads.record then keeps no mark
    read = ChangesRead(snapshot=snapshot, mark=mark, full_because=why)  # type: ignore[arg-type]
    # A full read covered every folder: the mapped ones now. A partial one covered those it was told of (checked
    # against the mapped ones when its upload started).
    digest = upload.read_folders_digest if upload.partial else ad_reads.folders_digest(mapped)
    return ad_reads.AdRead(read=read, folders_digest=digest, started_at=upload.created_at, by_agent=True)
