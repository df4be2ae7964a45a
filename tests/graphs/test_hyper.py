"""The crystal hypergraph as data (zoo.graphs.hyper, zoo.graphs.motifs): the featuriser hook of build_graphs,
triplets that do not depend on the order of the atoms, motifs with their fallbacks, batching, the cache and
the worker processes."""
from __future__ import annotations

import logging

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

import zoo.graphs.hyper as hy
import zoo.graphs.motifs as mt
from zoo.graphs import Batch, GraphSpec, HyperGraph, HyperSpec, build_graph, build_graphs, collate, pad_batch
from zoo.graphs.batch import field_of
from zoo.testing import random_crystals, transform_structure

LSOP = HyperSpec(triplets=6, motifs="crystalnn", motif_features="lsop", motif_pairs=True)


def spec(hs: HyperSpec = LSOP, **kw) -> GraphSpec:
    return GraphSpec(**{"rule": "cgcnn", "radius": 8.0, "max_neighbors": 12, **kw}, featurizer=hs.to_string())


def fcc(a: float = 3.6) -> Structure:
    return Structure(Lattice.cubic(a), ["Cu"] * 4, [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]]).get_primitive_structure()


def bcc(a: float = 3.0) -> Structure:
    return Structure(Lattice.cubic(a), ["Fe", "Fe"], [[0, 0, 0], [0.5, 0.5, 0.5]])


def cscl(a: float = 4.2) -> Structure:
    return Structure(Lattice.cubic(a), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])


def test_spec_string_round_trip_and_errors():
    hs = HyperSpec(triplets=4, motifs="mindist", motif_features="csm", motif_pairs=True)
    assert HyperSpec.from_string(hs.to_string()) == hs
    assert not HyperSpec().any and HyperSpec(triplets=1).any
    with pytest.raises(ValueError, match="motif_pairs needs motifs"):
        HyperSpec(motif_pairs=True)
    with pytest.raises(ValueError, match="neighbour method"):
        HyperSpec(motifs="voronoi")
    with pytest.raises(ValueError, match=r"option 'depth=2'.*KEY one of"):
        HyperSpec.from_string("hyper:depth=2")
    with pytest.raises(ValueError, match="no graph featuriser 'nope' is registered"):
        build_graphs([fcc()], GraphSpec(featurizer="nope:x=1"), cache=False, progress=False)


def test_featuriser_adds_index_sets_and_build_graph_uses_it_too():
    g = build_graph(fcc(), spec())
    assert isinstance(g, HyperGraph) and g.meta["featurizer"] == LSOP.to_string()
    arrays = g.arrays()
    assert {"triplet_bond_a", "motif_features", "motif_member_node", "motif_pair_origin"} <= set(arrays)
    assert arrays["motif_features"].shape == (1, len(mt.feature_names("lsop")))
    # the plain graph is the one CGCNN gets: the spec without featuriser (and its cache key differs)
    plain = build_graph(fcc(), GraphSpec(rule="cgcnn", radius=8.0, max_neighbors=12))
    np.testing.assert_array_equal(plain.distances, g.distances)
    assert spec().key().startswith("g1-cgcnn-r8.0-k12-hyper") and spec().key() != GraphSpec("cgcnn", 8.0, 12).key()


def test_triplets_take_whole_shells():
    # fcc: 12 neighbours at one distance; 6 nearest asked, the tied shell is taken whole: C(12, 2) triplets
    a, b = hy.triplet_bonds(build_graph(fcc(), GraphSpec("cgcnn", 8.0, 12)), GraphSpec("cgcnn", 8.0, 12), 6)
    assert len(a) == 66 and np.all(a < b)
    # bcc with 12 bonds: 8 at d1, then the graph's cut splits the 6 second neighbours: that shell is left out
    g = build_graph(bcc(), GraphSpec("cgcnn", 8.0, 12))
    a, _ = hy.triplet_bonds(g, GraphSpec("cgcnn", 8.0, 12), 12)
    assert len(a) == 2 * 28
    # with every neighbour within the radius (no cut), the second shell is in: C(14, 2) per atom
    g = build_graph(bcc(), GraphSpec("radius", 3.1))
    assert len(hy.triplet_bonds(g, GraphSpec("radius", 3.1), 9)[0]) == 2 * 91


