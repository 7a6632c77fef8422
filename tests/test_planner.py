"""The planner, table-style: plain data in, a Plan out. No database, no clock."""

from __future__ import annotations

import pytest

from directory.connectors.base import FolderRecord, Snapshot, UserRecord
from provisioning.planner import (
    Current,
    DisableReason,
    IssueReason,
    LinkState,
    MappingRule,
    Threshold,
    UserState,
    plan,
)

G1 = "00000000-0000-0000-0000-0000000000a1"
G2 = "00000000-0000-0000-0000-0000000000a2"
G3 = "00000000-0000-0000-0000-0000000000a3"
OU_SALES, OU_IT, OU_OTHER = "f-sales", "f-it", "f-other"
FOLDERS = tuple(FolderRecord(id=f, name=f, kind="ou") for f in (OU_SALES, OU_IT, OU_OTHER))
SALES = MappingRule(OU_SALES, level_id=1, level_rank=20, group_ids=frozenset({10}), folder_path="Corp/Sales")
IT = MappingRule(OU_IT, level_id=2, level_rank=40, group_ids=frozenset({20}), folder_path="Corp/IT")
MAPPINGS = {OU_SALES: SALES, OU_IT: IT}


def rec(gid=G1, first="Ann", last="Lee", email="ann@corp.test", enabled=True, folders=(OU_SALES,), display=""):
    return UserRecord(id=gid, first_name=first, last_name=last, email=email, enabled=enabled,
                      folder_ids=frozenset(folders), display_name=display)


def snap(*users, complete=True, incremental=False, removed=(), folders=FOLDERS, folders_complete=True):
    return Snapshot(directory_id="corp.test", folders=folders, users=tuple(users), complete=complete,
                    incremental=incremental, removed_user_ids=frozenset(removed), folders_complete=folders_complete)


def portal(uid=1, email="ann@corp.test", first="Ann", last="Lee", reason="", staff=False, level=1, by_hand=False,
           groups=frozenset({10})):
    return UserState(id=uid, email=email, first_name=first, last_name=last, disabled_reason=reason,
                     disabled_by_staff=staff, level_id=level, level_set_by_hand=by_hand,
                     mapping_group_ids=frozenset(groups))


def state(*users, links=(), issues=()):
    return Current(users={u.id: u for u in users},
                   links={ext: LinkState(ext, uid, frozenset()) for ext, uid in links},
                   open_issues=frozenset(issues))


NOBODY = state()


def test_r2_enabled_user_in_a_mapped_folder_is_created_with_level_and_groups():
    result = plan(snap(rec()), MAPPINGS, NOBODY)
    assert [(c.external_id, c.email, c.level_id, c.group_ids) for c in result.creates] == [
        (G1, "ann@corp.test", 1, frozenset({10}))
    ]


@pytest.mark.parametrize(("record", "why"), [
    (rec(folders=(OU_OTHER,)), "folder not mapped"),
    (rec(enabled=False), "disabled in the directory"),
    (rec(folders=()), "in no folder"),
])
def test_r2_only_enabled_users_in_configured_folders_are_created(record, why):
    assert plan(snap(record), MAPPINGS, NOBODY).creates == [], why


def test_r3_moved_renamed_and_new_email_in_one_run_is_one_update():
    current = state(portal(), links=[(G1, 1)])
    moved = rec(first="Anna", last="Berg", email="anna.berg@corp.test", folders=(OU_IT,))
    result = plan(snap(moved), MAPPINGS, current)
    assert result.creates == [] and result.disables == []
    [update] = result.updates
    assert update.changes == {
        "first_name": ("Ann", "Anna"), "last_name": ("Lee", "Berg"),
        "email": ("ann@corp.test", "anna.berg@corp.test"), "permission_level_id": (1, 2),
    }
    assert result.group_adds == [(1, 20)] and result.group_removes == [(1, 10)]


def test_r4_a_portal_user_with_the_same_email_is_adopted_not_duplicated():
    existing = portal(uid=7, email="ANN@corp.test", level=3, groups=frozenset())
    result = plan(snap(rec()), MAPPINGS, state(existing))
    assert result.creates == []
    assert [(a.external_id, a.user_id, a.keeps_level) for a in result.adoptions] == [(G1, 7, True)]
    assert not any("permission_level_id" in u.changes for u in result.updates), "R11: adopted keeps its level"
    assert result.group_adds == [(7, 10)]


