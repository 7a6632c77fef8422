"""The engine end to end against the real Samba AD DC, through the LDAP connector in direct mode."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command

from directory.models import Folder, Integration
from notifications.models import Notification, OutboxEmail
from passportal.models import PortalUser
from provisioning import actions, sync
from provisioning.models import CreationIssue, Mapping, SyncRun
from testing.samba import ADMIN_BIND_DN, ADMIN_PASSWORD
from tests.engine_helpers import pro_level, site_level


def ad_integration(client, samba_dc, base_dn: str, **extra) -> Integration:
    return Integration.objects.create(
        client=client, name="Corp AD", kind="ad", ad_mode="direct", ldap_urls="\n".join(samba_dc.ldap_urls),
        base_dn=base_dn, bind_dn=ADMIN_BIND_DN, bind_password=ADMIN_PASSWORD, tls_mode="ldaps",
        tls_ca_pem=samba_dc.ca_pem, page_size=3, **extra,
    )


def map_ou(integration: Integration, ou_dn: str, samba_dc, level, *groups: str) -> Mapping:
    folder = Folder.objects.get(integration=integration, external_id=samba_dc.guid_of(ou_dn))
    mapping = Mapping.objects.create(folder=folder, permission_level=level)
    for name in groups:
        mapping.security_groups.add(integration.client.security_groups.get_or_create(name=name)[0])
    return mapping


@pytest.fixture
def corp(samba_dc, samba_ou, client_org):
    """An OU tree: Sales (3 users, one without mail, one disabled), IT with Helpdesk inside, Other."""
    sales = samba_dc.make_ou("Sales", samba_ou)
    it = samba_dc.make_ou("IT", samba_ou)
    helpdesk = samba_dc.make_ou("Helpdesk", it)
    other = samba_dc.make_ou("Other", samba_ou)
    sam = samba_dc.unique_sam
    people = {
        "ann": samba_dc.add_user(sales, sam("ann"), "Ann", "Lee", "ann@corp.test"),
        "bob": samba_dc.add_user(sales, sam("bob"), "Bob", "Ray", None),
        "cat": samba_dc.add_user(sales, sam("cat"), "Cat", "Sun", "cat@corp.test", enabled=False),
        "dan": samba_dc.add_user(it, sam("dan"), "Dan", "Vo", "dan@corp.test"),
        "eve": samba_dc.add_user(helpdesk, sam("eve"), "Eve", "Wu", "eve@corp.test"),
        "fay": samba_dc.add_user(other, sam("fay"), "Fay", "Xi", "fay@corp.test"),
    }
    integration = ad_integration(client_org, samba_dc, samba_ou)
    first = sync.run_sync(integration, "command")  # discovers the folder tree (R19)
    assert first.status == "succeeded", first.error
    map_ou(integration, sales, samba_dc, site_level("Site User"), "Sales team")
    map_ou(integration, it, samba_dc, site_level("Site Manager"), "IT team")
    return {"integration": integration, "people": people, "sales": sales, "it": it, "helpdesk": helpdesk,
            "other": other}


def portal_emails(client) -> list[str]:
    return sorted(PortalUser.objects.filter(client=client, status__in=["pending", "active"])
                  .values_list("email", flat=True))


def test_r2_first_run_creates_the_users_of_mapped_ous_and_queues_their_activation(corp, client_org,
                                                                                django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        run = sync.run_sync(corp["integration"], "command")
    assert run.status == "succeeded", run.error
    # Helpdesk is a child OU, a folder of its own and not mapped; Other is not mapped; Cat is disabled.
    assert portal_emails(client_org) == ["ann@corp.test", "dan@corp.test"]
    assert sorted(OutboxEmail.objects.values_list("recipient", flat=True)) == ["ann@corp.test", "dan@corp.test"]
    issue = CreationIssue.objects.get()
    assert issue.reason == "no_email" and "Bob Ray" in issue.message and "Sales" in issue.message
    assert PortalUser.objects.get(email="dan@corp.test").permission_level.name == "Site Manager"
    again = sync.run_sync(corp["integration"], "command")
    assert not any(again.counts.values()), again.counts


def test_r3_rename_and_move_keep_the_user_and_r6_names_follow(corp, samba_dc, client_org):
    sync.run_sync(corp["integration"], "command")
    ann = PortalUser.objects.get(email="ann@corp.test")
    guid = corp["people"]["ann"]
    samba_dc.rename_user(guid, "Ann Renamed")
    samba_dc.move_user(guid, corp["it"])
    samba_dc.set_names(guid, given="Anna")
    run = sync.run_sync(corp["integration"], "command")
    ann.refresh_from_db()
    assert run.counts["created"] == 0 and ann.first_name == "Anna"
    assert ann.permission_level.name == "Site Manager"
    assert list(ann.security_groups.values_list("name", flat=True)) == ["IT team"]


def test_r8_disabled_enabled_and_deleted_in_ad(corp, samba_dc):
    sync.run_sync(corp["integration"], "command")
    samba_dc.disable_user(corp["people"]["ann"])
    sync.run_sync(corp["integration"], "command")
    assert PortalUser.objects.get(email="ann@corp.test").disabled_reason == "directory"
    samba_dc.enable_user(corp["people"]["ann"])
    sync.run_sync(corp["integration"], "command")
    assert PortalUser.objects.get(email="ann@corp.test").status == "pending"
    samba_dc.delete_user(corp["people"]["dan"])
    sync.run_sync(corp["integration"], "command")
    dan = PortalUser.objects.get(email="dan@corp.test")
    assert dan.status == "disabled" and dan.disabled_reason == "deleted"


@pytest.fixture
def elsewhere(samba_dc, samba_ou):
    """An OU outside the integration's base DN (in the same domain), removed afterwards."""
    dn = samba_dc.unique_ou("away")
    yield dn
    samba_dc.delete_tree(dn)


