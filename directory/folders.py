"""Keep an integration's folder tree in step with what a complete read saw (R19)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from .connectors.base import FolderRecord
from .models import Folder, Integration


@dataclass(frozen=True)
class FolderChanges:
    created: int
    renamed_or_moved: int
    gone: int
    back: int


@transaction.atomic
def record_folders(integration: Integration, records: Sequence[FolderRecord]) -> FolderChanges:
    """New folders appear, renamed or moved ones keep their row (known by directory id), missing ones are gone.

    Only call this with a complete folder list: a missing folder is marked gone.
    """
    now = timezone.now()
    seen = {r.id: r for r in records}
    existing = {f.external_id: f for f in integration.folders.all()}

    new = [
        Folder(integration=integration, kind=r.kind, external_id=r.id, name=r.name, path=r.path,
               first_seen=now, last_seen=now)
        for r in records if r.id not in existing
    ]
    Folder.objects.bulk_create(new, batch_size=1000)
    by_external = {f.external_id: f for f in integration.folders.all()}

    changed: list[Folder] = []
    renamed = back = 0
    for external_id, record in seen.items():
        folder = by_external[external_id]
        parent = by_external.get(record.parent_id) if record.parent_id else None
        parent_pk = parent.pk if parent else None
        if folder.name != record.name or folder.path != record.path or folder.parent_id != parent_pk or folder.gone:
            if external_id in existing and (folder.name != record.name or folder.path != record.path
                                            or folder.parent_id != parent_pk):
                renamed += 1
            if folder.gone:
                back += 1
            folder.name, folder.path, folder.parent_id, folder.gone = record.name, record.path, parent_pk, False
            changed.append(folder)
    Folder.objects.bulk_update(changed, ["name", "path", "parent", "gone"], batch_size=1000)
    integration.folders.filter(external_id__in=list(seen)).update(last_seen=now)
    gone = integration.folders.exclude(external_id__in=list(seen)).filter(gone=False).update(gone=True)
    return FolderChanges(created=len(new), renamed_or_moved=renamed, gone=gone, back=back)
