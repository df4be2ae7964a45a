"""CGCNN in Flax linen, a line-by-line mirror of ``zoo.models.cgcnn.torch`` (see its docstring).

Module and parameter names follow the torch ``state_dict`` (the weight format):

==============================  =====================================================
torch ``state_dict``            flax variables
==============================  =====================================================
``convs.0.fc_full.weight``      ``params/convs_0/fc_full/kernel`` (transposed)
``convs.0.fc_full.bias``        ``params/convs_0/fc_full/bias``
``convs.0.bn1.weight / bias``   ``params/convs_0/bn1/scale / bias``
``convs.0.bn1.running_mean``    ``batch_stats/convs_0/bn1/mean``
``convs.0.bn1.running_var``     ``batch_stats/convs_0/bn1/var``
``convs.0.bn1.num_batches_...`` ``batch_stats/convs_0/bn1/num_batches_tracked``
``atom_embedding.weight``       ``params/atom_embedding/embedding``
==============================  =====================================================

Batch norm is ``MaskedBatchNorm`` below rather than ``flax.linen.BatchNorm`` because torch and flax
disagree on the running variance (torch stores the unbiased batch variance, flax the biased one) and on
the meaning of ``momentum``; this one follows torch exactly, so running statistics stay identical
after training in either backend, and it takes statistics over real rows only (padded batches).

Jit-friendly: every size (atoms, edges, graphs) comes from an array shape, so a padded batch compiles
once per bucket. Train mode: ``apply(variables, batch, train=True, mutable=["batch_stats"])`` (and
``rngs={"dropout": key}`` for classification).
"""
from __future__ import annotations

import functools
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from zoo.backend.jax import segment_sum

from .config import TABLE_ROWS, CGCNNConfig, check_state, state_layout

BN_MOMENTUM = 0.1  # torch convention: running <- (1 - 0.1) running + 0.1 batch (flax's momentum would be 0.9)
BN_EPS = 1e-5
_SOFTPLUS_THRESHOLD = 20.0  # torch's F.softplus returns x itself above 20


def softplus(x: jax.Array) -> jax.Array:
    """torch's softplus (beta 1, threshold 20) exactly: linear above the threshold, also in the gradient."""
    return jnp.where(x > _SOFTPLUS_THRESHOLD, x, jnp.log1p(jnp.exp(jnp.minimum(x, _SOFTPLUS_THRESHOLD))))


@functools.lru_cache(maxsize=4)
def _atom_table(config: CGCNNConfig) -> np.ndarray:
    table = config.atom_table()
    table.setflags(write=False)
    return table


def _torch_linear_init(fan_in: int):
    """torch.nn.Linear's default init, U(-1/sqrt(fan_in), 1/sqrt(fan_in)), for kernel and bias alike."""
    bound = 1.0 / np.sqrt(fan_in)

    def init(key, shape, dtype=jnp.float32):
        return jax.random.uniform(key, shape, dtype, -bound, bound)

    return init


def Linear(n_in: int, n_out: int, name: str) -> nn.Dense:
    init = _torch_linear_init(n_in)
    return nn.Dense(n_out, kernel_init=init, bias_init=init, name=name)


class MaskedBatchNorm(nn.Module):
    """torch's ``BatchNorm1d`` (affine, running stats) with statistics over the rows where ``mask`` is True."""

    features: int
    momentum: float = BN_MOMENTUM
    epsilon: float = BN_EPS

    @nn.compact
    def __call__(self, x: jax.Array, mask: jax.Array | None, train: bool) -> jax.Array:
        scale = self.param("scale", nn.initializers.ones, (self.features,))
        bias = self.param("bias", nn.initializers.zeros, (self.features,))
        ra_mean = self.variable("batch_stats", "mean", lambda: jnp.zeros((self.features,), jnp.float32))
        ra_var = self.variable("batch_stats", "var", lambda: jnp.ones((self.features,), jnp.float32))
        tracked = self.variable("batch_stats", "num_batches_tracked", lambda: jnp.zeros((), jnp.int32))
        if not train:
            inv = jax.lax.rsqrt(ra_var.value.astype(x.dtype) + self.epsilon)
            return (x - ra_mean.value.astype(x.dtype)) * inv * scale + bias
        m = (jnp.ones(x.shape[:1], x.dtype) if mask is None else mask.astype(x.dtype))[:, None]
        n = m.sum()
        mean = (x * m).sum(0) / n
        centred = x - mean
        var = (centred * centred * m).sum(0) / n  # biased, used to normalise
        if not self.is_initializing():
            # As torch: the running variance takes the unbiased batch variance, n / (n - 1).
            unbiased = jax.lax.stop_gradient(var * (n / jnp.maximum(n - 1, 1)))
            mom = self.momentum
            ra_mean.value = ((1 - mom) * ra_mean.value + mom * jax.lax.stop_gradient(mean)).astype(ra_mean.value.dtype)
            ra_var.value = ((1 - mom) * ra_var.value + mom * unbiased).astype(ra_var.value.dtype)
            tracked.value = tracked.value + 1
        return centred * jax.lax.rsqrt(var + self.epsilon) * scale + bias


