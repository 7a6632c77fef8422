"""Agent mode reads what changed (issue 19 part 2, agent side): the portal hands the mark of the last read it applied
out in the agent's poll, the agent reads the changes since it with adread.incremental (as direct mode does) and
uploads only those, and the portal plans that upload as a partial read, keeping the new mark only when the run
succeeded (R21).

The agent runs as an operator runs it once a schedule fires (`--once`: its own process and environment, over HTTPS)
against the real Samba DC and the live portal, as in tests/test_agent_end_to_end.py, whose fixtures these share.
"""

from __future__ import annotations

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from directory.models import AgentUpload, Folder, Integration
from passportal.models import PortalUser
from provisioning.models import AdReadMark, Mapping, SyncRun
from tests import agent_env, test_agent_end_to_end
from tests.engine_helpers import site_level
from tests.fixtures_browser import staff_user
from tests.test_agent_end_to_end import agent_integration, run_agent

agent_python = agent_env.agent_python  # fixtures: the agent's own environment, the live portal behind TLS
https_portal = test_agent_end_to_end.https_portal

pytestmark = [pytest.mark.samba, pytest.mark.django_db(transaction=True)]
CHANGES_ONLY = "changes since the last read, by the on-prem agent"


@pytest.fixture
def corp(agent_python, samba_dc, samba_ou, https_portal, client_org, tmp_path, settings):
    """Sales (mapped) with four users, pushed in full by the agent and applied, so the portal keeps a mark."""
    settings.TASKS_RUN_INLINE = True  # the upload's run runs as its commit is answered
    sales = samba_dc.make_ou("Sales", samba_ou)
    sam = samba_dc.unique_sam
    people = {name: samba_dc.add_user(sales, sam(name), name.title(), "Lee", f"{name}@corp.example.test")
              for name in ("ann", "carl", "dan", "eve")}
    integration, token = agent_integration(client_org)

    def push() -> str:
        result = run_agent(agent_python, samba_dc, samba_ou, https_portal, token, tmp_path)
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout

    push()  # the folder tree
    Mapping.objects.create(folder=Folder.objects.get(integration=integration, name="Sales"),
                           permission_level=site_level("Site User"))
    assert "Pushed 2 OUs and 4 users" in push()  # no mark yet: everything
    first = last_run(integration)
    assert first.status == "succeeded" and first.counts["created"] == 4, first.error
    assert first.changes["read"]["words"] == "full read (no earlier read to start from), by the on-prem agent"
    assert AdReadMark.objects.filter(integration=integration).exists()
    return {"integration": integration, "people": people, "sales": sales, "push": push}


def last_run(integration: Integration) -> SyncRun:
    return SyncRun.objects.filter(integration=integration, dry_run=False).latest("pk")


def latest_upload(integration: Integration) -> AgentUpload:
    return integration.agent_uploads.filter(status="committed").latest("pk")


def uploaded_users(upload: AgentUpload) -> set[str]:
    return set(upload.records.filter(kind="user").values_list("external_id", flat=True))


def status(email: str) -> tuple[str, str]:
    user = PortalUser.objects.get(email=email)
    return user.status, user.disabled_reason


