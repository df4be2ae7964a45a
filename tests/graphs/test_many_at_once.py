"""``build_graphs`` without a cache checks and connects many structures at once (``builder._graphs_at_once``):
the graphs must be those of ``build_graph`` one structure at a time, bit for bit and edge for edge, and
every structure it cannot take or that a check refuses must fail with the one-structure message."""
from __future__ import annotations

import numpy as np
import pytest
from pymatgen.core import DummySpecies, IStructure, Lattice, Species, Structure

from tests.graphs.test_bounded_inputs import skewed_cubic
from tests.graphs.test_graphs import nacl, tiny_cell, triclinic
from zoo.graphs import (
    GraphSpec,
    StructureError,
    build_graph,
    build_graphs,
    builder,
    structure_hash,
    to_structure,
)
from zoo.graphs.neighbors import TIE_DECIMALS, nearest_edges, nearest_k, sort_edges
from zoo.testing import random_crystals

FIELDS = ("numbers", "positions", "lattice", "senders", "receivers", "shifts", "edge_vectors", "distances")


def good_structures() -> list:
    rutile = Structure(Lattice.tetragonal(4.59, 2.96), [Species("Ti", 4), Species("Ti", 4), Species("O", -2), Species("O", -2)],
                       [[0, 0, 0], [0.5, 0.5, 0.5], [0.305, 0.305, 0], [0.695, 0.695, 0]])
    far = Structure(Lattice.cubic(4.0), ["Na", "Cl"], [[0, 0, 0], [2 + 1e6, 2, 2]], coords_are_cartesian=True)
    skewed = Structure(Lattice(skewed_cubic(3)), ["Na", "Cl"], [[0.1, 0.2, 0.3], [0.6, 0.7, 0.8]])
    return random_crystals(10, seed=3) + [nacl(), triclinic(), tiny_cell(), rutile, far, skewed,
                                          IStructure.from_sites(nacl().sites)]


def bad_structures() -> list:
    """Each refused by a different check, or not a Structure (the one-structure path reads it)."""
    lat = Lattice.cubic(10.0)
    return [
        Structure(lat, ["Na", "Cl"], [[0.5, 0.5, 0.99], [0.5, 0.5, 0.01]]),  # overlap through the boundary
        Structure(Lattice.cubic(30.0), ["Na", "Cl", "Ar"], [[0, 0, 0], [0.08, 0, 0], [0.5, 0.5, 0.5]]),  # lonely Ar
        Structure(Lattice([[0.4, 0, 0], [0, 5, 0], [0, 0, 5]]), ["Na"], [[0, 0, 0]]),  # its own image
        Structure(Lattice(skewed_cubic(30)), ["Na"], [[0, 0, 0]]),  # coplanar basis
        Structure(Lattice([[1, 0, 0], [0, 1, 0], [1, 1, 0]]), ["Na"], [[0, 0, 0]]),  # zero volume
        Structure(Lattice.cubic(4.0), ["Md"], [[0, 0, 0]]),  # Z = 101
        Structure(Lattice.cubic(4.0), [DummySpecies("X"), "Na"], [[0, 0, 0], [0.5, 0.5, 0.5]]),
        Structure(Lattice.cubic(4.0), [{"Fe": 0.5, "Co": 0.5}], [[0, 0, 0]]),  # disordered
        Structure(Lattice.cubic(4.0), ["Na", "Cl"], [[0, 0, 0], [2 + 2e8, 2, 2]], coords_are_cartesian=True),  # too far
        "not a cif",
        nacl().to(fmt="cif"),  # a good CIF: read by the one-structure path
    ]


def one_by_one(items, ids, spec, min_distance=0.5):
    graphs, failures = [], {}
    for obj, id in zip(items, ids):
        try:
            graphs.append(build_graph(obj, spec, id=id, min_distance=min_distance))
        except StructureError as exc:
            graphs.append(None)
            failures[id] = str(exc)
    return graphs, failures


@pytest.mark.parametrize("spec", [GraphSpec(), GraphSpec("radius", radius=5.0), GraphSpec("cgcnn", radius=6.0, max_neighbors=4)])
def test_many_at_once_equals_one_by_one(spec, monkeypatch):
    good, bad = good_structures(), bad_structures()
    items = [x for pair in zip(good, bad) for x in pair] + good[len(bad):]  # bad ones between good ones
    ids = [f"s{k}" for k in range(len(items))]
    calls = []
    one = builder._graph_from_structure
    monkeypatch.setattr(builder, "_graph_from_structure", lambda *a, **k: calls.append(1) or one(*a, **k))
    graphs, failures = build_graphs(items, spec, ids=ids, cache=False, progress=False, on_error="skip")
    assert len(calls) <= len(bad)  # only what the many-at-once path refuses or cannot read goes one by one
    monkeypatch.undo()
    ref_graphs, ref_failures = one_by_one(items, ids, spec)
    assert failures == ref_failures and list(failures) == list(ref_failures)
    bad_ids = [ids[2 * k + 1] for k in range(len(bad))]  # bad ones sit at the odd places; the last is the good CIF
    assert set(bad_ids[:-1]) <= set(failures) and bad_ids[-1] not in failures
    for g, ref, obj in zip(graphs, ref_graphs, items):
        assert (g is None) == (ref is None)
        if g is None:
            continue
        for f in FIELDS:
            a, b = getattr(g, f), getattr(ref, f)
            assert a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b), (g.id, f)
        assert g.id == ref.id and g.meta == {**ref.meta, "sha256": structure_hash(to_structure(obj))}


