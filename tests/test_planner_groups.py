"""The planner with group folders (G1-G5): plain data in, a Plan out. Connectors put a user's groups, nested
ones resolved, into its folder_ids; these tests hold what the planner decides from them."""

from __future__ import annotations

from directory.connectors.base import FolderRecord, Snapshot, UserRecord
from provisioning.planner import (
    Current,
    DisableReason,
    LinkState,
    MappingRule,
    Threshold,
    UserState,
    plan,
)

ANN = "00000000-0000-0000-0000-0000000000a1"
BOB = "00000000-0000-0000-0000-0000000000a2"
OU_SALES = "00000000-0000-0000-0000-00000000f001"
GRP_SALES = "00000000-0000-0000-0000-00000000e001"  # Sales-Team, holds EMEA
GRP_EMEA = "00000000-0000-0000-0000-00000000e002"
GRP_VIP = "00000000-0000-0000-0000-00000000e003"
FOLDERS = (
    FolderRecord(OU_SALES, "Sales", "ou", path="Corp/Sales"),
    FolderRecord(GRP_SALES, "Sales-Team", "gr", path="Sales-Team"),
    FolderRecord(GRP_EMEA, "EMEA", "gr", path="EMEA"),
    FolderRecord(GRP_VIP, "VIP", "mg", path="VIP"),
)
OU_RULE = MappingRule(OU_SALES, level_id=1, level_rank=20, group_ids=frozenset({10}), folder_path="Corp/Sales",
                      folder_kind="ou", folder_name="Sales")
GROUP_RULE = MappingRule(GRP_SALES, level_id=2, level_rank=40, group_ids=frozenset({20}), folder_path="Sales-Team",
                         folder_kind="gr", folder_name="Sales-Team")
VIP_RULE = MappingRule(GRP_VIP, level_id=3, level_rank=10, group_ids=frozenset({30}), folder_path="VIP",
                       folder_kind="mg", folder_name="VIP")


def rec(uid=ANN, folders=(GRP_SALES,), chains=((GRP_SALES, "Sales-Team", "EMEA"),), email="ann@corp.test"):
    return UserRecord(id=uid, first_name="Ann", last_name="Lee", email=email, enabled=True,
                      folder_ids=frozenset(folders), chains=tuple(chains))


def snap(*users, folders=FOLDERS):
    return Snapshot(directory_id="corp.test", folders=folders, users=tuple(users), complete=True)


def linked(*pairs, groups=frozenset({20})):
    """Portal users linked to identities last seen in the given folders: (external id, user id, folders)."""
    return Current(
        users={uid: UserState(uid, f"{uid}@corp.test", "Ann", "Lee", level_id=2, mapping_group_ids=groups)
               for _, uid, _ in pairs},
        links={ext: LinkState(ext, uid, frozenset(folders)) for ext, uid, folders in pairs},
    )


def test_g2_a_user_in_a_mapped_group_through_nesting_is_created():
    result = plan(snap(rec()), {GRP_SALES: GROUP_RULE}, Current(users={}, links={}))
    assert [(c.external_id, c.level_id, c.group_ids) for c in result.creates] == [(ANN, 2, frozenset({20}))]


def test_g3_ou_and_group_mappings_combine_highest_level_union_of_groups():
    both = rec(folders=(OU_SALES, GRP_SALES, GRP_VIP), chains=((GRP_SALES, "Sales-Team"), (GRP_VIP, "VIP")))
    result = plan(snap(both), {OU_SALES: OU_RULE, GRP_SALES: GROUP_RULE, GRP_VIP: VIP_RULE},
                  Current(users={}, links={}))
    (created,) = result.creates
    assert created.level_id == 2  # Sales-Team ranks highest of the three, whatever the folder kinds
    assert created.group_ids == frozenset({10, 20, 30})


def test_g4_removed_from_the_group_is_out_of_scope_naming_it():
    current = linked((ANN, 1, {GRP_SALES}))
    result = plan(snap(rec(folders=())), {GRP_SALES: GROUP_RULE}, current)
    assert [(d.user_id, d.reason, d.detail) for d in result.disables] == [
        (1, DisableReason.OUT_OF_SCOPE, "removed from group Sales-Team")]


def test_g4_a_user_no_longer_listed_by_any_mapped_group_is_out_of_scope_naming_it():
    current = linked((ANN, 1, {GRP_SALES, GRP_VIP}), (BOB, 2, {GRP_SALES}))
    result = plan(snap(rec(uid=BOB, email="2@corp.test")), {GRP_SALES: GROUP_RULE, GRP_VIP: VIP_RULE}, current)
    assert [(d.user_id, d.detail) for d in result.disables] == [(1, "removed from groups Sales-Team, VIP")]


