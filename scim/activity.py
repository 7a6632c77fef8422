"""A SCIM integration's recent activity in one line, for the provisioning overview (R27)."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone
from django.utils.timesince import timesince

from directory.models import Integration

from .models import ScimEvent

ERRORS_SINCE = timedelta(hours=24)


def summary(integration: Integration) -> str:
    events = ScimEvent.objects.filter(integration=integration)
    last = events.order_by("-at").values_list("at", flat=True).first()
    if last is None:
        return "when the identity provider pushes (SCIM): no request yet"
    errors = events.filter(status__gte=400, at__gte=timezone.now() - ERRORS_SINCE).count()
    return (f"when the identity provider pushes (SCIM): last request {timesince(last)} ago, "
            f"{errors} refused in 24 h")
