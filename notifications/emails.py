"""One function per email kind, three templates each (subject, text, HTML) under templates/emails/<kind>/."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.template.loader import render_to_string
from django.urls import reverse

from passportal.text import one_line
from passportal.tokens import token_from_nonce

from .models import EmailKind


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    text: str
    html: str


def _render(kind: str, context: dict) -> RenderedEmail:
    subject = render_to_string(f"emails/{kind}/subject.txt", context)
    return RenderedEmail(
        subject=" ".join(subject.split()),  # a header: one line, whatever the template's whitespace
        text=render_to_string(f"emails/{kind}/body.txt", context),
        html=render_to_string(f"emails/{kind}/body.html", context),
    )


def render_activation(context: dict) -> RenderedEmail:
    """The account-activation email: who set the account up, the link, and when the link expires."""
    is_pro_user = bool(context.get("is_pro_user"))
    # Names come from staff or a directory and go into the subject and one-line sentences: one line each,
    # whatever they hold, so no name can add a header or split the greeting.
    msp_name = one_line(context.get("msp_name") or "")
    organisation = one_line(context["organisation"])
    return _render(
        EmailKind.ACTIVATION,
        {
            "first_name": one_line(context.get("first_name") or ""),
            "organisation": organisation,
            # A Site-User hears of its own organisation first, and of the MSP that runs the portal.
            "msp_name": msp_name if (msp_name and msp_name != organisation) else "",
            "is_pro_user": is_pro_user,
            "activation_url": settings.PORTAL_BASE_URL
            + reverse("activation-link", args=[token_from_nonce(context["nonce"])]),
            "expires_at": datetime.fromisoformat(context["expires_at"]),
        },
    )


RENDERERS: dict[str, Callable[[dict], RenderedEmail]] = {
    EmailKind.ACTIVATION: render_activation,
}


def render_email(kind: str, context: dict) -> RenderedEmail:
    try:
        renderer = RENDERERS[kind]
    except KeyError:
        raise ValueError(f"No email templates for kind {kind!r}") from None
    return renderer(context)