class EdgeLinear(nn.Module):
    """torch's ``fc_full`` Linear(2A + M -> 2A) applied to [v_i, v_j, u_ij] for every edge, computed as
    v W_i (per atom) + v W_j (per atom) + u W_u + b: the same function and parameters (``kernel`` rows =
    [centre i | neighbour j | Gaussian of r_ij]) with the atom blocks multiplied once per atom, not per edge."""

    atom_fea_len: int
    nbr_fea_len: int

    @nn.compact
    def __call__(self, v, nbr_fea, senders, receivers):
        A, n_in = self.atom_fea_len, 2 * self.atom_fea_len + self.nbr_fea_len
        init = _torch_linear_init(n_in)
        kernel = self.param("kernel", init, (n_in, 2 * A))  # float32 like nn.Dense's default param_dtype
        bias = self.param("bias", init, (2 * A,))
        node = v @ jnp.concatenate([kernel[:A], kernel[A : 2 * A]], axis=1)  # (N, 4A)
        return node[:, : 2 * A][receivers] + node[:, 2 * A :][senders] + nbr_fea @ kernel[2 * A :] + bias


class ConvLayer(nn.Module):
    atom_fea_len: int
    nbr_fea_len: int

    @nn.compact
    def __call__(self, v, nbr_fea, senders, receivers, node_mask, edge_mask, train: bool):
        A = self.atom_fea_len
        z = EdgeLinear(A, self.nbr_fea_len, name="fc_full")(v, nbr_fea, senders, receivers)
        z = MaskedBatchNorm(2 * A, name="bn1")(z, edge_mask, train)
        filt, core = jnp.split(z, 2, axis=1)
        summed = segment_sum(jax.nn.sigmoid(filt) * softplus(core), receivers, v.shape[0])
        return softplus(v + MaskedBatchNorm(A, name="bn2")(summed, node_mask, train))


class CGCNN(nn.Module):
    """``CGCNN(config).apply(variables, batch, train=...)`` -> (G,) or (G, 2) log-probabilities."""

    config: CGCNNConfig = CGCNNConfig()

    @nn.compact
    def __call__(self, batch: dict[str, jax.Array], train: bool = False) -> jax.Array:
        from zoo.nn import gaussian_expansion

        cfg = self.config
        A, M, F0 = cfg.atom_fea_len, cfg.nbr_fea_len, cfg.orig_atom_fea_len
        distances = batch["distances"]
        dtype = distances.dtype
        numbers = batch["numbers"]
        if cfg.atom_features != "embedding":
            # A constant of the traced function (101 x 92), not a weight.
            x = jnp.asarray(_atom_table(cfg), dtype=dtype)[numbers]
        else:
            x = nn.Embed(TABLE_ROWS, F0, embedding_init=nn.initializers.normal(1.0), name="atom_embedding")(numbers)
        v = Linear(F0, A, name="embedding")(x.astype(dtype))
        nbr_fea = gaussian_expansion(distances, dmin=cfg.dmin, dmax=cfg.dmax, step=cfg.step, var=cfg.var, xp=jnp)
        senders, receivers = batch["senders"], batch["receivers"]
        node_mask, edge_mask = batch.get("node_mask"), batch.get("edge_mask")
        for k in range(cfg.n_conv):
            v = ConvLayer(A, M, name=f"convs_{k}")(v, nbr_fea, senders, receivers, node_mask, edge_mask, train)

        n_graphs = batch["n_nodes"].shape[0]
        w = node_mask.astype(v.dtype) if node_mask is not None else jnp.ones(v.shape[:1], v.dtype)
        total = segment_sum(v * w[:, None], batch["node_graph"], n_graphs)
        count = jnp.maximum(segment_sum(w, batch["node_graph"], n_graphs), 1)
        crys = total / count[:, None]

        h = softplus(Linear(A, cfg.h_fea_len, name="conv_to_fc")(softplus(crys)))
        if cfg.classification:
            h = nn.Dropout(cfg.dropout, deterministic=not train, name="dropout")(h)
        for k in range(cfg.n_h - 1):
            h = softplus(Linear(cfg.h_fea_len, cfg.h_fea_len, name=f"fcs_{k}")(h))
        out = Linear(cfg.h_fea_len, cfg.n_outputs, name="fc_out")(h)
        if cfg.classification:
            return jax.nn.log_softmax(out, axis=-1)
        return out[:, 0]


