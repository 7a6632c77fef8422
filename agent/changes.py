"""What the agent reads for a push: only the changes since the portal's mark, or everything.

The portal keeps the mark of the last read it applied (the domain controller, its invocation id and its
highestCommittedUSN at the start of that read) and says in its poll answer what to read: `read_from` is that mark,
or "full" (no mark yet, other mapped folders, the periodic full read due, a Force Re-sync). The agent reads with the
portal's own code (adread.incremental), which itself reads everything when it must (an OU or a group changed,
another DC answered, a DC restored). A read of changes sends the users it has news of and the linked users AD
deleted; users changed outside the base DN are sent only when the portal links them (one moved out of the base DN
goes out of scope), so nothing else of the domain leaves the client's network.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from adread.dn import dn_key
from adread.incremental import ChangesRead, ReadMark, read_changes
from adread.ldap import LdapConnector
from adread.records import Snapshot

from .portal import PortalClient, PortalDown, PortalRefused, linked_user_ids

ASKED_FULL = "the portal asked for a full read"
REFUSED = "the portal refused the read of changes since its mark"


@dataclass(frozen=True)
class Asked:
    """What the portal asked the agent to read, from its poll answer."""

    since: ReadMark | None  # None: everything
    why: str = ASKED_FULL
    folders_digest: str = ""
    mapped: tuple[str, ...] = ()

    @classmethod
    def from_poll(cls, reply: Mapping[str, Any]) -> Asked:
        """A portal that says nothing of a mark (an older one) gets a full read."""
        read_from = reply.get("read_from")
        since = ReadMark.from_dict(read_from) if isinstance(read_from, Mapping) else None
        return cls(since=since, why=str(reply.get("read_why") or ASKED_FULL)[:300],
                   folders_digest=str(reply.get("folders_digest") or "")[:32],
                   mapped=tuple(str(f) for f in reply.get("mapped_folder_ids") or ()))


def ask(client: PortalClient) -> Asked:
    """Ask the portal what to read (a poll that takes no request: an agent run once carries none out)."""
    try:
        return Asked.from_poll(client.poll(None, take_requests=False))
    except (PortalRefused, PortalDown) as exc:
        return Asked(since=None, why=f"the portal could not be asked what to read ({exc})"[:300])


def read(connector: LdapConnector, asked: Asked) -> ChangesRead:
    """The changes since the portal's mark (or everything) of the whole base DN, with the DC's mark from its start."""
    return read_changes(connector, (), asked.since, known_user_ids=None, known_folder_ids=asked.mapped)


def start_fields(result: ChangesRead, asked: Asked) -> dict[str, Any]:
    """What the upload's start says of the read: partial or not, the marks, the folders, why everything."""
    fields: dict[str, Any] = {"partial": result.changes_only, "mark": result.mark.as_dict(),
                              "folders_digest": asked.folders_digest}
    if result.changes_only:
        fields["read_from"] = asked.since.as_dict() if asked.since else None
    else:  # the portal's reason when it asked for everything; adread's when it found it had to
        fields["full_because"] = (asked.why if asked.since is None else result.full_because)[:300]
    return fields


def linked_only(client: PortalClient, connector: LdapConnector, snapshot: Snapshot) -> tuple[Snapshot, list[str]]:
    """A read of changes without the users changed outside the base DN that the portal does not link, and the
    deleted users it links (the ones to name as deleted)."""
    base = dn_key(connector.settings.base_dn)
    outside = {u.id for u in snapshot.users if not dn_key(u.dn).endswith("," + base)}
    asked = sorted(outside | snapshot.removed_user_ids)
    linked = set(linked_user_ids(client, asked)) if asked else set()
    users = tuple(u for u in snapshot.users if u.id not in outside or u.id in linked)
    gone = sorted(snapshot.removed_user_ids & linked)
    return dataclasses.replace(snapshot, users=users, removed_user_ids=frozenset(gone)), gone
