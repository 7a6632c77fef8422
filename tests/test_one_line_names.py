"""Names with line breaks (CR/LF and friends) never reach an email header or a one-line field as they are.

A client named by staff, or a person's name from a directory, can hold a line break. In an email's
subject it could start a header of its own; in a greeting it splits the sentence. The activation email
puts each name on one line; the Client admin form refuses such a name with a clear error.
"""

from __future__ import annotations

import pytest

from notifications.activation import queue_activation_emails
from notifications.outbox import send_queued
from passportal.models import Client, PortalUser
from passportal.text import one_line

pytestmark = pytest.mark.django_db

INJECTED_CLIENT = "Contoso\r\nX-Injected: yes"
INJECTED_FIRST_NAME = "Ann\r\nBcc: evil@attacker.test"


def send_activation_to(user: PortalUser, smtp):
    assert queue_activation_emails([user.pk]) == 1
    assert send_queued().sent == 1
    (delivered,) = smtp.delivered
    return delivered


def test_names_with_line_breaks_reach_the_activation_email_on_one_line(smtp):
    client = Client.objects.create(name=INJECTED_CLIENT, site_enabled=True)
    user = PortalUser.objects.create(client=client, email="ann@contoso.test", first_name=INJECTED_FIRST_NAME)

    delivered = send_activation_to(user, smtp)

    message = delivered.message
    assert delivered.rcpt_tos == ("ann@contoso.test",), "no name may add a recipient"
    assert message["X-Injected"] is None and message["Bcc"] is None
    assert delivered.subject == "Contoso X-Injected: yes: set up your password portal account"
    assert "Hello Ann Bcc: evil@attacker.test," in delivered.text.splitlines()
    assert "Contoso X-Injected: yes has created an account" in delivered.text
    assert "Hello Ann Bcc: evil@attacker.test," in delivered.html
    assert "<strong>Contoso X-Injected: yes</strong>" in delivered.html


def test_the_msp_name_in_a_site_users_email_is_one_line_too(smtp):
    Client.objects.create(name="Acme\nMSP", is_company_vault=True, site_enabled=True)
    client = Client.objects.create(name="Fabrikam", site_enabled=True)
    user = PortalUser.objects.create(client=client, email="bo@fabrikam.test", first_name="Bo")

    delivered = send_activation_to(user, smtp)

    assert "run by Acme MSP." in delivered.text


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Contoso Ltd", "Contoso Ltd"),
        ("Ann\r\nBcc: x@y.test", "Ann Bcc: x@y.test"),
        ("Contoso\u2028Ltd", "Contoso Ltd"),  # Unicode's line separator breaks a line as well
        ("\tTabbed\x00Name ", "Tabbed Name"),
        ("Two  spaces kept", "Two  spaces kept"),  # only what breaks a line is changed
    ],
)
def test_one_line_turns_every_line_break_into_one_space(raw, expected):
    assert one_line(raw) == expected


@pytest.mark.parametrize("name", ["Contoso\r\nBcc: evil@attacker.test", "Contoso\nLtd", "Contoso\u2029Ltd"])
def test_the_client_admin_form_refuses_a_name_with_a_line_break(staff_client, name):
    response = staff_client.post("/admin/passportal/client/add/", {"name": name, "site_enabled": "on"})

    assert response.status_code == 200, "the form comes back with the error"
    errors = response.context["adminform"].form.errors
    assert errors["name"] == [
        "The name must be on one line: remove the line breaks, tabs or other control characters."
    ]
    assert not Client.objects.filter(name=name).exists()


def test_the_client_admin_form_refuses_a_line_break_on_change_and_keeps_the_old_name(staff_client, client_org):
    response = staff_client.post(f"/admin/passportal/client/{client_org.pk}/change/",
                                 {"name": "Contoso\r\nLtd", "site_enabled": "on"})

    assert response.status_code == 200
    assert "name" in response.context["adminform"].form.errors
    client_org.refresh_from_db()
    assert client_org.name == "Contoso Ltd"


def test_the_client_admin_form_still_saves_a_plain_name(staff_client):
    response = staff_client.post("/admin/passportal/client/add/", {"name": "Northwind Traders", "site_enabled": "on"})

    assert response.status_code == 302
    assert Client.objects.filter(name="Northwind Traders").exists()
