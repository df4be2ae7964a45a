"""The JAX adapter's choice of padded shapes: every batch fits, padding stays bounded, and an epoch of
shuffled batches reuses a few compiled shapes instead of opening new ones (each is an XLA compilation)."""
from __future__ import annotations

import types

import numpy as np
import pytest

pytest.importorskip("jax")
from zoo.graphs import bucket_size  # noqa: E402
from zoo.training.jax import JaxAdapter  # noqa: E402


def test_shuffled_radius_graph_batches_use_few_shapes():
    rng = np.random.default_rng(0)
    # Per-structure sizes like radius graphs of real crystals: 1-40 atoms, 5-60 edges per atom.
    atoms = rng.integers(1, 40, size=1000)
    edges = atoms * rng.integers(5, 60, size=1000)
    adapter = types.SimpleNamespace(_shapes=[])
    independent = set()  # per-axis buckets, the previous rule
    for epoch in range(40):
        order = rng.permutation(1000)
        for k in range(0, 1000, 32):
            idx = order[k : k + 32]
            n, e = int(atoms[idx].sum()), int(edges[idx].sum())
            pn, pe = JaxAdapter._padded_sizes(adapter, n, e)
            independent.add((bucket_size(n + 1), bucket_size(e + 1)))
            assert n + 1 <= pn <= 2 * (n + 1) + 8 and e + 1 <= pe <= 2 * (e + 1) + 8
    # 31 full batches and one of 8 graphs per epoch: a handful of shapes for the whole run, where
    # independent per-axis buckets give dozens of (nodes, edges) pairs.
    assert len(adapter._shapes) <= 10, adapter._shapes
    assert 3 * len(adapter._shapes) <= len(independent), (len(adapter._shapes), len(independent))
