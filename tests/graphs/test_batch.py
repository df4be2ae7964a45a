"""Batching contract (zoo/graphs/batch.py): collate offsets, padding rules, bucket sizes."""
from __future__ import annotations

import gzip
import json

import numpy as np
import pytest

from tests.helpers import SHARED_DATA
from pymatgen.core import Lattice, Structure

from zoo.graphs import GraphSpec, build_graph, build_graphs, bucket_size, collate, pad_batch

JDFT2D = SHARED_DATA / "matbench_jdft2d" / "matbench_jdft2d.json.gz"


@pytest.fixture(scope="module")
def graphs():
    rng = np.random.default_rng(3)
    out = []
    for n in (1, 3, 2, 5):
        while True:
            s = Structure(Lattice.from_parameters(4.5, 5.0, 5.5, 85, 95, 100), ["C"] * n, rng.random((n, 3)))
            if n == 1 or np.min(s.distance_matrix + 9 * np.eye(n)) > 1.2:
                break
        out.append(build_graph(s, GraphSpec("radius", radius=6.0), id=f"g{n}"))
    return out


def test_collate_offsets(graphs):
    y = np.arange(len(graphs), dtype=np.float64) * 1.5
    b = collate(graphs, y=y)
    n_nodes = [g.n_nodes for g in graphs]
    n_edges = [g.n_edges for g in graphs]
    node_start = np.concatenate([[0], np.cumsum(n_nodes)])
    edge_start = np.concatenate([[0], np.cumsum(n_edges)])
    assert b["numbers"].shape == (sum(n_nodes),) and b["senders"].shape == (sum(n_edges),)
    assert b["lattice"].shape == (len(graphs), 3, 3)
    for k, g in enumerate(graphs):
        ns, es = slice(node_start[k], node_start[k + 1]), slice(edge_start[k], edge_start[k + 1])
        np.testing.assert_array_equal(b["senders"][es], g.senders + node_start[k])
        np.testing.assert_array_equal(b["receivers"][es], g.receivers + node_start[k])
        np.testing.assert_array_equal(b["positions"][ns], g.positions)
        np.testing.assert_array_equal(b["distances"][es], g.distances)
        np.testing.assert_array_equal(b["shifts"][es], g.shifts.astype(np.float64))
        assert np.all(b["node_graph"][ns] == k) and np.all(b["edge_graph"][es] == k)
        # every edge stays inside its own graph
        assert np.all(b["node_graph"][b["senders"][es]] == k) and np.all(b["node_graph"][b["receivers"][es]] == k)
    # the edge geometry is recoverable from the batch alone (shifts are float so they multiply lattices)
    lat = b["lattice"][b["edge_graph"]]
    vec = b["positions"][b["senders"]] + np.einsum("ei,eij->ej", b["shifts"], lat) - b["positions"][b["receivers"]]
    np.testing.assert_allclose(vec, b["edge_vectors"], atol=1e-12)
    np.testing.assert_array_equal(b["n_nodes"], n_nodes)
    np.testing.assert_array_equal(b["y"], y)
    assert b["node_mask"].all() and b["edge_mask"].all() and b["graph_mask"].all()
    with pytest.raises(ValueError):
        collate([])
    with pytest.raises(ValueError):
        collate(graphs, y=y[:2])


def test_pad_batch_masks_sizes_and_padding_rules(graphs):
    b = collate(graphs, y=np.ones(len(graphs)))
    N, E, G = b["numbers"].shape[0], b["senders"].shape[0], len(graphs)
    p = pad_batch(b, n_graphs=8)
    Np, Ep = p["numbers"].shape[0], p["senders"].shape[0]
    assert Np == bucket_size(N + 1) and Ep == bucket_size(E + 1) and p["lattice"].shape == (8, 3, 3)
    for key in ("positions", "node_graph", "node_mask"):
        assert p[key].shape[0] == Np, key
    for key in ("receivers", "shifts", "edge_vectors", "distances", "edge_graph", "edge_mask"):
        assert p[key].shape[0] == Ep, key
    for key in ("n_nodes", "n_edges", "graph_mask", "y"):
        assert p[key].shape[0] == 8, key
    # masks count the real entries, the real part is untouched
    assert p["node_mask"].sum() == N and p["edge_mask"].sum() == E and p["graph_mask"].sum() == G
    for key in b:
        np.testing.assert_array_equal(p[key][: b[key].shape[0]], b[key], err_msg=key)
    # padding nodes/edges belong to the last graph slot, which is padding
    assert np.all(p["node_graph"][N:] == 7) and np.all(p["edge_graph"][E:] == 7) and not p["graph_mask"][-1]
    assert np.all(p["numbers"][N:] == 0)
    # padding edges join the last padding node to itself, finite length 1 Å along x
    assert np.all(p["senders"][E:] == Np - 1) and np.all(p["receivers"][E:] == Np - 1)
    assert np.all(p["distances"][E:] == 1.0)
    np.testing.assert_array_equal(p["edge_vectors"][E:], np.tile([1.0, 0.0, 0.0], (Ep - E, 1)))
    np.testing.assert_array_equal(p["lattice"][G:], np.broadcast_to(np.eye(3), (8 - G, 3, 3)))
    assert np.all(p["n_nodes"][G:] == 0) and np.all(p["y"][G:] == 0)
    # pooling with node_graph into the G slots leaves real graphs exact
    pooled = np.zeros(8)
    np.add.at(pooled, p["node_graph"], p["numbers"].astype(float))
    np.testing.assert_array_equal(pooled[:G], [g.numbers.sum() for g in graphs])
    # padding edges never touch a real node
    assert not np.any(p["node_mask"][p["senders"][~p["edge_mask"]]])
    # explicit sizes, and refusing sizes without a spare node or graph
    q = pad_batch(b, n_nodes=N + 1, n_edges=E, n_graphs=G + 1)
    assert q["numbers"].shape[0] == N + 1 and q["senders"].shape[0] == E
    for kw in ({"n_nodes": N}, {"n_graphs": G}, {"n_edges": E - 1}):
        with pytest.raises(ValueError, match="too small"):
            pad_batch(b, **kw)