def test_g4_still_in_another_mapped_folder_stays_in_scope():
    current = linked((ANN, 1, {GRP_SALES, OU_SALES}))
    result = plan(snap(rec(folders=(OU_SALES,), chains=())), {OU_SALES: OU_RULE, GRP_SALES: GROUP_RULE}, current)
    assert result.disables == []
    assert (1, 20) in result.group_removes and (1, 10) in result.group_adds


def test_g4_a_mass_removal_from_a_group_is_held_like_a_mass_disable():
    pairs = [(f"00000000-0000-0000-0000-{n:012d}", n, {GRP_SALES}) for n in range(1, 41)]
    result = plan(snap(), {GRP_SALES: GROUP_RULE}, linked(*pairs), threshold=Threshold(percent=10, minimum=25))
    assert result.disables == [] and len(result.held_disables) == 40
    assert {d.detail for d in result.held_disables} == {"removed from group Sales-Team"}


def test_g4_a_mapped_group_the_read_did_not_see_fails_the_read_and_changes_nobody():
    current = linked((ANN, 1, {GRP_SALES}))
    without = tuple(f for f in FOLDERS if f.id != GRP_SALES)
    result = plan(snap(folders=without), {GRP_SALES: GROUP_RULE}, current)
    assert "Sales-Team" in result.failure and "Nobody was changed" in result.failure
    assert result.is_empty and result.disables == [] and result.held_disables == []


def test_g4_an_unseen_ou_still_puts_its_users_out_of_scope():
    current = linked((ANN, 1, {OU_SALES}))
    without = tuple(f for f in FOLDERS if f.id != OU_SALES)
    result = plan(snap(folders=without), {OU_SALES: OU_RULE}, current)
    assert result.failure == ""
    assert [(d.reason, d.detail) for d in result.disables + result.held_disables] == [(DisableReason.OUT_OF_SCOPE, "")]


def test_g5_the_preview_says_through_which_chain_and_folder():
    both = rec(folders=(OU_SALES, GRP_SALES))
    result = plan(snap(both), {OU_SALES: OU_RULE, GRP_SALES: GROUP_RULE}, Current(users={}, links={}))
    assert result.creates[0].via == ("Corp/Sales", "Sales-Team > EMEA")


def test_g5_the_link_remembers_the_chain_for_the_users_page():
    current = linked((ANN, 1, {GRP_SALES}))
    result = plan(snap(rec()), {GRP_SALES: GROUP_RULE}, current)
    (seen,) = result.seen
    assert seen.state["via"] == ["Sales-Team > EMEA"]


def test_g5_a_user_in_ous_only_keeps_the_link_state_it_always_had():
    current = linked((ANN, 1, {OU_SALES}))
    result = plan(snap(rec(folders=(OU_SALES,), chains=())), {OU_SALES: OU_RULE}, current)
    assert "via" not in result.seen[0].state


def test_g5_the_plan_says_through_which_chain_or_folder_a_changed_user_is_in_scope():
    # A level change (Ann: the group now grants level 2 over her 1), a re-enable (Bob, out of scope before) and
    # an unchanged user (Cid: nothing listed, so nothing said).
    cid = "00000000-0000-0000-0000-0000000000a3"
    users = {1: UserState(1, "ann@corp.test", "Ann", "Lee", level_id=1, mapping_group_ids=frozenset({20})),
             2: UserState(2, "bob@corp.test", "Ann", "Lee", disabled_reason=DisableReason.OUT_OF_SCOPE,
                          level_id=1, mapping_group_ids=frozenset({10})),
             3: UserState(3, "cid@corp.test", "Ann", "Lee", level_id=2, mapping_group_ids=frozenset({20}))}
    links = {ANN: LinkState(ANN, 1, frozenset({GRP_SALES})), BOB: LinkState(BOB, 2, frozenset()),
             cid: LinkState(cid, 3, frozenset({GRP_SALES}))}
    read = snap(rec(), rec(uid=BOB, folders=(OU_SALES,), chains=(), email="bob@corp.test"),
                rec(uid=cid, chains=((GRP_SALES, "Sales-Team"),), email="cid@corp.test"))

    result = plan(read, {GRP_SALES: GROUP_RULE, OU_SALES: OU_RULE}, Current(users=users, links=links))

    assert [u.user_id for u in result.updates] == [1] and [r.user_id for r in result.reenables] == [2]
    assert result.vias == {1: ("Sales-Team > EMEA",), 2: ("Corp/Sales",)}
