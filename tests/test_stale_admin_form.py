"""A staff member's page opened before a run and saved after it never writes old values back (R11, R23)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from passportal.models import PermissionLevel, PortalUser


@pytest.fixture
def ann(client_org) -> PortalUser:
    return PortalUser.objects.create(client=client_org, email="ann@contoso.test", first_name="Ann",
                                     permission_level=PermissionLevel.objects.get(user_kind="site", name="Site User"))


def form_as_rendered(response) -> dict:
    """The values the page showed, as a browser would post them back."""
    form = response.context["adminform"].form
    data = {name: form[name].value() or "" for name in form.fields}
    data["disabled_by_staff"] = "on" if data.get("disabled_by_staff") else ""
    data["permission_level_set_by_hand"] = "on" if data.get("permission_level_set_by_hand") else ""
    data.update({"memberships-TOTAL_FORMS": "0", "memberships-INITIAL_FORMS": "0"})
    return data


def test_r11_a_page_opened_before_a_run_and_saved_after_it_is_refused_and_writes_nothing(staff_client, ann):
    url = reverse("admin:passportal_portaluser_change", args=[ann.pk])
    data = form_as_rendered(staff_client.get(url))
    # A sync changes the user's level while the page is open.
    manager = PermissionLevel.objects.get(user_kind="site", name="Site Manager")
    PortalUser.objects.filter(pk=ann.pk).update(permission_level=manager, updated_at=ann.updated_at.replace(
        microsecond=(ann.updated_at.microsecond + 1) % 1_000_000))

    data["first_name"] = "Annie"  # the only thing the person changed
    response = staff_client.post(url, data)
    assert response.status_code == 200
    assert "changed since you opened the page" in response.content.decode()
    ann.refresh_from_db()
    assert (ann.first_name, ann.permission_level, ann.permission_level_set_by_hand) == ("Ann", manager, False)

    # Reloaded, reviewed and saved again: the change lands over the newer row.
    data = form_as_rendered(staff_client.get(url))
    data["first_name"] = "Annie"
    assert staff_client.post(url, data).status_code == 302
    ann.refresh_from_db()
    assert (ann.first_name, ann.permission_level) == ("Annie", manager)


def test_r11_a_save_that_does_not_say_which_version_it_saw_is_refused(staff_client, ann):
    url = reverse("admin:passportal_portaluser_change", args=[ann.pk])
    data = form_as_rendered(staff_client.get(url))
    del data["seen_version"]
    data["first_name"] = "Annie"
    assert staff_client.post(url, data).status_code == 200
    ann.refresh_from_db()
    assert ann.first_name == "Ann"