def test_triplet_angles_and_motifs_do_not_depend_on_the_order_or_frame_of_the_atoms():
    rng = np.random.default_rng(0)
    sp = spec(max_neighbors=None, rule="radius", radius=5.0)
    for s in random_crystals(3, seed=4, max_atoms=6):
        perm = rng.permutation(len(s))
        g0 = build_graph(s, sp)
        g1 = build_graph(transform_structure(s, perm=perm, t=rng.uniform(-3, 3, 3)), sp)

        def angles(g):
            v, d = g.edge_vectors, g.distances
            a, b = g.hyper["triplet_bond_a"], g.hyper["triplet_bond_b"]
            return np.sort(np.round((v[a] * v[b]).sum(1) / (d[a] * d[b]), 9))

        np.testing.assert_array_equal(angles(g0), angles(g1))
        np.testing.assert_allclose(g0.hyper["motif_features"][perm], g1.hyper["motif_features"], atol=1e-10)


def test_motif_shells_use_periodic_images():
    """The shell of a corner atom crosses the cell boundary: its order parameters must be those of the
    same atom in the middle of a shifted cell (the published code took the neighbours' in-cell sites)."""
    s = fcc()
    shifted = transform_structure(s, t=[1.1, 0.7, 0.3])
    f0 = mt.structure_motifs(s.lattice.matrix, [26], s.cart_coords, features="lsop")["features"]
    f1 = mt.structure_motifs(shifted.lattice.matrix, [26], shifted.cart_coords, features="lsop")["features"]
    np.testing.assert_allclose(f0, f1, atol=1e-12)
    names = mt.feature_names("lsop")
    assert f0[0, names.index("lsop:cuboct")] == pytest.approx(1.0) and f0[0, names.index("lsop:cn")] == pytest.approx(1.0)


def test_motif_fallbacks_are_flagged_and_logged_never_raised(monkeypatch, caplog):
    # CrystalNN finds no neighbour for CsCl's sites: MinimumDistanceNN's 8 Cl instead
    m = mt.structure_motifs(cscl().lattice.matrix, [11, 17], cscl().cart_coords, features="lsop")
    assert m["status"].tolist() == [mt.NN_FALLBACK] * 2 and np.bincount(m["member_motif"]).tolist() == [9, 9]
    # failing order parameters and ChemEnv give zeros and their flags
    monkeypatch.setattr(mt, "_lsop", lambda *a: (_ for _ in ()).throw(RuntimeError("boom")))
    monkeypatch.setattr(mt, "_csm", lambda *a: (_ for _ in ()).throw(ValueError("qhull")))
    with caplog.at_level(logging.INFO, logger="zoo.graphs"):
        g = build_graph(fcc(), spec(HyperSpec(motifs="crystalnn", motif_features="lsop+csm")))
    assert np.all(g.hyper["motif_features"] == 0)
    assert g.meta["motif_status"] == {mt.STATUS_NAMES[mt.LSOP_FAILED]: 1, mt.STATUS_NAMES[mt.CSM_UNAVAILABLE]: 1}
    assert "motif fallbacks" in caplog.text and "boom" in caplog.text


def test_batches_offset_and_pad_every_hypergraph_index():
    graphs, _ = build_graphs([fcc(), cscl(), bcc()], spec(), cache=False, progress=False)
    b = collate(graphs)
    n_nodes, n_edges = b["n_nodes"], b["n_edges"]
    node_off, edge_off = np.r_[0, np.cumsum(n_nodes)[:-1]], np.r_[0, np.cumsum(n_edges)[:-1]]
    for k, g in enumerate(graphs):
        sel = b["triplet_graph"] == k
        np.testing.assert_array_equal(b["triplet_bond_a"][sel], g.hyper["triplet_bond_a"] + edge_off[k])
        sel = b["motif_member_graph"] == k
        np.testing.assert_array_equal(b["motif_member_node"][sel], g.hyper["motif_member_node"] + node_off[k])
    # every triplet's two bonds share their centre, in the batch as in the graph
    np.testing.assert_array_equal(b["receivers"][b["triplet_bond_a"]], b["receivers"][b["triplet_bond_b"]])
    # pairs point at incidences of one motif
    np.testing.assert_array_equal(b["motif_member_motif"][b["motif_pair_origin"]], b["motif_member_motif"][b["motif_pair_remote"]])
    padded = pad_batch(b)
    assert isinstance(padded, Batch) and set(padded.sets) >= {"triplet", "motif", "motif_member", "motif_pair"}
    for key, target in (("triplet_bond_a", "edge"), ("motif_member_node", "node"), ("motif_pair_remote", "motif_member")):
        pad = ~padded[f"{field_of(key).set}_mask"]
        assert np.all(padded[key][pad] == padded.sizes[target] - 1)  # padding only ever touches padding


