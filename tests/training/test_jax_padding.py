"""The JAX adapter's padded shapes (``zoo.graphs.BucketPolicy``): every batch fits, padding stays bounded,
and an epoch of shuffled batches reuses a few compiled shapes instead of opening new ones (each is an
XLA compilation)."""
from __future__ import annotations

import numpy as np
import pytest

from tests.helpers import TINY, toy_task
from zoo.graphs import Batch, BucketPolicy, bucket_size, build_graphs


def counts_batch(n_nodes: int, n_edges: int, n_graphs: int) -> Batch:
    """A batch that only knows how many nodes, edges and graphs it holds (all the policy reads)."""
    return Batch({"node_mask": np.ones(n_nodes, bool), "edge_mask": np.ones(n_edges, bool), "graph_mask": np.ones(n_graphs, bool)})


def adapter_rule_before_bucket_policy(shapes: list, n_nodes: int, n_edges: int) -> tuple[int, int]:
    """The jax adapter's own padding rule before it used BucketPolicy (``JaxAdapter._padded_sizes``),
    kept as the reference the policy must reproduce shape for shape."""
    need_n, need_e = n_nodes + 1, n_edges + 1
    fits = [(n, e) for n, e in shapes if need_n <= n <= 2 * need_n and need_e <= e <= 2 * need_e]
    if fits:
        return min(fits, key=lambda s: (s[0] * 4 + s[1]))
    shape = (bucket_size(int(need_n * 1.1) + 1), bucket_size(int(need_e * 1.1) + 1))
    shapes.append(shape)
    return shape


def test_shuffled_radius_graph_batches_use_few_shapes():
    rng = np.random.default_rng(0)
    # Per-structure sizes like radius graphs of real crystals: 1-40 atoms, 5-60 edges per atom.
    atoms = rng.integers(1, 40, size=1000)
    edges = atoms * rng.integers(5, 60, size=1000)
    policy = BucketPolicy(n_graphs=33)
    before: list = []
    independent = set()  # per-axis buckets, the previous rule
    for epoch in range(40):
        order = rng.permutation(1000)
        for k in range(0, 1000, 32):
            idx = order[k : k + 32]
            n, e = int(atoms[idx].sum()), int(edges[idx].sum())
            sizes = policy.sizes(counts_batch(n, e, len(idx)))
            pn, pe = sizes["node"], sizes["edge"]
            assert (pn, pe) == adapter_rule_before_bucket_policy(before, n, e)
            assert sizes["graph"] == 33
            independent.add((bucket_size(n + 1), bucket_size(e + 1)))
            assert n + 1 <= pn <= 2 * (n + 1) + 8 and e + 1 <= pe <= 2 * (e + 1) + 8
    # 31 full batches and one of 8 graphs per epoch: a handful of shapes for the whole run, where
    # independent per-axis buckets give dozens of (nodes, edges) pairs.
    assert len(policy.shapes) <= 10, policy.shapes
    assert 3 * len(policy.shapes) <= len(independent), (len(policy.shapes), len(independent))


def test_jax_adapter_pads_with_the_bucket_policy():
    pytest.importorskip("jax")
    from zoo.models import make_config
    from zoo.training import TrainConfig, get_adapter

    task = toy_task()
    config = TrainConfig(model="cgcnn", backend="jax", batch_size=8, progress=False, model_overrides=dict(TINY))
    model_config = make_config("cgcnn", **TINY).with_target(task.spec.target)
    graphs, _ = build_graphs(list(task.df["structure"])[:8], model_config.graph_spec(), cache=False, progress=False)
    adapter = get_adapter("jax")("cgcnn", model_config, config, "mse")
    arrays, n_real = adapter.make_batch(graphs, np.zeros(8))
    (shape,) = adapter.padding.shapes
    assert n_real == 8 and arrays["graph_mask"].shape == (9,)  # batch_size + 1 graph slots
    assert arrays["numbers"].shape == (shape["node"],) and arrays["senders"].shape == (shape["edge"],)
    with pytest.raises(ValueError, match="at most 8"):
        adapter.make_batch(graphs + graphs[:1], None)
