"""JAX (e3nn-jax + flax.linen) periodic tensor field network; the same function as ``zoo/models/tfn/torch.py``.

Same plan (``irreps.network_plan``), same operations in the same order, same parameters under the same
names: ``params/layers_0/lin1/weight`` is torch's ``layers.0.lin1.weight``. e3nn-jax is used with the
settings that reproduce e3nn torch exactly: ``FunctionalLinear`` / legacy ``FunctionalTensorProduct`` with
``irrep_normalization="component"``, ``path_normalization="element"`` and ``gradient_normalization="path"``
(N(0,1) weights, path weight applied in the forward pass, which is e3nn torch's only mode).
``from_torch_state_dict`` / ``to_torch_state_dict`` convert the weights, bit for bit.
"""
from __future__ import annotations

import math
import re
from functools import lru_cache

import e3nn_jax as ej
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from e3nn_jax.legacy import FunctionalTensorProduct

from zoo.backend.jax import segment_mean, segment_sum
from zoo.tensors import cartesian_basis

from . import irreps as _ir
from .config import N_SPECIES, TFNConfig, state_layout

_normal = nn.initializers.normal(stddev=1.0)


def _ej(irreps) -> ej.Irreps:
    # Built from our string, never sorted/simplified, so the order matches the torch model's.
    return ej.Irreps(_ir.format_irreps(irreps))


@lru_cache(maxsize=None)
def _functional_linear(irreps_in: str, irreps_out: str) -> ej.FunctionalLinear:
    return ej.FunctionalLinear(_ej(irreps_in), _ej(irreps_out), path_normalization="element", gradient_normalization="path")


@lru_cache(maxsize=None)
def _functional_tp(conv: _ir.ConvPlan) -> FunctionalTensorProduct:
    return FunctionalTensorProduct(
        _ej(conv.irreps_in),
        _ej(conv.irreps_sh),
        _ej(conv.irreps_mid),
        [tuple(i) for i in conv.instructions],
        irrep_normalization="component",
        path_normalization="element",
        gradient_normalization="path",
    )


@lru_cache(maxsize=None)
def _fused_tables(conv: _ir.ConvPlan):
    """(chunks, C (d_sh, Σ d1*K) float64 for all chunks, per-chunk path expansion matrices)."""
    cg = lambda l1, l2, l3: np.asarray(ej.clebsch_gordan(l1, l2, l3), dtype=np.float64)  # noqa: E731
    chunks = _ir.fused_chunks(conv)
    Cs, Xs = [], []
    for ch in chunks:
        C, pidx = ch.table(conv.irreps_sh, cg)
        Cs.append(C.reshape(C.shape[0], -1))
        X = np.zeros((len(ch.paths), ch.K))
        X[pidx, np.arange(ch.K)] = 1.0
        Xs.append(X)
    return chunks, np.concatenate(Cs, axis=1), tuple(Xs)


def fused_conv(conv: _ir.ConvPlan, h, sh, w, senders, receivers) -> jax.Array:
    """Σ over incoming edges of the "uvu" tensor product, as ``torch.FusedTP``: ``w`` and the result in the
    fused column layouts (``irreps.fused_weight_permutation`` / ``fused_mid_permutation``)."""
    E, N = sh.shape[0], h.shape[0]
    chunks, C, Xs = _fused_tables(conv)
    in_sl = _ir.irreps_slices(conv.irreps_in)
    T_all = sh @ jnp.asarray(C, dtype=h.dtype)
    agg, t0 = [], 0
    for ch, X in zip(chunks, Xs):
        d1, K, P = 2 * ch.l_in + 1, ch.K, len(ch.paths)
        X = jnp.asarray(X, dtype=h.dtype)
        x = h[:, in_sl[ch.i_in]][senders]
        T = T_all[:, t0 : t0 + d1 * K]
        t0 += d1 * K
        wi = w[:, ch.w_start : ch.w_start + ch.mul * P].reshape(E, ch.mul, P)
        if d1 == 1:
            o = ((wi * x[:, :, None]) @ X) * T[:, None, :]
        else:
            o = jnp.einsum("eua,eak->euk", x.reshape(E, ch.mul, d1), T.reshape(E, d1, K)) * (wi @ X)
        agg.append(segment_sum(o.reshape(E, -1), receivers, N))
    return jnp.concatenate(agg, axis=1)


