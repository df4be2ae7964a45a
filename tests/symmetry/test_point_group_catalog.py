"""The 32 point groups: names, orientation (ITA standard settings), closure, order, embeddings."""
from __future__ import annotations

import numpy as np
import pytest

from zoo.symmetry import POINT_GROUPS, PointGroup, point_group

ORDERS = {"1": 1, "-1": 2, "2": 2, "m": 2, "2/m": 4, "222": 4, "mm2": 4, "mmm": 8, "4": 4, "-4": 4,
          "4/m": 8, "422": 8, "4mm": 8, "-42m": 8, "4/mmm": 16, "3": 3, "-3": 6, "32": 6, "3m": 6,
          "-3m": 12, "6": 6, "-6": 6, "6/m": 12, "622": 12, "6mm": 12, "-6m2": 12, "6/mmm": 24,
          "23": 12, "m-3": 24, "432": 24, "-43m": 24, "m-3m": 48}
SCHOENFLIES = {"1": "C1", "-1": "Ci", "2": "C2", "m": "Cs", "2/m": "C2h", "222": "D2", "mm2": "C2v",
               "mmm": "D2h", "4": "C4", "-4": "S4", "4/m": "C4h", "422": "D4", "4mm": "C4v",
               "-42m": "D2d", "4/mmm": "D4h", "3": "C3", "-3": "C3i", "32": "D3", "3m": "C3v",
               "-3m": "D3d", "6": "C6", "-6": "C3h", "6/m": "C6h", "622": "D6", "6mm": "C6v",
               "-6m2": "D3h", "6/mmm": "D6h", "23": "T", "m-3": "Th", "432": "O", "-43m": "Td",
               "m-3m": "Oh"}
# The symmorphic space group of each point group in ITA's standard setting (its rotations are
# the point group in the orientation we claim): P321 not P312, P3m1, P-3m1, P-6m2, P-42m, P2 (b).
SYMMORPHIC = {"1": 1, "-1": 2, "2": 3, "m": 6, "2/m": 10, "222": 16, "mm2": 25, "mmm": 47, "4": 75,
              "-4": 81, "4/m": 83, "422": 89, "4mm": 99, "-42m": 111, "4/mmm": 123, "3": 143,
              "-3": 147, "32": 150, "3m": 156, "-3m": 164, "6": 168, "-6": 174, "6/m": 175,
              "622": 177, "6mm": 183, "-6m2": 187, "6/mmm": 191, "23": 195, "m-3": 200, "432": 207,
              "-43m": 215, "m-3m": 221}


def test_catalogue_is_the_32_groups_in_ita_order():
    assert len(POINT_GROUPS) == 32 and len(set(POINT_GROUPS)) == 32
    assert list(POINT_GROUPS) == list(ORDERS)  # documented order: ITA (system, then number)


