"""Graphs in the standard frame (GraphSpec(frame="standard")): idealised standard primitive cell, the
rotation back to the crystal's frame, cached and batched like every other field."""
from __future__ import annotations

import numpy as np
import pytest

from zoo.graphs import GraphSpec, build_graph, build_graphs, collate, pad_batch
from zoo.symmetry import point_group
from zoo.symmetry.standard import HOLOHEDRIES
from zoo.testing import random_crystals, random_rotation, transform_structure

SPEC = GraphSpec(rule="radius", radius=5.0, frame="standard")


def test_spec_key_and_validation():
    assert SPEC.key().endswith("-std0.001") and GraphSpec().key() == GraphSpec(frame="input").key()
    assert "frame" not in GraphSpec().meta() and SPEC.meta()["frame"] == "standard"
    with pytest.raises(ValueError, match="frame"):
        GraphSpec(frame="conventional")


def test_rotated_crystal_gives_the_same_graph_up_to_the_holohedry():
    for s in random_crystals(4, seed=11, max_atoms=8, graph_specs=(SPEC,)):
        g = build_graph(s, SPEC)
        H = point_group(HOLOHEDRIES[g.frame_holohedry])
        Q = random_rotation(3, improper=None)
        h = build_graph(transform_structure(s, R=Q, perm=np.arange(len(s))[::-1]), SPEC)
        assert h.frame_holohedry == g.frame_holohedry and h.n_edges == g.n_edges
        assert H.contains(h.frame_rotation @ Q @ g.frame_rotation.T)
        np.testing.assert_allclose(np.sort(h.distances), np.sort(g.distances), atol=1e-10)


def test_frame_fields_survive_the_cache_and_batching(tmp_path):
    structures = random_crystals(3, seed=2, max_atoms=6, graph_specs=(SPEC,))
    built, _ = build_graphs(structures, SPEC, cache=str(tmp_path), progress=False)
    cached, _ = build_graphs(structures, SPEC, cache=str(tmp_path), progress=False)
    for a, b in zip(built, cached):
        np.testing.assert_array_equal(a.frame_rotation, b.frame_rotation)
        assert a.frame_holohedry == b.frame_holohedry
    batch = pad_batch(collate(cached), n_graphs=5)
    assert batch["frame_rotation"].shape == (5, 3, 3) and batch["frame_holohedry"].shape == (5,)
    np.testing.assert_array_equal(batch["frame_rotation"][3:], np.broadcast_to(np.eye(3), (2, 3, 3)))
    assert "frame_rotation" not in collate([build_graph(structures[0], GraphSpec(rule="radius", radius=5.0))])
