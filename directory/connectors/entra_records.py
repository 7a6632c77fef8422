"""Graph's user and AU objects as plain records, and the fields a read asks Graph for."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from .base import DirectoryAuthError, FolderRecord, UserRecord, canonical_guid
from .entra_client import short_url

USER_SELECT = "id,givenName,surname,displayName,mail,userPrincipalName,accountEnabled,otherMails"
AU_SELECT = "id,displayName,description,visibility"


def require_properties(item: Mapping[str, Any], url: str) -> None:
    """Limited information (notes §3): the app may list members but not read users. Never "removed"."""
    if item.get("displayName") is None and item.get("userPrincipalName") is None:
        raise DirectoryAuthError(
            f"Graph returned user {item.get('id')} with its id only ({short_url(url)}): the app lacks the "
            "application permission User.Read.All (or Directory.Read.All). Grant it with admin consent; "
            "nothing was changed."
        )


def user_record(item: Mapping[str, Any], folder_ids: Collection[str], url: str) -> UserRecord:
    require_properties(item, url)
    # Email: `mail` only. otherMails are alternate, often personal addresses and the UPN need not be a
    # mailbox: sending an activation link to either could reach the wrong person (R7 makes it an issue).
    return UserRecord(
        id=canonical_guid(item["id"]),
        first_name=(item.get("givenName") or "").strip(),
        last_name=(item.get("surname") or "").strip(),
        email=(item.get("mail") or "").strip(),
        enabled=item.get("accountEnabled") is True,
        folder_ids=frozenset(folder_ids),
        display_name=item.get("displayName") or "",
        upn=item.get("userPrincipalName") or "",
    )


def folder_record(item: Mapping[str, Any]) -> FolderRecord:
    name = item.get("displayName") or item["id"]
    return FolderRecord(id=canonical_guid(item["id"]), name=name, kind="au", path=name)


def is_user(item: Mapping[str, Any]) -> bool:
    return item.get("@odata.type", "#microsoft.graph.user") == "#microsoft.graph.user"
