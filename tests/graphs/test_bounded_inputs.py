"""Structures that used to hang or exhaust memory, or to be misreported: skewed and flat cells, coordinates
far outside the cell, NaN/inf, oversized neighbour lists, and structure dicts that name other classes."""
from __future__ import annotations

import sys
import time

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from zoo.core.safejson import UnsafeDataError
from zoo.graphs import GraphSpec, StructureError, build_graph, build_graphs, neighbor_list
from zoo.graphs import neighbors as nb
from zoo.graphs.structures import MIN_FLATNESS, structure_from_dict


def skewed_cubic(n: int, a: float = 3.0) -> np.ndarray:
    """A simple cubic lattice (a Å) written in a unimodular, increasingly skewed basis: flatness ~ 1/n^6."""
    m = np.array([[1, n, n], [0, 1, n], [0, 0, 1]]) @ np.array([[1, 0, 0], [n, 1, 0], [n, n, 1]])
    assert round(abs(np.linalg.det(m))) == 1
    return m @ (a * np.eye(3))


def flatness(lattice: np.ndarray) -> float:
    return abs(np.linalg.det(lattice)) / np.prod(np.linalg.norm(lattice, axis=1))


def test_a_valid_lattice_in_a_skewed_basis_is_featurised_in_bounded_time_with_the_same_graph():
    """Flatness 2e-6 passes validation (limit 1e-6); before the reduced-basis search it ran for hours
    (image cells grow like 1/flatness). Now: milliseconds, and exactly the graph of the plain cubic cell."""
    lattice = skewed_cubic(10)
    assert MIN_FLATNESS < flatness(lattice) < 3 * MIN_FLATNESS
    s = Structure(Lattice(lattice), ["Na"], [[0.1, 0.2, 0.3]])
    plain = Structure(Lattice.cubic(3.0), ["Na"], [s.cart_coords[0]], coords_are_cartesian=True)
    t = time.perf_counter()
    g = build_graph(s, GraphSpec("radius", radius=6.5))
    assert time.perf_counter() - t < 5.0
    ref = build_graph(plain, GraphSpec("radius", radius=6.5))
    np.testing.assert_allclose(np.sort(g.distances), np.sort(ref.distances), atol=1e-6)
    # The shifts are in the input's own basis: the stored vectors are the input lattice's translations.
    np.testing.assert_allclose(g.edge_vectors, s.cart_coords[g.senders] + g.shifts @ lattice - s.cart_coords[g.receivers],
                               atol=1e-6)


def test_the_flatness_boundary_is_where_validation_refuses():
    below = skewed_cubic(30)
    assert flatness(below) < MIN_FLATNESS
    with pytest.raises(StructureError, match="coplanar.*get_reduced_structure"):
        build_graph(Structure(Lattice(below), ["Na"], [[0, 0, 0]]))


@pytest.mark.parametrize("far", [0.0, 1e3, 1e6, 1e7])
def test_unwrapped_coordinates_cost_nothing_extra(far):
    """1e6 Å away took 11 s and 4 GB, 1e7 Å asked for 35 GB: the positions are wrapped for the search."""
    s = Structure(Lattice.cubic(4.0), ["Na", "Cl"], [[0, 0, 0], [2 + far, 2, 2]], coords_are_cartesian=True)
    t = time.perf_counter()
    g = build_graph(s)
    assert time.perf_counter() - t < 2.0
    assert g.n_edges == 24
    ref = build_graph(Structure(Lattice.cubic(4.0), ["Na", "Cl"], [[0, 0, 0], [2, 2, 2]], coords_are_cartesian=True))
    np.testing.assert_allclose(np.sort(g.distances), np.sort(ref.distances), atol=1e-7)


def test_coordinates_beyond_float64_resolution_are_refused():
    s = Structure(Lattice.cubic(4.0), ["Na", "Cl"], [[0, 0, 0], [2e9, 2, 2]], coords_are_cartesian=True)
    with pytest.raises(StructureError, match="1e\\+08 Å.*wrap the sites"):
        build_graph(s, id="far-away")


def _nan_frac():
    return Structure(Lattice.cubic(4), ["Na", "Cl"], [[0, 0, 0], [0.5, np.nan, 0.5]])


def _inf_cart():
    return Structure(Lattice.cubic(4), ["Na", "Cl"], [[0, 0, 0], [np.inf, 2, 2]], coords_are_cartesian=True)


def _ase_nan():
    from ase import Atoms

    return Atoms("NaCl", positions=[[0, 0, 0], [2, np.nan, 2]], cell=np.eye(3) * 4, pbc=True)


