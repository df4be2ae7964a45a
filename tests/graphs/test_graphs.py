"""Structures → graphs: neighbour lists, CGCNN rule, invariances, bad inputs, cache, atom features."""
from __future__ import annotations

import gzip
import json
import logging
from collections import Counter

import numpy as np
import pytest

from tests.helpers import SHARED_DATA
from pymatgen.core import DummySpecies, Lattice, Structure

from zoo.graphs import (
    CrystalGraph,
    GraphSpec,
    StructureError,
    build_graph,
    build_graphs,
    cgcnn_atom_features,
    neighbor_list,
    original_cgcnn_atom_features,
    structure_hash,
    to_structure,
)
from zoo.graphs import builder as builder_mod
from zoo.graphs.cache import cache_path
from zoo.graphs.features import CGCNN_BLOCKS, cgcnn_block_slices, original_cgcnn_table_path

DATA = SHARED_DATA
JDFT2D = DATA / "matbench_jdft2d" / "matbench_jdft2d.json.gz"


# ----------------------------------------------------------------------------------------- fixtures
def nacl() -> Structure:
    return Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])


def triclinic(seed: int = 0) -> Structure:
    rng = np.random.default_rng(seed)
    lattice = Lattice.from_parameters(4.1, 5.3, 6.2, 77.0, 84.0, 101.0)
    frac = rng.random((5, 3))
    while True:  # keep sites >= 1 Å apart so the structure passes the overlap check
        s = Structure(lattice, ["Si", "O", "O", "Mg", "H"], frac)
        if np.min(s.distance_matrix + 10 * np.eye(len(s))) > 1.0:
            return s
        frac = rng.random((5, 3))


def tiny_cell() -> Structure:
    """One atom in a 2.3 Å skewed cell: the 7 Å cutoff spans ~3 cells in every direction."""
    return Structure(Lattice([[2.3, 0, 0], [0.4, 2.2, 0], [0.3, 0.5, 2.4]]), ["Cu"], [[0.1, 0.2, 0.3]])


def load_jdft2d(step: int = 1) -> list[Structure]:
    if not JDFT2D.exists():
        pytest.skip(f"{JDFT2D} not found (shared data absent)")
    with gzip.open(JDFT2D, "rt") as fh:
        rows = json.load(fh)["data"]
    return [Structure.from_dict(r[0]) for r in rows[::step]]


def per_atom_distances(g: CrystalGraph, decimals: int = 8) -> list[tuple]:
    return [tuple(np.sort(np.round(g.distances[g.receivers == a], decimals))) for a in range(g.n_nodes)]


# ----------------------------------------------------------------------------------- neighbour list
def reference_pairs(s: Structure, r: float) -> dict:
    out = {}
    for i, nbrs in enumerate(s.get_all_neighbors(r)):
        for nb in nbrs:
            out[(i, nb.index, tuple(int(round(x)) for x in nb.image))] = nb.nn_distance
    return out


@pytest.mark.parametrize("backend", ["pymatgen", "vesin"])
@pytest.mark.parametrize("case", ["nacl", "triclinic", "tiny_cell", "jdft2d"])
def test_neighbor_list_matches_pymatgen_get_all_neighbors(case, backend):
    if case == "jdft2d":
        structures, r = load_jdft2d(step=53), 8.0  # 12 real structures, 1..35 sites
    else:
        structures, r = {"nacl": [nacl()], "triclinic": [triclinic()], "tiny_cell": [tiny_cell()]}[case], 7.0
    for s in structures:
        i, j, shifts, vectors, d = neighbor_list(s.lattice.matrix, s.cart_coords, r, backend=backend)
        ours = {(a, b, tuple(c)): x for a, b, c, x in zip(i.tolist(), j.tolist(), shifts.tolist(), d.tolist())}
        ref = reference_pairs(s, r)
        assert len(ours) == len(i), "duplicate edges"
        assert ours.keys() == ref.keys()
        np.testing.assert_allclose([ours[k] for k in ref], list(ref.values()), rtol=0, atol=1e-10)
        # the contract: vectors from the centre to the image of j, edges sorted by receiver then distance
        expect = s.cart_coords[j] + shifts @ s.lattice.matrix - s.cart_coords[i]
        np.testing.assert_allclose(vectors, expect, atol=1e-10)
        np.testing.assert_allclose(d, np.linalg.norm(vectors, axis=1), atol=1e-12)
        assert np.all(np.diff(i) >= 0)
        same = np.diff(i) == 0
        assert np.all(np.diff(d)[same] >= -1e-8)
        assert not np.any((i == j) & ~shifts.any(axis=1)), "the centre itself is not its own neighbour"