def test_r8_user_deleted_in_ad_is_disabled_as_deleted_and_r9_moved_users_as_out_of_scope(corp, samba_dc, elsewhere):
    """Deleted, moved out of the base DN, moved to an unmapped OU and to an unmapped child OU: each its reason."""
    sync.run_sync(corp["integration"], "command")
    ann_and_dan = ["ann@corp.test", "dan@corp.test"]
    assert all(PortalUser.objects.get(email=e).status == "pending" for e in ann_and_dan)
    mapped_sales = corp["sales"]
    sam = samba_dc.unique_sam
    gil = samba_dc.add_user(mapped_sales, sam("gil"), "Gil", "Yu", "gil@corp.test")
    hal = samba_dc.add_user(mapped_sales, sam("hal"), "Hal", "Zo", "hal@corp.test")
    assert sync.run_sync(corp["integration"], "command").counts["created"] == 2

    samba_dc.delete_user(corp["people"]["ann"])  # left the company: a tombstone in CN=Deleted Objects
    samba_dc.move_user(corp["people"]["dan"], corp["helpdesk"])  # into IT's child OU, which is not mapped
    samba_dc.move_user(gil, elsewhere)  # out of the integration's base DN altogether
    samba_dc.move_user(hal, corp["other"])  # into an unmapped OU under the base DN
    expected = {"ann@corp.test": "deleted", "dan@corp.test": "out_of_scope", "gil@corp.test": "out_of_scope",
                "hal@corp.test": "out_of_scope"}

    preview = sync.preview(corp["integration"], trigger="command")  # the preview says what the run does
    assert {row["user"].split("<")[1].rstrip(">"): row["reason"] for row in preview.changes["disable"]} == expected
    run = sync.run_sync(corp["integration"], "command")
    assert run.status == "succeeded", run.error
    assert run.counts["disabled"] == 4
    reasons = dict(PortalUser.objects.filter(email__in=expected).values_list("email", "disabled_reason"))
    assert reasons == expected
    assert all(PortalUser.objects.get(email=e).status == "disabled" for e in expected)

    again = sync.run_sync(corp["integration"], "command")  # the reasons hold on the next read
    assert not any(again.counts.values()), again.counts
    assert dict(PortalUser.objects.filter(email__in=expected).values_list("email", "disabled_reason")) == expected