class Embedding(nn.Module):
    num: int
    features: int

    @nn.compact
    def __call__(self, z: jax.Array) -> jax.Array:
        w = self.param("weight", _normal, (self.num, self.features), jnp.float32)
        return w[z]


class Linear(nn.Module):
    """e3nn's ``o3.Linear`` (flat weight vector, same layout and path weights as e3nn-jax's ``FunctionalLinear``).

    Applied as ONE dense matmul with the block matrix Σ_paths w_path ⊗ 1_(2l+1), assembled from the
    weights each step, instead of one small product per path on slices of the input: the backward of
    slicing is a chain of pads that XLA (CPU) fused into the per-edge gathers, recomputing it for every
    edge; a dense product has a plain matmul as its backward. The extra multiply-adds by zero are cheap
    at these widths (per-atom features, a few hundred wide).
    """

    irreps_in: str
    irreps_out: str
    # the input arrives permuted (e3nn column c at position input_columns[c]; the fused convolution's
    # layout): the rows of the assembled matrix are permuted instead, a few hundred numbers
    input_columns: tuple[int, ...] | None = None

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        lin = _functional_linear(self.irreps_in, self.irreps_out)
        w = self.param("weight", _normal, (int(lin.num_weights),), jnp.float32).astype(x.dtype)
        sl_in, sl_out = _ir.irreps_slices(self.irreps_in), _ir.irreps_slices(self.irreps_out)
        W = jnp.zeros((_ir.irreps_dim(self.irreps_in), _ir.irreps_dim(self.irreps_out)), x.dtype)
        for ins, wi in zip(lin.instructions, lin.split_weights(w)):
            d = lin.irreps_in[ins.i_in].ir.dim
            block = ins.path_weight * jnp.einsum("uw,mn->umwn", wi, jnp.eye(d, dtype=x.dtype)).reshape(wi.shape[0] * d, wi.shape[1] * d)
            W = W.at[sl_in[ins.i_in], sl_out[ins.i_out]].add(block)
        if self.input_columns is not None:
            W = jnp.zeros_like(W).at[np.asarray(self.input_columns)].set(W)
        return x @ W


class RadialMLP(nn.Module):
    sizes: tuple[int, ...]
    out_permutation: tuple[int, ...] | None = None  # outputs in the fused layout: permute the last weight's columns

    @nn.compact
    def __call__(self, h: jax.Array) -> jax.Array:
        n = len(self.sizes) - 1
        c = _ir.second_moment_scale("silu")
        for k in range(n):
            w = self.param(f"w{k}", _normal, (self.sizes[k], self.sizes[k + 1]), jnp.float32).astype(h.dtype)
            if k == n - 1 and self.out_permutation is not None:
                w = w[:, np.asarray(self.out_permutation)]
            h = (h @ w) * (1.0 / math.sqrt(self.sizes[k]))
            if k < n - 1:
                h = c * jax.nn.silu(h)
        return h


def gate(plan: _ir.GatePlan, y: jax.Array) -> jax.Array:
    n = y.shape[0]
    c_silu, c_tanh, c_sig = (_ir.second_moment_scale(a) for a in ("silu", "tanh", "sigmoid"))
    outs, start = [], 0
    for mul, _, p in plan.scalars:
        s = y[:, start : start + mul]
        outs.append(c_silu * jax.nn.silu(s) if p == 1 else c_tanh * jnp.tanh(s))
        start += mul
    if plan.gates:
        k = plan.gates[0][0]
        g = c_sig * jax.nn.sigmoid(y[:, start : start + k])
        start += k
        off = 0
        for mul, l, _ in plan.gated:
            d = 2 * l + 1
            v = y[:, start : start + mul * d].reshape(n, mul, d)
            outs.append((v * g[:, off : off + mul, None]).reshape(n, mul * d))
            start += mul * d
            off += mul
    return jnp.concatenate(outs, axis=1)


