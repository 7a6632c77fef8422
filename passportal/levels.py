"""Which permission levels a portal user may have: Pro-User levels in the Company Vault, Site-User levels elsewhere.

The one home of this rule, so the admin, the mapping form and the API refuse the same thing in the same words.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError

from .models import Client, PermissionLevel, UserKind

WRONG_KIND = "wrong_user_kind"


def wrong_kind_message(level: PermissionLevel | None, client: Client | None) -> str | None:
    """What is wrong with giving `level` to a user of `client`, or None when it fits (or nothing is chosen yet)."""
    if level is None or client is None or level.user_kind == client.user_kind:
        return None
    has = UserKind(client.user_kind).label
    return (f"{level.name} is a {UserKind(level.user_kind).label} level, but the users of {client.name} are "
            f"{has}s: choose a {has} level.")


def validate_level_for_client(level: PermissionLevel | None, client: Client | None) -> None:
    """Raise a ValidationError (code "wrong_user_kind") when `level` is of the wrong kind for `client`'s users."""
    if (message := wrong_kind_message(level, client)) is not None:
        raise ValidationError(message, code=WRONG_KIND)
