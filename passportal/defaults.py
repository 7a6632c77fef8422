"""Default permission levels: seeded by a data migration, and again after a database flush."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .models import PermissionLevel  # or the migration's historical model of it

# Ranked so that R13 ("the highest-ranked of those mappings") has an obvious answer.
DEFAULT_PERMISSION_LEVELS = [
    ("pro", "Administrator", 40, False),
    ("pro", "Manager", 30, False),
    ("pro", "Technician", 20, False),
    ("pro", "Read Only", 10, False),
    ("site", "Site Admin", 40, True),
    ("site", "Site Manager", 30, False),
    ("site", "Site User", 20, False),
    ("site", "Read Only", 10, False),
]


def ensure_default_permission_levels(permission_level_model: type[PermissionLevel]) -> int:
    """Seed the defaults of a kind that has no levels at all; a kind staff have set up is left alone."""
    created = 0
    for kind in ("pro", "site"):
        if permission_level_model.objects.filter(user_kind=kind).exists():
            continue
        for level_kind, name, rank, is_site_admin in DEFAULT_PERMISSION_LEVELS:
            if level_kind == kind:
                permission_level_model.objects.create(
                    user_kind=kind, name=name, rank=rank, is_site_admin=is_site_admin
                )
                created += 1
    return created