class Interaction(nn.Module):
    plan: _ir.LayerPlan
    config: TFNConfig

    def setup(self) -> None:
        conv = self.plan.conv
        f = _ir.format_irreps
        self.lin1 = Linear(f(conv.irreps_in), f(conv.irreps_in))
        cfg = self.config
        fused = cfg.fused_kernel
        sizes = (cfg.n_basis,) + (cfg.radial_hidden,) * cfg.radial_layers + (conv.weight_numel,)
        wperm = tuple(int(i) for i in _ir.fused_weight_permutation(conv)) if fused else None
        mperm = tuple(int(i) for i in _ir.fused_mid_permutation(conv)) if fused else None
        self.radial = RadialMLP(sizes, wperm)
        self.lin2 = Linear(f(conv.irreps_mid), f(conv.irreps_out), mperm)
        self.sc = Linear(f(conv.irreps_in), f(conv.irreps_out))

    def __call__(self, x, edge_attr, edge_basis, senders, receivers) -> jax.Array:
        conv = self.plan.conv
        edge_attr = edge_attr[:, : _ir.irreps_dim(conv.irreps_sh)]  # harmonics are ordered by l: a prefix
        s = self.sc(x)
        h = self.lin1(x)
        w = self.radial(edge_basis)
        if self.config.fused_kernel:
            a = fused_conv(conv, h, edge_attr, w, senders, receivers)
        else:
            tp = _functional_tp(conv)
            ir_in, ir_sh = tp.irreps_in1, tp.irreps_in2
            m = jax.vmap(lambda wi, a, b: tp.left_right(wi, ej.IrrepsArray(ir_in, a), ej.IrrepsArray(ir_sh, b)).array)(w, h[senders], edge_attr)
            a = segment_sum(m, receivers, x.shape[0])
        a = a * self.config.message_scale
        y = _ir.MIX_SC * s + _ir.MIX_CONV * self.lin2(a)
        if self.plan.gate is not None:
            y = gate(self.plan.gate, y)
        if self.plan.residual_src:
            src = np.asarray(self.plan.residual_src)
            dst = np.asarray(self.plan.residual_dst)
            y = y.at[:, dst].add(x[:, src])
        return y