def test_r8_r9_agent_push_reads_changes_only_and_applies_them(corp, samba_dc, client):
    integration, people = corp["integration"], corp["people"]
    mark = AdReadMark.objects.get(integration=integration)
    bob = samba_dc.add_user(corp["sales"], samba_dc.unique_sam("bob"), "Bob", "Ray", "bob@corp.example.test")
    samba_dc.set_names(people["carl"], given="Carlos")
    samba_dc.disable_user(people["dan"])
    samba_dc.delete_user(people["eve"])

    out = corp["push"]()

    assert "Pushed the changes since the last read: 3 users of corp.example.test" in out, out
    assert "as upload" in out and "1 linked users deleted in AD" in out
    upload = latest_upload(integration)
    assert upload.partial and upload.folder_count == 0
    assert uploaded_users(upload) == {bob, people["carl"], people["dan"]}  # no full read: only the changed users
    run = last_run(integration)
    assert run.status == "succeeded", run.error
    assert run.changes["read"] == {"changes_only": True, "words": CHANGES_ONLY, "searches": 0}
    assert (run.counts["created"], run.counts["updated"], run.counts["disabled"]) == (1, 1, 2), run.counts
    assert PortalUser.objects.get(email="carl@corp.example.test").first_name == "Carlos"
    assert status("dan@corp.example.test")[0] == "disabled"
    assert status("eve@corp.example.test")[0] == "disabled" and "deleted" in status("eve@corp.example.test")[1]
    assert status("ann@corp.example.test")[0] == "pending"  # not in the read, left as it is (not activated yet)
    kept = AdReadMark.objects.get(integration=integration)
    assert kept.usn > mark.usn and kept.kept_by_id == run.pk
    # The last full upload stays the picture of AD, the changes written into it (a user's resync reads it).
    picture = integration.agent_uploads.get(status="committed", partial=False)
    assert bob in uploaded_users(picture) and people["eve"] not in uploaded_users(picture)
    carl = picture.records.get(kind="user", external_id=people["carl"]).data
    assert carl["first_name"] == "Carlos"
    client.force_login(staff_user("boss", superuser=True))
    page = client.get(reverse("provisioning:run", args=[run.pk])).content.decode()
    assert "Changes since the last read, by the on-prem agent" in page


def test_r19_an_ou_renamed_makes_the_agents_next_push_a_full_read(corp, samba_dc):
    integration = corp["integration"]
    samba_dc.rename_ou(corp["sales"], "Sales EMEA")

    out = corp["push"]()

    assert "Pushed 2 OUs and 4 users" in out, out
    upload = latest_upload(integration)
    assert not upload.partial and upload.read_why.startswith("an OU changed since the last read")
    run = last_run(integration)
    assert run.status == "succeeded", run.error
    assert run.changes["read"]["words"].startswith("full read (an OU changed since the last read")
    assert integration.folders.get(external_id=samba_dc.guid_of(corp["sales"].replace("OU=Sales,",
                                                                                          "OU=Sales EMEA,"))).name \
        == "Sales EMEA"  # R19: the mapped OU keeps its mapping under its new name
    assert not PortalUser.objects.filter(status="disabled").exists()


def test_r21_r22_a_held_agent_run_keeps_the_mark_and_the_next_push_reads_the_same_changes(corp, samba_dc):
    integration, people = corp["integration"], corp["people"]
    Integration.objects.filter(pk=integration.pk).update(disable_threshold_percent=0, disable_threshold_minimum=1)
    mark = AdReadMark.objects.get(integration=integration)
    samba_dc.disable_user(people["dan"])
    samba_dc.disable_user(people["ann"])

    corp["push"]()

    held = last_run(integration)
    assert held.status == "held" and held.changes["read"]["words"] == CHANGES_ONLY
    assert AdReadMark.objects.get(integration=integration).usn == mark.usn  # R21: the old mark stays

    corp["push"]()  # the same changes are read again, from the same mark

    again = latest_upload(integration)
    assert again.partial and uploaded_users(again) == {people["dan"], people["ann"]}
    assert last_run(integration).status == "held"
    assert AdReadMark.objects.get(integration=integration).usn == mark.usn


def test_r21_a_partial_upload_from_a_mark_the_portal_does_not_hand_out_is_refused_and_the_next_read_is_full(corp):
    integration = corp["integration"]
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {integration.issue_agent_token()}")
    told = api.post("/api/agent/poll/", {"take_requests": False}, format="json").json()
    assert told["read_from"]["usn"] == AdReadMark.objects.get(integration=integration).usn
    restored = {**told["read_from"], "usn": told["read_from"]["usn"] - 1}  # an agent restored with an older mark

    response = api.post("/api/agent/uploads/", {
        "directory_id": "corp.example.test", "partial": True, "read_from": restored,
        "mark": told["read_from"], "folders_digest": told["folders_digest"]}, format="json")

    assert response.status_code == 409 and "read everything" in response.json()["detail"]
    assert not AdReadMark.objects.filter(integration=integration).exists()
    again = api.post("/api/agent/poll/", {"take_requests": False}, format="json").json()
    assert again["read_from"] == "full" and again["read_why"] == "no earlier read to start from"
    bad = api.post("/api/agent/uploads/", {"directory_id": "corp.example.test", "mark": {"usn": "x"}}, format="json")
    assert bad.status_code == 400 and bad.json()["field"] == "mark"