def test_the_first_refused_structure_is_raised_in_input_order():
    good, bad = good_structures(), bad_structures()
    items = [good[0], bad[7], good[1], bad[0]]  # disordered (one-structure path) before an overlap (screened)
    with pytest.raises(StructureError) as info:
        build_graphs(items, GraphSpec(), ids=["a", "b", "c", "d"], cache=False, progress=False)
    assert str(info.value) == one_by_one(items[1:2], ["b"], GraphSpec())[1]["b"]
    with pytest.raises(StructureError) as info:
        build_graphs([good[0], bad[1], bad[0]], GraphSpec(), ids=["a", "b", "c"], cache=False, progress=False)
    assert "'b'" in str(info.value) and "no neighbour" in str(info.value)


def test_overlap_threshold_beyond_the_radius_and_none():
    s = Structure(Lattice.cubic(10.0), ["H", "H"], [[0.5, 0.5, 0.5], [0.5, 0.5, 0.54]])  # 0.4 Å apart
    graphs, failures = build_graphs([s, nacl()], GraphSpec("radius", radius=3.0), cache=False, progress=False,
                                    on_error="skip", min_distance=None)
    assert not failures and graphs[0].n_edges > 0
    big = GraphSpec("radius", radius=0.3)  # threshold 0.5 Å beyond the radius: checked one by one
    _, failures = build_graphs([s], big, cache=False, progress=False, on_error="skip")
    assert "overlapping" in failures["0"]


def reference_order(receivers, senders, shifts, distances):
    d = np.round(distances, TIE_DECIMALS)
    return np.lexsort((shifts[:, 2], shifts[:, 1], shifts[:, 0], senders, d, receivers))


@pytest.mark.parametrize("shift_range", [2, 2**40])  # the second cannot be packed into int64 keys
def test_sort_and_nearest_edges_agree_with_the_six_key_sort(shift_range):
    rng = np.random.default_rng(0)
    n, atoms = 5000, 60
    receivers = rng.integers(0, atoms, n)
    senders = rng.integers(0, atoms, n)
    shifts = rng.integers(-shift_range, shift_range + 1, (n, 3))
    # few distinct distances (ties everywhere), some within 1e-8 Å of each other (ties after rounding)
    distances = rng.choice([1.0, 2.5, 2.5 + 3e-10, 3.0, 4.25], n) + rng.integers(0, 2, n) * 1e-3
    ref = reference_order(receivers, senders, shifts, distances)
    assert np.array_equal(sort_edges(receivers, senders, shifts, distances), ref)
    for k in (1, 12, 200):
        want = ref[nearest_k(receivers[ref], atoms + 3, k)]
        assert np.array_equal(nearest_edges(receivers, senders, shifts, distances, atoms + 3, k), want)


def test_edge_geometry_of_many_lattices_has_the_bits_of_the_plain_formula():
    """The cache stores only integer shifts and rebuilds vectors with ``edge_geometry``: per graph or for many
    graphs at once (in place), it must give exactly the bits of the written-out formula."""
    from zoo.graphs.neighbors import edge_geometry

    rng = np.random.default_rng(1)
    lattices, positions = rng.normal(size=(3, 3, 3)) * 5, rng.normal(size=(7, 3)) * 3
    s = rng.integers(-4, 5, (300, 3))
    i, j, owner = rng.integers(0, 7, 300), rng.integers(0, 7, 300), rng.integers(0, 3, 300)
    f = s.astype(np.float64)
    for g in range(3):
        L = lattices[g]
        want = (positions[j] + (f[:, 0:1] * L[0] + f[:, 1:2] * L[1] + f[:, 2:3] * L[2])) - positions[i]
        v, d = edge_geometry(positions, L, j, i, s)
        assert np.array_equal(v, want) and np.array_equal(d, np.sqrt(want[:, 0] ** 2 + want[:, 1] ** 2 + want[:, 2] ** 2))
        v_many, d_many = edge_geometry(positions, lattices, j, i, s, owner)
        mine = owner == g
        assert np.array_equal(v_many[mine], v[mine]) and np.array_equal(d_many[mine], d[mine])