@pytest.mark.parametrize("order", [(G2, G1), (G1, G2)])
def test_r4_two_directory_users_with_one_email_the_lower_id_wins_whatever_the_order(order):
    users = [rec(gid=g, first=g[-2:]) for g in order]
    result = plan(snap(*users), MAPPINGS, NOBODY)
    assert [c.external_id for c in result.creates] == [G1]
    assert [(i.external_id, i.reason) for i in result.issues_open] == [(G2, IssueReason.DUPLICATE_EMAIL)]


def test_r4_the_identity_already_linked_to_the_holder_keeps_the_email():
    current = state(portal(uid=5), links=[(G2, 5)])
    result = plan(snap(rec(gid=G1), rec(gid=G2)), MAPPINGS, current)
    assert result.creates == [] and result.adoptions == []
    assert [(i.external_id, i.reason) for i in result.issues_open] == [(G1, IssueReason.DUPLICATE_EMAIL)]


def test_r4_a_portal_user_another_directory_of_the_client_holds_is_never_adopted():
    existing = portal(uid=7, email="ann@corp.test")
    current = state(existing)
    current = Current(users=current.users, links=current.links, held_elsewhere={7: "Paris tenant"})
    result = plan(snap(rec()), MAPPINGS, current)
    assert result.creates == [] and result.adoptions == [] and result.updates == []
    [issue] = result.issues_open
    assert (issue.external_id, issue.reason) == (G1, IssueReason.DUPLICATE_EMAIL) and "Paris tenant" in issue.message


def test_r4_a_linked_user_cannot_take_an_email_another_directory_holds():
    current = state(portal(uid=5, email="old@corp.test"), portal(uid=7, email="ann@corp.test"), links=[(G1, 5)])
    current = Current(users=current.users, links=current.links, held_elsewhere={7: "Paris tenant"})
    result = plan(snap(rec(email="ann@corp.test")), MAPPINGS, current)
    assert not any("email" in u.changes for u in result.updates)
    assert [(i.external_id, i.reason) for i in result.issues_open] == [(G1, IssueReason.EMAIL_TAKEN)]


def test_r6_names_come_from_first_and_last_name_never_the_display_name():
    result = plan(snap(rec(first="Ann", last="Lee", display="Lee, Ann (Sales)")), MAPPINGS, NOBODY)
    assert (result.creates[0].first_name, result.creates[0].last_name) == ("Ann", "Lee")


def test_r6_a_name_change_reaches_the_portal_user():
    result = plan(snap(rec(first="Annie")), MAPPINGS, state(portal(), links=[(G1, 1)]))
    assert [u.changes for u in result.updates] == [{"first_name": ("Ann", "Annie")}]


@pytest.mark.parametrize(("email", "reason"), [
    ("", IssueReason.NO_EMAIL), ("   ", IssueReason.NO_EMAIL), ("not-an-email", IssueReason.INVALID_EMAIL),
    ("ann@", IssueReason.INVALID_EMAIL),
    ("ann\x00@corp.test", IssueReason.INVALID_EMAIL), ("a" * 250 + "@corp.test", IssueReason.INVALID_EMAIL),
])
def test_r7_a_user_without_a_valid_email_is_a_creation_issue_naming_user_folder_and_reason(email, reason):
    result = plan(snap(rec(email=email)), MAPPINGS, NOBODY)
    assert result.creates == []
    [issue] = result.issues_open
    assert issue.reason == reason and issue.folder_id == OU_SALES
    assert "Ann Lee" in issue.message and "Corp/Sales" in issue.message


def test_r7_an_issue_is_raised_once_and_closes_when_the_user_gets_an_email():
    still_open = plan(snap(rec(email="")), MAPPINGS, state(issues=[(G1, IssueReason.NO_EMAIL)]))
    assert still_open.issues_open == [] and still_open.issues_close == []
    fixed = plan(snap(rec(email="ann@corp.test")), MAPPINGS, state(issues=[(G1, IssueReason.NO_EMAIL)]))
    assert [c.external_id for c in fixed.creates] == [G1]
    assert fixed.issues_close == [(G1, IssueReason.NO_EMAIL)]


