"""JAX side of the batch contract (``zoo.graphs.batch``) and the array operations model math needs
(the list and their meaning: ``zoo.backend``; ``zoo/backend/torch.py`` mirrors this file)."""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from zoo.graphs.batch import field_of

NAME = "jax"
_SOFTPLUS_THRESHOLD = 20.0  # torch's F.softplus returns x itself above 20


def to_jax(batch: Mapping[str, np.ndarray], dtype=jnp.float32) -> dict[str, jax.Array]:
    """A ``Batch`` as jax arrays: index and count arrays int32, masks bool, the rest ``dtype``."""
    out = {}
    for k, v in batch.items():
        kind = field_of(k).kind
        out[k] = jnp.asarray(np.asarray(v), dtype=jnp.int32 if kind == "int" else bool if kind == "bool" else dtype)
    return out


# ------------------------------------------------------------------------------ array operations
exp, log1p, sin, tanh, sqrt, einsum = jnp.exp, jnp.log1p, jnp.sin, jnp.tanh, jnp.sqrt, jnp.einsum
zeros_like, ones_like, maximum, where = jnp.zeros_like, jnp.ones_like, jnp.maximum, jnp.where
sigmoid, silu, rsqrt, stop_gradient = jax.nn.sigmoid, jax.nn.silu, jax.lax.rsqrt, jax.lax.stop_gradient


def softplus(x: jax.Array) -> jax.Array:
    """torch's softplus (beta 1, threshold 20) exactly: linear above the threshold, also in the gradient."""
    return jnp.where(x > _SOFTPLUS_THRESHOLD, x, jnp.log1p(jnp.exp(jnp.minimum(x, _SOFTPLUS_THRESHOLD))))


def concat(xs: Sequence[jax.Array], axis: int = 0) -> jax.Array:
    return jnp.concatenate(list(xs), axis=axis)


def split(x: jax.Array, sizes: Sequence[int], axis: int = 0) -> list[jax.Array]:
    """Pieces of the given sizes along ``axis`` (sizes, not cut points, in both backends)."""
    return jnp.split(x, np.cumsum(list(sizes))[:-1].tolist(), axis=axis)


def log_softmax(x: jax.Array, axis: int = -1) -> jax.Array:
    return jax.nn.log_softmax(x, axis=axis)


def norm(x: jax.Array, axis: int = -1) -> jax.Array:
    return jnp.linalg.norm(x, axis=axis)


def const(array: np.ndarray, like: jax.Array) -> jax.Array:
    """A numpy constant in ``like``'s dtype (floats); under ``jit`` it is baked into the compiled step."""
    arr = np.asarray(array)
    return jnp.asarray(arr, dtype=like.dtype if arr.dtype.kind == "f" else None)


def add_at(x: jax.Array, index: jax.Array, values: jax.Array, axis: int = 0) -> jax.Array:
    """x with ``values`` added at ``index`` along ``axis`` (out of place; repeated indices accumulate)."""
    where_ = (slice(None),) * (axis % x.ndim) + (index,)
    return x.at[where_].add(values)


def segment_sum(x: jax.Array, index: jax.Array, n: int) -> jax.Array:
    return jax.ops.segment_sum(x, index, num_segments=n)


def segment_mean(x: jax.Array, index: jax.Array, n: int) -> jax.Array:
    s = jax.ops.segment_sum(x, index, num_segments=n)
    cnt = jax.ops.segment_sum(jnp.ones(index.shape[0], x.dtype), index, num_segments=n)
    return s / jnp.maximum(cnt, 1).reshape((-1,) + (1,) * (x.ndim - 1))


def astype(x: jax.Array, dtype) -> jax.Array:
    """The array API's ``astype``: ``x`` in ``dtype`` (e.g. a bool mask as 0/1 weights in a float dtype)."""
    return x.astype(dtype)


def take(x: jax.Array, index: jax.Array, axis: int = 0) -> jax.Array:
    """The entries of ``x`` at ``index`` along ``axis`` (a row gather), as ``x[index]`` for axis 0."""
    return x[(slice(None),) * (axis % x.ndim) + (index,)]


def linear(x: jax.Array, weight: jax.Array, bias: jax.Array | None = None) -> jax.Array:
    """torch's ``Linear`` as a function: x W^T + b, W of shape (out, in) (XLA fuses the transpose)."""
    y = x @ weight.T
    return y if bias is None else y + bias
