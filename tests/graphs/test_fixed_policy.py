"""``FixedPolicy``: one padded shape for every batch of a short run, grown only when a batch does not fit."""
from __future__ import annotations

import numpy as np
import pytest

from zoo.graphs.batch import BucketPolicy, FixedPolicy, collate


class Chain:
    """A graph of ``n`` atoms in a ring (n edges): sizes are all a padding policy looks at."""

    def __init__(self, n: int):
        self.n = n

    def arrays(self) -> dict[str, np.ndarray]:
        idx = np.arange(self.n)
        return {"numbers": np.full(self.n, 6), "positions": np.zeros((self.n, 3)), "lattice": np.eye(3) * 10,
                "senders": idx, "receivers": (idx + 1) % self.n, "shifts": np.zeros((self.n, 3)),
                "edge_vectors": np.ones((self.n, 3)), "distances": np.ones(self.n)}


def batch(*sizes):
    return collate([Chain(n) for n in sizes])


def test_one_shape_holds_smaller_batches_and_grows_only_for_a_larger_one():
    policy = FixedPolicy(n_graphs=5)
    first = policy.sizes(batch(10, 10, 10, 10))  # 40 nodes + 1 spare, times the 1.25 headroom, bucketed
    assert first["node"] >= 1.25 * 41 and first["graph"] == 5
    # a short last batch (a quarter of the nodes) and a slightly larger one reuse it: BucketPolicy would not
    assert policy.sizes(batch(10)) == first and policy.sizes(batch(12, 12, 12, 12)) == first
    assert len(policy.shapes) == 1
    buckets = BucketPolicy(n_graphs=5)
    buckets.sizes(batch(10, 10, 10, 10))
    buckets.sizes(batch(10))
    assert len(buckets.shapes) == 2
    # a batch that no shape holds adds a larger one; later batches take the smallest shape that holds them
    grown = policy.sizes(batch(30, 30, 30, 30))
    assert grown["node"] >= 1.25 * 121 and grown["edge"] >= 1.25 * 121 and len(policy.shapes) == 2
    assert policy.sizes(batch(10)) == first and policy.sizes(batch(25, 25, 25, 25)) == grown
    padded = policy.pad(batch(3))
    assert padded.sizes == {"graph": 5, "node": first["node"], "edge": first["edge"]}
    assert padded["node_mask"].sum() == 3 and padded["graph_mask"].sum() == 1 and len(policy.shapes) == 2


def test_a_new_shape_is_never_smaller_than_the_last_in_any_set():
    policy = FixedPolicy(n_graphs=3, headroom=1.0, growth=1.0)
    a = policy.sizes(batch(100, 1))  # many nodes in one graph
    b = policy.sizes(batch(60, 60))  # fewer nodes than a holds? no: 120 > 101, so a new shape
    assert b["node"] >= 121 and all(b[s] >= a[s] for s in a)
    assert policy.sizes(batch(1, 1)) == a
    with pytest.raises(ValueError, match="at most 2"):
        policy.sizes(batch(1, 1, 1))
