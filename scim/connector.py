"""The connector for a SCIM integration: it reads what the SCIM client pushed, stored in the portal.

Like `UploadConnector` for the on-prem agent, it never talks to the IdP: the stored state is the
directory. Groups are folders (kind "sg"), plus one folder every user is in ("All users of this SCIM
app"), so staff can map everybody the IdP assigns, or only some groups, in the same User Mapping page.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Collection, Iterable

from adread.batches import chunks
from directory.connectors.base import FolderRecord, Snapshot, UserRecord, full_snapshot
from directory.models import Integration

from .models import ScimGroup, ScimMembership, ScimUser

GROUP_KIND = "sg"
_ALL_USERS_NAMESPACE = uuid.UUID("7d6f0c5e-3f1b-4c55-9a43-2d2b8f0e51a7")
ALL_USERS_NAME = "All users of this SCIM app"


def all_users_folder_id(integration_id: int) -> str:
    """A folder id of its own per integration, stable across restarts (uuid5 of the integration)."""
    return str(uuid.uuid5(_ALL_USERS_NAMESPACE, f"scim-all-users:{integration_id}"))


def _user_record(row: ScimUser, group_ids: Iterable[str], all_users: str) -> UserRecord:
    return UserRecord(
        id=row.scim_id, first_name=row.given_name, last_name=row.family_name, email=row.email,
        enabled=row.active, folder_ids=frozenset({all_users, *group_ids}), display_name=row.display_name,
        upn=row.user_name,
    )


class ScimConnector:
    def __init__(self, integration: Integration) -> None:
        self.integration = integration

    @property
    def directory_id(self) -> str:
        return self.integration.directory_id

    def test(self) -> str:
        users = ScimUser.objects.filter(integration=self.integration, deleted_at__isnull=True).count()
        groups = ScimGroup.objects.filter(integration=self.integration).count()
        return f"SCIM: {users} users and {groups} groups pushed so far."

    def read_folders(self) -> list[FolderRecord]:
        folders = [FolderRecord(id=all_users_folder_id(self.integration.pk), name=ALL_USERS_NAME, kind=GROUP_KIND,
                                path=ALL_USERS_NAME)]
        for scim_id, name in (ScimGroup.objects.filter(integration=self.integration).order_by("pk")
                              .values_list("scim_id", "display_name")):
            folders.append(FolderRecord(id=scim_id, name=name, kind=GROUP_KIND, path=f"SCIM/{name}"))
        return folders

    def users_by_id(self, scim_ids: Collection[str]) -> list[UserRecord]:
        """The live (not deleted) users among these ids; a deleted or unknown id is simply absent."""
        rows = list(ScimUser.objects.filter(integration=self.integration, scim_id__in=list(scim_ids),
                                            deleted_at__isnull=True))
        return self._records(rows)

    def _records(self, rows: list[ScimUser]) -> list[UserRecord]:
        groups: dict[int, list[str]] = defaultdict(list)
        pks = [r.pk for r in rows]
        for part in chunks(pks, 2000):
            for user_pk, group_id in ScimMembership.objects.filter(user_id__in=part).values_list(
                    "user_id", "group__scim_id"):
                groups[user_pk].append(group_id)
        all_users = all_users_folder_id(self.integration.pk)
        return [_user_record(r, groups.get(r.pk, ()), all_users) for r in rows]

    def read_users(self, folder_ids: Collection[str]) -> list[UserRecord]:
        wanted = frozenset(folder_ids)
        rows = list(ScimUser.objects.filter(integration=self.integration, deleted_at__isnull=True).order_by("pk"))
        users = self._records(rows)
        return [u for u in users if not wanted or u.folder_ids & wanted]

    def read_user(self, user_id: str) -> UserRecord | None:
        found = self.users_by_id([user_id.strip().lower()])
        return found[0] if found else None

    def read_snapshot(self, folder_ids: Collection[str], *, incremental: bool = False) -> Snapshot:
        """Everything stored, as a complete snapshot: the store is always whole (no partial read)."""
        folders = self.read_folders()
        users = self.read_users(folder_ids)
        read_ids = frozenset(folder_ids) or frozenset(f.id for f in folders)
        return full_snapshot(self.directory_id, folders, users, read_ids)