def test_tiny_cell_includes_self_images_and_boundary():
    s = Structure(Lattice.cubic(2.0), ["Cu"], [[0, 0, 0]])
    i, j, shifts, _, d = neighbor_list(s.lattice.matrix, s.cart_coords, 8.0)
    # integer points n != 0 with |n| <= 4: 256 (6 of them exactly at 8.0 Å, which count: d <= r)
    assert len(i) == 256 and np.all(i == 0) and np.all(j == 0)
    assert np.sum(np.isclose(d, 8.0)) == 6
    assert np.all(shifts.any(axis=1))


def test_unwrapped_positions_give_same_distances():
    s = triclinic(1)
    frac = s.frac_coords + np.array([[3, -2, 1], [0, 0, -5], [1, 1, 1], [-4, 2, 0], [0, 7, 0]])
    moved = Structure(s.lattice, s.species, frac)
    a = neighbor_list(s.lattice.matrix, s.cart_coords, 6.0)
    b = neighbor_list(moved.lattice.matrix, moved.cart_coords, 6.0)
    assert len(a[0]) == len(b[0])
    np.testing.assert_allclose(a[4], b[4], atol=1e-9)


# ----------------------------------------------------------------------------------------- rules
def test_cgcnn_rule_keeps_12_nearest():
    for s in [nacl(), triclinic(), tiny_cell()]:
        g = build_graph(s, GraphSpec("cgcnn"))
        full = build_graph(s, GraphSpec("radius", radius=8.0))
        for a in range(len(s)):
            kept = np.sort(g.distances[g.receivers == a])
            every = np.sort(full.distances[full.receivers == a])
            assert len(kept) == min(12, len(every))
            np.testing.assert_array_equal(kept, every[: len(kept)])
        assert np.all(g.distances <= 8.0)
        assert g.meta["rule"] == "cgcnn" and g.meta["max_neighbors"] == 12


def test_cgcnn_ties_are_broken_by_j_then_shift():
    # simple cubic: 6 neighbours at a, then 12 tied at a*sqrt(2); the 12-cut falls inside the tie
    s = Structure(Lattice.cubic(3.0), ["Po"], [[0.1, 0.2, 0.3]])
    g = build_graph(s, GraphSpec("cgcnn"))
    second = [tuple(x) for x, dist in zip(g.shifts.tolist(), g.distances) if dist > 3.5]
    candidates = sorted(
        (a, b, c) for a in (-1, 0, 1) for b in (-1, 0, 1) for c in (-1, 0, 1) if abs(a) + abs(b) + abs(c) == 2
    )
    assert second == candidates[:6]
    again = build_graph(s.copy(), GraphSpec("cgcnn"))
    np.testing.assert_array_equal(again.shifts, g.shifts)


def test_radius_rule_and_spec():
    spec = GraphSpec("radius", radius=5.0)
    assert spec.max_neighbors is None and spec.key() == "g1-radius-r5.0-kall"
    assert GraphSpec() == GraphSpec("cgcnn", 8.0, 12) and GraphSpec().key() == "g1-cgcnn-r8.0-k12"
    assert GraphSpec("cgcnn", radius=6).key() != GraphSpec("cgcnn", radius=6.000001).key()
    with pytest.raises(ValueError, match="rule='cgcnn'"):
        GraphSpec("radius", max_neighbors=12)
    with pytest.raises(ValueError, match="rule"):
        GraphSpec("knn")
    with pytest.raises(ValueError, match="radius"):
        GraphSpec(radius=-1)
    g = build_graph(nacl(), spec)
    # rock salt, a = 5.64 Å: 6 Cl at 2.82, 12 Na at 3.99, 8 Cl at 4.88 Å within 5 Å
    counts = np.bincount(g.receivers)
    assert np.all(counts == 26)


# ------------------------------------------------------------------------------------ invariances
def random_rotation(rng) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    return q if np.linalg.det(q) > 0 else -q


@pytest.mark.parametrize("spec", [GraphSpec("cgcnn"), GraphSpec("radius", radius=6.0)])
def test_distances_invariant_to_rotation_translation_permutation(spec):
    rng = np.random.default_rng(7)
    s = triclinic(3)
    base = per_atom_distances(build_graph(s, spec))
    R = random_rotation(rng)
    rotated = Structure(Lattice(s.lattice.matrix @ R.T), s.species, s.frac_coords)
    translated = Structure(s.lattice, s.species, s.frac_coords + rng.random(3))
    perm = rng.permutation(len(s))
    permuted = Structure(s.lattice, [s.species[p] for p in perm], s.frac_coords[perm])
    for moved in (rotated, translated):
        assert per_atom_distances(build_graph(moved, spec), decimals=6) == [tuple(np.round(x, 6)) for x in base]
    got = per_atom_distances(build_graph(permuted, spec))
    assert [got[k] for k in np.argsort(perm)] == base


