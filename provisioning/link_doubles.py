"""Resolve portal users linked from two directory identities (made before one person = one portal user).

Used by a data migration, with its historical models. Which identity keeps the portal user follows the
rule for emails: the one linked first keeps it (it held the user when the other was adopted into it);
on a tie, the one whose directory id sorts first. The others lose their link: their directory's next run
sees them as new and raises a creation issue naming who holds the email.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import datetime
from typing import Any

from django.db.models import Count


# The links are the data migration's historical DirectoryLink rows, which no static type names: Any.
def keeper_order(link: Any) -> tuple[datetime, str, int]:
    return (link.created_at, link.external_id.lower(), link.pk)


def resolve_doubles(link_model: Any, report: Callable[[str], None]) -> int:
    """Delete every link but the keeper's, per portal user; returns how many links were removed."""
    doubled = (link_model.objects.values("portal_user_id").annotate(n=Count("id"))
               .filter(n__gt=1).values_list("portal_user_id", flat=True))
    by_user: dict[int, list[Any]] = defaultdict(list)
    for link in link_model.objects.filter(portal_user_id__in=list(doubled)).select_related("integration"):
        by_user[link.portal_user_id].append(link)
    removed = 0
    for user_id, links in sorted(by_user.items()):
        keeper, *others = sorted(links, key=keeper_order)
        for link in others:
            report(
                f"Portal user {user_id} was linked from two directories: {keeper.integration.name} "
                f"({keeper.external_id}) keeps it, {link.integration.name} ({link.external_id}) lets go."
            )
            link.delete()
            removed += 1
    return removed
