"""Who acted by hand: the one type every staff action takes and stores.

A staff action is done by a staff member (Django's `User`, the account that signed in to the admin or called the
API); `None` stands for the portal itself or a command run on the server, where no person is known. Whatever
takes an `Actor` stores it as given, so a row says who did it, or that nobody did by hand.
"""

from __future__ import annotations

from typing import TypeAlias

from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import AnonymousUser, User

Actor: TypeAlias = User | None


def stored(by: Actor) -> User | None:
    """The actor as a foreign key stores it: a saved staff member, or None (a user not saved has no row to point at)."""
    return by if by is not None and by.pk is not None else None


def actor_of(user: AbstractBaseUser | AnonymousUser) -> Actor:
    """The actor behind a request's user (`request.user`): the staff member, or None for anybody else.

    Staff pages and the API let only signed-in staff reach an action, so None does not happen there; it is
    what `stored` would make of an anonymous user anyway (no row to point at).
    """
    return user if isinstance(user, User) else None