# --------------------------------------------------------------------------- torch <-> flax weights
_FLAX_LEAF = {
    "linear.weight": ("params", "kernel"),
    "linear.bias": ("params", "bias"),
    "bn.weight": ("params", "scale"),
    "bn.bias": ("params", "bias"),
    "bn.running_mean": ("batch_stats", "mean"),
    "bn.running_var": ("batch_stats", "var"),
    "bn.num_batches_tracked": ("batch_stats", "num_batches_tracked"),
    "embedding.weight": ("params", "embedding"),
}


def _flax_location(name: str, kind: str) -> tuple[str, tuple[str, ...]]:
    """``convs.0.bn1.running_var`` -> ("batch_stats", ("convs_0", "bn1", "var"))."""
    parts: list[str] = []
    for p in name.split(".")[:-1]:
        if p.isdigit():  # ModuleList index: torch "convs.0" is flax's auto-name "convs_0"
            parts[-1] = f"{parts[-1]}_{p}"
        else:
            parts.append(p)
    collection, leaf = _FLAX_LEAF[kind]
    return collection, (*parts, leaf)


def from_torch_state_dict(state: dict[str, Any], config: CGCNNConfig) -> dict[str, Any]:
    """Flax variables ``{"params", "batch_stats"}`` from a torch-named state (numpy or torch arrays).

    Float arrays keep their dtype (float64 weights give float64 variables when x64 is enabled).
    """
    layout = state_layout(config)
    state = {k: np.asarray(v.detach().cpu().numpy() if hasattr(v, "detach") else v) for k, v in state.items()}
    check_state(config, state)
    variables: dict[str, Any] = {"params": {}, "batch_stats": {}}
    for name, (kind, _) in layout.items():
        collection, path = _flax_location(name, kind)
        value = state[name]
        if kind == "linear.weight":
            value = value.T
        if kind == "bn.num_batches_tracked":
            value = jnp.asarray(value, dtype=jnp.int32)  # a count; int64 in torch, int32 in jax without x64
        else:
            value = jnp.asarray(value)
        node = variables[collection]
        for p in path[:-1]:
            node = node.setdefault(p, {})
        node[path[-1]] = value
    return variables


def to_torch_state_dict(variables: dict[str, Any], config: CGCNNConfig) -> dict[str, np.ndarray]:
    """The torch ``state_dict`` (numpy arrays, torch names and layouts) of flax ``variables``."""
    out: dict[str, np.ndarray] = {}
    for name, (kind, shape) in state_layout(config).items():
        collection, path = _flax_location(name, kind)
        node = variables.get(collection, {})
        try:
            for p in path:
                node = node[p]
        except (KeyError, TypeError):
            raise KeyError(f"flax variables lack {collection}/{'/'.join(path)} (torch {name}); built from another config?") from None
        value = np.asarray(node)
        if kind == "linear.weight":
            value = value.T
        if kind == "bn.num_batches_tracked":
            value = value.astype(np.int64)
        if value.shape != shape:
            raise ValueError(f"{collection}/{'/'.join(path)} has shape {value.shape} but torch {name} needs {shape}")
        out[name] = np.array(value, order="C", copy=True)  # not ascontiguousarray: it turns 0-d into (1,)
    return out
