"""G5 beyond creations: the confirmation, the run page and a user's page say through which folders and which
chain of nested groups a user is in scope for every change where scope matters (a level or groups changed, a
re-enable), not only for a creation. Agent mode, through the upload the on-prem agent pushes."""

from __future__ import annotations

import pytest
from django.urls import reverse

from directory.models import Folder
from passportal.models import PortalUser
from provisioning.models import Mapping, SyncRun
from tests.engine_helpers import pro_level
from tests.fixtures_browser import agent_integration, guid, ou, person, push_directory

STAFF = ou(1, "Staff")
SALES_ID, EMEA_ID = guid(20_001), guid(20_002)
SALES = {"id": SALES_ID, "kind": "gr", "name": "Sales-Team", "path": "Sales-Team", "parent_id": None}
EMEA = {"id": EMEA_ID, "kind": "gr", "name": "EMEA", "path": "EMEA", "parent_id": None}
FOLDERS = [STAFF, SALES, EMEA]


def people(*, bob_in_staff: bool = True) -> list[dict]:
    """Ann in EMEA, nested in Sales-Team (and in the Staff OU); Bob in the Staff OU only, or in no folder."""
    ann = person(1, STAFF, first="Ann", last="Lee", email="ann@corp.test")
    ann["folder_ids"] += [SALES_ID, EMEA_ID]
    ann["chains"] = [[SALES_ID, "Sales-Team", "EMEA"], [EMEA_ID, "EMEA"]]
    bob = person(2, STAFF, first="Bob", last="Ray", email="bob@corp.test")
    if not bob_in_staff:
        bob["folder_ids"] = []
    return [ann, bob]


def page(client, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200
    return response.content.decode()


def apply(staff_client, integration, folder: Folder, level) -> tuple[str, str]:
    """Map a folder through the User Mapping pages: (the confirmation, the run page after Yes)."""
    setup = reverse("provisioning:setup", args=[integration.pk])
    response = staff_client.post(setup, {"folders": [folder.pk], "permission_level": level.pk}, follow=True)
    confirmation = response.content.decode()
    response = staff_client.post(response.redirect_chain[-1][0], {"yes": "1"}, follow=True)
    assert response.status_code == 200
    return confirmation, response.content.decode()


@pytest.mark.django_db(transaction=True)
def test_g5_a_level_change_and_a_re_enable_say_through_which_folder_or_chain_and_so_does_the_users_page(
        staff_client, vault):
    integration = agent_integration(vault, FOLDERS, people())
    sales = Folder.objects.get(integration=integration, external_id=SALES_ID)
    staff = Folder.objects.get(integration=integration, external_id=STAFF["id"])
    apply(staff_client, integration, staff, pro_level("Read Only"))  # Ann and Bob created through the OU
    assert PortalUser.objects.get(email="ann@corp.test").permission_level.name == "Read Only"

    # Sales-Team mapped higher: Ann's level changes, and both pages say through which chain she gets it.
    confirmation, run_page = apply(staff_client, integration, sales, pro_level("Manager"))
    for shown in (confirmation, run_page):
        assert "In scope through Corp/Staff &gt; Ann Lee; Sales-Team &gt; EMEA &gt; Ann Lee" in shown
        assert "Bob Ray" not in shown  # nothing changes for Bob: nothing said
    assert PortalUser.objects.get(email="ann@corp.test").permission_level.name == "Manager"

    # Bob leaves the OU (out of scope), then comes back: the re-enable says through which folder.
    push_directory(integration, FOLDERS, people(bob_in_staff=False))
    assert PortalUser.objects.get(email="bob@corp.test").status == "disabled"
    push_directory(integration, FOLDERS, people())
    run = SyncRun.objects.filter(integration=integration, dry_run=False).latest("pk")
    assert [r["via"] for r in run.changes["reenable"]] == [["Corp/Staff"]]
    assert "In scope through Corp/Staff &gt; Bob Ray" in page(staff_client, reverse("provisioning:run", args=[run.pk]))

    # A user's page: through the OU for Bob, through the OU and the chain for Ann.
    bob, ann = (PortalUser.objects.get(email=e) for e in ("bob@corp.test", "ann@corp.test"))
    assert "In scope through Corp/Staff &gt; Bob Ray" in page(
        staff_client, reverse("admin:passportal_portaluser_change", args=[bob.pk]))
    assert "In scope through Corp/Staff &gt; Ann Lee; Sales-Team &gt; EMEA &gt; Ann Lee" in page(
        staff_client, reverse("admin:passportal_portaluser_change", args=[ann.pk]))
    assert Mapping.objects.count() == 2