@pytest.mark.parametrize("spec", [GraphSpec("cgcnn"), GraphSpec("radius", radius=6.0)])
def test_supercell_gives_same_per_atom_distances(spec):
    s = triclinic(4)
    base = Counter(per_atom_distances(build_graph(s, spec), decimals=6))
    sc = build_graph(s * (2, 1, 3), spec)
    assert Counter(per_atom_distances(sc, decimals=6)) == Counter({k: 6 * v for k, v in base.items()})


# ------------------------------------------------------------------------------------- bad inputs
def _raises(obj, *fragments, **kw):
    with pytest.raises(StructureError) as info:
        build_graph(obj, id="bad-1", **kw)
    msg = str(info.value)
    assert "'bad-1'" in msg, msg
    for f in fragments:
        assert f in msg, msg
    assert isinstance(info.value, ValueError)
    return msg


def test_unreadable_cif(tmp_path):
    _raises("data_x\n_cell_length_a 3\n_atom_site_label\nnonsense\n", "cannot read CIF")
    p = tmp_path / "broken.cif"
    p.write_text("data_broken\n_cell_length_a 4.0\nloop_\n_atom_site_label\n")
    _raises(p, "cannot read CIF")
    _raises(str(tmp_path / "missing.cif"), "neither an existing CIF file nor CIF text")
    _raises(42, "unsupported input type int")


def test_zero_volume_and_degenerate_lattice():
    _raises(Structure(Lattice(np.zeros((3, 3))), ["Na"], [[0, 0, 0]]), "volume", "(near) zero")
    _raises(Structure(Lattice([[1, 0, 0], [0, 1, 0], [1, 1, 0]]), ["Na"], [[0, 0, 0]]), "(near) zero")
    flat = Lattice([[100, 0, 0], [0, 100, 0], [100, 100, 1e-5]])  # 0.1 Å³: not tiny, but coplanar
    _raises(Structure(flat, ["Na"], [[0, 0, 0]]), "coplanar")


def test_overlapping_atoms_including_periodic_images():
    lat = Lattice.cubic(10.0)
    _raises(Structure(lat, ["Na", "Cl"], [[0.5, 0.5, 0.5], [0.5, 0.5, 0.53]]), "overlapping atoms", "atoms 0 and 1")
    # 0.2 Å apart only through the periodic boundary
    msg = _raises(Structure(lat, ["Na", "Cl"], [[0.5, 0.5, 0.99], [0.5, 0.5, 0.01]]), "overlapping atoms")
    assert "0.2 Å" in msg
    # an atom and its own image: a lattice vector of 0.4 Å
    _raises(Structure(Lattice([[0.4, 0, 0], [0, 5, 0], [0, 0, 5]]), ["Na"], [[0, 0, 0]]), "its own periodic image")
    # the threshold is configurable
    g = build_graph(Structure(lat, ["H", "H"], [[0.5, 0.5, 0.5], [0.5, 0.5, 0.54]]), min_distance=0.3)
    assert g.n_nodes == 2


def test_unsupported_species_and_disorder():
    lat = Lattice.cubic(4.0)
    _raises(Structure(lat, ["Md"], [[0, 0, 0]]), "Z=101", "Z=1..100")
    _raises(Structure(lat, [DummySpecies("X"), "Na"], [[0, 0, 0], [0.5, 0.5, 0.5]]), "not a chemical element")
    _raises(Structure(lat, [{"Fe": 0.5, "Co": 0.5}], [[0, 0, 0]]), "disordered", "site 0")
    _raises(Structure(lat, [{"Fe": 0.7}], [[0, 0, 0]]), "partially occupied")


def test_isolated_atom_names_atom_and_suggests_radius():
    s = Structure(Lattice.cubic(30.0), ["Na", "Cl", "Ar"], [[0, 0, 0], [0.08, 0, 0], [0.5, 0.5, 0.5]])
    msg = _raises(s, "atom(s) [2]", "Ar", "larger radius")
    assert build_graph(s, GraphSpec("radius", radius=25.0)).n_nodes == 3  # Ar–Cl: 24.7 Å


def test_ase_pbc_must_be_3d():
    from ase import Atoms

    _raises(Atoms("H2", positions=[[0, 0, 0], [0, 0, 0.74]]), "pbc", "atoms.pbc = True")


