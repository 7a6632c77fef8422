"""Portal side, on the production path: an agent upload of N users over F OUs, synced as a worker syncs it.

What is timed is what a django-q2 worker runs once an agent commits an upload: `request_sync` then
`execute_run` (`sync.run_sync`), whose read is the upload-backed connector (directory/uploads.py)
loading the committed upload's rows. Each sample runs in a fresh process (nothing warmed by an
earlier run) on a fresh copy of a prepared database (PostgreSQL `CREATE DATABASE ... TEMPLATE`), so
preparing 100,000 users through the real upload service is paid once per case, never timed.

Input (`people`): varied like a real directory: names from lists, upn, dn and display name, OUs of
uneven size under regions, ~1% disabled and ~0.5% without an email (creation issues), mappings to two
levels and one or two of eight groups. Agent uploads carry the one OU that holds each user (uploads
refuse more), so every user is in one folder here; several folders per user is the Entra/SCIM shape.

Cases (each checks its run's status and exact counts, and fails loudly otherwise):
  initial    every user created, activation emails queued
  nochange   the agent pushes the same directory again after the initial run: the run plans every user
  steady     the same push once more after a no-change run: the steady state of a quiet directory
  renamed    1% renamed          disabled   10% disabled (threshold raised)
Floor: COPY of the rows an initial run writes, the same values (users, links with their directory state
and fingerprint, memberships, tokens, outbox rows with their context, creation issues).
"""

from __future__ import annotations

import json
import sys
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import database_name, dispatch, measured, setup_django, template_name

DOMAIN = "corp.example.test"
BASE_DN = "DC=corp,DC=example,DC=test"
REGIONS = 20
GROUPS = 8
FIRST = ["Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken", "Margaret", "Dennis", "Radia",
         "Linus", "Guido", "Sophie", "Tim", "Hedy", "John", "Mary", "Niklaus", "Shafi", "Leslie", "Katherine",
         "Adele", "Bjarne", "Jean", "Yukihiro", "Anita", "Ivan", "Carol", "Whitfield"]
LAST = ["Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Thompson", "Hamilton", "Ritchie",
        "Perlman", "Torvalds", "van Rossum", "Wilson", "Berners-Lee", "Lamarr", "McCarthy", "Keller", "Wirth",
        "Goldwasser", "Lamport", "Johnson", "Goldberg", "Stroustrup", "Sammet", "Matsumoto", "Borg", "Sutherland",
        "Shaw", "Diffie", "O'Neil", "Nygaard", "Kay", "Cerf", "Kahn", "Engelbart", "Backus", "Naur", "Hoare",
        "Milner"]


def guid(n: int) -> str:
    return str(uuid.UUID(int=n))


# ---------------------------------------------------------------- the directory


def folders(count: int) -> list[dict]:
    """REGIONS region OUs, each holding count/REGIONS department OUs (only departments hold users)."""
    regions = [{"id": guid(2_000_000 + r), "name": f"Region {r}", "path": f"Corp/Region {r}", "parent_id": None}
               for r in range(REGIONS)]
    depts = [{"id": guid(1_000_000 + f), "name": f"Dept {f}", "path": f"Corp/Region {f % REGIONS}/Dept {f}",
              "parent_id": regions[f % REGIONS]["id"]} for f in range(count)]
    return regions + depts


def dept_of(n: int, count: int) -> int:
    """Uneven OU sizes: a golden-ratio sequence squared, so low-numbered OUs are larger (up to ~30x)."""
    return int(count * ((n * 0.6180339887498949) % 1.0) ** 2)


