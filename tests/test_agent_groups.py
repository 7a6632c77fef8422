"""Group scoping in agent mode (G1, G2, G5, G6): what the on-prem agent pushes keeps each folder's kind and each
user's chains of nested groups, so a group maps and scopes as in direct mode; the pages say through which chain."""

from __future__ import annotations

import uuid

import pytest
from django.urls import reverse

from directory import upload_chunks, upload_records, upload_start
from directory.models import Folder
from passportal.models import PortalUser
from provisioning.models import DirectoryLink, Mapping, SyncRun
from tests.engine_helpers import pro_level
from tests.fixtures_browser import agent_integration, guid, ou, person, push_directory

STAFF = ou(1, "Staff")
SALES_ID, EMEA_ID = guid(20_001), guid(20_002)
SALES = {"id": SALES_ID, "kind": "gr", "name": "Sales-Team", "path": "Sales-Team", "parent_id": None}
EMEA = {"id": EMEA_ID, "kind": "gr", "name": "EMEA", "path": "EMEA", "parent_id": None}
FOLDERS = [STAFF, SALES, EMEA]


def people(*, ann_in_emea: bool = True) -> list[dict]:
    """Ann in EMEA, which is nested in Sales-Team; Bob directly in Sales-Team; Cid in the OU only."""
    ann = person(1, STAFF, first="Ann", last="Lee", email="ann@corp.test")
    if ann_in_emea:
        ann["folder_ids"] += [SALES_ID, EMEA_ID]
        ann["chains"] = [[SALES_ID, "Sales-Team", "EMEA"], [EMEA_ID, "EMEA"]]
    bob = person(2, STAFF, first="Bob", last="Ray", email="bob@corp.test")
    bob["folder_ids"] += [SALES_ID]
    bob["chains"] = [[SALES_ID, "Sales-Team"]]
    return [ann, bob, person(3, STAFF, first="Cid", last="Out", email="cid@corp.test")]


def page(client, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200
    return response.content.decode()


@pytest.mark.django_db(transaction=True)
def test_g6_g5_agent_mode_scopes_by_a_nested_group_and_the_pages_say_through_which_chain(staff_client, vault):
    integration = agent_integration(vault, FOLDERS, people())
    kinds = dict(Folder.objects.filter(integration=integration).values_list("name", "kind"))
    assert kinds == {"Staff": "ou", "Sales-Team": "gr", "EMEA": "gr"}
    sales = Folder.objects.get(integration=integration, external_id=SALES_ID)
    setup = reverse("provisioning:setup", args=[integration.pk])
    assert 'id="groups-branch"' in page(staff_client, setup)

    # The confirmation: who is in scope, and through which chain of groups.
    response = staff_client.post(setup, {"folders": [sales.pk], "permission_level": pro_level().pk}, follow=True)
    confirmation = response.content.decode()
    assert "In scope through Sales-Team &gt; EMEA &gt; Ann Lee" in confirmation
    assert "In scope through Sales-Team &gt; Bob Ray" in confirmation and "cid@corp.test" not in confirmation

    # Yes: the run page says the same, and the users are those of the group, nested members included.
    response = staff_client.post(response.redirect_chain[-1][0], {"yes": "1"}, follow=True)
    assert "In scope through Sales-Team &gt; EMEA &gt; Ann Lee" in response.content.decode()
    assert sorted(PortalUser.objects.values_list("email", flat=True)) == ["ann@corp.test", "bob@corp.test"]
    ann = PortalUser.objects.get(email="ann@corp.test")
    assert DirectoryLink.objects.get(portal_user=ann).directory_state["via"] == ["Sales-Team > EMEA"]
    user_page = page(staff_client, reverse("admin:passportal_portaluser_change", args=[ann.pk]))
    assert "In scope through Sales-Team &gt; EMEA &gt; Ann Lee" in user_page

    # Ann leaves EMEA: out of scope, and the run page names the group she was removed from (G4).
    push_directory(integration, FOLDERS, people(ann_in_emea=False))
    run = SyncRun.objects.filter(integration=integration, dry_run=False).latest("pk")
    assert PortalUser.objects.get(email="ann@corp.test").status == "disabled"
    run_page = page(staff_client, reverse("provisioning:run", args=[run.pk]))
    assert "removed from group Sales-Team" in run_page
    assert Mapping.objects.get().folder == sales and SyncRun.objects.get(pk=run.pk).status == "succeeded"


def test_g1_an_upload_keeps_a_folder_kind_and_refuses_an_unknown_one():
    assert [f["kind"] for f in upload_records.validate_folders([STAFF, SALES])] == ["ou", "gr"]
    with pytest.raises(upload_records.UploadRejected) as refused:
        upload_records.validate_folders([{**SALES, "kind": "distribution"}])
    assert refused.value.field == "kind" and refused.value.index == 0
    with pytest.raises(upload_records.UploadRejected) as refused:
        upload_records.validate_folders([{**SALES, "parent_id": STAFF["id"]}])
    assert refused.value.field == "parent_id"


def test_g5_an_upload_keeps_chains_and_refuses_bad_ones():
    ann = people()[0]
    assert upload_records.validate_users([ann])[0]["chains"] == [[SALES_ID, "Sales-Team", "EMEA"], [EMEA_ID, "EMEA"]]
    for chains in ([[guid(99_999), "Other"]],  # a group the user is not in
                   [[SALES_ID]],  # no names
                   [[SALES_ID, "Sales-Team"], [SALES_ID, "Sales-Team"]],  # twice
                   [[SALES_ID, 7]],  # not text
                   "Sales-Team"):
        with pytest.raises(upload_records.UploadRejected) as refused:
            upload_records.validate_users([{**ann, "chains": chains}])
        assert refused.value.field == "chains", chains


def test_g2_a_user_in_as_many_groups_as_an_ad_token_holds_is_accepted_one_more_is_refused():
    groups = [str(uuid.UUID(int=n)) for n in range(1, upload_records.MAX_GROUPS_PER_USER + 2)]
    at_limit = {**people()[2], "folder_ids": [STAFF["id"], *groups[:-1]]}
    assert len(upload_records.validate_users([at_limit])[0]["folder_ids"]) == upload_records.MAX_FOLDERS_PER_USER
    with pytest.raises(upload_records.UploadRejected) as refused:
        upload_records.validate_users([{**at_limit, "folder_ids": [STAFF["id"], *groups]}])
    assert refused.value.field == "folder_ids"
    chain = [SALES_ID, *(f"G{n}" for n in range(upload_records.MAX_CHAIN_LENGTH))]
    deep = {**people()[1], "chains": [chain]}
    assert upload_records.validate_users([deep])[0]["chains"] == [chain]
    with pytest.raises(upload_records.UploadRejected):
        upload_records.validate_users([{**deep, "chains": [[*chain, "one more"]]}])


@pytest.mark.django_db
def test_g2_a_user_pushed_in_two_ous_is_refused(vault):
    other = ou(2, "Other")
    integration = agent_integration(vault, [STAFF, other, SALES], [])
    upload = upload_start.start_upload(integration, directory_id="corp.test", agent_version="3.2.1")
    upload_chunks.add_folders(upload, [STAFF, other, SALES])
    with pytest.raises(upload_records.UploadRejected, match="more than one OU"):
        upload_chunks.add_users(upload, [{**people()[2], "folder_ids": [STAFF["id"], other["id"]]}])
    upload_chunks.add_users(upload, [{**people()[2], "folder_ids": [STAFF["id"], SALES_ID]}])
