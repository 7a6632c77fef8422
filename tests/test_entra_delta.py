"""Incremental sync (R17): /users/delta and /directory/administrativeUnits/delta from stored links."""

from __future__ import annotations

import pytest

from directory.connectors.base import DirectoryAuthError, Snapshot
from testing.fake_entra import FakeAU, FakeEntraServer, FakeUser

from .fixtures_entra import entra_connector_for


def _baseline(server: FakeEntraServer) -> tuple[FakeAU, FakeAU, FakeUser, FakeUser, dict]:
    sales, emea = server.add_au("Sales"), server.add_au("EMEA")
    adele = server.add_user("Adele", "Vance", mail="adele@contoso.com", aus=[sales])
    bob = server.add_user("Bob", "Smith", mail="bob@contoso.com", aus=[sales, emea])
    connector = entra_connector_for(server)
    baseline = connector.read_snapshot([sales.id, emea.id])
    assert baseline.delta_state is not None
    return sales, emea, adele, bob, baseline.delta_state


def _incremental(server: FakeEntraServer, state: dict, folder_ids) -> Snapshot:
    return entra_connector_for(server, delta_state=state).read_snapshot(folder_ids, incremental=True)


def test_r17_a_full_read_hands_back_delta_links_for_the_tenant(fake_entra: FakeEntraServer):
    *_, state = _baseline(fake_entra)

    assert state["tenant"] == fake_entra.tenant.guid
    assert "/users/delta?$deltatoken=" in state["users"]
    assert "/directory/administrativeUnits/delta?$deltatoken=" in state["administrativeUnits"]


def test_r17_nothing_changed_gives_an_empty_incremental_snapshot(fake_entra: FakeEntraServer):
    sales, emea, *_, state = _baseline(fake_entra)
    fake_entra.requests_seen.clear()

    snapshot = _incremental(fake_entra, state, [sales.id, emea.id])

    assert snapshot.incremental and snapshot.complete and not snapshot.folders_complete
    assert snapshot.users == () and snapshot.removed_user_ids == frozenset()
    assert snapshot.notes == ()
    assert snapshot.delta_state is not None and snapshot.delta_state["tenant"] == fake_entra.tenant.guid
    graph_paths = [r.path for r in fake_entra.requests_seen if r.path.startswith("/v1.0")]
    assert graph_paths == ["/v1.0/users/delta", "/v1.0/directory/administrativeUnits/delta"]  # no member reads


def test_r17_r6_r8_changed_users_come_with_all_their_current_aus(fake_entra: FakeEntraServer):
    sales, emea, adele, bob, state = _baseline(fake_entra)
    fake_entra.rename_user(adele, "Adèle", "Vance-Martin")
    fake_entra.disable_user(bob)
    carol = fake_entra.add_user("Carol", "New", mail="carol@contoso.com", aus=[emea])

    snapshot = _incremental(fake_entra, state, [sales.id, emea.id])

    users = {u.id: u for u in snapshot.users}
    assert set(users) == {adele.id, bob.id, carol.id}
    assert (users[adele.id].first_name, users[adele.id].last_name) == ("Adèle", "Vance-Martin")
    assert users[adele.id].folder_ids == {sales.id}
    assert users[bob.id].enabled is False and users[bob.id].folder_ids == {sales.id, emea.id}
    assert users[carol.id].folder_ids == {emea.id}


def test_r17_a_membership_change_alone_reaches_the_user(fake_entra: FakeEntraServer):
    sales, emea, adele, _bob, state = _baseline(fake_entra)
    fake_entra.add_member(emea, adele)

    snapshot = _incremental(fake_entra, state, [sales.id, emea.id])

    (record,) = snapshot.users
    assert record.id == adele.id and record.folder_ids == {sales.id, emea.id}


def test_r17_a_user_removed_from_an_au_is_reported_with_the_aus_it_is_still_in(fake_entra: FakeEntraServer):
    sales, emea, _adele, bob, state = _baseline(fake_entra)
    fake_entra.remove_member(sales, bob)

    snapshot = _incremental(fake_entra, state, [sales.id, emea.id])

    (record,) = snapshot.users
    assert record.id == bob.id and record.folder_ids == {emea.id}
    assert snapshot.removed_user_ids == frozenset()


def test_r8_soft_delete_and_hard_delete_through_delta_are_removals(fake_entra: FakeEntraServer):
    sales, emea, adele, bob, state = _baseline(fake_entra)
    fake_entra.soft_delete_user(adele)
    fake_entra.hard_delete_user(bob)

    snapshot = _incremental(fake_entra, state, [sales.id, emea.id])

    assert snapshot.removed_user_ids == {adele.id, bob.id}
    assert snapshot.users == ()
    delta_pages = fake_entra.requests_to("/v1.0/users/delta")
    assert delta_pages[-1].status == 200


def test_r8_a_restored_user_reappears_with_its_aus(fake_entra: FakeEntraServer):
    sales, emea, adele, _bob, state = _baseline(fake_entra)
    fake_entra.soft_delete_user(adele)
    removed = _incremental(fake_entra, state, [sales.id, emea.id])
    assert removed.removed_user_ids == {adele.id}

    fake_entra.restore_user(adele)
    restored = _incremental(fake_entra, removed.delta_state, [sales.id, emea.id])

    assert restored.removed_user_ids == frozenset()
    (record,) = restored.users
    assert record.id == adele.id and record.enabled and record.folder_ids == {sales.id}