def test_r7_an_email_change_to_one_another_user_holds_is_an_issue_and_the_email_stays():
    current = state(portal(uid=1), portal(uid=2, email="bob@corp.test"), links=[(G1, 1)])
    result = plan(snap(rec(email="bob@corp.test")), MAPPINGS, current)
    assert not any("email" in u.changes for u in result.updates)
    assert [(i.external_id, i.reason) for i in result.issues_open] == [(G1, IssueReason.EMAIL_TAKEN)]


@pytest.mark.parametrize("value", ["  ann@corp.test ", "Ann+tag@Corp.TEST", "ann@bücher.example"])
def test_r7_emails_with_spaces_plus_capitals_or_international_domains_are_accepted(value):
    result = plan(snap(rec(email=value)), MAPPINGS, NOBODY)
    assert [c.email for c in result.creates] == [value.strip()]


def test_r8_user_disabled_in_the_directory_is_disabled():
    result = plan(snap(rec(enabled=False)), MAPPINGS, state(portal(), links=[(G1, 1)]))
    assert [(d.user_id, d.reason) for d in result.disables] == [(1, DisableReason.DIRECTORY)]


def test_r8_enabled_again_in_the_directory_is_enabled_again():
    result = plan(snap(rec()), MAPPINGS, state(portal(reason=DisableReason.DIRECTORY), links=[(G1, 1)]))
    assert [(r.user_id, r.previous_reason, r.stays_disabled_by_staff) for r in result.reenables] == [
        (1, DisableReason.DIRECTORY, False)
    ]


def test_r8_a_staff_disable_is_kept_while_the_directory_re_enables():
    result = plan(snap(rec()), MAPPINGS, state(portal(reason=DisableReason.DIRECTORY, staff=True), links=[(G1, 1)]))
    assert [r.stays_disabled_by_staff for r in result.reenables] == [True]
    assert plan(snap(rec()), MAPPINGS, state(portal(staff=True), links=[(G1, 1)])).is_empty


def test_r8_deleted_in_the_directory_is_disabled_never_deleted():
    result = plan(snap(incremental=True, removed=[G1]), MAPPINGS, state(portal(), links=[(G1, 1)]))
    assert [(d.user_id, d.reason) for d in result.disables] == [(1, DisableReason.DELETED)]


def test_r9_a_user_moved_out_of_every_configured_folder_is_disabled():
    result = plan(snap(rec(folders=(OU_OTHER,))), MAPPINGS, state(portal(), links=[(G1, 1)]))
    assert [(d.user_id, d.reason) for d in result.disables] == [(1, DisableReason.OUT_OF_SCOPE)]
    assert result.group_removes == [(1, 10)]


def test_r9_a_user_whose_folder_mapping_was_removed_is_disabled():
    result = plan(snap(rec()), {OU_IT: IT}, state(portal(), links=[(G1, 1)]))
    assert [(d.user_id, d.reason) for d in result.disables] == [(1, DisableReason.OUT_OF_SCOPE)]


def test_r9_a_known_user_missing_from_a_full_read_is_out_of_scope():
    result = plan(snap(rec(gid=G2, email="b@corp.test")), MAPPINGS, state(portal(), links=[(G1, 1)]))
    assert [(d.user_id, d.reason) for d in result.disables] == [(1, DisableReason.OUT_OF_SCOPE)]


def test_r10_link_off_disables_every_user_from_the_integration_and_creates_nobody():
    current = state(portal(uid=1), portal(uid=2, email="b@corp.test"), links=[(G1, 1), (G2, 2)])
    result = plan(snap(rec(gid=G3, email="new@corp.test")), MAPPINGS, current, link_enabled=False)
    assert sorted((d.user_id, d.reason) for d in result.disables) == [
        (1, DisableReason.LINK_OFF), (2, DisableReason.LINK_OFF)]
    assert result.creates == [] and result.held_disables == []


def test_r10_link_on_again_brings_users_back_if_still_in_scope():
    current = state(portal(uid=1, reason=DisableReason.LINK_OFF),
                    portal(uid=2, email="b@corp.test", reason=DisableReason.LINK_OFF), links=[(G1, 1), (G2, 2)])
    result = plan(snap(rec(), rec(gid=G2, email="b@corp.test", folders=(OU_OTHER,))), MAPPINGS, current)
    assert [r.user_id for r in result.reenables] == [1]
    assert [(d.user_id, d.reason) for d in result.disables] == [(2, DisableReason.OUT_OF_SCOPE)]


