"""JAX side of the batch contract (``zoo.graphs.batch``) and the array operations model math needs."""
from __future__ import annotations

from collections.abc import Mapping

import jax
import jax.numpy as jnp
import numpy as np

from zoo.graphs.batch import field_of


def to_jax(batch: Mapping[str, np.ndarray], dtype=jnp.float32) -> dict[str, jax.Array]:
    """A ``Batch`` as jax arrays: index and count arrays int32, masks bool, the rest ``dtype``."""
    out = {}
    for k, v in batch.items():
        kind = field_of(k).kind
        out[k] = jnp.asarray(np.asarray(v), dtype=jnp.int32 if kind == "int" else bool if kind == "bool" else dtype)
    return out


def segment_sum(x: jax.Array, index: jax.Array, n: int) -> jax.Array:
    return jax.ops.segment_sum(x, index, num_segments=n)


def segment_mean(x: jax.Array, index: jax.Array, n: int) -> jax.Array:
    s = jax.ops.segment_sum(x, index, num_segments=n)
    cnt = jax.ops.segment_sum(jnp.ones(index.shape[0], x.dtype), index, num_segments=n)
    return s / jnp.maximum(cnt, 1).reshape((-1,) + (1,) * (x.ndim - 1))
