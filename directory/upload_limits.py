"""What keeps a token from filling the database: the caps of one upload in records and bytes (AGENT_UPLOAD_MAX_*),
and the expiry of uploads left open with no chunk (AGENT_UPLOAD_EXPIRE_MINUTES, a scheduled task)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from .models import AgentRequest, AgentUpload, AgentUploadRecord, UploadStatus
from .upload_records import UploadTooLarge


def stored_size(clean: list[dict]) -> int:
    """Bytes the records take as JSON: what the byte cap counts, whatever transport brought them."""
    return len(json.dumps(clean, ensure_ascii=False, separators=(",", ":")).encode())


def refuse_past_caps(upload: AgentUpload, records: int, size: int) -> None:
    """UploadTooLarge if this chunk would take the upload past AGENT_UPLOAD_MAX_RECORDS or _MAX_BYTES."""
    most_records, most_bytes = settings.AGENT_UPLOAD_MAX_RECORDS, settings.AGENT_UPLOAD_MAX_BYTES
    total = upload.folder_count + upload.user_count + records
    if total > most_records:
        raise UploadTooLarge(
            f"This chunk would bring upload {upload.pk} to {total:,} records (folders and users): at most "
            f"{most_records:,} are accepted per upload (AGENT_UPLOAD_MAX_RECORDS on the portal)",
            limit="AGENT_UPLOAD_MAX_RECORDS", maximum=most_records)
    if upload.byte_count + size > most_bytes:
        raise UploadTooLarge(
            f"This chunk would bring upload {upload.pk} to {upload.byte_count + size:,} bytes of records: at most "
            f"{most_bytes:,} are accepted per upload (AGENT_UPLOAD_MAX_BYTES on the portal)",
            limit="AGENT_UPLOAD_MAX_BYTES", maximum=most_bytes)


# An aborted or expired upload's row (its records are already gone) is kept this long, so an agent that comes
# back late is told "expired" (409) rather than "not found"; then it goes too.
CLOSED_UPLOADS_KEPT = timedelta(days=1)


def expire_uploads(now: datetime | None = None) -> int:
    """Expire open uploads with no chunk for AGENT_UPLOAD_EXPIRE_MINUTES and delete their records.

    An upload never committed is never read (R21), so without this a push that died, or a token used to
    store without committing, would keep its records forever. Returns how many uploads expired.
    """
    now = now or timezone.now()
    cutoff = now - timedelta(minutes=settings.AGENT_UPLOAD_EXPIRE_MINUTES)
    with transaction.atomic():
        # Locked, and the idle test applied to the locked rows: a chunk arriving meanwhile keeps its upload.
        idle = list(AgentUpload.objects.select_for_update().filter(status=UploadStatus.OPEN, last_chunk_at__lt=cutoff)
                    .values_list("pk", flat=True))
        AgentUploadRecord.objects.filter(upload_id__in=idle).delete()
        AgentUpload.objects.filter(pk__in=idle).update(status=UploadStatus.EXPIRED)
    AgentUpload.objects.filter(status__in=[UploadStatus.ABORTED, UploadStatus.EXPIRED],
                               last_chunk_at__lt=now - CLOSED_UPLOADS_KEPT).delete()
    # Answers to requests (previews, folder reads) and the requests themselves: long since shown or given up on.
    answered = AgentUpload.objects.filter(status=UploadStatus.ANSWERED, committed_at__lt=now - CLOSED_UPLOADS_KEPT)
    AgentUploadRecord.objects.filter(upload__in=answered).delete()
    answered.delete()
    AgentRequest.objects.filter(requested_at__lt=now - CLOSED_UPLOADS_KEPT).delete()
    return len(idle)
