"""AD runs that read only what changed (provisioning.ad_reads over adread.incremental), against the real Samba DC.

A run asked for less than a full read (`full=False`: the AD schedule) reads the changes since the mark the last
good run kept; the mark moves only when the run succeeds (R21).
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from passportal.models import PortalUser
from provisioning import sync, tasks
from provisioning.models import AdReadMark, SyncRun
from tests.engine_helpers import site_level
from tests.test_engine_samba import ad_integration, map_ou

pytestmark = pytest.mark.samba


@pytest.fixture
def corp(samba_dc, samba_ou, client_org):
    """Staff (mapped) and Other (not) with two users in Staff, after a first full run that kept a mark."""
    staff, other = samba_dc.make_ou("Staff", samba_ou), samba_dc.make_ou("Other", samba_ou)
    sam = samba_dc.unique_sam
    people = {"ann": samba_dc.add_user(staff, sam("ann"), "Ann", "Lee", "ann@corp.test"),
              "bob": samba_dc.add_user(staff, sam("bob"), "Bob", "Ray", "bob@corp.test"),
              "cid": samba_dc.add_user(other, sam("cid"), "Cid", "Moe", "cid@corp.test")}
    integration = ad_integration(client_org, samba_dc, samba_ou)
    assert sync.run_sync(integration, "command").status == "succeeded"  # the folder tree (R19)
    map_ou(integration, staff, samba_dc, site_level("Site User"), "Staff team")
    first = sync.run_sync(integration, "apply")
    assert first.status == "succeeded" and first.counts["created"] == 2, first.error
    assert first.changes["read"]["words"] == "full read (this run was asked to read everything)"
    return {"integration": integration, "people": people, "staff": staff, "other": other}


def changes_run(integration) -> SyncRun:
    run = sync.run_sync(integration, "schedule", full=False)
    assert run.status in ("succeeded", "held"), run.error
    return run


def status(email: str) -> tuple[str, str]:
    user = PortalUser.objects.get(email=email)
    return user.status, user.disabled_reason


def test_r9_incremental_run_with_nothing_changed_changes_nobody(corp):
    mark = AdReadMark.objects.get(integration=corp["integration"])

    run = changes_run(corp["integration"])

    read = run.changes["read"]
    assert (read["changes_only"], read["words"]) == (True, "changes since the last read")
    assert read["searches"] == 5  # rootDSE, the DC's settings, OUs and groups, users, tombstones: one page each
    assert not any(run.counts.values()), run.counts
    kept = AdReadMark.objects.get(integration=corp["integration"])
    assert kept.kept_by_id == run.pk and kept.usn >= mark.usn and kept.full_read_at == mark.full_read_at


def test_r2_r6_r8_r9_incremental_run_sees_each_kind_of_change(corp, samba_dc, samba_ou):
    people, staff = corp["people"], corp["staff"]
    dan = samba_dc.add_user(staff, samba_dc.unique_sam("dan"), "Dan", "Vo", "dan@corp.test")  # new
    samba_dc.set_names(people["ann"], given="Anna")  # renamed
    samba_dc.rename_user(people["ann"], "Anna Lee")
    samba_dc.disable_user(people["bob"])  # disabled
    samba_dc.move_user(people["cid"], staff)  # moved into the mapped OU

    run = changes_run(corp["integration"])

    assert run.changes["read"]["changes_only"], run.changes["read"]
    assert run.counts["created"] == 2 and run.counts["disabled"] == 1, run.counts
    assert PortalUser.objects.get(email="ann@corp.test").first_name == "Anna"
    assert status("bob@corp.test") == ("disabled", "directory")
    assert status("cid@corp.test")[0] == "pending" and status("dan@corp.test")[0] == "pending"
    assert dan

    samba_dc.move_user(people["cid"], corp["other"])  # moved out of the mapped OU
    samba_dc.delete_user(dan)  # deleted
    run = changes_run(corp["integration"])
    assert run.changes["read"]["changes_only"] and run.counts["disabled"] == 2, run.counts
    assert status("cid@corp.test") == ("disabled", "out_of_scope")
    assert status("dan@corp.test") == ("disabled", "deleted")


def test_r19_an_ou_renamed_makes_the_run_a_full_read(corp, samba_dc):
    samba_dc.rename_ou(corp["other"], "Elsewhere")

    run = changes_run(corp["integration"])

    assert not run.changes["read"]["changes_only"]
    assert run.changes["read"]["words"].startswith("full read (an OU changed since the last read")
    assert not any(run.counts.values())
    assert corp["integration"].folders.filter(path__endswith="/Elsewhere").exists()


def test_g4_a_group_membership_change_makes_the_run_a_full_read(corp, samba_dc, samba_ou):
    group = samba_dc.add_security_group(samba_ou, "Sales-Team", members=[samba_dc.dn_of(corp["people"]["cid"])])
    integration = corp["integration"]
    assert sync.run_sync(integration, "command").status == "succeeded"  # the group becomes a folder
    map_ou(integration, group, samba_dc, site_level("Site User"))
    assert sync.run_sync(integration, "apply").counts["created"] == 1  # Cid, through the group
    samba_dc.remove_group_member(group, samba_dc.dn_of(corp["people"]["cid"]))

    run = changes_run(integration)

    assert run.changes["read"]["words"].startswith("full read (a group changed since the last read")
    assert status("cid@corp.test") == ("disabled", "out_of_scope")


def test_r21_an_incremental_read_that_fails_keeps_the_mark_and_changes_nobody(corp, samba_dc):
    integration = corp["integration"]
    mark = AdReadMark.objects.get(integration=integration)
    samba_dc.disable_user(corp["people"]["ann"])
    urls = integration.ldap_urls
    integration.ldap_urls = "ldaps://127.0.0.1:1"  # nothing listens there: the read fails
    integration.save(update_fields=["ldap_urls"])

    failed = sync.run_sync(integration, "schedule", full=False)

    assert failed.status == "failed" and "Could not read" in failed.error
    assert AdReadMark.objects.get(integration=integration).usn == mark.usn
    assert status("ann@corp.test")[0] == "pending"
    integration.ldap_urls = urls
    integration.save(update_fields=["ldap_urls"])
    run = changes_run(integration)  # the same changes, read again from the kept mark
    assert run.changes["read"]["changes_only"] and status("ann@corp.test") == ("disabled", "directory")


def test_r21_r22_a_run_whose_disables_are_held_keeps_the_mark(corp, samba_dc):
    integration = corp["integration"]
    integration.disable_threshold_percent, integration.disable_threshold_minimum = 10, 1
    integration.save(update_fields=["disable_threshold_percent", "disable_threshold_minimum"])
    mark = AdReadMark.objects.get(integration=integration)
    samba_dc.disable_user(corp["people"]["ann"])

    held = changes_run(integration)

    assert held.status == "held" and AdReadMark.objects.get(integration=integration).usn == mark.usn
    again = changes_run(integration)  # read again: held again, as a full read would
    assert again.status == "held" and again.held_disables[0]["external_id"] == corp["people"]["ann"]


def test_r21_a_mark_of_another_dc_incarnation_or_stale_means_a_full_read(corp):
    integration = corp["integration"]
    AdReadMark.objects.filter(integration=integration).update(invocation_id="00000000-0000-4000-8000-000000000001")
    assert "restored or rebuilt" in changes_run(integration).changes["read"]["words"]
    assert changes_run(integration).changes["read"]["changes_only"]  # the full run kept a good mark

    AdReadMark.objects.filter(integration=integration).update(full_read_at=timezone.now() - timedelta(hours=25))
    assert changes_run(integration).changes["read"]["words"] == "full read (the periodic full read is due)"
    assert AdReadMark.objects.get(integration=integration).full_read_at > timezone.now() - timedelta(minutes=5)


def test_r16_a_mapping_changed_since_the_mark_means_a_full_read(corp, samba_dc, settings):
    integration = corp["integration"]
    map_ou(integration, corp["other"], samba_dc, site_level("Site User"))

    run = changes_run(integration)

    assert run.changes["read"]["words"] == "full read (the mapped folders changed since the last read)"
    assert run.counts["created"] == 1  # Cid, whose OU was mapped: he did not change, a full read finds him


def test_r17_the_scheduled_ad_run_asks_for_changes_only(corp):
    assert tasks.sync_scheduled("ad_direct", False) == 1
    run = SyncRun.objects.filter(integration=corp["integration"], status="queued").get()
    assert run.full is False


def test_r24_the_run_page_says_which_read_the_run_made(corp, admin_client, samba_dc):
    full = SyncRun.objects.filter(integration=corp["integration"], trigger="apply").get()
    changes = changes_run(corp["integration"])

    full_page = admin_client.get(f"/admin/provisioning/flow/runs/{full.pk}/").content.decode()
    changes_page = admin_client.get(f"/admin/provisioning/flow/runs/{changes.pk}/").content.decode()

    assert '<td id="run-read">Full read (this run was asked to read everything)</td>' in full_page
    assert '<td id="run-read">Changes since the last read</td>' in changes_page
