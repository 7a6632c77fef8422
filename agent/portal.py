"""The portal's agent API over HTTPS with the agent token: push a snapshot in chunks, poll, report a failure.

While the portal is down the client retries with exponential backoff, and waits as long as a 429 or 503
asks (Retry-After, at most 5 minutes). Chunks are cut by their encoded size to fit the limits the portal
states when an upload starts. The token never appears in a message.
"""

from __future__ import annotations

import json
import logging
import socket
import time
from collections.abc import Callable, Collection, Iterable, Iterator
from typing import Any

import requests

from adread.records import FolderRecord, Snapshot, UserRecord

from . import AGENT_VERSION
from .config import MAX_CHUNK_SIZE, AgentConfig

# Request body limit of a portal that does not state its limits: Django's DATA_UPLOAD_MAX_MEMORY_SIZE.
FALLBACK_CHUNK_BYTES = 2_621_440
LONGEST_RETRY_AFTER = 300.0  # seconds; a portal asking for longer is asked again sooner
MESSAGE_LIMIT = 2000  # characters of a failure report's message (the portal keeps it on the run)
MAX_CHAIN_NAMES = 50  # names in one chain of nested groups the portal accepts

log = logging.getLogger("passportal.agent")


class PortalRefused(Exception):
    """The portal answered with a 4xx: retrying will not help (bad token, bad record, ...)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class PortalDown(Exception):
    """The portal could not be reached, or answered 5xx/429, after every retry."""


def backoff_delays(first: float, attempts: int, cap: float = 300.0) -> Iterator[float]:
    """Waits between attempts: first, 2x, 4x, ... capped (attempts - 1 of them)."""
    for n in range(attempts - 1):
        yield min(first * (2 ** n), cap)


def health(last_read_seconds: float | None) -> dict[str, Any]:
    """What every push and poll tells the portal about this agent: version, host, how long the last read took."""
    return {"agent_version": AGENT_VERSION, "host": socket.gethostname()[:255],
            "last_read_seconds": None if last_read_seconds is None else round(last_read_seconds, 3)}


class PortalClient:
    """POSTs JSON to /api/agent/ with the agent token; retries while the portal is down."""

    def __init__(self, config: AgentConfig, sleep: Callable[[float], None] = time.sleep) -> None:
        self.config = config
        self.sleep = sleep
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {config.token}"
        self.session.headers["User-Agent"] = AGENT_VERSION

    def post(self, path: str, body: dict[str, Any] | bytes, *, retries: int | None = None) -> dict[str, Any]:
        """POST JSON (a dict, or a body already encoded to fit the portal's size limit); the reply's JSON."""
        url = f"{self.config.portal}/api/agent/{path}"
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        attempts = retries or self.config.retries
        delays = backoff_delays(self.config.retry_delay, attempts)
        while True:
            asked_wait = 0.0
            try:
                # verify on each request: requests lets REQUESTS_CA_BUNDLE override a session's verify, which
                # would ignore --portal-ca-file.
                response = self.session.post(url, data=data, headers={"Content-Type": "application/json"},
                                             verify=self.config.portal_verify, timeout=120)
            except requests.RequestException as exc:
                problem = f"cannot reach {self.config.portal} ({type(exc).__name__})"
            else:
                if response.status_code < 400:
                    return response.json()
                detail = _detail(response)
                if response.status_code not in (429, 502, 503, 504) and response.status_code < 500:
                    if response.status_code == 401:
                        raise PortalRefused(f"{self.config.portal} refused the agent token (401): {detail}", 401)
                    raise PortalRefused(f"{self.config.portal} refused {path} ({response.status_code}): {detail}",
                                        response.status_code)
                problem = f"{self.config.portal} answered {response.status_code}: {detail}"
                asked_wait = _retry_after(response)
            delay = next(delays, None)
            if delay is None:
                raise PortalDown(f"{problem}; gave up after {attempts} attempts")
            delay = max(delay, asked_wait)  # sooner would only be refused again (429, 503)
            log.warning("%s; retrying in %.0f s", problem, delay)
            self.sleep(delay)

    def poll(self, last_read_seconds: float | None, *, take_requests: bool = True) -> dict[str, Any]:
        """Tell the portal the agent is alive; the reply says whether someone asked for a read now, and what to read
        (`read_from`: the mark to read the changes from, or "full"). `take_requests=False` only asks what to read.

        One attempt only: the next poll comes soon anyway, and a long backoff would delay the regular push.
        """
        body = health(last_read_seconds)
        if not take_requests:
            body["take_requests"] = False
        return self.post("poll/", body, retries=1)

    def linked(self, user_ids: list[str]) -> list[str]:
        """Which of these users (at most a chunk) the portal links."""
        return list(self.post("linked/", {"user_ids": user_ids}).get("user_ids", []))

    def report_failure(self, stage: str, message: str, *, permanent: bool,
                       request_id: int | None = None) -> dict[str, Any]:
        """Tell the portal a read failed, so it records a failed run and raises its notification (R21, R24); for a
        read it asked for (a preview, the folders: `request_id`), the page that asked says why instead."""
        for secret in self.config.secrets():  # an LDAP error never carries them, but a message must not either
            message = message.replace(secret, "(hidden)")
        body = {"stage": stage, "message": message[:MESSAGE_LIMIT], "permanent": permanent, **health(None)}
        if request_id is not None:
            body["request_id"] = request_id
        return self.post("failures/", body)


def _retry_after(response: requests.Response) -> float:
    """The seconds a 429 or 503 asks the agent to wait (0 if it does not say), at most LONGEST_RETRY_AFTER."""
    try:
        return min(max(float(response.headers.get("Retry-After", 0)), 0.0), LONGEST_RETRY_AFTER)
    except ValueError:  # an HTTP date: not what the portal sends; the backoff decides
        return 0.0


def _detail(response: requests.Response) -> str:
    try:
        return str(response.json().get("detail", ""))[:500]
    except ValueError:
        return response.text[:200]


_HEAD, _TAIL = b'{"records":[', b"]}"


def chunk_bodies(payloads: Iterable[Any], max_records: int, max_bytes: int) -> Iterator[bytes]:
    """Request bodies {"records": [...]} of at most max_records records and max_bytes bytes each, in order.

    Sized by the encoded bytes, not by counting records: long names and DNs make some records far
    larger than others, and the portal refuses a body over its limit (413).
    """
    parts: list[bytes] = []
    size = len(_HEAD) + len(_TAIL)
    for payload in payloads:
        part = json.dumps(payload, separators=(",", ":")).encode()
        if len(_HEAD) + len(part) + len(_TAIL) > max_bytes:
            name = payload.get("id") if isinstance(payload, dict) else payload
            raise PortalRefused(f"record {name} alone is {len(part):,} bytes, over the portal's limit "
                                f"of {max_bytes:,} bytes per request (AGENT_CHUNK_MAX_BYTES on the portal)")
        if parts and (len(parts) == max_records or size + 1 + len(part) > max_bytes):
            yield _HEAD + b",".join(parts) + _TAIL
            parts, size = [], len(_HEAD) + len(_TAIL)
        size += len(part) + (1 if parts else 0)  # the comma before every record but the first
        parts.append(part)
    if parts:
        yield _HEAD + b",".join(parts) + _TAIL


def folder_payload(folder: FolderRecord) -> dict[str, Any]:
    """An OU ("ou", in the tree under its parent) or a security group ("gr", which has no parent)."""
    return {"id": folder.id, "kind": folder.kind, "name": folder.name, "path": folder.path,
            "parent_id": folder.parent_id}


def user_payload(user: UserRecord) -> dict[str, Any]:
    """A user with its folders (its OU and every security group it is in) and the chain through each group."""
    payload = {"id": user.id, "first_name": user.first_name, "last_name": user.last_name, "email": user.email,
               "enabled": user.enabled, "folder_ids": sorted(user.folder_ids),
               "display_name": user.display_name, "upn": user.upn, "dn": user.dn}
    if user.chains:
        payload["chains"] = [_shown_chain(chain) for chain in user.chains]
    return payload


def _shown_chain(chain: tuple[str, ...]) -> list[str]:
    """A chain as the portal takes it: the group id and at most MAX_CHAIN_NAMES names (only read by people).

    Nesting deeper than that keeps the outer groups and the one holding the user, with an ellipsis between.
    """
    group_id, names = chain[0], list(chain[1:])
    if len(names) > MAX_CHAIN_NAMES:
        names = [*names[:MAX_CHAIN_NAMES - 2], "\u2026", names[-1]]
    return [group_id, *names]


def linked_user_ids(client: PortalClient, user_ids: list[str]) -> list[str]:
    """Which of `user_ids` the portal links, asked a chunk at a time."""
    linked: list[str] = []
    for start in range(0, len(user_ids), MAX_CHUNK_SIZE):
        linked += client.linked(user_ids[start:start + MAX_CHUNK_SIZE])
    return linked


def push_snapshot(client: PortalClient, snapshot: Snapshot, chunk_size: int, read_seconds: float | None = None,
                  find_deleted: Callable[[list[str]], Collection[str]] | None = None,
                  request_id: int | None = None, read: dict[str, Any] | None = None,
                  gone: Collection[str] = ()) -> dict[str, Any]:
    """Start an upload, send folders then users in chunks, commit with the counts. Returns the commit reply.

    With `find_deleted` (the connector's `deleted_users`), the linked users the upload lacks are looked up in
    AD before the commit, and the deleted ones named, so the portal disables them as deleted, not as moved.
    With `request_id` the upload answers that request of the portal (a preview or a folder read).
    `read` says what the agent read (agent/changes.py: partial or not, the marks); a read of changes names the
    linked users AD deleted in `gone`.
    """
    start = {"directory_id": snapshot.directory_id, **health(read_seconds), **(read or {})}
    if request_id is not None:
        start["request_id"] = request_id
    upload = client.post("uploads/", start)
    upload_id = upload["upload_id"]
    limits = upload.get("limits", {})
    max_records = min(chunk_size, limits.get("chunk_records", MAX_CHUNK_SIZE))
    max_bytes = limits.get("chunk_bytes", FALLBACK_CHUNK_BYTES)
    for body in chunk_bodies(map(folder_payload, snapshot.folders), max_records, max_bytes):
        client.post(f"uploads/{upload_id}/folders/", body)
    for body in chunk_bodies(map(user_payload, snapshot.users), max_records, max_bytes):
        client.post(f"uploads/{upload_id}/users/", body)
    counts = {"folder_count": len(snapshot.folders), "user_count": len(snapshot.users)}
    if gone:
        for body in chunk_bodies(sorted(gone), max_records, max_bytes):
            client.post(f"uploads/{upload_id}/gone/", body)
        counts["gone_count"] = len(gone)
    elif find_deleted is not None:
        named = _name_deleted(client, upload_id, find_deleted, max_records, max_bytes)
        if named is not None:
            counts["gone_count"] = named
    return client.post(f"uploads/{upload_id}/commit/", counts)


def missing_users(client: PortalClient, upload_id: int) -> list[str] | None:
    """The linked users the upload lacks, page by page; None from a portal that cannot say (an older one)."""
    missing: list[str] = []
    after = ""
    while True:
        try:
            page = client.post(f"uploads/{upload_id}/missing/", {"after": after})
        except PortalRefused as exc:
            if exc.status == 404:
                return None
            raise
        missing += page.get("user_ids", [])
        if not page.get("more") or not missing:
            return missing
        after = missing[-1]


def _name_deleted(client: PortalClient, upload_id: int, find_deleted: Callable[[list[str]], Collection[str]],
                  max_records: int, max_bytes: int) -> int | None:
    """Send the missing users AD deleted; how many (None: the portal does not ask, so nothing was sent)."""
    missing = missing_users(client, upload_id)
    if missing is None:
        return None
    gone = sorted(find_deleted(missing)) if missing else []
    for body in chunk_bodies(gone, max_records, max_bytes):
        client.post(f"uploads/{upload_id}/gone/", body)
    return len(gone)
