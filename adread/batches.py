"""Cut a list into consecutive slices: IN lists, ORed LDAP filters and bulk writes are bounded per statement.

In adread (no Django) so that the portal and the on-prem agent share the one helper.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TypeVar

T = TypeVar("T")


def chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    """Slices of at most `size` items, in order; none for an empty sequence."""
    if size < 1:
        raise ValueError(f"a chunk holds at least one item, not {size}")
    for start in range(0, len(items), size):
        yield items[start:start + size]


__all__ = ["chunks"]
