"""R4 across a client's directories: one person is one portal user, whichever directory lists them first.

Two Entra tenants of one client (a primary and an additional domain) list the same guest: the first to
bring the guest in keeps the portal user; the other raises one creation issue naming who holds the email,
and runs of both, alternately, never rewrite the user again.
"""

from __future__ import annotations

import pytest
from django.db import IntegrityError, connection, transaction
from django.db.migrations.executor import MigrationExecutor

from directory.entra_tenant import check_entra_integration
from directory.models import Folder, Integration
from passportal.models import PermissionLevel, PortalUser, SecurityGroup
from provisioning import sync
from provisioning.models import CreationIssue, DirectoryLink, Mapping, SyncTrigger
from testing.fake_entra import FakeEntraServer

from .fixtures_entra import entra_integration_values


def tenant_integration(server: FakeEntraServer, client, tenant, name: str, role: str) -> Integration:
    app = server.add_app(tenant)
    integration = Integration(client=client, name=name, **entra_integration_values(
        server, tenant=tenant.domains[0], app_client_id=app.client_id, client_secret=app.secret, entra_role=role))
    check_entra_integration(integration)
    integration.save()
    return integration


def map_all_folders(integration: Integration, group: str) -> None:
    sync.run_sync(integration, SyncTrigger.FORCE)  # discovers the AUs
    level = PermissionLevel.objects.get(user_kind="site", name="Site User")
    for folder in Folder.objects.filter(integration=integration):
        mapping = Mapping.objects.create(folder=folder, permission_level=level)
        mapping.security_groups.add(SecurityGroup.objects.get_or_create(client=integration.client, name=group)[0])


def snapshot_of(user: PortalUser) -> tuple:
    user.refresh_from_db()
    return (user.email, user.first_name, user.last_name, user.status, user.permission_level_id,
            sorted(user.security_groups.values_list("name", flat=True)), user.updated_at)


@pytest.mark.django_db
def test_r4_the_same_guest_in_two_tenants_of_one_client_is_one_portal_user_and_one_issue(
        fake_entra: FakeEntraServer, client_org):
    london_tenant = fake_entra.tenant
    paris_tenant = fake_entra.add_tenant("Paris", ["paris.onmicrosoft.com"])
    london_au = fake_entra.add_au("London office")
    paris_au = fake_entra.add_au("Paris office", tenant=paris_tenant)
    fake_entra.add_user("Gina", "Guest", mail="gina@partner.test", aus=[london_au])
    fake_entra.add_user("Gina", "Guest", mail="Gina@Partner.test", aus=[paris_au], tenant=paris_tenant)
    london = tenant_integration(fake_entra, client_org, london_tenant, "London tenant", "primary")
    paris = tenant_integration(fake_entra, client_org, paris_tenant, "Paris tenant", "additional")
    map_all_folders(london, "London")
    map_all_folders(paris, "Paris")

    assert sync.run_sync(london, SyncTrigger.FORCE).status == "succeeded"
    gina = PortalUser.objects.get(client=client_org)
    first = snapshot_of(gina)
    assert first[0] == "gina@partner.test" and first[5] == ["London"]

    for _ in range(10):
        for integration in (paris, london):
            assert sync.run_sync(integration, SyncTrigger.FORCE).status == "succeeded"
        assert snapshot_of(gina) == first, "no run of either tenant rewrites the guest"

    assert PortalUser.objects.filter(client=client_org).count() == 1
    assert list(DirectoryLink.objects.filter(portal_user=gina).values_list("integration__name", flat=True)) == [
        "London tenant"]
    [issue] = CreationIssue.objects.filter(closed_at__isnull=True)
    assert issue.integration == paris and issue.reason == "duplicate_email"
    assert "London tenant" in issue.message and "Gina@Partner.test" in issue.message


@pytest.mark.django_db
def test_r4_a_disable_in_one_tenant_is_not_undone_by_the_other(fake_entra: FakeEntraServer, client_org):
    paris_tenant = fake_entra.add_tenant("Paris", ["paris.onmicrosoft.com"])
    london_au = fake_entra.add_au("London office")
    paris_au = fake_entra.add_au("Paris office", tenant=paris_tenant)
    in_london = fake_entra.add_user("Gina", "Guest", mail="gina@partner.test", aus=[london_au])
    fake_entra.add_user("Gina", "Guest", mail="gina@partner.test", aus=[paris_au], tenant=paris_tenant)
    london = tenant_integration(fake_entra, client_org, fake_entra.tenant, "London tenant", "primary")
    paris = tenant_integration(fake_entra, client_org, paris_tenant, "Paris tenant", "additional")
    map_all_folders(london, "London")
    map_all_folders(paris, "Paris")
    sync.run_sync(london, SyncTrigger.FORCE)

    in_london.account_enabled = False
    sync.run_sync(london, SyncTrigger.FORCE)
    sync.run_sync(paris, SyncTrigger.FORCE)
    gina = PortalUser.objects.get(client=client_org)
    assert gina.status == "disabled" and gina.disabled_reason == "directory"


@pytest.mark.django_db
def test_r4_the_schema_refuses_one_portal_user_linked_from_two_identities(client_org):
    first = Integration.objects.create(client=client_org, name="AD", kind="ad", ad_mode="agent",
                                       base_dn="DC=corp,DC=test")
    second = Integration.objects.create(client=client_org, name="Other AD", kind="ad", ad_mode="agent",
                                        base_dn="DC=other,DC=test")
    user = PortalUser.objects.create(client=client_org, email="ann@corp.test")
    DirectoryLink.objects.create(integration=first, directory_id="corp.test", external_id="a" * 32, portal_user=user)
    with pytest.raises(IntegrityError), transaction.atomic():
        DirectoryLink.objects.create(integration=second, directory_id="other.test", external_id="b" * 32,
                                     portal_user=user)


@pytest.mark.django_db(transaction=True)
def test_r4_the_migration_resolves_existing_doubles_by_who_was_linked_first(capsys):
    before = [("provisioning", "0005_scim_trigger")]
    after = [("provisioning", "0006_one_identity_per_portal_user")]
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    try:
        _migrate_doubles(executor, before, after, capsys)
    finally:  # every later migration back, or the tests after this one in the process lose their tables
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())
    assert MigrationExecutor(connection).migration_plan(executor.loader.graph.leaf_nodes()) == []


def _migrate_doubles(executor: MigrationExecutor, before: list, after: list, capsys) -> None:
    apps = executor.loader.project_state(before).apps
    client = apps.get_model("passportal", "Client").objects.create(name="Contoso Ltd")
    make = apps.get_model("directory", "Integration").objects.create
    first = make(client=client, name="London tenant", kind="entra")
    second = make(client=client, name="Paris tenant", kind="entra")
    user = apps.get_model("passportal", "PortalUser").objects.create(client=client, email="gina@partner.test")
    link = apps.get_model("provisioning", "DirectoryLink").objects.create
    kept = link(integration=first, directory_id="t1", external_id="f" * 32, portal_user=user)
    link(integration=second, directory_id="t2", external_id="0" * 32, portal_user=user)

    executor = MigrationExecutor(connection)
    executor.migrate(after)
    assert list(DirectoryLink.objects.filter(portal_user_id=user.pk).values_list("pk", flat=True)) == [kept.pk]
    assert "London tenant (ffff" in capsys.readouterr().out
