"""What the end-to-end cases (AD, Entra, scale-out) share: a client to provision into, and its mappings."""

from __future__ import annotations

from collections.abc import Iterable


def make_client(name: str = "Bench Client"):
    """The Company Vault (an installation has one) and a site client; returns the client."""
    from passportal.models import Client

    if not Client.objects.filter(is_company_vault=True).exists():
        Client.objects.create(name="Bench MSP", is_company_vault=True, site_enabled=True)
    return Client.objects.create(name=name, site_enabled=True)


def map_folders(integration, external_ids: Iterable[str]) -> int:
    """Map these recorded folders of the integration to Site User + one "Everyone" group; returns how many."""
    from directory.models import Folder
    from passportal.models import PermissionLevel, SecurityGroup
    from provisioning.models import Mapping

    level = PermissionLevel.objects.get(user_kind="site", name="Site User")
    group, _ = SecurityGroup.objects.get_or_create(client=integration.client, name="Everyone")
    folders = Folder.objects.filter(integration=integration, external_id__in=list(external_ids))
    mappings = Mapping.objects.bulk_create([Mapping(folder=f, permission_level=level) for f in folders])
    Mapping.security_groups.through.objects.bulk_create(
        [Mapping.security_groups.through(mapping_id=m.pk, securitygroup_id=group.pk) for m in mappings]
    )
    return len(mappings)


def timed_run(integration, result: dict) -> None:
    from bench.common import measured
    from provisioning import sync

    with measured(result):
        run = sync.run_sync(integration, "command")
    if run.status != "succeeded":
        raise SystemExit(f"sync run ended {run.status}: {run.error}")
    result["counts"] = {k: v for k, v in run.counts.items() if v}
