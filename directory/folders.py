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
    # Plain tuples, not model instances: a run records its folder tree every time (1,000 OUs: ~0.1 s saved).
    existing = {row[1]: row for row in integration.folders.values_list("pk", "external_id", "name", "path",
                                                                        "parent_id", "gone")}

    new = [
        Folder(integration=integration, kind=r.kind, external_id=r.id, name=r.name, path=r.path,
               first_seen=now, last_seen=now)
        for r in records if r.id not in existing
    ]
    Folder.objects.bulk_create(new, batch_size=1000)
    pk_of = {external_id: row[0] for external_id, row in existing.items()}
    if new:
        pk_of = dict(integration.folders.values_list("external_id", "pk"))

    changed: list[Folder] = []
    renamed = back = 0
    for external_id, record in seen.items():
        old = existing.get(external_id)
        # A folder just created has its name and path, no parent yet, and is not gone.
        name, path, parent_id, gone = old[2:] if old else (record.name, record.path, None, False)
        parent_pk = pk_of.get(record.parent_id) if record.parent_id else None
        if name != record.name or path != record.path or parent_id != parent_pk or gone:
            if old is not None and (name != record.name or path != record.path or parent_id != parent_pk):
                renamed += 1
            if gone:
                back += 1
            changed.append(Folder(pk=pk_of[external_id], name=record.name, path=record.path, parent_id=parent_pk,
                                  gone=False))
    Folder.objects.bulk_update(changed, ["name", "path", "parent", "gone"], batch_size=1000)
    integration.folders.filter(external_id__in=list(seen)).update(last_seen=now)
    went = integration.folders.exclude(external_id__in=list(seen)).filter(gone=False).update(gone=True)
    return FolderChanges(created=len(new), renamed_or_moved=renamed, gone=went, back=back)
