"""One function per email kind, three templates each (subject, text, HTML) under templates/emails/<kind>/.

The outbox renders a batch with one Renderer: each kind's templates are looked up once, and what the emails of a
batch share (the link's base, an expiry's wording) is worked out once, not per email; the emails read the same.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.template.defaultfilters import date as date_filter
from django.template.loader import get_template
from django.urls import reverse
from django.utils.timezone import is_aware, localtime

from passportal.text import one_line
from passportal.tokens import token_from_nonce

from .models import EmailKind

TEMPLATE_NAMES = ("subject.txt", "body.txt", "body.html")
# How an activation email words its link's expiry: the template's `date` filter, applied once per expiry.
EXPIRY_FORMAT = "j F Y, H:i T"
# Stands for a token when the link's base is worked out: a token's length, in its alphabet (URL-safe base64,
# which reverse() leaves as it is), so that the base is the link around it.
TOKEN_MARKER = "0" * 43


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    text: str
    html: str


class Renderer:
    """Renders many emails, in the language, time zone and URL prefix in force while it renders (one batch's)."""

    def __init__(self) -> None:
        self._templates: dict[str, list[Any]] = {}
        self._expiries: dict[str, str] = {}
        self._link: tuple[str, str] | None = None

    def render(self, kind: str, context: dict) -> RenderedEmail:
        try:
            renderer = RENDERERS[kind]
        except KeyError:
            raise ValueError(f"No email templates for kind {kind!r}") from None
        return renderer(self, context)

    def templates(self, kind: str, context: dict) -> RenderedEmail:
        if kind not in self._templates:
            self._templates[kind] = [get_template(f"emails/{kind}/{name}") for name in TEMPLATE_NAMES]
        subject, text, html = (template.render(context) for template in self._templates[kind])
        # A header: one line, whatever the template's whitespace.
        return RenderedEmail(subject=" ".join(subject.split()), text=text, html=html)

    def expiry(self, expires_at: str) -> str:
        """An ISO time as the email words it, in the current time zone, as the `date` filter would."""
        if expires_at not in self._expiries:
            when = datetime.fromisoformat(expires_at)
            if settings.USE_TZ and is_aware(when):  # what a template does to a time before its `date` filter
                when = localtime(when)
            self._expiries[expires_at] = date_filter(when, EXPIRY_FORMAT)
        return self._expiries[expires_at]

    def activation_url(self, token: str) -> str:
        if self._link is None:
            head, _, tail = reverse("activation-link", args=[TOKEN_MARKER]).rpartition(TOKEN_MARKER)
            self._link = (settings.PORTAL_BASE_URL + head, tail)
        return self._link[0] + token + self._link[1]


def render_activation(renderer: Renderer, context: dict) -> RenderedEmail:
    """The account-activation email: who set the account up, the link, and when the link expires."""
    is_pro_user = bool(context.get("is_pro_user"))
    # Names come from staff or a directory and go into the subject and one-line sentences: one line each,
    # whatever they hold, so no name can add a header or split the greeting.
    msp_name = one_line(context.get("msp_name") or "")
    organisation = one_line(context["organisation"])
    return renderer.templates(
        EmailKind.ACTIVATION,
        {
            "first_name": one_line(context.get("first_name") or ""),
            "organisation": organisation,
            # A Site-User hears of its own organisation first, and of the MSP that runs the portal.
            "msp_name": msp_name if (msp_name and msp_name != organisation) else "",
            "is_pro_user": is_pro_user,
            "activation_url": renderer.activation_url(token_from_nonce(context["nonce"])),
            "expires_on": renderer.expiry(context["expires_at"]),
        },
    )


RENDERERS: dict[str, Callable[[Renderer, dict], RenderedEmail]] = {
    EmailKind.ACTIVATION: render_activation,
}


def render_email(kind: str, context: dict) -> RenderedEmail:
    """One email on its own (a batch shares one Renderer)."""
    return Renderer().render(kind, context)
