"""JAX side of the batch contract in ``zoo.graphs.batch``."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

_INT_KEYS = {"numbers", "senders", "receivers", "node_graph", "edge_graph", "n_nodes", "n_edges"}
_BOOL_KEYS = {"node_mask", "edge_mask", "graph_mask"}


def to_jax(batch: dict[str, np.ndarray], dtype=jnp.float32) -> dict[str, jax.Array]:
    out = {}
    for k, v in batch.items():
        v = np.asarray(v)
        if k in _INT_KEYS:
            out[k] = jnp.asarray(v, dtype=jnp.int32)
        elif k in _BOOL_KEYS:
            out[k] = jnp.asarray(v, dtype=bool)
        else:
            out[k] = jnp.asarray(v, dtype=dtype)
    return out


def segment_sum(x: jax.Array, index: jax.Array, n: int) -> jax.Array:
    return jax.ops.segment_sum(x, index, num_segments=n)


def segment_mean(x: jax.Array, index: jax.Array, n: int) -> jax.Array:
    s = jax.ops.segment_sum(x, index, num_segments=n)
    cnt = jax.ops.segment_sum(jnp.ones(index.shape[0], x.dtype), index, num_segments=n)
    return s / jnp.maximum(cnt, 1).reshape((-1,) + (1,) * (x.ndim - 1))
