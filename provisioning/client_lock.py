"""Runs of one client apply one at a time: who holds an email is decided per client, not per integration.

Reads and plans overlap freely; only the apply takes the client's lock (a row lock on the client, held by
the apply's transaction). A run that waited re-plans when the client's users or links changed while it
planned, so a create whose email another run has just taken becomes an adoption or a creation issue
instead of a unique-constraint failure.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import transaction
from django.db.models import Count, Max

from passportal.models import Client, PortalUser

from .models import DirectoryLink


def client_state_version(client_id: int) -> tuple:
    """Changes whenever a user or a link of the client is added, removed or saved (two aggregate queries)."""
    users = PortalUser.objects.filter(client_id=client_id).aggregate(n=Count("id"), last=Max("updated_at"))
    links = DirectoryLink.objects.filter(integration__client_id=client_id).aggregate(n=Count("id"), last=Max("id"))
    return (users["n"], users["last"], links["n"], links["last"])


@contextmanager
def client_apply_lock(client_id: int) -> Iterator[None]:
    """A transaction holding the client's row lock (PostgreSQL); SQLite's write lock serialises anyway."""
    with transaction.atomic():
        list(Client.objects.select_for_update().filter(pk=client_id).values_list("pk", flat=True))
        yield
