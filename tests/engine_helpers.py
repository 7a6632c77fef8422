"""Plain helpers for engine tests: an integration with mapped folders, and snapshots built by hand."""

from __future__ import annotations

import uuid

from directory.connectors.base import FolderRecord, Snapshot, UserRecord
from directory.folders import record_folders
from directory.models import Folder, Integration
from passportal.models import Client, PermissionLevel, SecurityGroup
from provisioning.models import Mapping


def guid(n: int) -> str:
    return str(uuid.UUID(int=n))


def folders(*names: str) -> tuple[FolderRecord, ...]:
    return tuple(FolderRecord(id=guid(10_000 + i), name=name, kind="ou", path=f"Corp/{name}")
                 for i, name in enumerate(names))


def user(n: int, folder: FolderRecord | tuple[FolderRecord, ...], *, first: str = "", last: str = "",
         email: str | None = None, enabled: bool = True) -> UserRecord:
    fs = folder if isinstance(folder, tuple) else (folder,)
    return UserRecord(
        id=guid(n), first_name=first or f"First{n}", last_name=last or f"Last{n}",
        email=f"user{n}@corp.test" if email is None else email, enabled=enabled,
        folder_ids=frozenset(f.id for f in fs),
    )


def snapshot(folder_records, users, *, complete: bool = True, incremental: bool = False,
             removed=()) -> Snapshot:
    return Snapshot(directory_id="corp.test", folders=tuple(folder_records), users=tuple(users), complete=complete,
                    incremental=incremental, removed_user_ids=frozenset(removed),
                    folders_complete=not incremental)


def integration_with(client: Client, folder_records, *, name: str = "Corp AD") -> Integration:
    integration = Integration.objects.create(client=client, name=name, kind="ad", ad_mode="agent",
                                             base_dn="DC=corp,DC=test")
    record_folders(integration, folder_records)
    return integration


def map_folder(integration: Integration, record: FolderRecord, level: PermissionLevel, *groups: str) -> Mapping:
    folder = Folder.objects.get(integration=integration, external_id=record.id)
    mapping = Mapping.objects.create(folder=folder, permission_level=level)
    for name in groups:
        group, _ = SecurityGroup.objects.get_or_create(client=integration.client, name=name)
        mapping.security_groups.add(group)
    return mapping


def site_level(name: str = "Site User") -> PermissionLevel:
    return PermissionLevel.objects.get(user_kind="site", name=name)


def pro_level(name: str = "Technician") -> PermissionLevel:
    return PermissionLevel.objects.get(user_kind="pro", name=name)
