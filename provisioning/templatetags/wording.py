"""Template filters over provisioning.wording: `{% load wording %}` then `{{ run|outcome }}`."""

from __future__ import annotations

from django import template

from .. import wording

register = template.Library()

register.filter("outcome", wording.run_outcome)
register.filter("held_decision", wording.held_decision)
register.filter("moment", wording.moment)
