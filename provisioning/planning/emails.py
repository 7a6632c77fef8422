"""R4: who holds each email the directory's users claim, independent of the order the directory lists them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from directory.connectors.base import UserRecord

from .data import Current, LinkState
from .reasons import IssueReason


@dataclass(frozen=True, slots=True)  # one per claimed email: slots keep 100,000 of them small
class Owner:
    external_id: str  # "" when the holder is an identity of another integration
    user_id: int | None  # the portal user that will hold the email (None: to be created)
    elsewhere: str = ""  # the other integration whose identity holds it


def lowered(email: str) -> str:
    """The email as owners are keyed; the same string when it is lowercase already (most are: no copy of each)."""
    return email if email.islower() else email.lower()


def _claims(in_scope: Mapping[str, UserRecord], emails: Iterable[tuple[str, str]],
            links: Mapping[str, LinkState]) -> dict[str, str | list[str]]:
    """Lowercased email -> the identity that claims it, or the identities when several do: enabled ones, and
    linked ones whatever their state. (A list only for a shared email: one per user weighed ~6 MB per 100,000.)"""
    claims: dict[str, str | list[str]] = {}
    for external_id, email in emails:
        if in_scope[external_id].enabled or external_id in links:
            key = lowered(email)
            found = claims.get(key)
            if found is None:
                claims[key] = external_id
            elif isinstance(found, str):
                claims[key] = [found, external_id]
            else:
                found.append(external_id)
    return claims


def resolve_email_owners(
    in_scope: Mapping[str, UserRecord], emails: Iterable[tuple[str, str]], current: Current
) -> dict[str, Owner]:
    """R4: who holds each claimed email (lowercased), independent of the order the directory lists users.

    Not listed: an email that one identity claims and whose linked portal user holds it already (the common
    case: nearly every email of a run). Nobody else claims it, so it stays where it is; only an identity with no
    portal user yet asks who holds an email, and a linked one whose email changed case keeps it either way.
    (100,000 such entries weighed ~11 MB, at the moment the run holds the most.)
    """
    links = current.links
    open_claims = {email: claimed for email, claimed in _claims(in_scope, emails, links).items()
                   if not (isinstance(claimed, str) and _holds_it(current, claimed, email))}
    # Who holds the emails still open (the portal keeps each email once per client, whatever its case).
    holders = {key: u.id for u in current.users.values() if (key := lowered(u.email)) in open_claims}
    owners: dict[str, Owner] = {}
    user_links: dict[int, str] | None = None
    for email, claimed in open_claims.items():
        holder = holders.get(email)
        claimants = [claimed] if isinstance(claimed, str) else sorted(claimed)
        if holder is None:
            owners[email] = Owner(claimants[0], _linked_user(links, claimants[0]))
            continue
        if holder in current.held_elsewhere:
            # Another directory of this client already brought this person in: it keeps the email.
            owners[email] = Owner("", holder, elsewhere=current.held_elsewhere[holder])
            continue
        keeper = next((c for c in claimants if _linked_user(links, c) == holder), None)
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
            adopter = next((c for c in claimants if c not in links), None)
            if adopter is not None:
                owners[email] = Owner(adopter, holder)
    return owners


def _holds_it(current: Current, external_id: str, email: str) -> bool:
    """Whether the identity is linked to the portal user that holds this (lowercased) email."""
    link = current.links.get(external_id)
    user = current.users.get(link.user_id) if link is not None else None
    return user is not None and lowered(user.email) == email


def _linked_user(links: Mapping[str, LinkState], external_id: str) -> int | None:
    link = links.get(external_id)
    return link.user_id if link is not None else None


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
