"""R8, R10: one rule sets a portal user's status. `PortalUser.status_for` is the rule; `status_expression` is the same
rule as a database expression, which the applier's set-based UPDATEs (disables, re-enables) write. They must agree
for every combination of the fields the rule reads: a staff disable, a sync's reason, and whether the user activated.
Run on SQLite and on PostgreSQL (DATABASE_URL): the expression is evaluated by the database."""

from __future__ import annotations

import itertools

from django.utils import timezone

from passportal.models import PortalUser, UserStatus
from passportal.reasons import DisableReason

REASONS = ["", *DisableReason]  # no sync reason, or each one a sync sets


def test_r8_r10_status_expression_agrees_with_status_for_for_every_combination(client_org):
    now = timezone.now()
    # (staff disable, activated, the reason stored before the UPDATE, the reason the UPDATE sets)
    combos = list(itertools.product([False, True], [False, True], REASONS, REASONS))
    PortalUser.objects.bulk_create([
        PortalUser(client=client_org, email=f"user{n}@contoso.test", disabled_by_staff=staff, disabled_reason=stored,
                   activated_at=now if activated else None,
                   status=PortalUser.status_for(disabled_by_staff=staff, disabled_reason=stored, activated=activated))
        for n, (staff, activated, stored, _) in enumerate(combos)
    ])
    for new in REASONS:
        emails = [f"user{n}@contoso.test" for n, combo in enumerate(combos) if combo[3] == new]
        assert PortalUser.objects.filter(email__in=emails).update(
            disabled_reason=new, status=PortalUser.status_expression(disabled_reason=new)) == len(emails)

    stored = dict(PortalUser.objects.values_list("email", "status"))
    for n, (staff, activated, before, new) in enumerate(combos):
        rule = PortalUser.status_for(disabled_by_staff=staff, disabled_reason=new, activated=activated)
        assert stored[f"user{n}@contoso.test"] == rule, (
            f"staff disable {staff}, activated {activated}, reason {before!r} -> {new!r}: the database wrote "
            f"{stored[f'user{n}@contoso.test']!r}, status_for says {rule!r}")
    assert set(stored.values()) == set(UserStatus)