def people(users: int, count: int, *, renamed: float = 0.0, disabled: float = 0.0) -> list[dict]:
    """The upload's user records (the agent's JSON), deterministic; renamed / disabled: share changed."""
    renamed_every = round(1 / renamed) if renamed else 0
    disabled_every = round(1 / disabled) if disabled else 0
    records = []
    for n in range(users):
        first, last = FIRST[n % len(FIRST)], LAST[(n // 7) % len(LAST)]
        if renamed_every and n % renamed_every == 1:
            last = f"{last}-Renamed"
        f = dept_of(n, count)
        local = f"{first}.{last.replace(' ', '').replace(chr(39), '')}.{n}".lower()
        records.append({
            "id": guid(n + 1), "first_name": first, "last_name": last,
            "email": "" if n % 200 == 199 else f"{local}@{DOMAIN}",
            "enabled": n % 97 != 5 and not (disabled_every and n % disabled_every == 3),
            "folder_ids": [guid(1_000_000 + f)], "display_name": f"{first} {last}", "upn": f"{local}@{DOMAIN}",
            "dn": f"CN={first} {last} {n},OU=Dept {f},OU=Region {f % REGIONS},OU=Corp,{BASE_DN}",
        })
    return records


def grants(f: int) -> tuple[str, list[int]]:
    """Folder f's mapping: its level and the indexes of its groups."""
    return ("Site Admin" if f % 50 == 0 else "Site User"), sorted({f % GROUPS, (f // GROUPS) % GROUPS})


def expected(params: dict, case: str) -> dict:
    """The counts a case's run must report (nonzero ones), derived from the input."""
    users, count = params["users"], params["folders"]
    base = people(users, count)
    created = [p for p in base if p["enabled"] and p["email"]]
    if case == "initial":
        return {"created": len(created), "issues_opened": sum(p["enabled"] and not p["email"] for p in base),
                "groups_added": sum(len(grants(dept_of(int(p["id"].replace("-", ""), 16) - 1, count))[1])
                                    for p in created)}
    if case in ("nochange", "steady"):
        return {}
    linked = {p["id"] for p in created}
    if case == "renamed":
        changed = [p for p in people(users, count, renamed=0.01) if p["id"] in linked and p["last_name"].endswith(
            "-Renamed")]
        return {"updated": len(changed)}
    if case == "disabled":
        return {"disabled": sum(not p["enabled"] for p in people(users, count, disabled=0.10) if p["id"] in linked)}
    raise ValueError(case)


# ---------------------------------------------------------------- preparing (never timed)


def push(integration, users: list[dict], folder_records: list[dict]) -> None:
    """Upload through the real service, in the API's largest chunks, and commit (as the agent does)."""
    from directory import upload_chunks, upload_records, upload_start
    from provisioning import agent_uploads

    upload = upload_start.start_upload(integration, directory_id=DOMAIN, agent_version="bench")
    for start in range(0, len(folder_records), upload_records.MAX_RECORDS_PER_CHUNK):
        upload = upload_chunks.add_folders(upload, folder_records[start:start + upload_records.MAX_RECORDS_PER_CHUNK])
    for start in range(0, len(users), upload_records.MAX_RECORDS_PER_CHUNK):
        upload = upload_chunks.add_users(upload, users[start:start + upload_records.MAX_RECORDS_PER_CHUNK])
    agent_uploads.commit_upload(upload, folder_count=len(folder_records), user_count=len(users))
    forget_queued_runs()


def forget_queued_runs() -> None:
    """A commit queues its integration's run (R17): the samples request and execute their own."""
    from django_q.models import OrmQ

    from provisioning.models import SyncRun

    OrmQ.objects.all().delete()
    SyncRun.objects.filter(status="queued").delete()


def integration():
    from directory.models import Integration

    return Integration.objects.get(name="Bench agent")


def prepare_base(params: dict) -> None:
    """Clients, an agent integration with a committed upload, every department OU mapped."""
    from directory.models import Folder, Integration
    from passportal.models import Client, PermissionLevel, SecurityGroup
    from provisioning.models import Mapping

    Client.objects.create(name="Bench MSP", is_company_vault=True, site_enabled=True)
    client = Client.objects.create(name="Bench Client", site_enabled=True)
    agent = Integration.objects.create(client=client, name="Bench agent", kind="ad", ad_mode="agent",
                                       disable_threshold_percent=100)
    push(agent, people(params["users"], params["folders"]), folders(params["folders"]))
    levels = dict(PermissionLevel.objects.filter(user_kind="site").values_list("name", "pk"))
    groups = [SecurityGroup.objects.create(client=client, name=f"Group {g}").pk for g in range(GROUPS)]
    by_ext = {f.external_id: f for f in Folder.objects.filter(integration=agent)}
    rules = [(by_ext[guid(1_000_000 + f)], grants(f)) for f in range(params["folders"])]
    mappings = Mapping.objects.bulk_create([Mapping(folder=folder, permission_level_id=levels[level])
                                            for folder, (level, _) in rules])
    Mapping.security_groups.through.objects.bulk_create([
        Mapping.security_groups.through(mapping_id=m.pk, securitygroup_id=groups[g])
        for m, (_, (_, gs)) in zip(mappings, rules, strict=True) for g in gs
    ])


def sync_untimed(case: str, params: dict) -> None:
    from provisioning import sync

    run = sync.run_sync(integration(), "agent")
    check(run, expected(params, case), case)


def case_prepare(params: dict) -> dict:
    """Build every template database the cases and the floor copy from (once per bench run)."""
    import time

    from bench.common import copy_database

    start = time.perf_counter()
    n, f = params["users"], params["folders"]
    base, after = template_name("base"), template_name("after_initial")
    setup_django(fresh=True, name=base)
    prepare_base(params)
    close()
    copy_database(base, after)
    setup_django(name=after)
    sync_untimed("initial", params)
    close()
    for case, changes in (("nochange", {}), ("renamed", {"renamed": 0.01}), ("disabled", {"disabled": 0.10})):
        copy_database(after, template_name(case))
        setup_django(name=template_name(case))
        push(integration(), people(n, f, **changes), folders(f))
        close()
    copy_database(template_name("nochange"), template_name("steady"))
    setup_django(name=template_name("steady"))
    sync_untimed("nochange", params)
    push(integration(), people(n, f), folders(f))
    close()
    copy_database(base, template_name("initial"))
    case_expected(params)
    return {"seconds": time.perf_counter() - start}


def case_expected(params: dict) -> dict:
    """Write the counts every case must report (expected_file); part of preparing."""
    expected_file().parent.mkdir(exist_ok=True)
    expected_file().write_text(json.dumps({case: expected(params, case) for case in
                                           ("initial", "nochange", "steady", "renamed", "disabled")}))
    return {"seconds": 0}


def close() -> None:
    from django.db import connections

    connections.close_all()


# ---------------------------------------------------------------- the cases (timed)


def check(run, want: dict, case: str) -> dict:
    got = {k: v for k, v in run.counts.items() if v}
    if run.status != "succeeded" or got != want:
        raise SystemExit(f"{case}: run {run.pk} ended {run.status} ({run.error[:300]}) with counts {got}, "
                         f"expected succeeded with {want}")
    return got


def expected_file() -> Path:
    """The counts each case must report, worked out once when the databases are prepared: building the input
    again in a sample (300,000 people as dicts) would weigh more than the run and count in its peak memory."""
    return Path(__file__).resolve().parent.parent / "var" / f"bench-{database_name()}-expected.json"


def timed(case: str, params: dict) -> dict:
    want = json.loads(expected_file().read_text())[case]
    setup_django(name=database_name(), template=template_name(case))
    from provisioning import sync

    agent = integration()
    result: dict = {}
    with measured(result):
        run = sync.run_sync(agent, "agent")
    result["status"] = run.status
    result["counts"] = check(run, want, case)
    if case == "initial":
        from notifications.models import OutboxEmail

        result["emails_queued"] = OutboxEmail.objects.count()
    return result


def case_initial(params: dict) -> dict:
    return timed("initial", params)


def case_nochange(params: dict) -> dict:
    return timed("nochange", params)


def case_steady(params: dict) -> dict:
    return timed("steady", params)


def case_renamed(params: dict) -> dict:
    return timed("renamed", params)


def case_disabled(params: dict) -> dict:
    return timed("disabled", params)


# ---------------------------------------------------------------- the floor


def _copy_activations(ids: list[int], created: list[dict], now) -> None:
    """The floor's activation links and their queued emails, one of each per created user, as the engine writes."""
    from django.utils import timezone
    from psycopg.types.json import Jsonb

    from notifications.models import OutboxEmail
    from passportal.bulk import copy_rows
    from passportal.models import ActivationToken

    expires = now + timezone.timedelta(days=7)
    copy_rows(ActivationToken, ["user_id", "token_hash", "email", "created_at", "expires_at"],
              [(uid, f"{uid:064x}", p["email"], now, expires) for uid, p in zip(ids, created, strict=True)])
    copy_rows(OutboxEmail, ["kind", "recipient", "context", "status", "attempts", "last_error", "next_attempt_at",
                            "created_at", "portal_user_id"],
              [("activation", p["email"], Jsonb({
                  "nonce": f"{uid:022x}", "first_name": p["first_name"], "last_name": p["last_name"],
                  "organisation": "Bench Client", "is_pro_user": False, "msp_name": "Bench MSP",
                  "expires_at": expires.isoformat()}), "queued", 0, "", now, now, uid)
               for uid, p in zip(ids, created, strict=True)])


def case_floor(params: dict) -> dict:
    """COPY the rows an initial run writes, with the engine's values, into their tables, in one transaction."""
    setup_django(name=database_name(), template=template_name("initial"))
    from django.db import transaction
    from django.utils import timezone
    from psycopg.types.json import Jsonb

    from directory.connectors.base import UserRecord
    from passportal.bulk import allocate_ids, copy_rows
    from passportal.models import GroupMembership, PermissionLevel, PortalUser, SecurityGroup
    from provisioning.models import CreationIssue, DirectoryLink, SyncRun
    from provisioning.planner import Seen, fingerprint, link_state

    agent = integration()
    n, count = params["users"], params["folders"]
    levels = dict(PermissionLevel.objects.filter(user_kind="site").values_list("name", "pk"))
    groups = list(SecurityGroup.objects.filter(client=agent.client).order_by("name").values_list("pk", flat=True))
    run = SyncRun.objects.create(integration=agent, trigger="agent", status="running")
    everyone = people(n, count)
    created = [p for p in everyone if p["enabled"] and p["email"]]
    missing = [p for p in everyone if p["enabled"] and not p["email"]]
    result: dict = {}
    with measured(result), transaction.atomic():
        now = timezone.now()
        ids = allocate_ids(PortalUser, len(created))
        depts = [dept_of(int(p["id"].replace("-", ""), 16) - 1, count) for p in created]
        copy_rows(PortalUser, [
            "id", "client_id", "first_name", "last_name", "email", "status", "disabled_reason", "disabled_by_staff",
            "permission_level_id", "permission_level_set_by_hand", "password", "activated_at", "created_at",
            "updated_at"],
            [(uid, agent.client_id, p["first_name"], p["last_name"], p["email"], "pending", "", False,
              levels[grants(f)[0]], False, "", None, now, now) for uid, p, f in zip(ids, created, depts, strict=True)])
        links = []
        for uid, p in zip(ids, created, strict=True):
            record = UserRecord(id=p["id"], first_name=p["first_name"], last_name=p["last_name"], email=p["email"],
                                enabled=True, folder_ids=frozenset(p["folder_ids"]), display_name=p["display_name"],
                                upn=p["upn"], dn=p["dn"])
            seen = Seen(p["id"], record.folder_ids, True, link_state(record))
            links.append((agent.pk, DOMAIN, p["id"], uid, Jsonb(p["folder_ids"]), True, now, run.pk,
                          Jsonb(dict(seen.state)), fingerprint(seen), now))
        copy_rows(DirectoryLink, [
            "integration_id", "directory_id", "external_id", "portal_user_id", "folder_ids", "in_scope", "last_seen",
            "last_run_id", "directory_state", "state_hash", "created_at"], links)
        copy_rows(GroupMembership, ["user_id", "group_id", "source", "created_at"],
                  [(uid, groups[g], "mapping", now) for uid, f in zip(ids, depts, strict=True) for g in grants(f)[1]])
        _copy_activations(ids, created, now)
        copy_rows(CreationIssue, ["integration_id", "external_id", "reason", "user_name", "email", "message",
                                  "folder_path", "opened_at", "opened_by_run_id"],
                  [(agent.pk, p["id"], "no_email", f"{p['first_name']} {p['last_name']}", "",
                    f"{p['first_name']} {p['last_name']}: no email in the directory", "", now, run.pk)
                   for p in missing])
    result["rows"] = {"users": len(created), "issues": len(missing)}
    return result


if __name__ == "__main__":
    dispatch({"prepare": case_prepare, "initial": case_initial, "nochange": case_nochange, "steady": case_steady,
              "renamed": case_renamed, "disabled": case_disabled, "floor": case_floor,
              "expected": case_expected})
