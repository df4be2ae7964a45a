"""JAX side of the batch contract (``zoo.graphs.batch``) and the array operations model math needs
(the list and their meaning: ``zoo.backend``; ``zoo/backend/torch.py`` mirrors this file)."""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import flax.linen as flax_nn
import jax
import jax.numpy as jnp
import numpy as np

from zoo.graphs.batch import field_of

from .params import flax_path_to_torch_name, torch_name_to_flax_path

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
minimum, log = jnp.minimum, jnp.log


def value_and_grad(fn, x: jax.Array, *args) -> tuple[float, np.ndarray]:
    """(fn(x, *args), d fn / d x as float64 numpy) for a scalar-valued ``fn`` (mirrors the torch one)."""
    value, grad = jax.value_and_grad(fn)(x, *args)
    return float(value), np.asarray(grad, dtype=np.float64)


def cumsum(x: jax.Array, axis: int = 0) -> jax.Array:
    return jnp.cumsum(x, axis=axis)


def solve(a: jax.Array, b: jax.Array) -> jax.Array:
    """x with a @ x = b, batched over leading axes (LU with partial pivoting, as torch.linalg.solve)."""
    return jnp.linalg.solve(a, b)


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


def segment_max(x: jax.Array, index: jax.Array, n: int) -> jax.Array:
    """Largest entry of each segment, per column; 0 for an empty segment (jax alone gives -inf there)."""
    out = jax.ops.segment_max(x, index, num_segments=n)
    return jnp.where(jnp.isneginf(out), jnp.zeros_like(out), out)


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


def spherical_harmonics(lmax: int, vectors: jax.Array) -> jax.Array:
    """e3nn-jax's real spherical harmonics Y^l(r̂), l = 0..lmax concatenated (E, (lmax+1)^2), of
    unnormalised vectors (E, 3), ``normalization="component"``: the same basis as e3nn's (tested).
    Imported here, not at the top: only the equivariant families need e3nn-jax."""
    import e3nn_jax

    irreps = e3nn_jax.Irreps("+".join(f"1x{l}{'e' if l % 2 == 0 else 'o'}" for l in range(lmax + 1)))  # Y^l of a polar vector
    return e3nn_jax.spherical_harmonics(irreps, vectors, normalize=True, normalization="component").array


def _normal(key, shape, dtype=jnp.float32):
    return jax.random.normal(key, shape, dtype)


class Parameters(flax_nn.Module):
    """Named parameters and nothing else, N(0, 1) in float32 (the weight format), returned in the
    activations' ``dtype``: the flax side of a family whose math takes parameters as arrays by name
    (mirrors ``zoo.backend.torch.Parameters``)."""

    shapes: tuple[tuple[str, tuple[int, ...]], ...]
    zeros: bool = False  # for a learned offset that must start neutral (as torch's)

    @flax_nn.compact
    def __call__(self, dtype) -> dict[str, jax.Array]:
        init = flax_nn.initializers.zeros if self.zeros else _normal
        # jnp.asarray: weights loaded by zoo.backend.params are numpy arrays until something traces them
        return {name: jnp.asarray(self.param(name, init, shape, jnp.float32), dtype) for name, shape in self.shapes}


def declare_parameters(module: flax_nn.Module, layout: tuple[tuple[str, tuple[int, ...]], ...], dtype) -> dict[str, jax.Array]:
    """Inside a ``@compact`` method of ``module``: declare every parameter of a weight layout ``((torch
    name, shape), ...)`` at the flax path ``zoo.backend.params`` maps the name to (``oh/layers_0/lin1/
    weight``: nested submodules, "params" collection), N(0, 1) in float32 (the weight format), and return
    them by torch name in ``dtype``. Mirrors ``zoo.backend.torch.declare_parameters``."""
    leaves, children = [], {}
    for name, shape in layout:
        path = torch_name_to_flax_path(name)
        if len(path) == 1:
            leaves.append((path[0], shape))
        else:
            children.setdefault(path[0], []).append((flax_path_to_torch_name(path[1:]), shape))
    # jnp.asarray: weights loaded by zoo.backend.params are numpy arrays until something traces them
    out = {name: jnp.asarray(module.param(name, _normal, shape, jnp.float32), dtype) for name, shape in leaves}
    for child, items in children.items():
        prefix = flax_path_to_torch_name((child, "_"))[:-1]  # "layers_0" -> "layers.0."
        out.update({prefix + k: v for k, v in _ParameterGroup(tuple(items), name=child)(dtype).items()})
    return out


class _ParameterGroup(flax_nn.Module):
    layout: tuple[tuple[str, tuple[int, ...]], ...]

    @flax_nn.compact
    def __call__(self, dtype) -> dict[str, jax.Array]:
        return declare_parameters(self, self.layout, dtype)


def switch(index, branches: Sequence):
    """``branches[index]()`` under ``jit`` too (``lax.switch``): every branch is compiled, only the chosen
    one runs. The branches take no argument (they close over what they need) and return arrays of one
    shape and dtype."""
    return jax.lax.switch(index, [lambda _, f=f: f() for f in branches], None)


def zeros(shape: Sequence[int], like: jax.Array) -> jax.Array:
    """Zeros of ``shape`` in ``like``'s dtype."""
    return jnp.zeros(tuple(shape), dtype=like.dtype)


def _holder(module: flax_nn.Module, torch_name: str):
    """Where torch's ``torch_name`` lives in a linen module built with the torch attribute names:
    "convs.0.bn1.running_var" -> (module.convs[0].bn1, "running_var")."""
    *path, leaf = torch_name.split(".")
    for part in path:
        module = module[int(part)] if part.isdigit() else getattr(module, part)
    return module, leaf


def named_state(module: flax_nn.Module, names) -> dict[str, jax.Array]:
    """Inside ``__call__``: the module's arrays by torch ``state_dict`` name (parameters as they are,
    variables such as batch-norm statistics by value), for math written on torch names."""
    out = {}
    for name in names:
        value = getattr(*_holder(module, name))
        out[name] = value.value if isinstance(value, flax_nn.Variable) else value
    return out


def set_named_state(module: flax_nn.Module, updates: Mapping[str, jax.Array]) -> None:
    """Write updated variables (batch-norm statistics) back by torch name, keeping each variable's dtype
    (float32 statistics stay float32 under x64). Not while initialising: init returns fresh statistics."""
    if module.is_initializing():
        return
    for name, value in updates.items():
        variable = getattr(*_holder(module, name))
        variable.value = value.astype(variable.value.dtype)
