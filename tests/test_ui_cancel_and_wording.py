"""Cancel says that nothing changed, on every confirmation; the Add Domain page and the README name the same
Entra ID application permissions (one list, provisioning.wording.ENTRA_APP_PERMISSIONS)."""

from __future__ import annotations

import re
from pathlib import Path

from django.contrib.messages import get_messages
from django.urls import reverse

from directory.models import Integration
from passportal.models import PortalUser
from provisioning.models import SyncRun
from provisioning.wording import ENTRA_APP_PERMISSIONS
from tests.fixtures_browser import activated_site_admin, agent_integration, ou, person

README = Path(__file__).resolve().parent.parent / "README.md"
SALES = ou(1, "Sales")


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def test_r10_r15_cancelling_the_link_switch_says_nothing_changed(staff_client, client_org):
    activated_site_admin(client_org)
    integration = agent_integration(client_org, [SALES], [person(1, SALES)])
    url = reverse("provisioning:link", args=[integration.pk])
    runs = SyncRun.objects.filter(dry_run=False).count()

    page = staff_client.get(url + "?enabled=0").content.decode()
    assert 'name="cancel"' in page and 'id="link-cancel"' in page
    response = staff_client.post(url, {"enabled": "0", "cancel": "1"})

    assert response.status_code == 302
    assert response["Location"] == reverse("provisioning:user-mapping", args=[client_org.pk])
    assert messages_of(response) == ["Cancelled: the link of Corp AD stays on; nothing was changed."]
    assert Integration.objects.get(pk=integration.pk).link_enabled
    assert SyncRun.objects.filter(dry_run=False).count() == runs, "no run started"


def test_cancelling_add_domain_says_no_domain_was_added(staff_client, client_org):
    activated_site_admin(client_org)
    url = reverse("provisioning:add-domain", args=[client_org.pk])
    page = staff_client.get(url).content.decode()
    assert re.search(r'<button type="submit" name="cancel"[^>]*formnovalidate', page), "Cancel skips the checks"

    response = staff_client.post(url, {"name": "half typed", "cancel": "1"})

    assert response.status_code == 302
    assert messages_of(response) == ["Cancelled: no domain was added; nothing was changed."]
    assert not Integration.objects.filter(kind="entra").exists()
    assert PortalUser.objects.filter(client=client_org).count() == 1


def test_add_domain_page_and_readme_list_the_same_entra_permissions(staff_client, client_org):
    activated_site_admin(client_org)
    page = staff_client.get(reverse("provisioning:add-domain", args=[client_org.pk])).content.decode()
    listed = page.split('id="entra-permissions"', 1)[1].split("</span>", 1)[0]
    on_page = re.findall(r"<code>([\w.]+)</code>", listed)

    entra_lines = [line for line in README.read_text().splitlines() if ".Read.All" in line]
    in_readme = {name for line in entra_lines for name in re.findall(r"\b[A-Z]\w+\.Read\.All\b", line)}

    assert on_page == list(ENTRA_APP_PERMISSIONS)
    assert in_readme == set(ENTRA_APP_PERMISSIONS), entra_lines
