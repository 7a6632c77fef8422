"""SPEC rules through SCIM: the pushed state goes through the same planner and applier as any directory."""

from __future__ import annotations

import pytest

from directory.models import Folder
from notifications.models import OutboxEmail
from passportal.models import PortalUser
from provisioning import actions, sync
from provisioning.models import CreationIssue, DirectoryLink, SyncRun
from scim.models import ScimEvent
from tests.engine_helpers import pro_level, site_level
from tests.scim_helpers import GROUP, Scim, entra_user, map_all_users, map_scim_folder, scim_integration


@pytest.fixture
def scim(client_org) -> Scim:
    s = Scim(scim_integration(client_org))
    map_all_users(s.integration, site_level("Site User"), "Everyone")
    return s


def portal(email: str) -> PortalUser:
    return PortalUser.objects.get(email__iexact=email)


def new_group(scim: Scim, name: str, *member_ids: str) -> str:
    status, body = scim.post("/Groups", {"schemas": [GROUP], "displayName": name,
                                         "members": [{"value": m} for m in member_ids]})
    assert status == 201, body
    return body["id"]


def test_scim_r2_create_in_a_mapped_folder_creates_the_portal_user_with_level_groups_and_activation(
        scim, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        status, body = scim.post("/Users", entra_user("ada@contoso.com"))
    assert status == 201, body
    user = portal("ada@contoso.com")
    assert user.client == scim.integration.client and user.kind == "site" and user.status == "pending"
    assert user.permission_level.name == "Site User"
    assert list(user.security_groups.values_list("name", flat=True)) == ["Everyone"]
    assert OutboxEmail.objects.filter(recipient="ada@contoso.com").count() == 1
    link = DirectoryLink.objects.get(portal_user=user)
    assert link.external_id == body["id"] and link.integration == scim.integration
    run = SyncRun.objects.get(trigger="scim")
    assert run.counts["created"] == 1 and ScimEvent.objects.get().run == run


def test_scim_r2_company_vault_integration_creates_pro_users(vault):
    s = Scim(scim_integration(vault))
    map_all_users(s.integration, pro_level("Technician"))
    assert s.post("/Users", entra_user("tech@msp.example"))[0] == 201
    assert portal("tech@msp.example").kind == "pro"


def test_scim_r2_nothing_is_created_when_no_folder_is_mapped(client_org):
    s = Scim(scim_integration(client_org))
    assert s.post("/Users", entra_user("ada@contoso.com"))[0] == 201
    assert not PortalUser.objects.exists()


def test_scim_r6_names_come_from_given_and_family_name_never_the_display_name(scim):
    _, body = scim.post("/Users", {**entra_user("ada@contoso.com", given="Ada", family="Lovelace"),
                                   "displayName": "Countess of Lovelace"})
    user = portal("ada@contoso.com")
    assert (user.first_name, user.last_name) == ("Ada", "Lovelace")
    assert scim.patch(f"/Users/{body['id']}", {"op": "replace", "path": "name.familyName", "value": "King"})[0] == 200
    user.refresh_from_db()
    assert user.last_name == "King"


def test_scim_r7_create_without_an_email_is_400_and_a_creation_issue_that_closes_when_fixed(scim):
    status, body = scim.post("/Users", entra_user("noemail@contoso.com", email=""))
    assert status == 400 and body["scimType"] == "invalidValue" and "no email" in body["detail"]
    issue = CreationIssue.objects.get(closed_at__isnull=True)
    assert issue.reason == "no_email"
    assert not PortalUser.objects.exists()
    # The IdP's next cycle finds the user by userName and sends the email: the user is created, the issue closes.
    _, found = scim.get("/Users", filter='userName eq "noemail@contoso.com"')
    user_id = found["Resources"][0]["id"]
    status, _ = scim.patch(f"/Users/{user_id}", {"op": "add", "path": "emails",
                                                 "value": [{"value": "fixed@contoso.com", "type": "work"}]})
    assert status == 200
    assert portal("fixed@contoso.com")
    issue.refresh_from_db()
    assert issue.closed_at is not None


def test_scim_r7_create_with_an_invalid_email_is_400(scim):
    status, body = scim.post("/Users", entra_user("bad@contoso.com", email="not an email"))
    assert status == 400 and "not valid" in body["detail"]
    assert CreationIssue.objects.get().reason == "invalid_email"


def test_scim_r4_create_with_an_email_another_identity_holds_is_409_and_a_creation_issue(scim):
    assert scim.post("/Users", entra_user("first@contoso.com", email="shared@contoso.com"))[0] == 201
    status, body = scim.post("/Users", entra_user("second@contoso.com", email="SHARED@contoso.com"))
    assert status == 409 and body["scimType"] == "uniqueness"
    assert PortalUser.objects.count() == 1
    assert CreationIssue.objects.filter(closed_at__isnull=True).count() == 1


def test_scim_r4_an_existing_portal_user_with_the_email_is_adopted(scim):
    existing = PortalUser.objects.create(client=scim.integration.client, email="Ada@Contoso.com", first_name="A",
                                         last_name="L", permission_level=site_level("Site Manager"))
    assert scim.post("/Users", entra_user("ada@contoso.com"))[0] == 201
    assert PortalUser.objects.count() == 1
    existing.refresh_from_db()
    assert existing.permission_level.name == "Site Manager"  # R11: an adopted user keeps its level
    assert DirectoryLink.objects.get().portal_user == existing


def test_scim_r4_a_portal_user_another_integration_holds_is_never_adopted(scim):
    okta = Scim(scim_integration(scim.integration.client, "Okta"))
    map_all_users(okta.integration, site_level("Site User"))
    assert okta.post("/Users", entra_user("ada@contoso.com"))[0] == 201
    status, body = scim.post("/Users", entra_user("ada.l@contoso.com", email="ADA@contoso.com"))
    assert status == 409 and "comes from Okta" in body["detail"]
    assert PortalUser.objects.count() == 1
    assert DirectoryLink.objects.get().integration == okta.integration


def test_scim_r8_active_false_disables_the_portal_user_and_true_enables_it_again(scim):
    _, body = scim.post("/Users", entra_user("ada@contoso.com"))
    scim.patch(f"/Users/{body['id']}", {"op": "Replace", "path": "active", "value": "False"})
    user = portal("ada@contoso.com")
    assert user.status == "disabled" and user.disabled_reason == "directory"
    status, got = scim.get(f"/Users/{body['id']}")
    assert status == 200 and got["active"] is False  # a disabled user is still returned
    scim.patch(f"/Users/{body['id']}", {"op": "Replace", "path": "active", "value": "True"})
    user.refresh_from_db()
    assert user.status == "pending" and user.disabled_reason == ""


def test_scim_r8_a_manual_staff_disable_is_kept_when_the_idp_enables(scim):
    _, body = scim.post("/Users", entra_user("ada@contoso.com"))
    actions.staff_set_enabled(portal("ada@contoso.com"), False, by=None)
    scim.patch(f"/Users/{body['id']}", {"op": "replace", "path": "active", "value": False})
    scim.patch(f"/Users/{body['id']}", {"op": "replace", "path": "active", "value": True})
    user = portal("ada@contoso.com")
    assert user.status == "disabled" and user.disabled_by_staff


def test_scim_r8_delete_disables_never_deletes_and_the_resource_is_gone(scim):
    _, body = scim.post("/Users", entra_user("ada@contoso.com"))
    status, _ = scim.delete(f"/Users/{body['id']}")
    assert status == 204
    assert scim.get(f"/Users/{body['id']}")[0] == 404
    user = portal("ada@contoso.com")
    assert user.status == "disabled" and user.disabled_reason == "deleted"
    # Created again with the same userName: the same identity, enabled again.
    status, again = scim.post("/Users", entra_user("ada@contoso.com"))
    assert status == 201 and again["id"] == body["id"]
    user.refresh_from_db()
    assert user.disabled_reason == "" and PortalUser.objects.count() == 1


def test_scim_r9_r13_group_membership_brings_users_in_and_out_of_scope(client_org):
    s = Scim(scim_integration(client_org))
    _, ada = s.post("/Users", entra_user("ada@contoso.com"))
    sales = new_group(s, "Sales")
    admins = new_group(s, "Admins")
    map_scim_folder(s.integration, sales, site_level("Site User"), "Sales team")
    map_scim_folder(s.integration, admins, site_level("Site Manager"), "Admin team")
    assert not PortalUser.objects.exists()
    s.patch(f"/Groups/{sales}", {"op": "Add", "path": "members", "value": [{"value": ada["id"]}]})
    user = portal("ada@contoso.com")
    assert user.permission_level.name == "Site User"
    s.patch(f"/Groups/{admins}", {"op": "Add", "path": "members", "value": [{"value": ada["id"]}]})
    user.refresh_from_db()
    assert user.permission_level.name == "Site Manager"  # R13: the highest level, groups the union
    assert sorted(user.security_groups.values_list("name", flat=True)) == ["Admin team", "Sales team"]
    s.patch(f"/Groups/{admins}", {"op": "Remove", "path": "members", "value": [{"value": ada["id"]}]})
    s.patch(f"/Groups/{sales}", {"op": "remove", "path": f'members[value eq "{ada["id"]}"]'})
    user.refresh_from_db()
    assert user.status == "disabled" and user.disabled_reason == "out_of_scope"
    assert list(user.security_groups.all()) == []


def test_scim_r19_a_group_is_a_folder_renamed_keeps_its_mapping_deleted_is_gone(client_org):
    s = Scim(scim_integration(client_org))
    _, ada = s.post("/Users", entra_user("ada@contoso.com"))
    sales = new_group(s, "Sales", ada["id"])
    folder = Folder.objects.get(integration=s.integration, external_id=sales)
    assert folder.kind == "sg" and folder.name == "Sales"
    map_scim_folder(s.integration, sales, site_level("Site User"))
    sync.run_sync(s.integration, "force")  # a mapping applied starts a run (R16): the member is created
    assert portal("ada@contoso.com").status == "pending"
    s.patch(f"/Groups/{sales}", {"op": "replace", "value": {"displayName": "Sales EMEA"}})
    folder.refresh_from_db()
    assert folder.name == "Sales EMEA" and hasattr(folder, "mapping")
    assert s.delete(f"/Groups/{sales}")[0] == 204
    folder.refresh_from_db()
    assert folder.gone
    assert portal("ada@contoso.com").disabled_reason == "out_of_scope"


def test_scim_r10_link_off_disables_and_pushes_wait_for_the_link(scim):
    _, ada = scim.post("/Users", entra_user("ada@contoso.com"))
    actions.set_link(scim.integration, False, by=None)
    assert portal("ada@contoso.com").disabled_reason == "link_off"
    scim.integration.refresh_from_db()
    assert scim.patch(f"/Users/{ada['id']}", {"op": "replace", "path": "name.givenName", "value": "Augusta"})[0] == 200
    assert portal("ada@contoso.com").first_name == "Ada"
    actions.set_link(scim.integration, True, by=None)
    user = portal("ada@contoso.com")
    assert user.disabled_reason == "" and user.first_name == "Augusta"


def test_scim_r22_disables_beyond_the_window_threshold_are_held_and_answered_200(client_org):
    s = Scim(scim_integration(client_org))
    s.integration.disable_threshold_minimum = 3
    s.integration.save()
    map_all_users(s.integration, site_level("Site User"))
    ids = [s.post("/Users", entra_user(f"u{n}@contoso.com"))[1]["id"] for n in range(10)]
    for user_id in ids[:3]:
        assert s.patch(f"/Users/{user_id}", {"op": "replace", "path": "active", "value": False})[0] == 200
    assert PortalUser.objects.filter(status="disabled").count() == 2  # the third reached the threshold
    held = SyncRun.objects.get(status="held")
    assert len(held.held_disables) == 1 and "within 60 minutes" in held.error
    actions.apply_held_disables(held, by=None)
    assert PortalUser.objects.filter(status="disabled").count() == 3


def test_scim_r28_resync_user_reads_the_stored_scim_state(scim):
    scim.post("/Users", entra_user("ada@contoso.com"))
    user = portal("ada@contoso.com")
    PortalUser.objects.filter(pk=user.pk).update(first_name="Wrong")
    runs = actions.resync_user(user, by=None)
    assert runs[0].status == "succeeded"
    user.refresh_from_db()
    assert user.first_name == "Ada"


def test_scim_a_full_run_agrees_with_the_pushes(scim):
    _, ada = scim.post("/Users", entra_user("ada@contoso.com"))
    scim.post("/Users", entra_user("bob@contoso.com"))
    scim.patch(f"/Users/{ada['id']}", {"op": "replace", "path": "active", "value": False})
    run = sync.run_sync(scim.integration, "force")
    assert run.status == "succeeded"
    assert not any(v for k, v in run.counts.items()), run.counts


def test_scim_r4_the_narrow_load_of_one_request_plans_as_the_full_load_would(scim):
    """scim.sync.load_for reads only what one request concerns; the planner must decide exactly as with
    provisioning.state.load_current (every user and link), whatever the email clashes."""
    from provisioning.planner import plan
    from provisioning.state import load_current, load_mappings
    from scim.connector import ScimConnector
    from scim.models import ScimUser
    from scim.sync import NO_HOLD, load_for

    PortalUser.objects.create(client=scim.integration.client, email="held@contoso.com", first_name="H",
                              last_name="X", permission_level=site_level("Site User"))
    other = Scim(scim_integration(scim.integration.client, "Okta"))
    map_all_users(other.integration, site_level("Site User"))
    other.post("/Users", entra_user("elsewhere@contoso.com"))  # a portal user another integration holds
    _, linked = scim.post("/Users", entra_user("linked@contoso.com", email="taken@contoso.com"))
    emails = ["TAKEN@contoso.com", "held@contoso.com", "new@contoso.com", "", "Elsewhere@contoso.com"]
    for n, email in enumerate(emails):
        scim.post("/Users", entra_user(f"u{n}@contoso.com", email=email))
    ids = list(ScimUser.objects.filter(integration=scim.integration).values_list("scim_id", flat=True))
    connector = ScimConnector(scim.integration)
    records = connector.users_by_id(ids)
    ScimUser.objects.filter(scim_id=linked["id"]).update(given_name="Renamed", active=False)
    from directory.connectors.base import Snapshot

    snapshot = Snapshot(directory_id="x", folders=tuple(connector.read_folders()),
                        users=tuple(connector.users_by_id(ids)), complete=True, incremental=True)
    rules = load_mappings(scim.integration)
    narrow = plan(snapshot, rules, load_for(scim.integration, ids, records).current, threshold=NO_HOLD)
    full = plan(snapshot, rules, load_current(scim.integration).current, threshold=NO_HOLD)
    assert narrow == full
    assert narrow.disables and narrow.updates  # the linked user is renamed and disabled
    assert any("comes from Okta" in i.message for i in CreationIssue.objects.all()) or any(
        "comes from Okta" in i.message for i in narrow.issues_open)


def test_scim_the_narrow_load_fills_every_field_of_current():
    """scim.sync.load_for builds provisioning.planner.Current itself: a field added there must be loaded there
    too (and checked in the test above), or SCIM requests would plan without it."""
    import dataclasses

    from provisioning.planner import Current

    assert {f.name for f in dataclasses.fields(Current)} == {"users", "links", "open_issues", "held_elsewhere"}
