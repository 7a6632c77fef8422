"""Words, not internals: what people read says durations, counts, reasons and names plainly (provisioning.wording)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.urls import reverse

from passportal.models import PermissionLevel, PortalUser
from provisioning import wording
from provisioning.models import Mapping, SyncRun
from tests.fixtures_browser import activated_site_admin, agent_integration, ou, person, push_directory

RULE_NUMBER = re.compile(r"\bR\d{1,2}\b")

# ---------------------------------------------------------------- the module, function by function


@pytest.mark.parametrize(("value", "words"), [
    (timedelta(microseconds=183762), "0.2 s"),
    (timedelta(seconds=4.46), "4.5 s"),
    (timedelta(seconds=42.4), "42 s"),
    (timedelta(minutes=3, seconds=4), "3 min 4 s"),
    (timedelta(minutes=5), "5 min"),
    (timedelta(hours=1, minutes=5, seconds=10), "1 h 5 min"),
    (timedelta(hours=2), "2 h"),
    (timedelta(microseconds=40), "under 0.1 s"),
    (None, ""),
])
def test_durations_read_as_seconds_minutes_and_hours(value, words):
    assert wording.duration(value) == words


def test_counts_are_labelled_figures_in_a_fixed_order():
    counts = {"held": 0, "disabled": 2, "created": 3, "groups_added": 1}
    assert wording.counts_in_words(counts) == "created: 3, disabled: 2, group memberships added: 1"
    assert wording.counts_in_words({"created": 3}, preview=True) == "to create: 3"
    assert wording.counts_in_words({"created": 0}) == "nothing changed"
    assert wording.counts_in_words({}, preview=True) == "nothing to change"
    preview = wording.labelled_counts({"created": 3}, preview=True)
    assert preview[0] == ("to create", 3) and ("to disable", 0) in preview, "a preview shows every figure"
    assert wording.labelled_counts({"created": 3, "disabled": 0}) == [("created", 3), ("disabled", 0)]


@pytest.mark.parametrize(("reason", "kind", "sentence"), [
    ("out_of_scope", "ad", "Moved out of every mapped OU"),
    ("out_of_scope", "entra", "Moved out of every mapped AU"),
    ("deleted", "ad", "Deleted in Active Directory"),
    ("deleted", "entra", "Deleted in Entra ID"),
    ("directory", "entra", "Disabled in Entra ID"),
    ("directory", "ad", "Disabled in Active Directory"),
    ("directory", "", "Disabled in the directory"),
    ("directory", "scim", "Disabled in the identity provider"),
    ("out_of_scope", "scim", "Moved out of every mapped group"),
    ("link_off", "ad", "The integration's link was switched off"),
    ("staff", "", "Disabled by staff"),
])
def test_reasons_are_sentences_that_name_the_directory(reason, kind, sentence):
    assert wording.disable_reason(reason, kind) == sentence


def test_field_changes_name_the_field_and_show_values_as_recorded():
    assert wording.field_change("permission_level_id", "Site User", "Site Manager") == (
        "Permission level: Site User -> Site Manager")
    assert wording.field_change("first_name", "", "Ann") == "First name: (none) -> Ann"
    assert wording.grants("Site Manager", ["Sales", "IT"]) == "Site Manager; groups IT, Sales"
    assert wording.grants("Technician", []) == "Technician"
    assert wording.group_change(["Sales"], ["Old"]) == "Groups: adds Sales; removes Old"


@pytest.mark.django_db
def test_a_moment_is_a_date_and_a_time_in_the_portal_time_zone(settings):
    settings.TIME_ZONE = "UTC"
    assert wording.moment(datetime(2025, 5, 3, 14, 2, 59, tzinfo=UTC)) == "3 May 2025, 14:02"
    assert wording.moment(None) == ""


@pytest.mark.django_db
def test_a_staff_member_is_named_by_full_name_else_username():
    tom = get_user_model()(username="tom")
    assert wording.staff_name(tom) == "tom"
    tom.first_name, tom.last_name = "Tom", "Tech"
    assert wording.staff_name(tom) == "Tom Tech"
    assert wording.staff_name(None) == "a staff member"


# ---------------------------------------------------------------- where people read them

SALES, IT = ou(1, "Sales"), ou(2, "IT")


@pytest.fixture
def corp(client_org):
    """Sales mapped to Site User with one person; IT not mapped yet."""
    activated_site_admin(client_org)
    integration = agent_integration(client_org, [SALES, IT], [person(1, SALES), person(2, SALES), person(3, IT)])
    Mapping.objects.create(folder=integration.folders.get(external_id=SALES["id"]),
                           permission_level=PermissionLevel.objects.get(user_kind="site", name="Site User"))
    push_directory(integration, [SALES, IT], [person(1, SALES), person(2, SALES), person(3, IT)])
    return integration


def test_the_run_page_and_overview_show_durations_and_labelled_counts(staff_client, corp):
    run = SyncRun.objects.filter(integration=corp, dry_run=False).first()
    SyncRun.objects.filter(pk=run.pk).update(finished_at=run.started_at + timedelta(minutes=3, seconds=4))
    page = staff_client.get(reverse("provisioning:run", args=[run.pk])).content.decode()
    assert "(took 3 min 4 s)" in page and "0:03:04" not in page
    assert re.search(r"<th>Created</th><td class=\"count\">2</td>", page)
    overview = staff_client.get(reverse("provisioning:overview")).content.decode()
    assert "(3 min 4 s)" in overview and "Created: 2" in overview
    assert "created 2" not in overview and "{&#x27;created" not in overview
    runs = staff_client.get(reverse("admin:provisioning_syncrun_changelist")).content.decode()
    assert "created: 2" in runs and "&quot;created&quot;" not in runs and "{&#x27;" not in runs


def test_a_disable_reads_as_a_sentence_on_the_run_page(staff_client, corp):
    run = push_directory(corp, [SALES, IT], [person(1, SALES), person(3, IT)])  # user2 no longer in Sales
    page = staff_client.get(reverse("provisioning:run", args=[run.pk])).content.decode()
    assert "Moved out of every mapped OU" in page and "out_of_scope" not in page


def test_a_preview_names_levels_and_groups(staff_client, corp):
    sales, it = (corp.folders.get(external_id=r["id"]) for r in (SALES, IT))
    manager = PermissionLevel.objects.get(user_kind="site", name="Site Manager")
    response = staff_client.post(reverse("provisioning:setup", args=[corp.pk]), {
        "folders": [sales.pk, it.pk], "permission_level": manager.pk, "new_group": "Contoso staff",
        "apply": "Apply"})
    page = staff_client.get(response.url).content.decode()
    assert "Permission level: Site User -&gt; Site Manager" in page
    assert "Site Manager" in page and "Contoso staff" in page
    assert "permission_level_id" not in page and f"{manager.pk} -&gt;" not in page


def test_a_preview_of_groups_names_each_group(staff_client, corp):
    from passportal.models import SecurityGroup

    group = SecurityGroup.objects.create(client=corp.client, name="Sales team")
    sales = corp.folders.get(external_id=SALES["id"])
    level = PermissionLevel.objects.get(user_kind="site", name="Site User")
    response = staff_client.post(reverse("provisioning:setup", args=[corp.pk]), {
        "folders": [sales.pk], "permission_level": level.pk, "security_groups": [group.pk], "apply": "Apply"})
    page = staff_client.get(response.url).content.decode()
    assert "Groups: adds Sales team" in page and page.count('class="change-change-groups"') == 2


def test_the_cli_dry_run_names_levels_and_says_reasons_in_words(corp):
    mapping = Mapping.objects.get(folder__integration=corp)
    mapping.permission_level = PermissionLevel.objects.get(user_kind="site", name="Site Manager")
    mapping.save()
    PortalUser.objects.filter(email="user2@corp.test").update(first_name="Old")
    out = StringIO()
    call_command("resync", "--integration", str(corp.pk), "--dry-run", "--last-upload", stdout=out)
    text = out.getvalue()
    assert "Permission level: Site User -> Site Manager" in text
    assert "permission_level_id" not in text and "'3'" not in text and "=" not in text
    assert "to update: 2" in text


def test_no_rule_numbers_where_people_read(staff_client, corp):
    run = SyncRun.objects.filter(integration=corp, dry_run=False).first()
    pages = [reverse("provisioning:run", args=[run.pk]), reverse("provisioning:overview"),
             reverse("provisioning:user-mapping", args=[corp.client_id]), reverse("provisioning:setup", args=[corp.pk]),
             reverse("admin:passportal_permissionlevel_add"), reverse("admin:provisioning_syncrun_changelist"),
             reverse("admin:passportal_portaluser_change", args=[PortalUser.objects.first().pk])]
    for url in pages:
        text = re.sub(r"<script.*?</script>", "", staff_client.get(url).content.decode(), flags=re.S)
        assert not RULE_NUMBER.search(text), (url, RULE_NUMBER.findall(text))
    help_text = StringIO()
    with pytest.raises(SystemExit):
        call_command("resync", "--help", stdout=help_text)
    assert not RULE_NUMBER.search(help_text.getvalue())
