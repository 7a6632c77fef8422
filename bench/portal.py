"""Portal side on PostgreSQL: a snapshot of N users over F mapped folders fed to the engine.

Cases: initial (all created, activation emails queued), nochange, renamed (1%), disabled (10%,
threshold raised); floor: COPY of the same rows into the same tables.
"""

from __future__ import annotations

import io
import sys
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import dispatch, measured, setup_django


def guid(n: int) -> str:
    return str(uuid.UUID(int=n))


def folder_records(folders: int):
    from directory.connectors.base import FolderRecord

    return tuple(FolderRecord(id=guid(1_000_000 + f), name=f"OU {f}", kind="ou", path=f"Corp/OU {f}")
                 for f in range(folders))


def snapshot(users: int, folders: int, *, renamed: float = 0.0, disabled: float = 0.0):
    from directory.connectors.base import Snapshot, UserRecord

    fr = folder_records(folders)
    renamed_every = int(1 / renamed) if renamed else 0
    disabled_every = int(1 / disabled) if disabled else 0
    records = []
    for n in range(users):
        records.append(UserRecord(
            id=guid(n + 1), first_name=("Renamed" if renamed_every and n % renamed_every == 0 else "First"),
            last_name=f"User{n}", email=f"user{n}@corp.test",
            enabled=not (disabled_every and n % disabled_every == 0), folder_ids=frozenset({fr[n % folders].id}),
        ))
    return Snapshot(directory_id="corp.test", folders=fr, users=tuple(records), complete=True)


def setup(params: dict):
    setup_django(fresh=True)
    from directory.folders import record_folders
    from directory.models import Folder, Integration
    from passportal.models import Client, PermissionLevel, SecurityGroup
    from provisioning.models import Mapping

    vault = Client.objects.create(name="Bench MSP", is_company_vault=True, site_enabled=True)
    client = Client.objects.create(name="Bench Client", site_enabled=True)
    integration = Integration.objects.create(client=client, name="Bench AD", kind="ad", ad_mode="agent",
                                             base_dn="DC=corp,DC=test", disable_threshold_percent=100)
    record_folders(integration, folder_records(params["folders"]))
    level = PermissionLevel.objects.get(user_kind="site", name="Site User")
    group = SecurityGroup.objects.create(client=client, name="Everyone")
    mappings = Mapping.objects.bulk_create(
        [Mapping(folder=f, permission_level=level) for f in Folder.objects.filter(integration=integration)]
    )
    Mapping.security_groups.through.objects.bulk_create(
        [Mapping.security_groups.through(mapping_id=m.pk, securitygroup_id=group.pk) for m in mappings]
    )
    return vault, integration


def sync(integration, snap, result: dict) -> None:
    from provisioning import services

    with measured(result):
        run = services.sync_snapshot(integration, snap, "agent")
    result["status"] = run.status
    result["counts"] = {k: v for k, v in run.counts.items() if v}


def case_initial(params: dict) -> dict:
    _, integration = setup(params)
    snap = snapshot(params["users"], params["folders"])
    result: dict = {}
    sync(integration, snap, result)
    from notifications.models import OutboxEmail

    result["emails_queued"] = OutboxEmail.objects.count()
    return result


def _after_initial(params: dict, **changes) -> dict:
    _, integration = setup(params)
    sync(integration, snapshot(params["users"], params["folders"]), {})
    snap = snapshot(params["users"], params["folders"], **changes)
    result: dict = {}
    sync(integration, snap, result)
    return result


def case_nochange(params: dict) -> dict:
    return _after_initial(params)


def case_renamed(params: dict) -> dict:
    return _after_initial(params, renamed=0.01)


def case_disabled(params: dict) -> dict:
    return _after_initial(params, disabled=0.10)


def copy_rows(table: str, columns: list[str], rows) -> None:
    from django.db import connection

    buffer = io.StringIO()
    for row in rows:
        buffer.write("\t".join("\\N" if v is None else str(v) for v in row) + "\n")
    with connection.cursor() as cursor, cursor.connection.cursor().copy(
        f"COPY {table} ({', '.join(columns)}) FROM STDIN"
    ) as copy:
        copy.write(buffer.getvalue())


def case_floor(params: dict) -> dict:
    """COPY the rows an initial run writes (users, links, group memberships, tokens, outbox) into their tables."""
    from django.db import connection, transaction
    from django.utils import timezone

    _, integration = setup(params)
    n, folders = params["users"], folder_records(params["folders"])
    client_id = integration.client_id
    from passportal.models import PermissionLevel

    level_id = PermissionLevel.objects.get(user_kind="site", name="Site User").pk
    group_id = integration.client.security_groups.get().pk
    now = timezone.now().isoformat()
    result: dict = {}
    with measured(result), transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT nextval('passportal_portaluser_id_seq') FROM generate_series(1, %s)", [n])
            ids = [row[0] for row in cursor.fetchall()]
        copy_rows("passportal_portaluser",
                  ["id", "client_id", "first_name", "last_name", "email", "status", "disabled_reason",
                   "disabled_by_staff", "permission_level_id", "permission_level_set_by_hand", "password",
                   "created_at", "updated_at"],
                  ((ids[i], client_id, "First", f"User{i}", f"user{i}@corp.test", "pending", "", "f", level_id, "f",
                    "", now, now) for i in range(n)))
        copy_rows("provisioning_directorylink",
                  ["integration_id", "directory_id", "external_id", "portal_user_id", "folder_ids", "in_scope",
                   "last_seen", "directory_state", "state_hash", "created_at"],
                  ((integration.pk, "corp.test", guid(i + 1), ids[i], json_list(folders[i % len(folders)].id), "t",
                    now, "{}", "0" * 32, now) for i in range(n)))
        copy_rows("passportal_groupmembership", ["user_id", "group_id", "source", "created_at"],
                  ((ids[i], group_id, "mapping", now) for i in range(n)))
        copy_rows("passportal_activationtoken", token_columns(),
                  (token_row(ids[i], i, now) for i in range(n)))
        copy_rows("notifications_outboxemail", outbox_columns(),
                  (outbox_row(ids[i], i, now) for i in range(n)))
    return result


def json_list(value: str) -> str:
    return f'["{value}"]'


def token_columns() -> list[str]:
    from passportal.models import ActivationToken

    return [f.column for f in ActivationToken._meta.concrete_fields if f.column != "id"]


def token_row(user_id: int, i: int, now: str):
    from passportal.models import ActivationToken

    values = {"user_id": user_id, "token_hash": f"{i:064x}", "email": f"user{i}@corp.test", "created_at": now,
              "expires_at": now, "used_at": None, "voided_at": None}
    return [values.get(f.column, "") for f in ActivationToken._meta.concrete_fields if f.column != "id"]


def outbox_columns() -> list[str]:
    from notifications.models import OutboxEmail

    return [f.column for f in OutboxEmail._meta.concrete_fields if f.column != "id"]


def outbox_row(user_id: int, i: int, now: str):
    from notifications.models import OutboxEmail

    values = {"portal_user_id": user_id, "kind": "activation", "recipient": f"user{i}@corp.test",
              "context": '{"token": "x"}', "status": "queued", "attempts": 0, "last_error": "", "created_at": now,
              "next_attempt_at": now, "claimed_at": None, "claim": None, "sent_at": None}
    return [values.get(f.column, "") for f in OutboxEmail._meta.concrete_fields if f.column != "id"]


if __name__ == "__main__":
    dispatch({"initial": case_initial, "nochange": case_nochange, "renamed": case_renamed,
              "disabled": case_disabled, "floor": case_floor})