@pytest.mark.parametrize("hm", POINT_GROUPS)
def test_names_order_closure_and_element_order(hm):
    G = point_group(hm)
    assert isinstance(G, PointGroup) and G.name == hm and G.schoenflies == SCHOENFLIES[hm]
    assert G.order == ORDERS[hm] == len(G.operations)
    ops = G.operations
    assert ops.dtype == np.float64 and ops.shape == (G.order, 3, 3)
    np.testing.assert_array_equal(ops[0], np.eye(3))  # identity first
    assert np.abs(np.einsum("gji,gjk->gik", ops, ops) - np.eye(3)).max() < 1e-15
    # closure and the multiplication table (every product is an element, each row a permutation)
    prods = np.einsum("iab,jbc->ijac", ops, ops)
    assert np.abs(prods - ops[G.table]).max() < 1e-15
    assert all(sorted(row) == list(range(G.order)) for row in G.table)
    # all elements distinct
    assert len({tuple(np.round(R, 9).ravel()) for R in ops}) == G.order
    dets = np.linalg.det(ops)
    n_proper = int((dets > 0).sum())
    assert np.all(dets[:n_proper] > 0) and np.all(dets[n_proper:] < 0)  # proper first
    if G.contains(-np.eye(3)):  # centrosymmetric: second half is -1 times the first
        np.testing.assert_array_equal(ops[G.order // 2:], -ops[: G.order // 2])
    # the number of conjugacy classes equals the number of *complex* irreps: a merged real pair
    # counts twice
    assert len(G.classes) == sum(1 if G.indicator(lab) else 2 for lab in G.irreps)
    assert sorted(i for c in G.classes for i in c) == list(range(G.order))
    assert all(G.table[i, G.inverse[i]] == 0 for i in range(G.order))


@pytest.mark.parametrize("hm", POINT_GROUPS)
def test_orientation_is_the_ita_standard_setting(hm):
    """Our integer operations are exactly the rotations of the symmorphic space group's standard
    setting in spglib's database (e.g. 32 is P321, not P312; -6m2 is P-6m2, not P-62m)."""
    spglib = pytest.importorskip("spglib")
    number = SYMMORPHIC[hm]
    hall = next(h for h in range(1, 531) if spglib.get_spacegroup_type(h).number == number)
    rots = spglib.get_symmetry_from_database(hall)["rotations"]
    ours = {tuple(w.ravel()) for w in point_group(hm).lattice_operations}
    assert ours == {tuple(w.ravel()) for w in rots}
    sym = spglib.get_spacegroup_type(hall).international_short
    assert sym.startswith("P")


def test_hexagonal_settings_are_stated_and_distinct():
    x, y, z = np.eye(3)
    two_x = np.diag([1.0, -1.0, -1.0])
    two_y = np.diag([-1.0, 1.0, -1.0])
    m_x = np.diag([-1.0, 1.0, 1.0])
    assert point_group("32").contains(two_x) and not point_group("32").contains(two_y)  # 321
    assert point_group("3m").contains(m_x)  # 3m1: mirror normal to a = x
    assert point_group("-6m2").contains(m_x) and point_group("-6m2").contains(two_y)  # not -62m
    assert not point_group("-6m2").contains(two_x)
    assert point_group("-42m").contains(two_x)  # 2-folds along the secondary axes x, y
    assert point_group("2").contains(two_y)  # monoclinic unique axis b
    for hm in ("32", "3m", "-6m2"):
        assert "setting" in point_group(hm).setting


@pytest.mark.parametrize("name,hm", [("Oh", "m-3m"), ("O_h", "m-3m"), ("oh", "m-3m"), ("m3m", "m-3m"),
                                     ("D6h", "6/mmm"), ("C3i", "-3"), ("S6", "-3"), ("321", "32"),
                                     ("3m1", "3m"), ("-3m1", "-3m"), ("Cs", "m"), ("D2d", "-42m"),
                                     (" 4/mmm ", "4/mmm"), ("Td", "-43m"), ("C3h", "-6")])
def test_names_and_cache(name, hm):
    assert point_group(name) is point_group(hm)


@pytest.mark.parametrize("bad", ["312", "31m", "-62m", "-4m2", "P4/mmm", "D7h", "", "m3m3"])
def test_unknown_or_non_standard_names_raise(bad):
    with pytest.raises(ValueError):
        point_group(bad)


@pytest.mark.parametrize("hm", POINT_GROUPS)
def test_every_group_is_a_subgroup_of_its_frame_holohedry(hm):
    G = point_group(hm)
    H = point_group(G.frame)
    assert G.frame == ("6/mmm" if G.system in ("trigonal", "hexagonal") else "m-3m")
    assert G.is_subgroup_of(H)
    np.testing.assert_array_equal(H.operations[G.embedding()], G.operations)
    other = point_group("6/mmm" if G.frame == "m-3m" else "m-3m")
    # the cubic 3-folds are not in 6/mmm and the hexagonal 3-folds not in m-3m
    if G.system in ("trigonal", "hexagonal", "cubic"):
        assert not G.is_subgroup_of(other)


def test_index_and_contains():
    G = point_group("m-3m")
    for k in (0, 5, 17, 47):
        assert G.index(G.operations[k]) == k
        assert G.index(G.operations[k] + 1e-9) == k
    np.testing.assert_array_equal(G.indices(G.operations[::-1]), np.arange(48)[::-1])
    three_111 = np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])  # 3 along [111]
    assert G.contains(three_111)
    with pytest.raises(KeyError):
        point_group("6/mmm").index(three_111)
    assert not G.contains(np.diag([1.0, 1.0, 1.0]) * 2)
