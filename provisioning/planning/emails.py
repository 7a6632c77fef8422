"""R4: who holds each email the directory's users claim, independent of the order the directory lists them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from directory.connectors.base import UserRecord

from .data import Current
from .reasons import IssueReason


@dataclass(frozen=True)
class Owner:
    external_id: str  # "" when the holder is an identity of another integration
    user_id: int | None  # the portal user that will hold the email (None: to be created)
    elsewhere: str = ""  # the other integration whose identity holds it


def _claims(in_scope: Mapping[str, UserRecord], emails: Mapping[str, str],
            linked_user: Mapping[str, int]) -> dict[str, list[str]]:
    """Lowercased email -> the identities that claim it: enabled ones, and linked ones whatever their state."""
    claims: dict[str, list[str]] = {}
    for external_id, email in emails.items():
        if in_scope[external_id].enabled or external_id in linked_user:
            key = email.lower()
            if key in claims:
                claims[key].append(external_id)
            else:
                claims[key] = [external_id]
    return claims


def resolve_email_owners(
    in_scope: Mapping[str, UserRecord], emails: Mapping[str, str], current: Current
) -> dict[str, Owner]:
    """R4: who holds each claimed email (lowercased), independent of the order the directory lists users."""
    holders = {u.email.lower(): u.id for u in current.users.values()}
    linked_user = {ext: link.user_id for ext, link in current.links.items()}
    owners: dict[str, Owner] = {}
    user_links: dict[int, str] | None = None
    for email, claimants in _claims(in_scope, emails, linked_user).items():
        holder = holders.get(email)
        if len(claimants) == 1:
            only = claimants[0]
            if holder is not None and linked_user.get(only) == holder:
                owners[email] = Owner(only, holder)  # the common case: a linked user keeps its email
                continue
        else:
            claimants.sort()
        if holder is None:
            owners[email] = Owner(claimants[0], linked_user.get(claimants[0]))
            continue
        if holder in current.held_elsewhere:
            # Another directory of this client already brought this person in: it keeps the email.
            owners[email] = Owner("", holder, elsewhere=current.held_elsewhere[holder])
            continue
        keeper = next((c for c in claimants if linked_user.get(c) == holder), None)
        if keeper is not None:
            owners[email] = Owner(keeper, holder)
            continue
        if user_links is None:
            user_links = {link.user_id: ext for ext, link in current.links.items()}
        if holder in user_links:
            # Linked to an identity of this integration that no longer claims it: it keeps the
            # email this run; the claimant is an issue until the holder lets go.
            owners[email] = Owner(user_links[holder], holder)
        else:
            adopter = next((c for c in claimants if c not in linked_user), None)
            if adopter is not None:
                owners[email] = Owner(adopter, holder)
    return owners


def lost_email_reason(email: str, owner: Owner | None) -> tuple[IssueReason, str]:
    """(issue reason, message) for a directory user that may not have this email."""
    if owner is not None and owner.elsewhere:
        return IssueReason.DUPLICATE_EMAIL, (
            f"the email {email} belongs to a portal user that comes from {owner.elsewhere}"
        )
    if owner is not None and owner.user_id is None:
        return IssueReason.DUPLICATE_EMAIL, (
            f"another directory user ({owner.external_id}) has the email {email}; "
            "the one whose directory id sorts first keeps it"
        )
    if owner is not None:
        # Linked already, or adopting the portal user that holds the email in this very run: the same
        # reason either way, so the issue is not closed and raised again under another name next run (R7).
        return IssueReason.DUPLICATE_EMAIL, (
            f"the email {email} belongs to another directory user ({owner.external_id})")
    return IssueReason.EMAIL_TAKEN, f"the email {email} is already used by another user of this client"
