"""The activation email's wording, rendered the way the outbox renders a batch: one Renderer for many emails (R18)."""

from __future__ import annotations

from django.template.loader import get_template
from django.urls import reverse, set_script_prefix
from django.utils import timezone

from notifications.emails import Renderer, _cuttable, render_email
from passportal.tokens import token_from_nonce


def activation(first_name: str, nonce: str, expires_at: str = "2026-12-09T17:06:00+00:00", **more) -> dict:
    return {"nonce": nonce, "first_name": first_name, "last_name": "L", "organisation": "Contoso Ltd",
            "msp_name": "Acme MSP", "is_pro_user": False, "expires_at": expires_at, **more}


def link(nonce: str, settings) -> str:
    return settings.PORTAL_BASE_URL + reverse("activation-link", args=[token_from_nonce(nonce)])


def test_r18_each_email_of_a_batch_has_its_own_name_link_and_expiry(settings):
    contexts = [activation("Ann", "nonce-ann", "2026-12-09T17:06:00+00:00"),
                activation("<b>Jo & Al</b>", "nonce-jo", "2027-01-31T08:30:00+00:00"),
                activation("", "nonce-nobody", "2026-12-09T17:06:00+00:00", is_pro_user=True)]
    renderer = Renderer()
    ann, jo, nobody = (renderer.render("activation", context) for context in contexts)

    assert "Hello Ann," in ann.text and "Hello Ann," in ann.html
    assert "Hello <b>Jo & Al</b>," in jo.text and "Hello &lt;b&gt;Jo &amp; Al&lt;/b&gt;," in jo.html
    assert "Hello," in nobody.text and "Hello," in nobody.html
    for email, context in zip((ann, jo, nobody), contexts, strict=True):
        own_link = link(context["nonce"], settings)
        assert email.text.count(own_link) == 1 and email.html.count(own_link) == 2
        assert [other for other in contexts if other is not context
                and link(other["nonce"], settings) in email.text + email.html] == []
    assert "expires on 9 December 2026, 17:06 UTC." in ann.text
    assert "expires on <strong>31 January 2027, 08:30 UTC</strong>." in jo.html
    assert nobody.subject == "Contoso Ltd: activate your account" and ann.subject == jo.subject == (
        "Contoso Ltd: set up your password portal account")
    # The batch's shared parts change nothing: each email reads as if it were rendered alone.
    assert [ann, jo, nobody] == [render_email("activation", context) for context in contexts]


def test_r18_the_expiry_reads_in_the_portals_time_zone():
    with timezone.override("Europe/Paris"):
        email = Renderer().render("activation", activation("Ann", "n1", "2026-07-01T21:59:00+00:00"))
    assert "expires on 1 July 2026, 23:59 CEST." in email.text
    assert "expires on <strong>1 July 2026, 23:59 CEST</strong>." in email.html


def test_r18_the_link_carries_the_portals_url_prefix(settings):
    set_script_prefix("/portal/")
    try:
        email = Renderer().render("activation", activation("Ann", "n1"))
        expected = link("n1", settings)
    finally:
        set_script_prefix("/")
    assert expected == f"{settings.PORTAL_BASE_URL}/portal/activate/{token_from_nonce('n1')}/"
    assert expected in email.text and expected in email.html


def test_r18_an_email_cut_at_its_name_and_link_reads_as_the_template_rendered_whole(settings):
    names = ["Ann", "", "<b>Jo & 'Al'</b>", "Zoë", "O\"Brien", "&amp;", "{{ first_name }}", "x" * 150]
    renderer = Renderer()
    for n, name in enumerate(names):
        for pro in (False, True):
            context = activation(name, f"nonce-{n}", is_pro_user=pro)
            email = renderer.render("activation", context)
            whole = {"first_name": name, "organisation": "Contoso Ltd", "msp_name": "Acme MSP", "is_pro_user": pro,
                     "activation_url": link(context["nonce"], settings), "expires_on": "9 December 2026, 17:06 UTC"}
            subject, text, html = (get_template(f"emails/activation/{part}").render(whole)
                                   for part in ("subject.txt", "body.txt", "body.html"))
            assert (email.subject, email.text, email.html) == (" ".join(subject.split()), text, html)


def test_r18_a_template_that_does_more_than_print_a_name_or_link_is_rendered_whole_for_each_email():
    assert _cuttable("Hello{% if first_name %} {{ first_name }}{% endif %}, {{ activation_url }} {{ organisation }}")
    for source in ("{{ first_name|upper }}", "{% if first_name == 'Ann' %}{% endif %}", "{% include 'other.txt' %}",
                   "{{ organisation|default:first_name }}", "{% if not first_name %}{% endif %}",
                   "{% with link=activation_url %}{{ link }}{% endwith %}", "{% for c in first_name %}{% endfor %}"):
        assert not _cuttable(source), source