def _dict_nan():
    d = Structure(Lattice.cubic(4), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]]).as_dict()
    d["sites"][1]["abc"] = [0.5, float("nan"), 0.5]
    d["sites"][1].pop("xyz", None)
    return d


@pytest.mark.parametrize("make", [_nan_frac, _inf_cart, _ase_nan, _dict_nan])
def test_nan_and_inf_coordinates_name_the_structure_and_the_site(make):
    """Used to read 'atom(s) [1] have no neighbour within 8 Å ... isolated atom?'."""
    with pytest.raises(StructureError) as info:
        build_graph(make(), id="s-7")
    msg = str(info.value)
    assert "'s-7'" in msg and "site 1" in msg and "non-finite coordinates" in msg and "neighbour" not in msg


def test_nan_lattice_names_the_structure():
    s = Structure(Lattice([[4, 0, 0], [0, np.nan, 0], [0, 0, 4]]), ["Na"], [[0, 0, 0]])
    with pytest.raises(StructureError, match="'s-8'.*non-finite"):
        build_graph(s, id="s-8")


def test_neighbour_lists_beyond_the_budget_are_refused_before_allocating(monkeypatch):
    """radius 400 Å on a 2-atom cell: 1.7e7 pairs, 33 s and 3 GB before; now refused at once, naming the
    structure, the size and the fix; the limit is the user's to raise."""
    s = Structure(Lattice.cubic(4.0), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    t = time.perf_counter()
    with pytest.raises(StructureError, match="'big'.*1.68e\\+07 pairs.*ZOO_MAX_NEIGHBOR_PAIRS"):
        build_graph(s, GraphSpec("radius", radius=400.0), id="big")
    assert time.perf_counter() - t < 1.0
    graphs, failures = build_graphs([s, s], GraphSpec("radius", radius=400.0), ids=["a", "b"], cache=False, progress=False,
                                    on_error="skip")
    assert graphs == [None, None] and set(failures) == {"a", "b"}
    monkeypatch.setenv(nb.PAIRS_VARIABLE, "100")
    with pytest.raises(nb.NeighborListTooLarge, match="limit 100"):
        neighbor_list(s.lattice.matrix, s.cart_coords, 8.0)


def test_search_cost_matches_what_the_search_finds():
    """The estimate that decides refusals is of the right size (within 2x for a dense, large search)."""
    s = Structure(Lattice.cubic(4.0), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    cost = nb.search_cost(s.lattice.matrix, 2, 40.0)
    found = len(neighbor_list(s.lattice.matrix, s.cart_coords, 40.0)[0])
    assert 0.5 < cost["pairs"] / found < 2.0


def test_a_structure_dict_may_name_only_structure_classes(tmp_path, monkeypatch):
    """pymatgen's decoder imports whatever module a dict names (site properties go through monty): the
    dict is checked first, and the module is never imported."""
    (tmp_path / "zoo_test_payload.py").write_text(f"open({str(tmp_path / 'RAN')!r}, 'w').write('x')\nclass X: pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    d = Structure(Lattice.cubic(4), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]]).as_dict()
    d["sites"][0]["properties"] = {"magmom": {"@module": "zoo_test_payload", "@class": "X"}}
    with pytest.raises(StructureError, match="zoo_test_payload.X.*does not import"):
        build_graph(d, id="evil")
    with pytest.raises(UnsafeDataError):
        structure_from_dict(d, source="test")
    assert not (tmp_path / "RAN").exists() and "zoo_test_payload" not in sys.modules
    # The classes a real Structure.as_dict() names are read as before.
    ok = Structure(Lattice.cubic(4), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]], site_properties={"magmom": [1.0, 0.0]})
    assert structure_from_dict(ok.as_dict()) == ok


def test_many_skipped_structures_are_each_kept_but_not_each_logged(caplog):
    """An atom alone within the radius fails its structure; 9 such structures give 9 failures and
    LOG_EACH_FAILURE + 1 log lines, the last one saying that the rest are not logged one by one."""
    import logging

    from zoo.graphs.builder import LOG_EACH_FAILURE

    lonely = Structure(Lattice.cubic(9.0), ["Na"], [[0, 0, 0]])  # nearest image 9 Å away, radius 5 Å
    n = LOG_EACH_FAILURE + 4
    with caplog.at_level(logging.WARNING, logger="zoo.graphs"):
        graphs, failures = build_graphs([lonely] * n, GraphSpec("radius", radius=5.0), cache=False, progress=False,
                                        on_error="skip")
    assert graphs == [None] * n and len(failures) == n
    lines = [r.getMessage() for r in caplog.records if r.name == "zoo.graphs"]
    assert len(lines) == LOG_EACH_FAILURE + 1 and "not logged one by one" in lines[-1]