# ---------------------------------------------------------------------------------- to_structure
def test_to_structure_from_ase_and_cif(tmp_path):
    from ase.io import write as ase_write
    from pymatgen.io.ase import AseAtomsAdaptor

    s = triclinic(5)
    atoms = AseAtomsAdaptor.get_atoms(s)
    from_ase = to_structure(atoms, id="ase")
    np.testing.assert_allclose(from_ase.lattice.matrix, s.lattice.matrix, atol=1e-12)
    np.testing.assert_allclose(from_ase.cart_coords, s.cart_coords, atol=1e-12)
    assert [x.Z for x in from_ase.species] == [x.Z for x in s.species]

    cif_text = s.to(fmt="cif")
    path = tmp_path / "s.cif"
    path.write_text(cif_text)
    ase_path = tmp_path / "ase.cif"
    ase_write(ase_path, atoms)
    for obj in (cif_text, path, str(path), ase_path):
        got = to_structure(obj)
        assert got.composition == s.composition
        np.testing.assert_allclose(got.lattice.abc, s.lattice.abc, atol=1e-5)
        a = per_atom_distances(build_graph(got), decimals=4)
        assert Counter(a) == Counter(per_atom_distances(build_graph(s), decimals=4))
    # a Structure dict (matbench's storage) is accepted too, and a Structure is returned unchanged
    assert to_structure(s.as_dict()) == s
    assert to_structure(s) is s


# ------------------------------------------------------------------------------ build_graphs/cache
def test_build_graphs_skip_keeps_the_others(tmp_path, caplog):
    good = [nacl(), triclinic()]
    bad = Structure(Lattice.cubic(10.0), ["Na", "Cl"], [[0, 0, 0], [0, 0, 0.01]])
    with caplog.at_level(logging.WARNING, logger="zoo.graphs"):
        graphs, failures = build_graphs(
            [good[0], bad, "not a cif", good[1]], GraphSpec(), ids=["a", "b", "c", "d"],
            cache=tmp_path, progress=False, on_error="skip",
        )
    assert [g is None for g in graphs] == [False, True, True, False]
    assert set(failures) == {"b", "c"} and "overlapping" in failures["b"] and "'c'" in failures["c"]
    assert "'b'" in caplog.text and "'c'" in caplog.text
    assert graphs[0].id == "a" and graphs[3].id == "d"
    with pytest.raises(StructureError, match="'b'"):
        build_graphs([good[0], bad], GraphSpec(), ids=["a", "b"], cache=False, progress=False)


def test_cache_round_trip_is_exact_and_not_recomputed(tmp_path, monkeypatch):
    structures = [nacl(), triclinic(0), triclinic(1), tiny_cell()]
    spec = GraphSpec("cgcnn")
    first, failures = build_graphs(structures, spec, cache=tmp_path, progress=False)
    assert not failures
    files = list((tmp_path / "graphs" / spec.key()).glob("*.npz"))
    assert len(files) == 1

    calls = []
    real = builder_mod._graph_from_structure
    monkeypatch.setattr(builder_mod, "_graph_from_structure", lambda *a, **k: calls.append(1) or real(*a, **k))
    second, _ = build_graphs(structures, spec, ids=["w", "x", "y", "z"], cache=tmp_path, progress=False)
    assert calls == [], "a second call with the same inputs must read the cache"
    for a, b, new_id in zip(first, second, "wxyz"):
        for name, x in a.arrays().items():
            y = getattr(b, name)
            assert x.dtype == y.dtype and x.shape == y.shape and x.tobytes() == y.tobytes(), name
        assert b.id == new_id and b.meta == a.meta
    # the same graphs as building without a cache
    fresh, _ = build_graphs(structures, spec, cache=False, progress=False)
    for a, b in zip(first, fresh):
        for name, x in a.arrays().items():
            assert x.tobytes() == getattr(b, name).tobytes(), name
    calls.clear()

    # any change of content or spec is a miss; a one-ulp change of one coordinate too
    moved = structures[1].copy()
    frac = moved.frac_coords
    frac[0, 0] = np.nextafter(frac[0, 0], 1.0)
    moved = Structure(moved.lattice, moved.species, frac)
    assert structure_hash(moved) != structure_hash(structures[1])
    build_graphs([structures[0], moved] + structures[2:], spec, cache=tmp_path, progress=False)
    assert len(calls) == 4
    build_graphs(structures, GraphSpec("radius", radius=5.0), cache=tmp_path, progress=False)
    assert len(calls) == 8