def test_bucket_size_properties():
    sizes = [bucket_size(n) for n in range(1, 20001)]
    assert all(b >= n for n, b in zip(range(1, 20001), sizes))
    assert all(a <= b for a, b in zip(sizes, sizes[1:])), "monotone"
    for n in range(8, 20001):
        assert bucket_size(n) <= 1.25 * n, n  # at most 25 % waste above the minimum
        assert bucket_size(bucket_size(n)) == bucket_size(n)  # buckets are fixed points
    assert bucket_size(0) == bucket_size(1) == 8
    assert len({bucket_size(n) for n in range(65, 4097)}) == 24  # 4 per octave over 6 octaves (64, 4096]
    # more buckets per octave = less waste
    assert all(bucket_size(n, per_octave=8) <= bucket_size(n) for n in range(8, 5000))


@pytest.mark.data
def test_few_padded_shapes_over_shuffled_jdft2d_epochs():
    if not JDFT2D.exists():
        pytest.skip(f"{JDFT2D} not found (shared data absent)")
    with gzip.open(JDFT2D, "rt") as fh:
        structures = [r[0] for r in json.load(fh)["data"]]
    gs, failures = build_graphs(structures, GraphSpec(), cache=False, progress=False)
    assert not failures and len(gs) == 636
    rng = np.random.default_rng(0)
    padded, raw = set(), set()
    batch = 128
    for _ in range(20):  # 20 shuffled epochs = 100 batches
        perm = rng.permutation(len(gs))
        for start in range(0, len(gs), batch):
            b = collate([gs[k] for k in perm[start : start + batch]])
            p = pad_batch(b, n_graphs=batch + 1)
            raw.add((b["numbers"].shape[0], b["senders"].shape[0]))
            padded.add((p["numbers"].shape[0], p["senders"].shape[0], p["lattice"].shape[0]))
    assert len(raw) > 50  # without bucketing nearly every batch would compile anew
    assert len(padded) <= 5, sorted(padded)


class _TripletGraph:
    """A graph type with one more index set: triplets (k -> j -> i) that point into the edge set."""

    def __init__(self, g, n_triplets):
        self.g, self.n = g, n_triplets

    def arrays(self):
        a = dict(self.g.arrays())
        E = self.g.n_edges
        a["triplet_edge_ij"] = np.arange(self.n) % E
        a["triplet_edge_kj"] = (np.arange(self.n) + 1) % E
        a["triplet_angle"] = np.linspace(-1, 1, self.n)
        return a


def test_extra_index_sets_collate_and_pad_without_new_code(graphs):
    from zoo.graphs import Field, register_field

    register_field("triplet_edge_ij", Field("triplet", "int", points_to="edge"))
    register_field("triplet_edge_kj", Field("triplet", "int", points_to="edge"))
    register_field("triplet_angle", Field("triplet", "float", fill=0.0))
    tg = [_TripletGraph(g, 3 + k) for k, g in enumerate(graphs[:3])]
    b = collate(tg)
    E = [g.n_edges for g in graphs[:3]]
    assert list(b["n_triplets"]) == [3, 4, 5] and b.sizes["triplet"] == 12
    # triplet -> edge indices are offset by the edges of the graphs before
    assert b["triplet_edge_ij"][3] == E[0] + 0 and b["triplet_edge_ij"][7] == E[0] + E[1] + 0
    np.testing.assert_array_equal(b["triplet_graph"], [0] * 3 + [1] * 4 + [2] * 5)
    p = b.pad({"node": b.sizes["node"] + 2, "edge": b.sizes["edge"] + 3, "triplet": 16, "graph": 5})
    Ep = p.sizes["edge"]
    assert p.sizes == {"graph": 5, "node": b.sizes["node"] + 2, "edge": Ep, "triplet": 16}
    # padding triplets point at the padding edge (the last one), which belongs to the padding graph
    assert np.all(p["triplet_edge_ij"][12:] == Ep - 1) and not p["edge_mask"][Ep - 1]
    assert np.all(p["triplet_graph"][12:] == 4) and not p["triplet_mask"][12:].any()
    # edges are pointed into, so they now need a spare element too
    with pytest.raises(ValueError, match="spare"):
        b.pad({"edge": b.sizes["edge"]})


def test_bucket_policy_reuses_compiled_shapes(graphs):
    from zoo.graphs import BucketPolicy

    policy = BucketPolicy(n_graphs=4)
    first = policy.pad(collate(graphs[:3]))
    again = policy.pad(collate(graphs[1:4]))
    assert len(policy.shapes) >= 1 and again.sizes["graph"] == first.sizes["graph"] == 4
    for shape in policy.shapes:
        assert shape["graph"] == 4
    with pytest.raises(ValueError, match="at most 3"):
        policy.sizes(collate(graphs[:4]))