class Model(nn.Module):
    """``Model(config).apply(variables, batch, train=...) -> (G,)`` or ``(G, 3, ..., 3)``."""

    config: TFNConfig

    def setup(self) -> None:
        cfg = self.config
        plan = cfg.plan()
        self.embedding = Embedding(N_SPECIES, cfg.embed_dim)
        self.layers = [Interaction(lp, cfg) for lp in plan.layers]
        self.readout = Interaction(plan.readout, cfg)

    def edge_vectors(self, batch) -> jax.Array:
        pos, lat = batch["positions"], batch["lattice"]
        s, r, eg = batch["senders"], batch["receivers"], batch["edge_graph"]
        vec = pos[s] - pos[r] + (batch["shifts"].astype(pos.dtype)[:, :, None] * lat[eg]).sum(axis=1)
        if "edge_mask" in batch:
            # padding edges (zero vectors) get a unit length: no NaN in r̂, the basis or their gradients
            unit = jnp.zeros_like(vec).at[:, 0].set(1.0)
            vec = jnp.where(batch["edge_mask"][:, None], vec, unit)
        return vec

    def edge_features(self, vec: jax.Array) -> tuple[jax.Array, jax.Array]:
        cfg = self.config
        d = jnp.linalg.norm(vec, axis=-1)
        sh = ej.spherical_harmonics(_ej(cfg.plan().irreps_sh), vec, normalize=True, normalization="component").array
        x = d / cfg.radius
        c1, c2, c3 = _ir.envelope_coefficients(cfg.envelope_p)
        p = cfg.envelope_p
        env = 1.0 - c1 * x**p + c2 * x ** (p + 1) - c3 * x ** (p + 2)
        env = jnp.where(x < 1.0, env, jnp.zeros_like(env))
        if cfg.radial_basis == "bessel":
            freqs = jnp.arange(1, cfg.n_basis + 1, dtype=d.dtype) * math.pi
            basis = jnp.sin(freqs * x[:, None]) / x[:, None]
        else:
            mu = jnp.linspace(0.0, cfg.radius, cfg.n_basis, dtype=d.dtype)
            sigma = cfg.radius / (cfg.n_basis - 1)
            basis = jnp.exp(-(((d[:, None] - mu) / sigma) ** 2)) * (math.sqrt(cfg.n_basis) / 1.12)
        return sh * env[:, None], basis

    def node_outputs(self, batch) -> jax.Array:
        vec = self.edge_vectors(batch)
        edge_attr, basis = self.edge_features(vec)
        s, r = batch["senders"], batch["receivers"]
        x = self.embedding(batch["numbers"]).astype(vec.dtype)
        for layer in self.layers:
            x = layer(x, edge_attr, basis, s, r)
        return self.readout(x, edge_attr, basis, s, r)

    def graph_irreps(self, batch) -> jax.Array:
        out = self.node_outputs(batch)
        G = batch["lattice"].shape[0]
        pool = segment_mean if self.config.pooling == "mean" else segment_sum
        return pool(out, batch["node_graph"], G)

    def __call__(self, batch, train: bool = False) -> jax.Array:
        del train  # no dropout / batch norm
        cfg = self.config
        y = self.graph_irreps(batch)
        if cfg.target_kind == "scalar":
            return y[:, 0] * cfg.output_scale + cfg.output_shift
        Q = jnp.asarray(cartesian_basis(cfg.target_formula).reshape(y.shape[1], -1), dtype=y.dtype)
        return (y @ Q).reshape((y.shape[0],) + cfg.out_shape) * cfg.output_scale


# ------------------------------------------------------------------------------------------ weights
_LIST_RE = re.compile(r"^(.*)_(\d+)$")


def _torch_name_to_path(name: str) -> tuple[str, ...]:
    """"layers.0.radial.w1" → ("layers_0", "radial", "w1") (flax names list items ``<attr>_<index>``)."""
    parts = name.split(".")
    out: list[str] = []
    for p in parts:
        if p.isdigit() and out:
            out[-1] = f"{out[-1]}_{p}"
        else:
            out.append(p)
    return tuple(out)


def _path_to_torch_name(path: tuple[str, ...]) -> str:
    out = []
    for p in path:
        m = _LIST_RE.match(p)
        out.append(f"{m.group(1)}.{m.group(2)}" if m else p)
    return ".".join(out)


def from_torch_state_dict(state: dict, config: TFNConfig) -> dict:
    """torch ``state_dict`` (numpy or torch arrays) → flax ``{"params": ...}``; values are copied exactly."""
    from zoo.core.weights import check_state_matches

    layout = state_layout(config)
    state = {k: np.asarray(v.detach().cpu().numpy() if hasattr(v, "detach") else v) for k, v in state.items()}
    check_state_matches({k: np.broadcast_to(np.float32(0), s) for k, s in layout.items()}, state, what="TFN weights")
    params: dict = {}
    for name in layout:
        node = params
        path = _torch_name_to_path(name)
        for p in path[:-1]:
            node = node.setdefault(p, {})
        node[path[-1]] = jnp.asarray(state[name])
    return {"params": params}


def to_torch_state_dict(variables, config: TFNConfig) -> dict[str, np.ndarray]:
    """flax variables (or a params / gradient tree of the same structure) → torch ``state_dict`` names, in order."""
    params = variables["params"] if "params" in variables else variables
    flat = {}
    for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]:
        keys = tuple(getattr(k, "key", getattr(k, "name", None)) for k in path)
        flat[_path_to_torch_name(keys)] = np.asarray(leaf)
    layout = state_layout(config)
    from zoo.core.weights import check_state_matches

    check_state_matches({k: np.broadcast_to(np.float32(0), s) for k, s in layout.items()}, flat, what="TFN JAX parameters")
    return {k: flat[k] for k in layout}
