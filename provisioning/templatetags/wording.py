"""Template filters over provisioning.wording: `{% load wording %}` then `{{ run|outcome }}`."""

from __future__ import annotations

from collections.abc import Mapping

from django import template

from .. import wording

register = template.Library()

register.filter("outcome", wording.run_outcome)
register.filter("held_decision", wording.held_decision)
register.filter("moment", wording.moment)
register.filter("duration", wording.duration)
register.filter("counts_in_words", wording.counts_in_words)


@register.filter
def run_counts(counts: Mapping[str, int] | None) -> list[tuple[str, int]]:
    """A run's recorded figures that are not zero, labelled: for loops in templates."""
    return wording.labelled_counts(counts or {}, nonzero=True)