def test_r19_a_new_au_appears_in_the_incremental_folders(fake_entra: FakeEntraServer):
    sales, emea, *_, state = _baseline(fake_entra)
    support = fake_entra.add_au("Support")
    fake_entra.rename_au(sales, "Sales & Marketing")

    snapshot = _incremental(fake_entra, state, [sales.id, emea.id])

    assert {f.id: f.name for f in snapshot.folders} == {support.id: "Support", sales.id: "Sales & Marketing"}
    assert snapshot.folders_complete is False


def test_r17_delta_pages_are_followed_to_the_new_delta_link(fake_entra: FakeEntraServer):
    sales, emea, *_, state = _baseline(fake_entra)
    fake_entra.page_size = 2
    new_users = [fake_entra.add_user(f"N{i}", "User", mail=f"n{i}@contoso.com", aus=[sales]) for i in range(5)]

    snapshot = _incremental(fake_entra, state, [sales.id, emea.id])

    assert {u.id for u in snapshot.users} == {u.id for u in new_users}
    assert len([r for r in fake_entra.requests_to("/v1.0/users/delta") if "skiptoken" in r.query]) == 2
    again = _incremental(fake_entra, snapshot.delta_state, [sales.id, emea.id])
    assert again.users == ()


def test_r17_an_expired_delta_link_falls_back_to_a_full_read(fake_entra: FakeEntraServer):
    sales, emea, adele, bob, state = _baseline(fake_entra)
    fake_entra.expire_delta_tokens(status=410)

    snapshot = _incremental(fake_entra, state, [sales.id, emea.id])

    assert not snapshot.incremental and snapshot.complete
    assert {u.id for u in snapshot.users} == {adele.id, bob.id}
    assert any("410" in note and "Read everything" in note for note in snapshot.notes)
    assert snapshot.delta_state is not None and snapshot.delta_state != state


def test_r17_a_refused_sync_state_400_also_falls_back_to_a_full_read(fake_entra: FakeEntraServer):
    sales, emea, *_, state = _baseline(fake_entra)
    fake_entra.expire_delta_tokens(status=400)

    snapshot = _incremental(fake_entra, state, [sales.id, emea.id])

    assert not snapshot.incremental
    assert any("syncStateNotFound" in note for note in snapshot.notes)


def test_r17_without_stored_links_an_incremental_request_reads_everything(fake_entra: FakeEntraServer):
    sales = fake_entra.add_au("Sales")
    fake_entra.add_user("Adele", "Vance", mail="adele@contoso.com", aus=[sales])

    snapshot = _incremental(fake_entra, {}, [sales.id])

    assert not snapshot.incremental and len(snapshot.users) == 1
    assert snapshot.notes == ("No stored delta links for this tenant: read everything.",)
    assert snapshot.delta_state is not None


def test_r17_links_stored_for_another_tenant_are_not_used(fake_entra: FakeEntraServer):
    sales, *_, state = _baseline(fake_entra)

    snapshot = _incremental(fake_entra, {**state, "tenant": "00000000-0000-0000-0000-000000000001"}, [sales.id])

    assert not snapshot.incremental


def test_r21_limited_information_in_delta_fails_naming_the_permission(fake_entra: FakeEntraServer):
    sales, emea, adele, _bob, state = _baseline(fake_entra)
    fake_entra.rename_user(adele, "Adele", "Renamed")
    fake_entra.limited_information = True

    with pytest.raises(DirectoryAuthError, match=r"User\.Read\.All"):
        _incremental(fake_entra, state, [sales.id, emea.id])


def test_r17_too_many_changes_for_one_round_read_everything(fake_entra: FakeEntraServer):
    sales, emea, *_, state = _baseline(fake_entra)
    for i in range(3):
        fake_entra.add_user(f"N{i}", "User", mail=f"n{i}@contoso.com", aus=[sales])
    connector = entra_connector_for(fake_entra, delta_state=state, incremental_change_limit=2)

    snapshot = connector.read_snapshot([sales.id, emea.id], incremental=True)

    assert not snapshot.incremental and len(snapshot.users) == 5
    assert any("3 users changed" in note for note in snapshot.notes)
    assert not fake_entra.requests_to("/memberOf")  # no per-user calls before giving up on the round


def test_r17_where_deltatoken_latest_is_refused_a_whole_round_gives_the_link(fake_entra: FakeEntraServer):
    sales, emea, adele, _bob, _ = _baseline(fake_entra)
    fake_entra.delta_latest_supported = False
    connector = entra_connector_for(fake_entra)
    full = connector.read_snapshot([sales.id, emea.id])
    fake_entra.disable_user(adele)

    snapshot = _incremental(fake_entra, full.delta_state, [sales.id, emea.id])

    assert snapshot.incremental
    assert [(u.id, u.enabled) for u in snapshot.users] == [(adele.id, False)]
