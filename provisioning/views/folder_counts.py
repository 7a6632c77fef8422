"""How many users each folder of the setup tree holds, from what the portal has stored, never a fresh read.

Only some sources keep a whole copy of their directory in the portal:
- an on-prem agent pushes every user of every OU: its latest committed upload counts them all;
- a SCIM client pushes its users and groups: the stored users and memberships count them all.
Direct AD, Entra ID and the demo directory are read at each sync for the mapped folders only, so the portal
does not know how many users an unmapped folder holds. For those the page says so, and a mapped folder shows
how many portal users its last sync linked (a different number, named differently), never a guess.

Counts are of users *directly* in a folder: a child OU is a folder of its own, mapped by its own tick.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from django.core.cache import cache
from django.db.models import Count

from directory.models import AdMode, AgentUpload, Integration, IntegrationKind, UploadRecordKind, UploadStatus

from ..models import DirectoryLink
from ..wording import moment


@dataclass(frozen=True)
class FolderCounts:
    """Users per folder (by the folder's directory id), and a sentence saying where the numbers come from."""

    users: dict[str, int] = field(default_factory=dict)
    linked: dict[str, int] = field(default_factory=dict)  # portal users linked from a mapped folder
    note: str = ""
    known: bool = False  # whether `users` counts every user of every folder


def folder_counts(integration: Integration) -> FolderCounts:
    if integration.kind == IntegrationKind.SCIM:
        return _scim_counts(integration)
    if integration.kind == IntegrationKind.ACTIVE_DIRECTORY and integration.ad_mode == AdMode.AGENT:
        return _upload_counts(integration)
    return FolderCounts(
        linked=_linked_counts(integration), known=False,
        note="How many users each folder holds is not known here: the portal reads users from this directory "
             "only in mapped folders, at each sync. A mapped folder shows the portal users its last sync linked.",
    )


def _upload_counts(integration: Integration) -> FolderCounts:
    upload = (integration.agent_uploads.filter(status=UploadStatus.COMMITTED)
              .order_by("-committed_at", "-pk").first())
    if upload is None:
        return FolderCounts(linked=_linked_counts(integration),
                            note="No user counts yet: the on-prem agent has not completed an upload.")
    # A committed upload never changes: its counts are worked out once. The key names the upload's content
    # (id, commit time, size), so a row id a test database reuses cannot find another upload's counts.
    assert upload.committed_at is not None, "a committed upload has its commit time"
    key = f"provisioning:folder-users:{upload.pk}:{upload.committed_at.timestamp()}:{upload.user_count}"
    users = cache.get(key)
    if users is None:
        users = _count_upload(upload)
        cache.set(key, users, timeout=7 * 24 * 3600)
    return FolderCounts(users=users, known=True,
                        note=f"Users directly in each OU, from the on-prem agent's last complete upload "
                             f"({moment(upload.committed_at)}).")


def _count_upload(upload: AgentUpload) -> dict[str, int]:
    counts: Counter[str] = Counter()
    rows = upload.records.filter(kind=UploadRecordKind.USER).values_list("data__folder_ids", flat=True)
    for folder_ids in rows.iterator(chunk_size=5000):
        counts.update(folder_ids or ())
    return dict(counts)


def _scim_counts(integration: Integration) -> FolderCounts:
    from scim.connector import all_users_folder_id
    from scim.models import ScimMembership, ScimUser

    live = ScimUser.objects.filter(integration=integration, deleted_at__isnull=True)
    users = dict(
        ScimMembership.objects.filter(group__integration=integration, user__deleted_at__isnull=True)
        .values_list("group__scim_id").annotate(n=Count("pk")).values_list("group__scim_id", "n")
    )
    users[all_users_folder_id(integration.pk)] = live.count()
    return FolderCounts(users=users, known=True,
                        note="Users in each group, as the identity provider has pushed them.")


def _linked_counts(integration: Integration) -> dict[str, int]:
    counts: Counter[str] = Counter()
    links = DirectoryLink.objects.filter(integration=integration, in_scope=True).values_list("folder_ids", flat=True)
    for folder_ids in links.iterator(chunk_size=5000):
        counts.update(folder_ids or ())
    return dict(counts)