def test_cache_survives_a_corrupt_file_and_caches_failures_by_content(tmp_path):
    lonely = Structure(Lattice.cubic(30.0), ["Ar"], [[0, 0, 0]])  # no neighbour within 8 Å
    structures = [nacl(), lonely]
    spec = GraphSpec()
    graphs, failures = build_graphs(structures, spec, ids=["ok", "x"], cache=tmp_path, progress=False, on_error="skip")
    assert graphs[1] is None and "'x'" in failures["x"]
    path = cache_path([structure_hash(s) for s in structures], spec.key(), tmp_path)
    assert path.is_file()
    # read back: the failure is reported again under the new id
    graphs, failures = build_graphs(structures, spec, ids=["ok", "y"], cache=tmp_path, progress=False, on_error="skip")
    assert graphs[1] is None and list(failures) == ["y"] and "'y'" in failures["y"]
    path.write_bytes(b"not an npz")
    graphs, failures = build_graphs(structures, spec, ids=["ok", "y"], cache=tmp_path, progress=False, on_error="skip")
    assert graphs[0] is not None and graphs[0].n_edges == 12 * graphs[0].n_nodes
    np.load(path, allow_pickle=False).close()  # rewritten as a valid file


def test_cache_location_env(monkeypatch, tmp_path):
    from zoo.core.paths import cache_root

    monkeypatch.setenv("ZOO_CACHE", str(tmp_path / "zc"))
    assert cache_root() == tmp_path / "zc"
    build_graphs([nacl()], GraphSpec(), progress=False)
    assert len(list((tmp_path / "zc" / "graphs").rglob("*.npz"))) == 1
    monkeypatch.delenv("ZOO_CACHE")
    assert "crystal-zoo" in str(cache_root())


@pytest.mark.data
def test_jdft2d_matches_original_cgcnn_neighbours():
    """Our cgcnn graphs = the original CGCNN recipe (get_all_neighbors(8), sort by distance, take 12)."""
    structures = load_jdft2d(step=7)
    graphs, failures = build_graphs(structures, GraphSpec(), cache=False, progress=False)
    assert not failures
    for s, g in zip(structures, graphs):
        for a, nbrs in enumerate(s.get_all_neighbors(8.0)):
            ref = np.sort([nb.nn_distance for nb in nbrs])[:12]
            np.testing.assert_allclose(np.sort(g.distances[g.receivers == a]), ref, atol=1e-10)


# ------------------------------------------------------------------------------------ atom features
def test_original_cgcnn_table_is_the_shipped_one():
    table = original_cgcnn_atom_features()
    assert table.shape == (101, 92) and np.all(table[0] == 0)
    with open(original_cgcnn_table_path()) as fh:
        raw = json.load(fh)
    assert all(np.array_equal(table[int(k)], v) for k, v in raw.items())
    shared = DATA / "cgcnn_atom_init" / "atom_init.json"
    if shared.exists():
        with open(shared) as fh:
            assert json.load(fh) == raw


def test_derived_cgcnn_features_agree_with_original(capsys):
    derived, original = cgcnn_atom_features(), original_cgcnn_atom_features()
    assert derived.shape == (101, 92) and derived.dtype == np.float64 and np.all(derived[0] == 0)
    assert sum(n for _, n in CGCNN_BLOCKS) == 92
    agreement = {}
    for name, sl in cgcnn_block_slices().items():
        block = derived[1:, sl]
        assert np.all(block.sum(axis=1) <= 1) and set(np.unique(block)) <= {0.0, 1.0}, name  # one-hot or missing
        agreement[name] = float(np.mean(np.all(block == original[1:, sl], axis=1)))
    rows = float(np.mean(np.all(derived[1:] == original[1:], axis=1)))
    overall = float(np.mean(list(agreement.values())))
    with capsys.disabled():
        print("\nCGCNN atom features, derived vs original, share of elements Z=1..100 with identical block:")
        for name, value in agreement.items():
            print(f"  {name:24s} {value:6.2f}")
        print(f"  {'(whole rows)':24s} {rows:6.2f}   (mean over blocks {overall:.2f})")
    # The encodings of the categorical blocks are reproduced exactly (incl. IE bins on ln(eV)); the
    # binned physical data differ where pymatgen's sources differ from CGCNN's 2018 ones (covalent
    # radii: Cordero vs another table; EA: pymatgen has values for elements the original left empty).
    for name in ("group", "period", "valence_electrons", "block", "first_ionization_energy"):
        assert agreement[name] == 1.0, name
    assert agreement["electronegativity"] >= 0.8
    assert agreement["atomic_volume"] >= 0.8
    assert agreement["electron_affinity"] >= 0.6
    assert agreement["covalent_radius"] >= 0.4
    assert overall >= 0.84 and rows >= 0.2


# -------------------------------------------------------------------------------- gaussian filter
