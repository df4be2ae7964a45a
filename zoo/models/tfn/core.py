"""The tensor field network written once: the kernels' constant tables (numpy) and the forward pass as
functions of arrays, for either backend.

Every function takes the backend ops module ``xp`` (``zoo.backend.torch`` or ``zoo.backend.jax``) and its
parameters as arrays, named as in the weight file (``config.layer_weight_shapes``). The adapters
(``torch.py``, ``jax.py``) only declare those parameters and pass in what only a library provides: the
real spherical harmonics, the Wigner-3j symbols the tables are built from, and the library's own tensor
product for the reference kernel ``tp_impl="e3nn"``.

Per layer (e3nn's gated point convolution, ``gate_points_2101.Convolution`` + ``Gate``)::

    s   = sc(x)                                        linear self-connection
    h   = lin1(x)
    m_e = TP_uvu(h[j], Y(r̂_ij) u(r_ij); w = MLP(B(r_ij)))  per edge e = (j → i), weights from the distance
    a_i = Σ_e m_e / avg_num_neighbors            (or its square root: config.message_norm)
    y   = gate(sin(π/8) s + cos(π/8) lin2(a)) (+ x on channels with identical irreps)

with Y the real spherical harmonics (``normalization="component"``), u a polynomial cutoff and B a
Bessel (or Gaussian) basis of the distance (``zoo.nn.radial``).
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from zoo.nn.radial import bessel_basis, gaussian_basis, polynomial_envelope
from zoo.tensors import cartesian_basis

from . import irreps as _ir
from .config import TFNConfig

Wigner3j = Callable[[int, int, int], Any]  # (l1, l2, l3) -> (2l1+1, 2l2+1, 2l3+1), e3nn's or e3nn-jax's table
# vectors (E, 3) -> (E, Σ 2l+1): Y^l for l in ``Network.sh_ls``, normalize=True, normalization="component"
SphericalHarmonics = Callable[[Any], Any]
LibraryTP = Callable[[Any, Any, Any], Any]  # (x of each edge's sender, Y, per-edge weights) -> messages


def _frozen(a: np.ndarray) -> np.ndarray:
    # Tables are built once per plan and shared by every model of that plan; ``xp.const`` keeps one
    # device copy per array object, so they must never change.
    a = np.ascontiguousarray(a)
    a.setflags(write=False)
    return a


# ------------------------------------------------------------------------------------------ constants
_ACTS = {
    "silu": lambda x: x / (1.0 + np.exp(-x)),
    "tanh": np.tanh,
    "sigmoid": lambda x: 1.0 / (1.0 + np.exp(-x)),
}


def second_moment_scale(act: str) -> float:
    """1/sqrt(E[f(z)^2]), z ~ N(0, 1): keeps unit second moment through the activation (e3nn's normalize2mom).

    Computed with 120-point Gauss–Hermite quadrature (exact to float64 for these smooth functions),
    not by Monte-Carlo as e3nn and e3nn-jax do, so both backends use the very same constant.
    """
    x, w = np.polynomial.hermite_e.hermegauss(120)
    m2 = float(np.sum(w * _ACTS[act](x) ** 2) / math.sqrt(2.0 * math.pi))
    return 1.0 / math.sqrt(m2)


# Module constants, not calls in the forward pass: torch.compile then sees plain floats.
C_SILU, C_TANH, C_SIGMOID = (second_moment_scale(act) for act in ("silu", "tanh", "sigmoid"))
MIX_SC = math.sin(math.pi / 8)  # self-connection / convolution mixing of gate_points_2101
MIX_CONV = math.cos(math.pi / 8)
_UNIT_X = _frozen(np.array([1.0, 0.0, 0.0]))


# ------------------------------------------------------------------------------- fused convolution
@dataclass(frozen=True)
class FusedChunk:
    """All paths of one input chunk of a "uvu" convolution, fused into two contractions.

    out[e, u, K] = w[e, u, path(K)] · Σ_a x[e, u, a] Σ_s Y[e, s] C[s, a, K], where C stacks the
    Wigner-3j blocks (path weight folded in) of every path of this chunk along K; the K blocks are the
    chunk's ``irreps_mid`` chunks, in order.
    """

    i_in: int
    mul: int
    l_in: int
    paths: tuple[tuple[int, int, int, int, float], ...]  # (instruction, j_sh, l_sh, l_out, path_weight)
    w_start: int  # offset of this chunk's per-edge weights in the flat weight vector

    @property
    def K(self) -> int:
        return sum(2 * l3 + 1 for _, _, _, l3, _ in self.paths)

    def table(self, irreps_sh: _ir.IrrepsLike, wigner_3j: Wigner3j) -> tuple[np.ndarray, np.ndarray]:
        """(C (d_sh, 2l_in+1, K) float64, path index of each K column)."""
        irreps_sh = _ir.parse_irreps(irreps_sh)
        sh_sl = _ir.irreps_slices(irreps_sh)
        C = np.zeros((_ir.irreps_dim(irreps_sh), 2 * self.l_in + 1, self.K))
        pidx, k = [], 0
        for q, (_, j, l2, l3, pw) in enumerate(self.paths):
            cg = np.asarray(wigner_3j(self.l_in, l2, l3), dtype=np.float64)  # (d1, d2, d3)
            C[sh_sl[j], :, k : k + 2 * l3 + 1] = pw * cg.transpose(1, 0, 2)
            pidx += [q] * (2 * l3 + 1)
            k += 2 * l3 + 1
        return C, np.asarray(pidx, dtype=np.int64)


def fused_chunks(conv: _ir.ConvPlan) -> tuple[FusedChunk, ...]:
    pws = conv.path_weights
    out, w_start, last_k = [], 0, -1
    for i, (mul, l1, _) in enumerate(conv.irreps_in):
        paths = []
        for n, (ii, j, k, mode, has_w) in enumerate(conv.instructions):
            if ii != i:
                continue
            if mode != "uvu" or not has_w or conv.irreps_sh[j][0] != 1:
                raise ValueError("the fused tensor product handles weighted 'uvu' paths with 1x harmonics only")
            if k != last_k + 1:
                raise ValueError("the fused tensor product needs irreps_mid in instruction order")
            last_k = k
            paths.append((n, j, conv.irreps_sh[j][1], conv.irreps_mid[k][1], pws[n]))
        if paths:
            out.append(FusedChunk(i, mul, l1, tuple(paths), w_start))
            w_start += mul * len(paths)
    return tuple(out)


def fused_mid_permutation(conv: _ir.ConvPlan) -> np.ndarray:
    """Columns of the fused "chunk layout" (per chunk: u-major, then the K path components) that give
    ``irreps_mid`` in e3nn's layout (per mid chunk: u-major, then its 2l+1 components): mid = chunk[:, perm]."""
    mid_sl = _ir.irreps_slices(conv.irreps_mid)
    perm = np.empty(_ir.irreps_dim(conv.irreps_mid), dtype=np.int64)
    c0 = 0
    for ch in fused_chunks(conv):
        k0 = 0
        for n, _, _, l3, _ in ch.paths:
            k = conv.instructions[n][2]
            d3 = 2 * l3 + 1
            for u in range(ch.mul):
                perm[mid_sl[k].start + u * d3 : mid_sl[k].start + (u + 1) * d3] = c0 + u * ch.K + k0 + np.arange(d3)
            k0 += d3
        c0 += ch.mul * ch.K
    return perm


def fused_weight_permutation(conv: _ir.ConvPlan) -> np.ndarray:
    """Columns of e3nn's per-edge weight vector (per path: mul_in channels) in the fused layout (per
    chunk: channel major, then its paths), ``w_fused = w[:, perm]``: a chunk's weights are then one
    (E·mul, P) matrix that a single product with the 0/1 path → component map expands."""
    perm = []
    for ch in fused_chunks(conv):
        P = len(ch.paths)
        perm += [ch.w_start + q * ch.mul + u for u in range(ch.mul) for q in range(P)]
    return np.asarray(perm, dtype=np.int64)


@dataclass(frozen=True, eq=False)
class FusedConv:
    """Constant tables of ``fused_conv`` for one ``ConvPlan``."""

    in_sizes: tuple[int, ...]  # columns of each input chunk (to split h)
    chunks: tuple[tuple[int, int, int, int, int], ...]  # (input chunk, mul, 2l_in+1, K, number of paths P)
    w_sizes: tuple[int, ...]  # per-edge weights of each chunk (mul·P), fused layout
    t_sizes: tuple[int, ...]  # columns of Y·C of each chunk ((2l_in+1)·K)
    C: np.ndarray  # (d_sh, Σ t_sizes): every chunk's Wigner table, so Y·C is one product
    X: tuple[np.ndarray, ...]  # per chunk (P, K) 0/1: a path's weight multiplies each of its components


def fused_conv_tables(conv: _ir.ConvPlan, wigner_3j: Wigner3j) -> FusedConv:
    chunks = fused_chunks(conv)
    Cs, Xs = [], []
    for ch in chunks:
        C, pidx = ch.table(conv.irreps_sh, wigner_3j)
        Cs.append(C.reshape(C.shape[0], -1))
        X = np.zeros((len(ch.paths), ch.K))
        X[pidx, np.arange(ch.K)] = 1.0
        Xs.append(_frozen(X))
    return FusedConv(
        in_sizes=tuple(mul * (2 * l + 1) for mul, l, _ in conv.irreps_in),
        chunks=tuple((ch.i_in, ch.mul, 2 * ch.l_in + 1, ch.K, len(ch.paths)) for ch in chunks),
        w_sizes=tuple(ch.mul * len(ch.paths) for ch in chunks),
        t_sizes=tuple(c.shape[1] for c in Cs),
        C=_frozen(np.concatenate(Cs, axis=1)),
        X=tuple(Xs),
    )


def fused_conv(h, sh, w, senders, receivers, t: FusedConv, xp):
    """Σ over the incoming edges of each atom of the "uvu" tensor product of the sender's features ``h``
    (N, irreps_in) with ``sh`` (E, irreps_sh), per-edge weights ``w`` (E, weight_numel) in the fused
    layout (``fused_weight_permutation``) → (N, irreps_mid) in the fused layout (``fused_mid_permutation``).

    The same function and weights as ``o3.TensorProduct`` on the plan's instructions followed by a
    scatter-sum (tested), organised for speed: all paths of an input chunk are two contractions (Y·C,
    then x·(Y·C)) instead of one einsum per path; each chunk is gathered from its (small, per-atom)
    slice of the input and summed onto the atoms. Taking the weights and giving the output in the fused
    layouts lets the radial MLP permute its last matrix's columns and lin2 its gather instead, so no
    (edges × features) tensor is sliced, permuted or concatenated.
    """
    E, N = sh.shape[0], h.shape[0]
    hs = xp.split(h, t.in_sizes, axis=1)
    ws = xp.split(w, t.w_sizes, axis=1)
    Ts = xp.split(sh @ xp.const(t.C, like=sh), t.t_sizes, axis=1)  # Y·C for every chunk in one product
    agg = []
    for (i_in, mul, d1, K, P), X, wc, T in zip(t.chunks, t.X, ws, Ts):
        X = xp.const(X, like=h)
        x = xp.take(hs[i_in], senders, axis=0)
        if d1 == 1:
            # scalars: weight the (E, mul) input per path first, then one (E, mul, K) product with Y·C
            xw = wc.reshape(E, mul, P) * x[:, :, None]
            o = (xw.reshape(E * mul, P) @ X).reshape(E, mul, K) * T[:, None, :]
        else:
            o = (x.reshape(E, mul, d1) @ T.reshape(E, d1, K)) * (wc.reshape(E * mul, P) @ X).reshape(E, mul, K)
        agg.append(xp.segment_sum(o.reshape(E, -1), receivers, N))
    return xp.concat(agg, axis=1)


# ------------------------------------------------------------------------------- equivariant linear
def type_columns(irreps: _ir.IrrepsLike) -> dict[tuple[int, int], np.ndarray]:
    """{(l, p): columns of all chunks of that irrep type}, types in order of first appearance; a type's
    columns are component major, then channel over its chunks in order, so ``x[:, cols]`` reshapes to
    (N, 2l+1, Σ mul) — the layout in which one matmul mixes every chunk of the type."""
    irreps = _ir.parse_irreps(irreps)
    sl = _ir.irreps_slices(irreps)
    out: dict[tuple[int, int], np.ndarray] = {}
    for l, p in dict.fromkeys((l, p) for mul, l, p in irreps if mul > 0):
        chunks = [i for i, (m, l1, p1) in enumerate(irreps) if (l1, p1) == (l, p) and m > 0]
        d = 2 * l + 1
        out[(l, p)] = np.array([sl[i].start + u * d + c for c in range(d) for i in chunks for u in range(irreps[i][0])], dtype=np.int64)
    return out


@dataclass(frozen=True, eq=False)
class Linear:
    """e3nn's ``o3.Linear(irreps_in, irreps_out)`` (no biases, path_normalization="element") regrouped:
    one matmul per irrep type instead of one per pair of chunks (see ``irreps_linear``).

    The flat weight vector is e3nn's (and e3nn-jax's ``FunctionalLinear``'s): one (mul_in, mul_out)
    block per pair of chunks with equal irreps, input chunk major.
    """

    numel: int
    in_cols: np.ndarray  # input columns of every irrep type of the input, in first-appearance order
    # per group (irrep type): (start of its block in the gathered input, 2l+1, Σ mul_in, Σ mul_out,
    # path weight 1/sqrt(Σ mul_in), (Σ mul_in, Σ mul_out) positions in the flat weight vector)
    groups: tuple[tuple[int, int, int, int, float, np.ndarray], ...]
    # columns of the concatenated group outputs (each flattened (2l+1, Σ mul_out)) in e3nn's layout
    # (per chunk: channel major, then 2l+1); pointing at a trailing zero column where no input reaches
    out_perm: np.ndarray
    zero_column: bool


@lru_cache(maxsize=None)
def linear_tables(irreps_in: _ir.IrrepsLike, irreps_out: _ir.IrrepsLike, input_columns: tuple[int, ...] | None = None) -> Linear:
    """``input_columns``: the input arrives permuted, e3nn column c at position input_columns[c] (the
    fused tensor product's layout); folded into the gather, so no permuted copy is made."""
    irreps_in, irreps_out = _ir.parse_irreps(irreps_in), _ir.parse_irreps(irreps_out)
    sl_out = _ir.irreps_slices(irreps_out)
    # e3nn's flat layout: instructions (i_in, i_out) for i_in, for i_out of equal irreps, each (mul_in, mul_out)
    offsets, n = {}, 0
    for i, (m1, l1, p1) in enumerate(irreps_in):
        for o, (m2, l2, p2) in enumerate(irreps_out):
            if (l1, p1) == (l2, p2):
                offsets[(i, o)] = n
                n += m1 * m2
    # The gather takes every irrep type of the input, so that linears of the same input (sc, lin1)
    # share it; a group reads its type's block of the gathered columns.
    in_types = type_columns(irreps_in)
    starts = dict(zip(in_types, np.cumsum([0] + [len(c) for c in in_types.values()])))
    groups, out_cols, col = [], {}, 0
    for l, p in dict.fromkeys((l, p) for _, l, p in irreps_out):
        ins = [i for i, (m, l1, p1) in enumerate(irreps_in) if (l1, p1) == (l, p) and m > 0]
        outs = [o for o, (m, l2, p2) in enumerate(irreps_out) if (l2, p2) == (l, p) and m > 0]
        if not ins or not outs:
            continue
        d = 2 * l + 1
        rows = []
        for i in ins:
            m1 = irreps_in[i][0]
            blocks = [offsets[(i, o)] + np.arange(m1 * irreps_out[o][0]).reshape(m1, irreps_out[o][0]) for o in outs]
            rows.append(np.concatenate(blocks, axis=1))
        w_index = np.concatenate(rows, axis=0)
        m_in, m_out = w_index.shape
        w0 = 0
        for o in outs:
            m2 = irreps_out[o][0]
            for w in range(m2):
                for c in range(d):
                    out_cols[sl_out[o].start + w * d + c] = col + c * m_out + w0 + w
            w0 += m2
        groups.append((int(starts[(l, p)]), d, m_in, m_out, 1.0 / math.sqrt(m_in), _frozen(w_index)))
        col += d * m_out
    out_perm = np.array([out_cols.get(c, col) for c in range(_ir.irreps_dim(irreps_out))], dtype=np.int64)
    in_cols = np.concatenate(list(in_types.values())) if in_types else np.zeros(0, np.int64)
    if input_columns is not None:
        in_cols = np.asarray(input_columns)[in_cols]
    return Linear(n, _frozen(in_cols), tuple(groups), _frozen(out_perm), bool((out_perm == col).any()))


def gather_columns(x, t: Linear, xp):
    """The input columns of every group, once: several linears of the same input can share them."""
    return xp.take(x, xp.const(t.in_cols, like=x), axis=1)


def linear_gathered(xg, weight, t: Linear, xp):
    """``irreps_linear`` on the output of ``gather_columns``."""
    n = xg.shape[0]
    outs = []
    for start, d, m_in, m_out, pw, w_index in t.groups:
        xk = xg[:, start : start + d * m_in].reshape(n * d, m_in)
        W = weight[xp.const(w_index, like=weight)] * pw
        outs.append((xk @ W).reshape(n, d * m_out))
    if t.zero_column or not outs:
        outs.append(xp.zeros_like(xg[:, :1]))
    return xp.take(xp.concat(outs, axis=1), xp.const(t.out_perm, like=xg), axis=1)


def irreps_linear(x, weight, t: Linear, xp):
    """e3nn's ``o3.Linear`` of ``x`` (N, irreps_in) with the flat ``weight``: one matmul per irrep type,
    which is what a crystal batch (a few hundred atoms) pays for: e3nn's version makes ~30 small
    products per layer of a few µs each."""
    return linear_gathered(gather_columns(x, t, xp), weight, t, xp)


# ------------------------------------------------------------------------------- radial MLP, gate
def radial_mlp(h, weights: Sequence, out_permutation: np.ndarray | None, xp):
    """Distance basis (E, n_basis) → per-edge tensor-product weights: bias-free, N(0,1) weights scaled
    by 1/sqrt(fan_in) in the forward pass, silu rescaled to unit second moment (e3nn's
    FullyConnectedNet). ``out_permutation``: outputs in another column order (the fused tensor
    product's); the last matrix's columns are permuted (a few thousand numbers), not the (E, ·) result."""
    n = len(weights)
    for k, w in enumerate(weights):
        if k == n - 1 and out_permutation is not None:
            w = xp.take(w, xp.const(out_permutation, like=w), axis=1)
        h = (h @ w) * (1.0 / math.sqrt(w.shape[0]))
        if k < n - 1:
            h = C_SILU * xp.silu(h)
    return h


def gate(y, plan: _ir.GatePlan, xp):
    """act(scalars) ⊕ sigmoid(gates) · gated; activations rescaled to unit second moment (e3nn's Gate)."""
    n = y.shape[0]
    outs, start = [], 0
    for mul, _, p in plan.scalars:
        s = y[:, start : start + mul]
        # even scalars may take any activation, odd ones need an odd one (tanh) to keep their parity
        outs.append(C_SILU * xp.silu(s) if p == 1 else C_TANH * xp.tanh(s))
        start += mul
    if plan.gates:
        k = plan.gates[0][0]
        g = C_SIGMOID * xp.sigmoid(y[:, start : start + k])
        start += k
        off = 0
        for mul, l, _ in plan.gated:
            d = 2 * l + 1
            v = y[:, start : start + mul * d].reshape(n, mul, d)
            outs.append((v * g[:, off : off + mul, None]).reshape(n, mul * d))
            start += mul * d
            off += mul
    return xp.concat(outs, axis=1)


# ------------------------------------------------------------------------------------ interaction
@dataclass(frozen=True, eq=False)
class Layer:
    """Everything constant about one interaction: its plan and its kernels' tables."""

    plan: _ir.LayerPlan
    n_sh: int  # this convolution reads the first n_sh harmonics (ordered by l) of each edge
    sc: Linear
    lin1: Linear
    lin2: Linear  # reads the convolution's output, in the fused layout when ``conv`` is set
    conv: FusedConv | None  # None: the library's tensor product (tp_impl="e3nn")
    radial_permutation: np.ndarray | None  # the fused layout of the per-edge weights
    conv_scale: float  # cos(π/8) · message normalisation: both scale the (linear) lin2(Σ messages)
    residual_src: np.ndarray  # x[:, src] is added to y[:, dst]
    residual_dst: np.ndarray


@lru_cache(maxsize=None)
def layer_tables(plan: _ir.LayerPlan, config: TFNConfig, wigner_3j: Wigner3j) -> Layer:
    conv = plan.conv
    fused = config.tp_impl == "fused"
    mid_perm = tuple(int(i) for i in fused_mid_permutation(conv)) if fused else None
    return Layer(
        plan=plan,
        n_sh=_ir.irreps_dim(conv.irreps_sh),
        sc=linear_tables(conv.irreps_in, conv.irreps_out),
        lin1=linear_tables(conv.irreps_in, conv.irreps_in),
        lin2=linear_tables(conv.irreps_mid, conv.irreps_out, mid_perm),
        conv=fused_conv_tables(conv, wigner_3j) if fused else None,
        radial_permutation=_frozen(fused_weight_permutation(conv)) if fused else None,
        conv_scale=MIX_CONV * config.message_scale,
        residual_src=_frozen(np.asarray(plan.residual_src, dtype=np.int64)),
        residual_dst=_frozen(np.asarray(plan.residual_dst, dtype=np.int64)),
    )


def interaction(x, edge_attr, edge_basis, senders, receivers, weights: Mapping[str, Mapping[str, Any]], t: Layer, xp,
                library_tp: LibraryTP | None = None):
    """One gated point convolution (the read-out convolution when ``t.plan.gate`` is None): atom
    features ``x`` (N, irreps_in) → (N, irreps_out). ``weights``: ``{module: {parameter: array}}`` as
    in ``config.layer_weight_shapes``; ``library_tp`` is the per-edge tensor product when ``t.conv`` is None."""
    if edge_attr.shape[1] != t.n_sh:
        edge_attr = edge_attr[:, : t.n_sh]
    xg = gather_columns(x, t.sc, xp)  # sc and lin1 read the same columns of x
    s = linear_gathered(xg, weights["sc"]["weight"], t.sc, xp)
    h = linear_gathered(xg, weights["lin1"]["weight"], t.lin1, xp)
    radial = weights["radial"]
    w = radial_mlp(edge_basis, [radial[f"w{k}"] for k in range(len(radial))], t.radial_permutation, xp)
    if t.conv is not None:
        a = fused_conv(h, edge_attr, w, senders, receivers, t.conv, xp)
    else:
        a = xp.segment_sum(library_tp(xp.take(h, senders, axis=0), edge_attr, w), receivers, x.shape[0])
    y = MIX_SC * s + t.conv_scale * irreps_linear(a, weights["lin2"]["weight"], t.lin2, xp)
    if t.plan.gate is not None:
        y = gate(y, t.plan.gate, xp)
    if len(t.residual_src):
        y = xp.add_at(y, xp.const(t.residual_dst, like=y), xp.take(x, xp.const(t.residual_src, like=x), axis=1), axis=1)
    return y


# ---------------------------------------------------------------------------------------- network
@dataclass(frozen=True, eq=False)
class Network:
    """Everything constant about a TFN: its plan, the tables of every layer, the read-out basis."""

    config: TFNConfig
    plan: _ir.NetworkPlan
    layers: tuple[Layer, ...]
    readout: Layer
    sh_ls: tuple[int, ...]  # degrees of the per-edge harmonics, 0..max(lmax, read-out lmax)
    cartesian: np.ndarray | None  # (irreps dim, 3^rank) irreps → Cartesian components; None: scalar


@lru_cache(maxsize=None)
def network_tables(config: TFNConfig, wigner_3j: Wigner3j) -> Network:
    plan = config.plan()
    Q = None
    if config.target_kind == "tensor":
        Q = cartesian_basis(config.target_formula)
        Q = _frozen(Q.reshape(Q.shape[0], -1))
    layers = tuple(layer_tables(lp, config, wigner_3j) for lp in plan.layers)
    return Network(config, plan, layers, layer_tables(plan.readout, config, wigner_3j), tuple(l for _, l, _ in plan.irreps_sh), Q)


def edge_vectors(batch: Mapping[str, Any], xp):
    """r_ij = x_j + shift @ L_g - x_i (Å) recomputed from positions and lattice, so that gradients with
    respect to both (forces, stress) flow and a rotated crystal gives rotated edges."""
    pos, lat = batch["positions"], batch["lattice"]
    shifts = xp.astype(batch["shifts"], pos.dtype)
    cell = xp.take(lat, batch["edge_graph"], axis=0)
    vec = xp.take(pos, batch["senders"], axis=0) - xp.take(pos, batch["receivers"], axis=0) + (shifts[:, :, None] * cell).sum(1)
    if "edge_mask" in batch:
        # padding edges join a padding node to itself (zero vector): give them a unit length so that no
        # NaN appears in r̂, the basis or their gradients (they only ever reach padding nodes)
        vec = xp.where(batch["edge_mask"][:, None], vec, xp.const(_UNIT_X, like=vec))
    return vec


def edge_features(vec, net: Network, xp, spherical_harmonics: SphericalHarmonics):
    """(harmonics × envelope (E, Σ 2l+1), radial basis (E, n_basis)) of the edge vectors (E, 3) in Å."""
    cfg = net.config
    d = xp.norm(vec, axis=-1)
    envelope = polynomial_envelope(d, cfg.radius, cfg.envelope_p, xp)
    radial = bessel_basis if cfg.radial_basis == "bessel" else gaussian_basis
    return spherical_harmonics(vec) * envelope[:, None], radial(d, cfg.radius, cfg.n_basis, xp)


def node_outputs(batch: Mapping[str, Any], embedding, interactions: Sequence[Callable], net: Network, xp,
                 spherical_harmonics: SphericalHarmonics):
    """(N, dim of ``config.output_irreps``): per-atom read-out irreps before pooling. ``embedding`` is
    the (N_SPECIES, embed_dim) table, ``interactions`` the layers then the read-out, each called as
    ``layer(x, edge_attr, edge_basis, senders, receivers)``."""
    vec = edge_vectors(batch, xp)
    edge_attr, basis = edge_features(vec, net, xp, spherical_harmonics)
    s, r = batch["senders"], batch["receivers"]
    x = xp.astype(xp.take(embedding, batch["numbers"], axis=0), vec.dtype)
    for layer in interactions:
        x = layer(x, edge_attr, basis, s, r)
    return x


def pool(node_out, batch: Mapping[str, Any], net: Network, xp):
    """(G, dim of ``config.output_irreps``): the read-out irreps pooled over each graph's atoms."""
    segment = xp.segment_mean if net.config.pooling == "mean" else xp.segment_sum
    return segment(node_out, batch["node_graph"], batch["lattice"].shape[0])


def head(y, net: Network, xp):
    """Pooled irreps (G, D) → the prediction: (G,) for a scalar, (G, 3, ..., 3) for a tensor target,
    mapped with the library-independent ``zoo.tensors.cartesian_basis`` so both backends agree."""
    if net.cartesian is None:
        return y[:, 0]
    return (y @ xp.const(net.cartesian, like=y)).reshape((y.shape[0],) + net.config.out_shape)
