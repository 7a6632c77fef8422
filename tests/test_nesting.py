"""The pure nesting walk shared by the AD and Entra group readers (G2, G5)."""

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
