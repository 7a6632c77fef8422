"""What a run holds while it plans stays small (issue 19, section 3: 300,000 users in under 500 MB).

The planner's results are the rules' (the planner tests prove those); these prove the shape that keeps a run
small does not change them: a linked identity the directory says the same of is not carried to the applier,
an email its linked user holds needs no owner worked out, and the portal's state shares equal values.
"""

from __future__ import annotations

import pytest

from directory.connectors.base import UserRecord
from directory.models import Integration
from provisioning.models import DirectoryLink
from provisioning.planner import Current, LinkState, Seen, UserState, fingerprint, link_state, plan
from provisioning.planning.emails import resolve_email_owners
from provisioning.state import load_current
from tests.test_planner import G1, G2, MAPPINGS, portal, rec, snap, state
from tests.test_run_short_cut import IT, SALES, person, push, run, steady  # noqa: F401 - steady: a fixture


def linked(user: UserState, record: UserRecord, digest: str) -> Current:
    """The portal's state with `record` linked to `user`, its link holding `digest` as its stored state."""
    return Current(users={user.id: user}, links={record.id: LinkState(record.id, user.id, frozenset(), 7, digest)})


def test_r3_a_link_the_directory_says_the_same_of_is_not_rewritten_and_one_it_changed_is():
    record = rec(display="Ann Lee")
    stored = fingerprint(Seen(G1, record.folder_ids, True, link_state(record)))

    assert plan(snap(record), MAPPINGS, linked(portal(), record, stored)).seen == []

    moved_on = rec(display="Ann Lee (Sales)")  # only what the link remembers changed: no field of the user
    result = plan(snap(moved_on), MAPPINGS, linked(portal(), moved_on, stored))
    [seen] = result.seen
    assert (seen.external_id, seen.state["display_name"], result.is_empty) == (G1, "Ann Lee (Sales)", True)
    assert seen.digest == fingerprint(Seen(G1, seen.folder_ids, True, link_state(moved_on))) != stored


def test_r3_a_link_stored_before_fingerprints_were_kept_is_written_once():
    record = rec()
    [seen] = plan(snap(record), MAPPINGS, linked(portal(), record, "")).seen
    assert seen.digest == fingerprint(Seen(G1, record.folder_ids, True, link_state(record)))


def test_r4_an_email_only_its_linked_user_claims_and_holds_needs_no_owner_but_a_shared_one_does():
    ann, bob = portal(uid=1, email="ann@corp.test"), portal(uid=2, email="bob@corp.test")
    current = state(ann, bob, links=[(G1, 1)])
    records = {G1: rec(gid=G1, email="ann@corp.test"), G2: rec(gid=G2, email="BOB@corp.test")}
    owners = resolve_email_owners(records, [(G1, "ann@corp.test"), (G2, "BOB@corp.test")], current)
    assert "ann@corp.test" not in owners  # Ann keeps hers: nobody else claims it
    assert owners["bob@corp.test"].user_id == 2 and owners["bob@corp.test"].external_id == G2  # adopted (R4)


def test_r7_an_email_with_spaces_around_it_is_the_email_its_user_holds():
    result = plan(snap(rec(email="  ann@corp.test ")), MAPPINGS, state(portal(), links=[(G1, 1)]))
    assert result.is_empty and result.issues_open == []


def test_r7_a_changed_email_its_user_did_not_hold_is_checked_and_an_invalid_one_is_an_issue():
    result = plan(snap(rec(email="ann at corp")), MAPPINGS, state(portal(), links=[(G1, 1)]))
    assert result.updates == [] and [i.reason for i in result.issues_open] == ["invalid_email"]


def test_r2_the_email_a_new_identity_is_created_with_is_trimmed():
    [created] = plan(snap(rec(email=" ann@corp.test ")), MAPPINGS, state()).creates
    assert created.email == "ann@corp.test"


@pytest.mark.django_db
def test_r12_the_portal_state_shares_equal_values_and_carries_each_links_row(steady: Integration):  # noqa: F811
    push(steady, [person(1), person(2), person(3, IT), person(5, SALES), person(4, email="")])
    run(steady)
    loaded = load_current(steady)
    users = list(loaded.current.users.values())
    assert len(users) == 4 and len({id(u.mapping_group_ids) for u in users}) == 1  # one "Everyone" set for all
    assert len({id(u.last_name) for u in users}) == 1  # "Lee" once
    links = loaded.current.links
    assert len({id(link.folder_ids) for link in links.values()}) == 1  # no folders read: one empty set
    rows = {ext: (pk, digest) for pk, ext, digest in
            DirectoryLink.objects.filter(integration=steady).values_list("pk", "external_id", "state_hash")}
    assert {ext: (link.row_id, link.state_hash) for ext, link in links.items()} == rows
    assert all(digest for _, digest in rows.values())
    assert {link.user_id for link in links.values()} == set(loaded.current.users)
