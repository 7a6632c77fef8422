"""Read Entra ID through Microsoft Graph: AUs and groups are the folders, their user members are the users.

The connector is a small facade over its seams, each a module of its own:
`entra_client` (msal's token, the HTTP session, paging, retries and throttling), `entra_read` (the full read),
`entra_delta` (the incremental read from stored delta links), `entra_groups` (groups as folders and their nested
members), `entra_records` (Graph objects as plain records) and `entra_hosts` (where a secret may be sent). The
contracts this follows are in docs/notes/entra-graph.md. Like every connector it never imports models
(docs/architecture.md, rule 1): `directory.sources` builds its settings from an integration.

Identity (R3): a user is its Entra object `id` within the tenant GUID (`Snapshot.directory_id`).
Safety (R21): a read that cannot finish raises DirectoryUnavailable / DirectoryAuthError; a member
that comes back without properties (no User.Read.All) is an error, never "user removed".
"""

from __future__ import annotations

from collections.abc import Collection

from . import entra_delta, entra_read
from .base import FolderRecord, Snapshot, UserRecord
from .entra_client import (
    DEFAULT_GRAPH_BASE_URL,
    DEFAULT_LOGIN_HOST,
    EntraSettings,
    GraphClient,
    GraphGaveUp,
    RetryPolicy,
    ScopeRefused,
    TenantInfo,
    token_error_message,
)
from .entra_delta import FullReadNeeded
from .entra_hosts import GRAPH_HOSTS, LOGIN_HOSTS, graph_url_problem, login_host_problem, operator_hosts, scope_problem
from .entra_records import AU_SELECT, USER_SELECT

__all__ = [
    "AU_SELECT", "DEFAULT_GRAPH_BASE_URL", "DEFAULT_LOGIN_HOST", "GRAPH_HOSTS", "LOGIN_HOSTS", "USER_SELECT",
    "EntraConnector", "EntraSettings", "FullReadNeeded", "GraphGaveUp", "RetryPolicy", "ScopeRefused", "TenantInfo",
    "graph_url_problem", "login_host_problem", "operator_hosts", "scope_problem", "token_error_message",
]


class EntraConnector:
    """One Entra tenant read through Graph, from `EntraSettings` (`directory.sources.entra_settings`)."""

    def __init__(self, settings: EntraSettings) -> None:
        self.settings = settings
        self.graph = GraphClient(settings)

    @property
    def directory_id(self) -> str:
        return self.graph.tenant_id

    def read_folders(self) -> list[FolderRecord]:
        return entra_read.read_folders(self.graph)

    def read_users(self, folder_ids: Collection[str]) -> list[UserRecord]:
        return entra_read.read_users(self.graph, folder_ids)

    def read_user(self, user_id: str) -> UserRecord | None:
        return entra_read.read_user(self.graph, user_id)

    def tenant_info(self) -> TenantInfo:
        return entra_read.tenant_info(self.graph)

    def test(self) -> str:
        info = self.tenant_info()
        au_count = len(self.read_folders())
        return (f"Token OK for application {self.settings.client_id}. Tenant {info.guid} "
                f"({info.display_name}). Verified domains: {', '.join(info.domains) or 'none'}. "
                f"Administrative units: {au_count}.")

    def read_snapshot(self, folder_ids: Collection[str], *, incremental: bool = False) -> Snapshot:
        """Full: every AU and the users of `folder_ids` (empty = all AUs). Incremental: delta since last run.

        Either way the snapshot's `delta_state` holds the delta links to store after a successful run (or None).
        """
        notes: list[str] = []
        if incremental:
            links = entra_delta.stored_links(self.graph)
            if links is None:
                notes.append("No stored delta links for this tenant: read everything.")
            else:
                try:
                    return entra_delta.incremental_snapshot(self.graph, links, folder_ids)
                except FullReadNeeded as exc:
                    notes.append(f"{exc} Read everything instead.")
        return entra_read.full_snapshot(self.graph, folder_ids, notes)

    def close(self) -> None:
        self.graph.close()
