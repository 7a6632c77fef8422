"""Directory values made safe to store and show: a hostile name or email never crashes a run (R6, R7)."""

from __future__ import annotations

import unicodedata

from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from directory.connectors.base import UserRecord

from .reasons import IssueReason

NAME_MAX = 150
EMAIL_MAX = 254


def clean_name(value: str) -> str:
    """Control characters dropped, whitespace trimmed, cut to the column's length: never a crashed run."""
    if value.isprintable() and len(value) <= NAME_MAX and value.strip() == value and "  " not in value:
        return value  # the common case, checked in C
    text = "".join(ch for ch in (value or "") if unicodedata.category(ch)[0] != "C" or ch == " ")
    return " ".join(text.split())[:NAME_MAX]


def clean_email(value: str, stored: str = "") -> tuple[str, IssueReason | None]:
    """(email, problem): trimmed; invalid ones are reported, never stored (R7).

    `stored`: the email the portal holds for this identity already (validated when stored): not checked again.
    """
    email = (value or "").strip()
    if email and email == stored:
        return email, None
    if not email:
        return "", IssueReason.NO_EMAIL
    # isprintable() is False for every control, format or unassigned character (category C), checked in C first.
    if len(email) > EMAIL_MAX or (not email.isprintable() and any(unicodedata.category(ch)[0] == "C" for ch in email)):
        return email, IssueReason.INVALID_EMAIL
    try:
        validate_email(email)
    except ValidationError:
        return email, IssueReason.INVALID_EMAIL
    return email, None


def display(user: UserRecord) -> str:
    name = " ".join(p for p in (clean_name(user.first_name), clean_name(user.last_name)) if p)
    return name or clean_name(user.display_name) or user.upn or user.id


def storable(value: str) -> str:
    """NUL is the one character PostgreSQL cannot store (text or JSON): U+FFFD takes its place."""
    return value.replace("\x00", "\ufffd") if "\x00" in value else value


def shown(value: str) -> str:
    """A directory value as a message quotes it: control characters as "?", at most 100 characters."""
    return "".join(ch if unicodedata.category(ch)[0] != "C" else "?" for ch in (value or "").strip())[:100]
