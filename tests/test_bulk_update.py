"""The bulk update every run uses for links (its PostgreSQL path from 500 rows on): JSON, foreign keys and text
land as given, in a fixed number of statements, whatever the row count."""

from __future__ import annotations

import pytest

from directory.models import Integration
from passportal.bulk import COPY_FROM, update_rows
from passportal.models import PortalUser
from provisioning.models import DirectoryLink, SyncRun


@pytest.mark.django_db
def test_r24_links_are_updated_in_bulk_with_json_and_the_run_that_saw_them(client_org):
    integration = Integration.objects.create(client=client_org, name="AD", kind="ad", ad_mode="agent",
                                             base_dn="DC=corp,DC=test")
    count = COPY_FROM + 100
    users = PortalUser.objects.bulk_create(
        [PortalUser(client=client_org, email=f"u{n}@corp.test") for n in range(count)])
    links = DirectoryLink.objects.bulk_create([
        DirectoryLink(integration=integration, directory_id="corp.test", external_id=f"{n:032x}", portal_user=user)
        for n, user in enumerate(users)])
    run = SyncRun.objects.create(integration=integration, trigger="schedule")

    update_rows(DirectoryLink, ["folder_ids", "directory_state", "state_hash", "last_run"], [
        (link.pk, [f"ou-{n}"], {"first_name": f"Ann {n}", "enabled": n % 2 == 0}, f"h{n}", run.pk)
        for n, link in enumerate(links)])

    stored = list(DirectoryLink.objects.order_by("pk").values_list("folder_ids", "directory_state", "state_hash",
                                                                    "last_run_id"))
    assert stored[7] == (["ou-7"], {"first_name": "Ann 7", "enabled": False}, "h7", run.pk)
    assert len({row[2] for row in stored}) == count and {row[3] for row in stored} == {run.pk}
