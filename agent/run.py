"""What the agent does: push one read, check a configuration, and run as a service (push and poll).

A push reads what the portal asks for: the changes since the mark of the last read it applied, or everything
(agent/changes.py).

A read that fails is reported to the portal (it records a failed run and raises a notification) before the
agent gives up or tries again. As a service the agent pushes at start and every `interval_hours` (6), and
between pushes polls the portal every `poll_seconds` (60): a poll says the agent is alive and brings back a
request for a read now (Force Re-sync, or a single user's resync) and the reads a person is waiting for on a page
(a preview, read and pushed as an answer that is never applied; the folders), so the portal never needs a way in.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Collection
from dataclasses import dataclass

from adread.ldap import LdapConnector
from adread.records import DirectoryError, FolderRecord, Snapshot

from . import changes
from .config import AgentConfig
from .portal import PortalClient, PortalDown, PortalRefused, push_snapshot

log = logging.getLogger("passportal.agent")
LONGEST_FAILURE_WAIT = 1800.0  # seconds between attempts after failures, at most


@dataclass(frozen=True)
class Pushed:
    message: str
    read_seconds: float


def run_once(config: AgentConfig, client: PortalClient, request_id: int | None = None,
             asked: changes.Asked | None = None) -> Pushed:
    """Read AD and push it: what the portal asks for (the changes since its mark, or the whole base DN:
    agent/changes.py), or the whole base DN as the answer to a preview request (`request_id`).

    A failed read is reported to the portal, then raised.
    """
    if request_id is None and asked is None:
        asked = changes.ask(client)
    connector = LdapConnector(config.ldap)
    started = time.monotonic()
    try:
        read: dict | None = None
        if asked is None:
            snapshot = connector.read_snapshot(())
        else:
            result = changes.read(connector, asked)
            snapshot, read = result.snapshot, changes.start_fields(result, asked)
            if result.changes_only:
                return _push_changes(config, client, connector, result.snapshot, read, time.monotonic() - started)
        read_seconds = time.monotonic() - started
        # The linked users this read lacks are looked up before the commit: deleted ones are named as such.
        reply = push_snapshot(client, snapshot, config.chunk_size, read_seconds, find_deleted=connector.deleted_users,
                              request_id=request_id, read=read)
    except DirectoryError as exc:
        _report(client, exc, request_id)
        raise
    gone = f", {reply['gone_count']} linked users deleted in AD" if reply.get("gone_count") else ""
    what = f"Pushed a preview (request {request_id}) of" if request_id is not None else "Pushed"
    return Pushed(f"{what} {_folders(snapshot.folders)} and {len(snapshot.users)} users of {snapshot.directory_id} "
                  f"(read from {connector.last_read.server} in {read_seconds:.1f} s) as upload {reply['upload_id']}"
                  f"{gone}.", read_seconds)


def _push_changes(config: AgentConfig, client: PortalClient, connector: LdapConnector, snapshot: Snapshot,
                  read: dict, read_seconds: float) -> Pushed:
    """Push a read of changes; one the portal refuses (its mark moved on, a folder it does not know) is read again
    in full and pushed at once."""
    snapshot, gone = changes.linked_only(client, connector, snapshot)
    try:
        reply = push_snapshot(client, snapshot, config.chunk_size, read_seconds, read=read, gone=gone)
    except PortalRefused as exc:
        if exc.status == 401:
            raise
        log.warning("The portal refused the changes since its mark (%s); reading everything instead.", exc)
        return run_once(config, client, asked=changes.Asked(since=None, why=changes.REFUSED))
    deleted = f", {len(gone)} linked users deleted in AD" if gone else ""
    return Pushed(f"Pushed the changes since the last read: {len(snapshot.users)} users of {snapshot.directory_id} "
                  f"(read from {connector.last_read.server} in {read_seconds:.1f} s) as upload {reply['upload_id']}"
                  f"{deleted}.", read_seconds)


def push_folders(config: AgentConfig, client: PortalClient, request_id: int) -> str:
    """Read the OUs and security groups only (no users) and push them as the answer to a folder request."""
    connector = LdapConnector(config.ldap)
    try:
        folders = connector.read_folders()
        snapshot = Snapshot(directory_id=connector.directory_id, folders=tuple(folders), users=(),
                            complete=True)
        reply = push_snapshot(client, snapshot, config.chunk_size, request_id=request_id)
    except DirectoryError as exc:
        _report(client, exc, request_id)
        raise
    return f"Pushed {_folders(snapshot.folders)} (request {request_id}: the folders) as upload {reply['upload_id']}."


def answer(config: AgentConfig, client: PortalClient, request: dict, out: Callable[[str], None]) -> None:
    """Carry out one request a poll brought: a preview (read everything) or a folder read. Failures are logged: the
    portal has been told (a failed read), or hears nothing and says the agent is not responding."""
    try:
        if request.get("kind") == "preview":
            out(run_once(config, client, request_id=request["id"]).message)
        elif request.get("kind") == "folders":
            out(push_folders(config, client, request["id"]))
        else:  # a newer portal's request this agent does not know: said once per poll, not carried out
            log.warning("The portal asked for %r, which this agent does not know; update the agent.",
                        request.get("kind"))
    except (DirectoryError, PortalRefused, PortalDown) as exc:
        log.error("Request %s (%s) failed: %s", request.get("id"), request.get("kind"), exc)


def _folders(folders: Collection[FolderRecord]) -> str:
    """"3 OUs", or "3 OUs, 2 security groups" when the read found groups."""
    groups = sum(f.kind == "gr" for f in folders)
    return f"{len(folders) - groups} OUs" + (f", {groups} security groups" if groups else "")


def _report(client: PortalClient, exc: DirectoryError, request_id: int | None = None) -> None:
    try:
        client.report_failure("read", str(exc), permanent=exc.permanent, request_id=request_id)
    except (PortalRefused, PortalDown) as report_failed:
        # The portal will still notice: it hears nothing, and raises its "not heard from" notification.
        log.warning("Could not tell the portal that the read failed: %s", report_failed)


def check(config: AgentConfig, client: PortalClient | None, out: Callable[[str], None]) -> None:
    """Connect, bind, count the users of each mapped OU or group (every one if the portal cannot say which), print.

    Raises DirectoryError when AD cannot be read. Sends no upload.
    """
    mapped: set[str] | None = None
    if client is not None:
        try:
            mapped = set(client.poll(None).get("mapped_folder_ids", []))
        except (PortalRefused, PortalDown) as exc:
            out(f"The portal could not be asked which OUs are mapped ({exc}); counting every OU.")
    connector = LdapConnector(config.ldap)
    snapshot = connector.read_snapshot(())
    out(f"Connected to {connector.last_read.server} and bound as {config.ldap.bind_dn}: {_folders(snapshot.folders)} "
        f"and {len(snapshot.users)} users under {config.ldap.base_dn}.")
    users = Counter(folder for user in snapshot.users for folder in user.folder_ids)
    enabled = Counter(folder for user in snapshot.users if user.enabled for folder in user.folder_ids)
    shown = [f for f in snapshot.folders if mapped is None or f.id in mapped]
    if mapped is not None:
        out(f"{len(mapped)} OUs are mapped in the portal" + (":" if shown else "; none of them was found here."))
    for folder in shown:
        out(f"  {folder.path}: {users[folder.id]} users ({enabled[folder.id]} enabled)")
    missing = (mapped or set()) - {f.id for f in snapshot.folders}
    if missing and shown:
        out(f"  {len(missing)} mapped OUs were not found under {config.ldap.base_dn}.")


def serve(config: AgentConfig, client: PortalClient, out: Callable[[str], None],
          sleep: Callable[[float], None] = time.sleep) -> None:
    """Push at start and every interval; poll in between, and read at once when the portal asks. Never returns."""
    interval = config.interval_hours * 3600
    next_push = time.monotonic()
    failures = 0
    read_seconds: float | None = None
    asked = False
    while True:
        if asked or time.monotonic() >= next_push:
            try:
                pushed = run_once(config, client)
                out(pushed.message)
                read_seconds, failures = pushed.read_seconds, 0
                next_push = time.monotonic() + interval
            except (DirectoryError, PortalRefused, PortalDown) as exc:
                failures += 1
                # Tried again soon, never later than the next regular push.
                wait = min(config.retry_delay * (2 ** min(failures, 10)), LONGEST_FAILURE_WAIT, interval)
                next_push = time.monotonic() + wait
                log.error("Push failed: %s; next attempt in %.0f s", exc, wait)
        sleep(max(min(config.poll_seconds, next_push - time.monotonic()), 0.0))
        try:
            reply = client.poll(read_seconds)
        except (PortalRefused, PortalDown) as exc:
            reply = {}
            log.warning("Poll failed: %s", exc)
        asked = bool(reply.get("read_now"))
        for request in reply.get("requests", []):  # someone is waiting on a page: before the next sleep
            answer(config, client, request, out)
