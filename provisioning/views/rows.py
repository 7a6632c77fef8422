"""Turn folders and a plan's described changes into rows a template shows."""

from __future__ import annotations

from dataclasses import dataclass, field

from directory.models import Folder, FolderKind, Integration
from passportal.models import PortalUser

from .. import wording
from ..models import IssueReason
from .folder_counts import FolderCounts


@dataclass
class FolderRow:
    folder: Folder
    depth: int
    level: str = ""
    groups: str = ""
    parent_pk: int | str | None = None  # the row above it in the tree, so the filter can keep the path to a match
    users: int | None = None  # users directly in it, when the portal knows (views/folder_counts.py)
    linked: int | None = None  # portal users its last sync linked, when only that is known
    opens_branch: str = ""  # the first row of the Groups branch carries the branch's name, shown above it

    @property
    def is_group(self) -> bool:
        return self.folder.kind in GROUP_KINDS

    @property
    def kind_label(self) -> str:
        # Groups are named by kind in full (G1: Microsoft 365 groups shown as such); OUs and AUs keep their badge.
        return self.folder.get_kind_display() if self.is_group else self.folder.kind.upper()

    @property
    def mapped(self) -> bool:
        return bool(self.level)

    @property
    def users_text(self) -> str:
        if self.users is not None:
            return _how_many(self.users, "user")
        return _how_many(self.linked, "portal user") if self.linked is not None else ""


def _how_many(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


GROUP_KINDS = frozenset({FolderKind.GROUP, FolderKind.M365_GROUP})
GROUPS_BRANCH = "groups-branch"  # the Groups branch's key in the tree: its rows name it as their parent


def folder_rows(integration: Integration, counts: FolderCounts | None = None) -> list[FolderRow]:
    """OUs as a tree (depth-first, by name), AUs as a list, then the directory's groups as a branch of their own
    (by name, one level below it); each with its mapping, if it has one, and its users."""
    folders = list(
        integration.folders.filter(gone=False).select_related("mapping__permission_level")
        .prefetch_related("mapping__security_groups")
    )
    by_id = {f.pk: f for f in folders}
    children: dict[int | None, list[Folder]] = {}
    groups = sorted((f for f in folders if f.kind in GROUP_KINDS), key=lambda f: (f.name.lower(), f.pk))
    folders = [f for f in folders if f.kind not in GROUP_KINDS]
    for folder in folders:
        parent = folder.parent_id if folder.kind == FolderKind.OU and folder.parent_id in by_id else None
        children.setdefault(parent, []).append(folder)
    rows: list[FolderRow] = []

    def walk(parent: int | None, depth: int) -> None:
        for folder in sorted(children.get(parent, []), key=lambda f: (f.name.lower(), f.pk)):
            rows.append(_row(folder, depth, parent, counts or FolderCounts()))
            walk(folder.pk, depth + 1)

    walk(None, 0)
    for folder in groups:
        row = _row(folder, 1, None, counts or FolderCounts())
        row.parent_pk = GROUPS_BRANCH
        rows.append(row)
    if groups:
        rows[-len(groups)].opens_branch = "Groups"
    return rows


def _row(folder: Folder, depth: int, parent: int | None, counts: FolderCounts) -> FolderRow:
    row = FolderRow(folder, depth, parent_pk=parent)
    if counts.known:
        row.users = counts.users.get(folder.external_id, 0)
    mapping = getattr(folder, "mapping", None)
    if mapping is None:
        return row
    if not counts.known:
        row.linked = counts.linked.get(folder.external_id, 0)
    row.level = mapping.permission_level.name
    row.groups = ", ".join(sorted(g.name for g in mapping.security_groups.all()))
    return row


@dataclass
class ChangeRow:
    action: str
    user: str
    user_id: int | None = None
    detail: str = ""
    # Through which folders, and for a group which chain of nested groups, the user is in scope:
    # "Corp/Sales", "Sales-Team > EMEA > Alice Lee" (the plan's `via`, with the user's name at the end).
    via: list[str] = field(default_factory=list)


def _email_of(text: str) -> str:
    return text.rsplit("<", 1)[-1].rstrip(">") if "<" in text else ""


def change_rows(changes: dict, *, client_id: int | None = None, directory_kind: str = "") -> list[ChangeRow]:
    """Every change a plan described, in one list, in words: create, adopt, update, groups, disable, ..."""
    rows = [_create_row(item) for item in changes.get("create", [])]
    rows += [ChangeRow("adopt", text) for text in changes.get("adopt", [])]
    for item in changes.get("update", []):
        detail = "; ".join(wording.field_change(field, old, new) for field, (old, new) in item["changes"].items())
        rows.append(ChangeRow("update", item["user"], item.get("user_id"), detail, _via(item)))
    rows += [ChangeRow("change groups", g["user"], g.get("user_id"), wording.group_change(g["added"], g["removed"]),
                       _via(g)) for g in changes.get("groups", [])]
    rows += [ChangeRow("disable", d["user"], d.get("user_id"), _disable_detail(d, directory_kind))
             for d in changes.get("disable", [])]
    rows += [ChangeRow("re-enable", r["user"], r.get("user_id"),
                       "stays disabled: disabled by staff" if r.get("stays_disabled_by_staff") else "", _via(r))
             for r in changes.get("reenable", [])]
    rows += [ChangeRow("hold disable", d["user"], d.get("user_id"), _disable_detail(d, directory_kind))
             for d in changes.get("held", [])]
    rows += [ChangeRow("creation issue", i["user"], None, i.get("message") or _issue_reason(i.get("reason", "")))
             for i in changes.get("issues", [])]
    if client_id is not None:
        # Created users have no id in the plan: find them by email, so the run page links to them.
        wanted = {_email_of(r.user).lower(): r for r in rows if r.user_id is None and r.action in ("create", "adopt")}
        if wanted:
            for pk, email in PortalUser.objects.filter(client_id=client_id).values_list("pk", "email"):
                if (row := wanted.get(email.lower())) is not None:
                    row.user_id = pk
    return rows


def _create_row(item: str | dict) -> ChangeRow:
    if isinstance(item, str):  # runs recorded before creations named their level and groups
        return ChangeRow("create", item)
    return ChangeRow("create", item["user"], detail=wording.grants(item.get("level", ""), item.get("groups", [])),
                     via=_via(item))


def _via(item: dict) -> list[str]:
    """G5: through which folders and chains the user of a change is in scope, ending with the user's name."""
    return wording.via_chains(item.get("via", []), _name_of(item["user"]))


def _disable_detail(item: dict, directory_kind: str) -> str:
    """Why, and for a group which one: "Moved out of every mapped OU: removed from group Sales-Team"."""
    sentence = wording.disable_reason(item.get("reason", ""), directory_kind)
    return f"{sentence}: {item['detail']}" if item.get("detail") else sentence


def _name_of(user: str) -> str:
    return user.rsplit("<", 1)[0].strip() if "<" in user else user


def _issue_reason(reason: str) -> str:
    return IssueReason(reason).label if reason in IssueReason.values else reason