def test_r11_a_hand_set_level_is_never_overwritten_by_a_mapping():
    result = plan(snap(rec(folders=(OU_IT,))), MAPPINGS, state(portal(level=1, by_hand=True), links=[(G1, 1)]))
    assert not any("permission_level_id" in u.changes for u in result.updates)


def test_r12_groups_no_mapping_grants_any_more_are_removed_staff_groups_untouched():
    # Group 99 was granted by a mapping that no longer grants it; staff groups are not in mapping_group_ids.
    result = plan(snap(rec()), MAPPINGS, state(portal(groups=frozenset({10, 99})), links=[(G1, 1)]))
    assert result.group_removes == [(1, 99)] and result.group_adds == []


def test_r13_overlapping_folders_union_of_groups_highest_ranked_level():
    result = plan(snap(rec(folders=(OU_SALES, OU_IT))), MAPPINGS, NOBODY)
    [new] = result.creates
    assert new.group_ids == frozenset({10, 20}) and new.level_id == IT.level_id


def test_r19_a_mapped_folder_gone_from_the_directory_puts_its_users_out_of_scope():
    without_sales = tuple(f for f in FOLDERS if f.id != OU_SALES)
    result = plan(snap(rec(), folders=without_sales), MAPPINGS, state(portal(), links=[(G1, 1)]))
    assert [(d.user_id, d.reason) for d in result.disables] == [(1, DisableReason.OUT_OF_SCOPE)]


def test_r21_an_incomplete_read_changes_nobodys_enabled_state():
    current = state(portal(uid=1), portal(uid=2, email="b@corp.test", reason=DisableReason.DIRECTORY),
                    links=[(G1, 1), (G2, 2)])
    result = plan(snap(rec(gid=G2, email="b@corp.test"), complete=False), MAPPINGS, current)
    assert result.disables == [] and result.reenables == [] and result.held_disables == []
    assert result.group_removes == []


def test_r21_a_partial_incremental_read_touches_only_the_users_it_lists():
    current = state(portal(uid=1), portal(uid=2, email="b@corp.test"), links=[(G1, 1), (G2, 2)],
                    issues=[(G3, IssueReason.NO_EMAIL)])
    result = plan(snap(rec(gid=G2, email="b@corp.test", first="Bob"), incremental=True, folders_complete=False),
                  MAPPINGS, current)
    assert result.disables == [] and result.issues_close == []
    assert [u.user_id for u in result.updates] == [2]


def _many(n: int):
    users = [portal(uid=i, email=f"u{i}@corp.test", first="U", last=str(i)) for i in range(1, n + 1)]
    gids = [f"00000000-0000-0000-0000-{i:012d}" for i in range(1, n + 1)]
    records = [rec(gid=g, email=f"u{i}@corp.test", first="U", last=str(i)) for i, g in enumerate(gids, 1)]
    return users, gids, records


def test_r22_over_the_threshold_disables_are_held_creations_and_updates_applied():
    users, gids, records = _many(100)
    current = state(*users, links=list(zip(gids, range(1, 101), strict=True)))
    kept = [r if i >= 30 else rec(gid=r.id, email=r.email, first="U", last=r.last_name, enabled=False)
            for i, r in enumerate(records)]
    kept[50] = rec(gid=kept[50].id, email=kept[50].email, first="Renamed", last=kept[50].last_name)
    result = plan(snap(*kept, rec(gid=G1, email="new@corp.test")), MAPPINGS, current)
    assert result.disables == [] and len(result.held_disables) == 30
    assert "30 of 100" in result.hold_reason
    assert [c.external_id for c in result.creates] == [G1] and len(result.updates) == 1


def test_r22_under_the_minimum_disables_go_ahead():
    users, gids, records = _many(20)
    current = state(*users, links=list(zip(gids, range(1, 21), strict=True)))
    result = plan(snap(*records[:10]), MAPPINGS, current, threshold=Threshold(percent=10, minimum=25))
    assert len(result.disables) == 10 and result.held_disables == []


def test_r21_a_full_read_that_sees_nobody_is_held_however_few_users():
    users, gids, _ = _many(3)
    current = state(*users, links=list(zip(gids, range(1, 4), strict=True)))
    result = plan(snap(), MAPPINGS, current)
    assert result.disables == [] and len(result.held_disables) == 3
    assert "no users" in result.hold_reason


