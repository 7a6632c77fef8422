"""Turn folders and a plan's described changes into rows a template shows."""

from __future__ import annotations

from dataclasses import dataclass

from directory.models import Folder, FolderKind, Integration
from passportal.models import PortalUser


@dataclass
class FolderRow:
    folder: Folder
    depth: int
    level: str = ""
    groups: str = ""

    @property
    def mapped(self) -> bool:
        return bool(self.level)


def folder_rows(integration: Integration) -> list[FolderRow]:
    """OUs as a tree (depth-first, by name), AUs as a list; each with its mapping, if it has one."""
    folders = list(
        integration.folders.filter(gone=False).select_related("mapping__permission_level")
        .prefetch_related("mapping__security_groups")
    )
    by_id = {f.pk: f for f in folders}
    children: dict[int | None, list[Folder]] = {}
    for folder in folders:
        parent = folder.parent_id if folder.kind == FolderKind.OU and folder.parent_id in by_id else None
        children.setdefault(parent, []).append(folder)
    rows: list[FolderRow] = []

    def walk(parent: int | None, depth: int) -> None:
        for folder in sorted(children.get(parent, []), key=lambda f: (f.name.lower(), f.pk)):
            rows.append(_row(folder, depth))
            walk(folder.pk, depth + 1)

    walk(None, 0)
    return rows


def _row(folder: Folder, depth: int) -> FolderRow:
    mapping = getattr(folder, "mapping", None)
    if mapping is None:
        return FolderRow(folder, depth)
    groups = ", ".join(sorted(g.name for g in mapping.security_groups.all()))
    return FolderRow(folder, depth, level=mapping.permission_level.name, groups=groups)


@dataclass
class ChangeRow:
    action: str
    user: str
    user_id: int | None = None
    detail: str = ""


def _email_of(text: str) -> str:
    return text.rsplit("<", 1)[-1].rstrip(">") if "<" in text else ""


def change_rows(changes: dict, *, client_id: int | None = None) -> list[ChangeRow]:
    """Every change a plan described, in one list: create, adopt, update (field: old -> new), disable, ..."""
    rows = [ChangeRow("create", text) for text in changes.get("create", [])]
    rows += [ChangeRow("adopt", text) for text in changes.get("adopt", [])]
    for item in changes.get("update", []):
        detail = "; ".join(f"{field}: {old or '-'} -> {new or '-'}" for field, (old, new) in item["changes"].items())
        rows.append(ChangeRow("update", item["user"], item.get("user_id"), detail))
    rows += [ChangeRow("disable", d["user"], d.get("user_id"), d.get("reason", "")) for d in changes.get("disable", [])]
    rows += [ChangeRow("re-enable", r["user"], r.get("user_id"),
                       "stays disabled: disabled by staff" if r.get("stays_disabled_by_staff") else "")
             for r in changes.get("reenable", [])]
    rows += [ChangeRow("hold disable", d["user"], d.get("user_id"), d.get("reason", ""))
             for d in changes.get("held", [])]
    rows += [ChangeRow("creation issue", i["user"], None, i.get("message") or i.get("reason", ""))
             for i in changes.get("issues", [])]
    if client_id is not None:
        # Created users have no id in the plan: find them by email, so the run page links to them.
        wanted = {_email_of(r.user).lower(): r for r in rows if r.user_id is None and r.action in ("create", "adopt")}
        if wanted:
            for pk, email in PortalUser.objects.filter(client_id=client_id).values_list("pk", "email"):
                if (row := wanted.get(email.lower())) is not None:
                    row.user_id = pk
    return rows


COUNT_LABELS = [
    ("created", "to create"), ("adopted", "to adopt (existing users linked)"), ("updated", "to update"),
    ("disabled", "to disable"), ("reenabled", "to re-enable"), ("issues_opened", "creation issues"),
    ("held", "disables held for staff (R22)"), ("groups_added", "group memberships to add"),
    ("groups_removed", "group memberships to remove"),
]