def test_motif_cache_is_used_and_a_corrupt_file_is_recomputed(tmp_path, monkeypatch, caplog):
    structures = [fcc(), cscl()]
    sp = spec()
    first, _ = build_graphs(structures, sp, cache=str(tmp_path), progress=False)
    files = list((tmp_path / "hyper").rglob("*.npz"))
    assert len(files) == 1 and not list((tmp_path / "hyper").rglob("*.tmp"))

    def refuse(*a, **k):
        raise AssertionError("motifs recomputed although cached")

    monkeypatch.setattr(hy, "compute_motifs", refuse)
    again, _ = build_graphs(structures, sp, cache=str(tmp_path), progress=False)
    for g0, g1 in zip(first, again):
        for k in g0.hyper:
            np.testing.assert_array_equal(g0.hyper[k], g1.hyper[k])
    monkeypatch.undo()
    files[0].write_bytes(b"not a zip file")
    with caplog.at_level(logging.WARNING, logger="zoo.graphs"):
        build_graphs(structures, sp, cache=str(tmp_path), progress=False)
    assert "unreadable" in caplog.text
    assert hy._load_motifs(files[0], [hy._content_hash(g) for g in first], HyperSpec.from_string(sp.featurizer)) is not None


def test_a_new_set_reuses_the_structures_other_cached_sets_hold(tmp_path, monkeypatch):
    """Another fold's set shares most structures with the cached ones: only the new structure is computed,
    and every result equals a fresh computation."""
    sp = spec()
    build_graphs([fcc(), cscl()], sp, cache=str(tmp_path), progress=False)
    computed = []
    real = hy.compute_motifs

    def counting(graphs, *a, **k):
        computed.extend(graphs)
        return real(graphs, *a, **k)

    monkeypatch.setattr(hy, "compute_motifs", counting)
    mixed, _ = build_graphs([cscl(), bcc(), fcc()], sp, cache=str(tmp_path), progress=False)
    assert len(computed) == 1 and len(computed[0].numbers) == len(bcc())
    assert len(list((tmp_path / "hyper").rglob("*.npz"))) == 2
    fresh, _ = build_graphs([cscl(), bcc(), fcc()], sp, cache=False, progress=False)
    for g0, g1 in zip(fresh, mixed):
        assert set(g0.hyper) == set(g1.hyper)
        for k in g0.hyper:
            np.testing.assert_array_equal(g0.hyper[k], g1.hyper[k])


def test_worker_processes_give_the_in_process_result(monkeypatch):
    graphs, _ = build_graphs([fcc(), cscl(), bcc()], GraphSpec("cgcnn", 8.0, 12), cache=False, progress=False)
    hs = HyperSpec(motifs="crystalnn", motif_features="lsop")
    monkeypatch.setattr(hy, "MIN_POOL", 2)
    pooled = hy.compute_motifs(graphs, hs, progress=False, jobs=2)
    inline = hy.compute_motifs(graphs, hs, progress=False, jobs=1)
    for a, b in zip(pooled, inline):
        np.testing.assert_array_equal(a["member_node"], b["member_node"])
        np.testing.assert_array_equal(a["features"], b["features"])
    monkeypatch.setenv(hy.JOBS_VARIABLE, "zero")
    with pytest.raises(ValueError, match="ZOO_FEATURIZE_JOBS"):
        hy.default_jobs()
