"""What staff do to portal users by hand through the API: create one, add or take a group.

A group staff add is theirs: no sync takes it away, and staff take only their own. A user staff create gets an
activation email like any other (the first Site Admin of a client opens user mapping this way): the caller
queues it (notifications.activation), the vault knows nothing of emails.
"""

from __future__ import annotations

from .models import Client, GroupMembership, MembershipSource, PermissionLevel, PortalUser, SecurityGroup


def create_portal_user(*, client: Client, email: str, first_name: str = "", last_name: str = "",
                       permission_level: PermissionLevel | None = None) -> PortalUser:
    """A new portal user; the caller queues its activation email."""
    user = PortalUser(client=client, email=email, first_name=first_name, last_name=last_name,
                      permission_level=permission_level,
                      # Staff chose the level: a mapping must not overwrite it.
                      permission_level_set_by_hand=permission_level is not None)
    user.refresh_status()
    user.save()
    return user


def add_group(user: PortalUser, group: SecurityGroup) -> bool:
    """Put the user in the group as staff did; False when staff had already."""
    _, created = GroupMembership.objects.get_or_create(user=user, group=group, source=MembershipSource.STAFF)
    return created


def remove_group(user: PortalUser, group: SecurityGroup) -> bool:
    """Take back a group staff added; a group a mapping grants stays until no mapping grants it."""
    deleted, _ = GroupMembership.objects.filter(user=user, group=group, source=MembershipSource.STAFF).delete()
    return bool(deleted)
