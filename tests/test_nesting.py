"""The pure nesting walk shared by the AD and Entra group readers (G2, G5)."""

from hypothesis import given, settings
from hypothesis import strategies as st

from adread.nesting import chains_from, named_chain


def test_g2_nested_member_is_in_scope_through_the_shortest_chain():
    direct = {"sales": ["ann", "emea"], "emea": ["bob", "paris"], "paris": ["cat", "ann"]}
    found = chains_from("sales", direct)
    assert found["ann"] == ("sales",)  # direct beats the longer way through emea > paris
    assert found["bob"] == ("sales", "emea")
    assert found["cat"] == ("sales", "emea", "paris")
    assert named_chain(found["cat"], {"sales": "Sales-Team", "emea": "EMEA", "paris": "Paris"}) == (
        "sales", "Sales-Team", "EMEA", "Paris")


def test_g2_a_membership_cycle_terminates():
    direct = {"a": ["b", "ann"], "b": ["a", "bob"]}
    found = chains_from("a", direct)
    assert found == {"b": ("a",), "ann": ("a",), "a": ("a", "b"), "bob": ("a", "b")}


def _graph(edges: dict[int, list[str]]):
    """A GroupGraph of groups g0..gN with the given member lists (names of users "u.." or groups "g..")."""
    from adread.groups import GroupGraph

    def dn(name: str) -> bytes:
        return f"cn={name},ou=t,dc=corp,dc=test".encode()

    ids = {dn(f"g{g}"): f"id-{g}" for g in edges}
    return GroupGraph(folders=[], ids=ids, names={f"id-{g}": f"G{g}" for g in edges},
                      members={dn(f"g{g}"): [dn(m) for m in listed] for g, listed in edges.items()}), dn


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.integers(0, 7), st.lists(st.sampled_from([f"g{i}" for i in range(9)]
                                                                    + [f"u{i}" for i in range(6)]), max_size=8),
                       min_size=1),
       st.sets(st.integers(0, 8), max_size=5))
def test_g2_memberships_worked_out_once_match_a_walk_from_each_group(edges, wanted):
    # The connector's one-pass join (each group walked once, members held by the same groups sharing one
    # answer) gives each user exactly the groups and shortest chains a walk from each wanted group gives,
    # cycles and groups outside the read (g8) included.
    from adread.groups import Memberships

    graph, dn = _graph(edges)
    wanted_ids = {f"id-{g}" for g in wanted}
    found = Memberships(graph, wanted_ids)
    for user in (f"u{i}" for i in range(6)):
        expected = {}
        for g in sorted(wanted & set(edges)):
            direct = {f"g{k}": v for k, v in edges.items()}
            chain = chains_from(f"g{g}", direct).get(user)
            if chain is not None:
                expected[f"id-{g}"] = named_chain(tuple(f"id-{k[1:]}" for k in chain), graph.names)
        got = found.get(dn(user).decode().upper())  # DNs compare without regard to ASCII case
        assert (got or (frozenset(), ()))[0] == frozenset(expected)
        assert (got or (frozenset(), ()))[1] == tuple(sorted(expected.values()))
