"""Names that must stay on one line: an email's subject and greeting, the Client's name.

A name with a line break could, in a header, start a header of its own (Bcc: ...), and in a one-line
field it splits what a person reads. CR, LF, the other control characters and Unicode's line and
paragraph separators are what can break a line.
"""

from __future__ import annotations

import re
import unicodedata

from django.core.exceptions import ValidationError

_BREAKING = {"Cc", "Zl", "Zp"}  # control characters (CR, LF, tab...), line separator, paragraph separator


def _breaks_line(ch: str) -> bool:
    return unicodedata.category(ch) in _BREAKING


def one_line(value: str) -> str:
    """Every line break or control character becomes a space; the spaces that leaves become one."""
    if value.isprintable():
        return value  # the common case, checked in C: isprintable is False for every character above
    spaced = "".join(" " if _breaks_line(ch) else ch for ch in value)
    return re.sub(" {2,}", " ", spaced).strip()


def validate_one_line(value: str) -> None:
    """Refuse, for a field a person types, what one_line would have to change."""
    if any(_breaks_line(ch) for ch in value):
        raise ValidationError(
            "The name must be on one line: remove the line breaks, tabs or other control characters.",
            code="not_one_line",
        )
