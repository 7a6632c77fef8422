"""The on-prem agent reads security groups and their nested memberships, and the portal scopes by them (G2, G6).

The real agent runs as an operator runs it (its own process and environment) against the Samba AD DC and pushes
to the live portal over HTTPS; staff map a nested group on the portal's pages, as they do in direct mode.
"""

from __future__ import annotations

import pytest
from django.urls import reverse

from adread.records import UserRecord
from agent.portal import MAX_CHAIN_NAMES, user_payload
from directory import upload_records
from passportal.models import PortalUser
from provisioning import sync
from provisioning.models import SyncRun, SyncStatus
from tests import agent_env
from tests import test_agent_end_to_end as end_to_end
from tests.engine_helpers import pro_level
from tests.test_agent_end_to_end import agent_integration, run_agent

# Fixtures: the agent's own environment, and the live portal behind HTTPS.
agent_python = agent_env.agent_python
https_portal = end_to_end.https_portal


def _latest_run(integration) -> SyncRun:
    """The run the agent's last push started, carried out if the portal has only queued it."""
    queued = SyncRun.objects.filter(integration=integration, status=SyncStatus.QUEUED, dry_run=False).first()
    if queued is not None:
        sync.execute_run(queued.pk)
    return SyncRun.objects.filter(integration=integration, dry_run=False).latest("pk")


@pytest.mark.samba
@pytest.mark.django_db(transaction=True)
def test_g6_the_agent_pushes_nested_groups_and_the_portal_scopes_by_them(agent_python, samba_dc, samba_ou,
                                                                         https_portal, vault, staff_client,
                                                                         tmp_path):
    staff = samba_dc.make_ou("Staff", samba_ou)
    sam = samba_dc.unique_sam
    ann = samba_dc.add_user(staff, sam("ann"), "Ann", "Lee", "ann@corp.example.test")
    bob = samba_dc.add_user(staff, sam("bob"), "Bob", "Ray", "bob@corp.example.test")
    samba_dc.add_user(staff, sam("cid"), "Cid", "Out", "cid@corp.example.test")  # in no group
    paris = samba_dc.add_security_group(samba_ou, "Paris", members=[samba_dc.dn_of(ann)])
    emea = samba_dc.add_security_group(samba_ou, "EMEA", members=[paris])
    sales = samba_dc.add_security_group(samba_ou, "Sales-Team", members=[emea, samba_dc.dn_of(bob)])
    samba_dc.add_security_group(samba_ou, "Newsletter", security=False, members=[samba_dc.dn_of(bob)])
    integration, token = agent_integration(vault)

    result = run_agent(agent_python, samba_dc, samba_ou, https_portal, token, tmp_path)

    assert result.returncode == 0, result.stderr
    assert "Pushed 2 OUs, 3 security groups and 3 users" in result.stdout, result.stdout
    kinds = dict(integration.folders.values_list("name", "kind"))
    assert kinds["Sales-Team"] == kinds["EMEA"] == kinds["Paris"] == "gr" and kinds["Staff"] == "ou"
    assert "Newsletter" not in kinds  # a distribution group is no folder
    _latest_run(integration)  # the push's own run: nothing is mapped yet

    # Staff map the outer group on the portal's pages: the confirmation names the chain of nested groups.
    group = integration.folders.get(external_id=samba_dc.guid_of(sales))
    setup = reverse("provisioning:setup", args=[integration.pk])
    response = staff_client.post(setup, {"folders": [group.pk], "permission_level": pro_level().pk}, follow=True)
    confirmation = response.content.decode()
    assert "In scope through Sales-Team &gt; EMEA &gt; Paris &gt; Ann Lee" in confirmation
    assert "In scope through Sales-Team &gt; Bob Ray" in confirmation and "cid@corp.example.test" not in confirmation
    response = staff_client.post(response.redirect_chain[-1][0], {"yes": "1"}, follow=True)
    assert response.status_code == 200
    assert sorted(PortalUser.objects.values_list("email", flat=True)) == ["ann@corp.example.test",
                                                                          "bob@corp.example.test"]
    assert PortalUser.objects.get(email="ann@corp.example.test").directory_links.get().directory_state["via"] == [
        "Sales-Team > EMEA > Paris"]

    # Ann leaves Paris in AD: the agent's next push puts her out of scope, naming the group she left.
    samba_dc.remove_group_member(paris, samba_dc.dn_of(ann))
    result = run_agent(agent_python, samba_dc, samba_ou, https_portal, token, tmp_path)

    assert result.returncode == 0, result.stderr
    run = _latest_run(integration)
    assert run.status == SyncStatus.SUCCEEDED, run.error
    assert [(d["reason"], d["detail"]) for d in run.changes["disable"]] == [
        ("out_of_scope", "removed from group Sales-Team")]
    statuses = dict(PortalUser.objects.values_list("email", "status"))
    assert statuses["ann@corp.example.test"] == "disabled" and statuses["bob@corp.example.test"] != "disabled"
    run_page = staff_client.get(reverse("provisioning:run", args=[run.pk])).content.decode()
    assert "removed from group Sales-Team" in run_page


def test_g5_the_agent_shortens_a_chain_deeper_than_the_portal_takes_keeping_both_ends():
    group = "00000000-0000-0000-0000-000000000001"
    names = tuple(f"G{n}" for n in range(MAX_CHAIN_NAMES + 5))
    user = UserRecord(id="00000000-0000-0000-0000-000000000002", first_name="Ann", last_name="Lee", email="",
                      enabled=True, folder_ids=frozenset({group}), chains=((group, *names),))

    payload = user_payload(user)

    chain = payload["chains"][0]
    assert len(chain) == MAX_CHAIN_NAMES + 1 and chain[1] == "G0" and chain[-1] == names[-1]
    assert upload_records.validate_users([payload])[0]["chains"] == [chain]  # the portal takes it
    assert "chains" not in user_payload(UserRecord(id=user.id, first_name="", last_name="", email="", enabled=True,
                                                   folder_ids=frozenset()))