def test_r9_an_ou_mapping_removed_disables_its_users(corp, samba_dc):
    sync.run_sync(corp["integration"], "command")
    Mapping.objects.get(folder__external_id=samba_dc.guid_of(corp["sales"])).delete()
    sync.run_sync(corp["integration"], "command")
    assert PortalUser.objects.get(email="ann@corp.test").disabled_reason == "out_of_scope"
    assert PortalUser.objects.get(email="dan@corp.test").status == "pending"


def test_r19_a_renamed_ou_keeps_its_mapping(corp, samba_dc):
    sync.run_sync(corp["integration"], "command")
    samba_dc.rename_ou(corp["sales"], "Sales and Marketing")
    run = sync.run_sync(corp["integration"], "command")
    assert not any(run.counts.values()), run.counts
    folder = Folder.objects.get(integration=corp["integration"], external_id=samba_dc.guid_of(
        corp["sales"].replace("OU=Sales,", "OU=Sales and Marketing,", 1)))
    assert folder.name == "Sales and Marketing" and hasattr(folder, "mapping")


def test_r21_a_stopped_dc_fails_the_run_and_disables_nobody(corp, samba_dc):
    sync.run_sync(corp["integration"], "command")
    with samba_dc.stopped():
        run = sync.run_sync(corp["integration"], "command")
    assert run.status == "failed" and "127.0.0.1" in run.error
    assert PortalUser.objects.filter(status="disabled").count() == 0
    assert Notification.objects.filter(kind="sync_failed").exists()
    assert sync.run_sync(corp["integration"], "command").status == "succeeded"


def test_r21_a_wrong_bind_password_fails_and_says_so(corp):
    sync.run_sync(corp["integration"], "command")
    Integration.objects.filter(pk=corp["integration"].pk).update(bind_password="not-the-password")
    integration = Integration.objects.get(pk=corp["integration"].pk)
    run = sync.run_sync(integration, "command")
    assert run.status == "failed" and "password" in run.error.lower()
    assert PortalUser.objects.filter(status="disabled").count() == 0


def test_r28_resync_one_user_reads_that_user_alone(corp, samba_dc):
    sync.run_sync(corp["integration"], "command")
    samba_dc.set_names(corp["people"]["ann"], given="Annie")
    samba_dc.set_names(corp["people"]["dan"], given="Daniel")
    ann = PortalUser.objects.get(email="ann@corp.test")
    [run] = actions.resync_user(ann, by=None)
    assert run.trigger == "user" and run.counts["updated"] == 1
    assert PortalUser.objects.get(pk=ann.pk).first_name == "Annie"
    assert PortalUser.objects.get(email="dan@corp.test").first_name == "Dan", "only that user"


def test_r15_resync_dry_run_changes_nothing_then_resync_creates_exactly_the_expected_users(corp, client_org, capsys):
    integration = corp["integration"]
    call_command("resync", "--integration", str(integration.pk), "--dry-run")
    out = capsys.readouterr().out
    assert "dry run" in out and "to create: 2" in out and "ann@corp.test" in out and "Bob Ray" in out
    assert PortalUser.objects.count() == 0 and CreationIssue.objects.count() == 0
    assert SyncRun.objects.filter(dry_run=True).count() == 1

    call_command("resync", "--all", "--wait")
    assert portal_emails(client_org) == ["ann@corp.test", "dan@corp.test"]
    call_command("resync", "--all", "--wait")
    assert capsys.readouterr().out.splitlines()[-1].endswith(": Succeeded; nothing changed")
    assert PortalUser.objects.count() == 2


def test_r24_resync_exits_non_zero_when_a_run_fails(corp, samba_dc):
    with samba_dc.stopped(), pytest.raises(CommandError, match="1 of 1 integration"):
        call_command("resync", "--integration", str(corp["integration"].pk), "--wait")


def test_r2_the_company_vault_gets_pro_users(samba_dc, samba_ou, vault):
    ou = samba_dc.make_ou("Techs", samba_ou)
    samba_dc.add_user(ou, samba_dc.unique_sam("tom"), "Tom", "Tech", "tom@msp.test")
    integration = ad_integration(vault, samba_dc, samba_ou)
    sync.run_sync(integration, "command")
    map_ou(integration, ou, samba_dc, pro_level("Technician"))
    sync.run_sync(integration, "command")
    tom = PortalUser.objects.get()
    assert tom.kind == "pro" and tom.permission_level.name == "Technician"
