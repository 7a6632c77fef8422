"""One function per email kind, three templates each (subject, text, HTML) under templates/emails/<kind>/.

The outbox renders a batch with one Renderer: each kind's templates are looked up once, and what the emails of a
batch share (the link's base, an expiry's wording) is worked out once, not per email. The templates themselves are
rendered once per batch with markers where each email's own values go (name, link), then filled in per email:
exact when those values are only printed or tested for emptiness, which Renderer checks in each template's source
(else it renders each email whole). The emails read the same either way.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.template.defaultfilters import date as date_filter
from django.template.loader import get_template
from django.urls import reverse
from django.utils.html import conditional_escape
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
# An email's own values: all the rest is usually the same for the whole batch (one client, one expiry).
OWN_VALUES = ("first_name", "activation_url")
_TAG = re.compile(r"\{\{.*?\}\}|\{%.*?%\}", re.DOTALL)
_TAGS_THAT_READ_NOTHING_ELSE = {"if", "elif", "else", "endif", "autoescape", "endautoescape"}
# Where the template printed an own value: as it is (autoescape off) or escaped. \x00 appears in no template.
_MARKER = re.compile(r"\x00(?:<(\d+)>|&lt;(\d+)&gt;)\x00")

# A template cut at its own values: (text, own value's index or -1 at the end, whether it goes in escaped).
Pieces = list[tuple[str, int, bool]]


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    text: str
    html: str


class Renderer:
    """Renders many emails, in the language, time zone and URL prefix in force while it renders (one batch's)."""

    def __init__(self) -> None:
        self._templates: dict[str, list[Any]] = {}
        self._cuttable: dict[str, bool] = {}
        self._cuts: dict[tuple, list[Pieces]] = {}
        self._expiries: dict[str, str] = {}
        self._link: tuple[str, str] | None = None

    def render(self, kind: str, context: dict) -> RenderedEmail:
        try:
            renderer = RENDERERS[kind]
        except KeyError:
            raise ValueError(f"No email templates for kind {kind!r}") from None
        return renderer(self, context)

    def templates(self, kind: str, shared: dict, own: dict) -> RenderedEmail:
        """The kind's three templates over the batch's shared values and this email's own (OWN_VALUES)."""
        if kind not in self._templates:
            self._templates[kind] = [get_template(f"emails/{kind}/{name}") for name in TEMPLATE_NAMES]
            self._cuttable[kind] = all(_cuttable(template.template.source) for template in self._templates[kind])
        if self._cuttable[kind] and not any("\x00" in str(value) for value in shared.values()):
            subject, text, html = (_filled(pieces, list(own.values())) for pieces in self._cut(kind, shared, own))
        else:
            subject, text, html = (template.render({**shared, **own}) for template in self._templates[kind])
        # A header: one line, whatever the template's whitespace.
        return RenderedEmail(subject=" ".join(subject.split()), text=text, html=html)

    def _cut(self, kind: str, shared: dict, own: dict) -> list[Pieces]:
        """The kind's templates rendered with these shared values and markers for the own ones, once per batch."""
        # Whether an own value is empty is part of the key: {% if first_name %} goes one way or the other.
        key = (kind, *shared.items(), *((name, bool(value)) for name, value in own.items()))
        if key not in self._cuts:
            markers = {name: f"\x00<{index}>\x00" if value else "" for index, (name, value) in enumerate(own.items())}
            self._cuts[key] = [_cut(template.render({**shared, **markers})) for template in self._templates[kind]]
        return self._cuts[key]

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


def _cuttable(source: str) -> bool:
    """Whether the template only prints an email's own values ({{ name }}) or tests them ({% if name %})."""
    for tag in _TAG.findall(source):
        words = tag[2:-2].split()
        if tag.startswith("{%") and (not words or words[0] not in _TAGS_THAT_READ_NOTHING_ELSE):
            return False  # include, with, for, a tag of a library: it may read any value, in any way
        own = [name for name in OWN_VALUES if re.search(rf"\b{name}\b", tag)]
        if own and words not in ([own[0]], ["if", own[0]]):
            return False  # a filter, a comparison: the value is not only printed
    return True


def _cut(rendered: str) -> Pieces:
    parts = _MARKER.split(rendered)  # text, index as it is, index escaped, text, ..., text
    pieces = [(parts[at], int(parts[at + 1] or parts[at + 2]), parts[at + 2] is not None)
              for at in range(0, len(parts) - 1, 3)]
    return [*pieces, (parts[-1], -1, False)]


def _filled(pieces: Pieces, values: list) -> str:
    """What the template prints with these values: each printed as it is, or escaped as Django escapes it."""
    out = []
    for text, index, escaped in pieces:
        out.append(text)
        if index >= 0:
            out.append(conditional_escape(values[index]) if escaped else str(values[index]))
    return "".join(out)


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
            "organisation": organisation,
            # A Site-User hears of its own organisation first, and of the MSP that runs the portal.
            "msp_name": msp_name if (msp_name and msp_name != organisation) else "",
            "is_pro_user": is_pro_user,
            "expires_on": renderer.expiry(context["expires_at"]),
        },
        {
            "first_name": one_line(context.get("first_name") or ""),
            "activation_url": renderer.activation_url(token_from_nonce(context["nonce"])),
        },
    )


RENDERERS: dict[str, Callable[[Renderer, dict], RenderedEmail]] = {
    EmailKind.ACTIVATION: render_activation,
}


def render_email(kind: str, context: dict) -> RenderedEmail:
    """One email on its own (a batch shares one Renderer)."""
    return Renderer().render(kind, context)