def test_r7_a_user_without_email_who_gets_one_later_is_created_then():
    first = plan(snap(rec(email="")), MAPPINGS, NOBODY)
    assert first.creates == [] and [i.reason for i in first.issues_open] == [IssueReason.NO_EMAIL]
    later = plan(snap(rec()), MAPPINGS, state(issues=[(G1, IssueReason.NO_EMAIL)]))
    assert len(later.creates) == 1 and later.issues_close == [(G1, IssueReason.NO_EMAIL)]


def test_hostile_names_are_cleaned_not_crashed_on():
    record = rec(first="  Zoë\u202e\x07 ", last="ب" * 1000, email="zoe@corp.test")
    [new] = plan(snap(record), MAPPINGS, NOBODY).creates
    assert new.first_name == "Zoë" and len(new.last_name) == 150


def test_a_directory_listing_one_id_twice_uses_the_first_and_says_so():
    result = plan(snap(rec(), rec(first="Dup")), MAPPINGS, NOBODY)
    assert len(result.creates) == 1 and result.creates[0].first_name == "Ann"
    assert result.notes


# ---------------------------------------------------------------- partial reads (incremental: only what changed)


def partial(*users, removed=()):
    """What an incremental read hands the planner: the users it has news of, and the ids reported deleted."""
    return snap(*users, incremental=True, removed=removed, folders_complete=False)


def test_r9_partial_snapshot_leaves_unmentioned_users_alone():
    current = state(portal(uid=1), portal(uid=2, email="b@corp.test", groups=frozenset({99})),
                    links=[(G1, 1), (G2, 2)], issues=[(G3, IssueReason.NO_EMAIL)])
    result = plan(partial(rec(first="Annie")), MAPPINGS, current)
    assert [(u.user_id, u.changes) for u in result.updates] == [(1, {"first_name": ("Ann", "Annie")})]
    assert result.disables == [] and result.group_removes == [] and result.issues_close == []
    assert [s.external_id for s in result.seen] == [G1]


def test_r9_partial_snapshot_user_moved_out_of_every_mapped_folder_is_out_of_scope():
    current = state(portal(uid=1), portal(uid=2, email="b@corp.test"), links=[(G1, 1), (G2, 2)])
    result = plan(partial(rec(folders=(OU_OTHER,))), MAPPINGS, current)
    assert [(d.user_id, d.reason) for d in result.disables] == [(1, DisableReason.OUT_OF_SCOPE)]
    assert result.group_removes == [(1, 10)]


def test_r8_partial_snapshot_removed_id_is_disabled_as_deleted_and_its_issues_close():
    current = state(portal(uid=1), portal(uid=2, email="b@corp.test"), links=[(G1, 1), (G2, 2)],
                    issues=[(G3, IssueReason.NO_EMAIL)])
    result = plan(partial(removed=[G1, G3]), MAPPINGS, current)
    assert [(d.user_id, d.reason) for d in result.disables] == [(1, DisableReason.DELETED)]
    assert result.issues_close == [(G3, IssueReason.NO_EMAIL)]


def test_r2_partial_snapshot_creates_a_new_user_it_lists():
    result = plan(partial(rec(gid=G3, email="new@corp.test")), MAPPINGS, state(portal(), links=[(G1, 1)]))
    assert [c.external_id for c in result.creates] == [G3] and result.disables == []


def test_r22_partial_snapshot_mass_removal_is_held():
    """Counted against the integration's 100 provisioned users, not the 30 the read mentions."""
    users, gids, _ = _many(100)
    current = state(*users, links=list(zip(gids, range(1, 101), strict=True)))
    result = plan(partial(removed=gids[:30]), MAPPINGS, current)
    assert result.disables == [] and len(result.held_disables) == 30
    assert "30 of 100" in result.hold_reason


def test_r22_partial_snapshot_a_few_removals_go_ahead():
    users, gids, _ = _many(100)
    current = state(*users, links=list(zip(gids, range(1, 101), strict=True)))
    result = plan(partial(removed=gids[:5]), MAPPINGS, current, threshold=Threshold(percent=10, minimum=5))
    assert [d.reason for d in result.disables] == [DisableReason.DELETED] * 5 and result.held_disables == []


def test_r21_partial_snapshot_that_lists_nobody_changes_nothing_and_holds_nothing():
    users, gids, _ = _many(3)
    current = state(*users, links=list(zip(gids, range(1, 4), strict=True)))
    assert plan(partial(), MAPPINGS, current).is_empty
