"""Equivariant point convolutions over any irrep algebra, written once for both backends.

The tensor field network (irreps of O(3), coupled by Wigner-3j symbols) and the point-group network
(irreps of O_h or D_6h, coupled by Dirl's coefficients) are the same network with different tables:
features are ordered direct sums of irrep *chunks* ``(multiplicity, key, dimension)`` — the key is
``(l, parity)`` for O(3), a Mulliken label for a point group — and every layer is

    s   = sc(x)                                        linear self-connection (per irrep type)
    h   = lin1(x)
    m_e = Σ_paths w_path,u(r_ij) · C_path(h_u[j], Y(r̂_ij))  per edge e = (j → i), "uvu" paths
    a_i = Σ_e m_e · message_scale
    y   = gate(sin(π/8) s + cos(π/8) lin2(a)) (+ x on chunks that are identical)

with Y the edge's real spherical harmonics (times a smooth cutoff) and w the output of a radial MLP of
the distance. A family builds the *tables* once per plan (numpy): the coupling blocks of its paths
(``ConvPath``), the equivariant linear maps (``linear_tables``), the gate (``GatePlan``). Everything here
takes the backend ops module ``xp`` (``zoo.backend.torch`` / ``zoo.backend.jax``) and parameters as
arrays; the weight layouts are e3nn's (flat linear weights per pair of chunks of one irrep type, input
chunk major; per-edge path weights path-major), so an O(3) model's weights are e3nn's.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Callable, Hashable, Mapping, Sequence

import numpy as np

Chunk = tuple[int, Hashable, int]  # (multiplicity, irrep key, dimension of the irrep)
LibraryTP = Callable[[Any, Any, Any], Any]  # (x of each edge's sender, Y, per-edge weights) -> messages


def frozen(a: np.ndarray) -> np.ndarray:
    """Tables are shared by every model of a plan, and ``xp.const`` keeps one device copy per array
    object: they must never change."""
    a = np.ascontiguousarray(a)
    a.setflags(write=False)
    return a


def chunks_dim(chunks: Sequence[Chunk]) -> int:
    return sum(mul * d for mul, _, d in chunks)


def chunk_slices(chunks: Sequence[Chunk]) -> list[slice]:
    out, start = [], 0
    for mul, _, d in chunks:
        out.append(slice(start, start + mul * d))
        start += mul * d
    return out


# ------------------------------------------------------------------------------------------ constants
_ACTS = {
    "silu": lambda x: x / (1.0 + np.exp(-x)),
    "tanh": np.tanh,
    "sigmoid": lambda x: 1.0 / (1.0 + np.exp(-x)),
}


@lru_cache(maxsize=None)
def second_moment_scale(act: str) -> float:
    """1/sqrt(E[f(z)^2]), z ~ N(0, 1): keeps unit second moment through the activation (e3nn's normalize2mom).

    Computed with 120-point Gauss–Hermite quadrature (exact to float64 for these smooth functions),
    not by Monte-Carlo as e3nn and e3nn-jax do, so both backends use the very same constant.
    """
    x, w = np.polynomial.hermite_e.hermegauss(120)
    m2 = float(np.sum(w * _ACTS[act](x) ** 2) / math.sqrt(2.0 * math.pi))
    return 1.0 / math.sqrt(m2)


MIX_SC = math.sin(math.pi / 8)  # self-connection / convolution mixing of e3nn's gate_points_2101
MIX_CONV = math.cos(math.pi / 8)


# ------------------------------------------------------------------------------- fused convolution
@dataclass(frozen=True)
class ConvPath:
    """One "uvu" path: input chunk ``i_in`` ⊗ the edge harmonics → mid chunk ``k_mid`` (same multiplicity).

    ``block`` (d_sh, d_in, d_out), normalisation folded in: out[n] = Σ_{s,a} Y[s] x[a] block[s, a, n]
    (a Wigner-3j symbol for O(3); for a point group, the subduction of the harmonics onto the filter
    irrep contracted with Dirl's coupling coefficients).
    """

    i_in: int
    k_mid: int
    block: np.ndarray


@dataclass(frozen=True, eq=False)
class FusedConv:
    """Constant tables of ``fused_conv`` for one convolution."""

    in_sizes: tuple[int, ...]  # columns of each input chunk (to split h)
    chunks: tuple[tuple[int, int, int, int, int], ...]  # (input chunk, mul, d_in, K, number of paths P)
    w_sizes: tuple[int, ...]  # per-edge weights of each chunk (mul·P), fused layout
    t_sizes: tuple[int, ...]  # columns of Y·C of each chunk (d_in·K)
    C: np.ndarray  # (d_sh, Σ t_sizes): every chunk's coupling table, so Y·C is one product
    path_of: tuple[np.ndarray, ...]  # per chunk (K,): the path of each component (its weight multiplies it)
    weight_permutation: np.ndarray  # e3nn's per-edge weight columns in the fused layout
    mid_permutation: np.ndarray  # fused output columns that give irreps_mid in e3nn's layout


def fused_conv_tables(chunks_in: Sequence[Chunk], chunks_mid: Sequence[Chunk], paths: Sequence[ConvPath]) -> FusedConv:
    """Tables of ``fused_conv`` for paths in e3nn's instruction order: grouped by input chunk, each mid
    chunk the output of exactly one path, mid chunks in path order.

    out[e, u, K] = w[e, u, path(K)] · Σ_a x[e, u, a] Σ_s Y[e, s] C[s, a, K], where C stacks the blocks of
    every path of an input chunk along K.
    """
    if [p.k_mid for p in paths] != list(range(len(chunks_mid))):
        raise ValueError("the fused convolution needs one path per mid chunk, in mid-chunk order")
    d_sh = paths[0].block.shape[0] if paths else 0
    mid_sl = chunk_slices(chunks_mid)
    mid_perm = np.empty(chunks_dim(chunks_mid), dtype=np.int64)
    Cs, Xs, chunks, w_sizes, w_perm = [], [], [], [], []
    w_start = c0 = 0
    last_i = -1
    for i, (mul, _, d_in) in enumerate(chunks_in):
        mine = [p for p in paths if p.i_in == i]
        if not mine:
            continue
        if i < last_i:
            raise ValueError("paths must be grouped by input chunk, in input-chunk order")
        last_i = i
        K = sum(p.block.shape[2] for p in mine)
        C = np.zeros((d_sh, d_in, K))
        path_of = np.zeros(K, dtype=np.int64)
        k0 = 0
        for q, p in enumerate(mine):
            if p.block.shape[:2] != (d_sh, d_in) or chunks_mid[p.k_mid][0] != mul:
                raise ValueError(f"path {p.i_in}->{p.k_mid}: block {p.block.shape} or multiplicity do not fit the chunks")
            d_out = p.block.shape[2]
            C[:, :, k0 : k0 + d_out] = p.block
            path_of[k0 : k0 + d_out] = q
            start = mid_sl[p.k_mid].start
            for u in range(mul):  # e3nn's mid layout: per mid chunk, channel major, then the components
                mid_perm[start + u * d_out : start + (u + 1) * d_out] = c0 + u * K + k0 + np.arange(d_out)
            k0 += d_out
        # e3nn's per-edge weights: per path, mul_in channels; the fused layout: per chunk, channel major
        w_perm += [w_start + q * mul + u for u in range(mul) for q in range(len(mine))]
        w_start += mul * len(mine)
        Cs.append(C.reshape(d_sh, -1))
        Xs.append(frozen(path_of))
        chunks.append((i, mul, d_in, K, len(mine)))
        w_sizes.append(mul * len(mine))
        c0 += mul * K
    return FusedConv(
        in_sizes=tuple(mul * d for mul, _, d in chunks_in),
        chunks=tuple(chunks),
        w_sizes=tuple(w_sizes),
        t_sizes=tuple(c.shape[1] for c in Cs),
        C=frozen(np.concatenate(Cs, axis=1) if Cs else np.zeros((d_sh, 0))),
        path_of=tuple(Xs),
        weight_permutation=frozen(np.asarray(w_perm, dtype=np.int64)),
        mid_permutation=frozen(mid_perm),
    )


def fused_conv(h, sh, w, senders, receivers, t: FusedConv, xp):
    """Σ over the incoming edges of each atom of the "uvu" tensor product of the sender's features ``h``
    (N, irreps_in) with ``sh`` (E, d_sh), per-edge weights ``w`` (E, weight_numel) in the fused layout
    (``t.weight_permutation``) → (N, irreps_mid) in the fused layout (``t.mid_permutation``).

    The same function as e3nn's ``o3.TensorProduct`` on the paths followed by a scatter-sum (tested for
    O(3)), organised for speed: all paths of an input chunk are two contractions (Y·C, then x·(Y·C))
    instead of one einsum per path; each chunk is gathered from its (small, per-atom) slice of the
    input and summed onto the atoms. Taking the weights and giving the output in the fused layouts lets
    the radial MLP permute its last matrix's columns and lin2 its gather instead, so no (edges ×
    features) tensor is sliced, permuted or concatenated.
    """
    E, N = sh.shape[0], h.shape[0]
    hs = xp.split(h, t.in_sizes, axis=1)
    ws = xp.split(w, t.w_sizes, axis=1)
    Ts = xp.split(sh @ xp.const(t.C, like=sh), t.t_sizes, axis=1)  # Y·C for every chunk in one product
    agg = []
    for (i_in, mul, d1, K, P), path_of, wc, T in zip(t.chunks, t.path_of, ws, Ts):
        path_of = xp.const(path_of, like=senders)
        x = xp.take(hs[i_in], senders, axis=0)
        # a path's weight repeated over its components: a column gather of the (E·mul, P) weights (cost
        # E·mul·K; the product with a 0/1 (P, K) matrix it replaces cost P times that, and paths are many
        # in a point-group network)
        if d1 == 1:
            # 1-d irreps: weight the (E, mul) input per path first, then one (E, mul, K) product with Y·C
            xw = wc.reshape(E, mul, P) * x[:, :, None]
            o = xp.take(xw.reshape(E * mul, P), path_of, axis=1).reshape(E, mul, K) * T[:, None, :]
        else:
            o = (x.reshape(E, mul, d1) @ T.reshape(E, d1, K)) * xp.take(wc.reshape(E * mul, P), path_of, axis=1).reshape(E, mul, K)
        agg.append(xp.segment_sum(o.reshape(E, -1), receivers, N))
    return xp.concat(agg, axis=1)


# ------------------------------------------------------------------------------- equivariant linear
def type_columns(chunks: Sequence[Chunk]) -> dict[Hashable, np.ndarray]:
    """{irrep key: columns of all chunks of that type}, types in order of first appearance; a type's
    columns are component major, then channel over its chunks in order, so ``x[:, cols]`` reshapes to
    (N, d, Σ mul) — the layout in which one matmul mixes every chunk of the type."""
    sl = chunk_slices(chunks)
    out: dict[Hashable, np.ndarray] = {}
    for key in dict.fromkeys(k for mul, k, _ in chunks if mul > 0):
        mine = [i for i, (m, k, _) in enumerate(chunks) if k == key and m > 0]
        d = chunks[mine[0]][2]
        out[key] = np.array([sl[i].start + u * d + c for c in range(d) for i in mine for u in range(chunks[i][0])], dtype=np.int64)
    return out


@dataclass(frozen=True, eq=False)
class Linear:
    """An equivariant linear map without biases (e3nn's ``o3.Linear``, path_normalization="element")
    regrouped: one matmul per irrep type instead of one per pair of chunks (see ``irreps_linear``).

    The flat weight vector is e3nn's (and e3nn-jax's ``FunctionalLinear``'s): one (mul_in, mul_out)
    block per pair of chunks of equal irrep type, input chunk major. For an irrep whose commutant is
    larger than the scalars (a merged complex pair of a point group), the map uses only the identity
    part: still equivariant, never the antisymmetric part.
    """

    numel: int
    in_cols: np.ndarray  # input columns of every irrep type of the input, in first-appearance order
    # per group (irrep type): (start of its block in the gathered input, d, Σ mul_in, Σ mul_out,
    # path weight 1/sqrt(Σ mul_in), (Σ mul_in, Σ mul_out) positions in the flat weight vector)
    groups: tuple[tuple[int, int, int, int, float, np.ndarray], ...]
    # columns of the concatenated group outputs (each flattened (d, Σ mul_out)) in e3nn's layout (per
    # chunk: channel major, then d); pointing at a trailing zero column where no input reaches
    out_perm: np.ndarray
    zero_column: bool


@lru_cache(maxsize=None)
def linear_tables(chunks_in: tuple[Chunk, ...], chunks_out: tuple[Chunk, ...], input_columns: tuple[int, ...] | None = None) -> Linear:
    """``input_columns``: the input arrives permuted, column c at position input_columns[c] (the fused
    convolution's layout); folded into the gather, so no permuted copy is made."""
    sl_out = chunk_slices(chunks_out)
    offsets, n = {}, 0
    for i, (m1, k1, _) in enumerate(chunks_in):
        for o, (m2, k2, _) in enumerate(chunks_out):
            if k1 == k2:
                offsets[(i, o)] = n
                n += m1 * m2
    # The gather takes every irrep type of the input, so that linears of the same input (sc, lin1)
    # share it; a group reads its type's block of the gathered columns.
    in_types = type_columns(chunks_in)
    starts = dict(zip(in_types, np.cumsum([0] + [len(c) for c in in_types.values()])))
    groups, out_cols, col = [], {}, 0
    for key in dict.fromkeys(k for _, k, _ in chunks_out):
        ins = [i for i, (m, k, _) in enumerate(chunks_in) if k == key and m > 0]
        outs = [o for o, (m, k, _) in enumerate(chunks_out) if k == key and m > 0]
        if not ins or not outs:
            continue
        d = chunks_out[outs[0]][2]
        rows = []
        for i in ins:
            m1 = chunks_in[i][0]
            blocks = [offsets[(i, o)] + np.arange(m1 * chunks_out[o][0]).reshape(m1, chunks_out[o][0]) for o in outs]
            rows.append(np.concatenate(blocks, axis=1))
        w_index = np.concatenate(rows, axis=0)
        m_in, m_out = w_index.shape
        w0 = 0
        for o in outs:
            m2 = chunks_out[o][0]
            for w in range(m2):
                for c in range(d):
                    out_cols[sl_out[o].start + w * d + c] = col + c * m_out + w0 + w
            w0 += m2
        groups.append((int(starts[key]), d, m_in, m_out, 1.0 / math.sqrt(m_in), frozen(w_index)))
        col += d * m_out
    out_perm = np.array([out_cols.get(c, col) for c in range(chunks_dim(chunks_out))], dtype=np.int64)
    in_cols = np.concatenate(list(in_types.values())) if in_types else np.zeros(0, np.int64)
    if input_columns is not None:
        in_cols = np.asarray(input_columns)[in_cols]
    return Linear(n, frozen(in_cols), tuple(groups), frozen(out_perm), bool((out_perm == col).any()))


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
    """The equivariant linear map of ``x`` (N, chunks_in) with the flat ``weight``: one matmul per irrep
    type, which is what a crystal batch (a few hundred atoms) pays for: e3nn's ``o3.Linear`` makes ~30
    small products per layer of a few µs each."""
    return linear_gathered(gather_columns(x, t, xp), weight, t, xp)


# ------------------------------------------------------------------------------- radial MLP, gate
def radial_mlp(h, weights: Sequence, out_permutation: np.ndarray | None, xp):
    """Distance basis (E, n_basis) → per-edge path weights: bias-free, N(0,1) weights scaled by
    1/sqrt(fan_in) in the forward pass, silu rescaled to unit second moment (e3nn's FullyConnectedNet).
    ``out_permutation``: outputs in another column order (the fused convolution's); the last matrix's
    columns are permuted (a few thousand numbers), not the (E, ·) result."""
    n = len(weights)
    for k, w in enumerate(weights):
        if k == n - 1 and out_permutation is not None:
            w = xp.take(w, xp.const(out_permutation, like=w), axis=1)
        h = (h @ w) * (1.0 / math.sqrt(w.shape[0]))
        if k < n - 1:
            h = second_moment_scale("silu") * xp.silu(h)
    return h


@dataclass(frozen=True)
class GatePlan:
    """Gated nonlinearity: input = scalars + gates + gated, output = act(scalars) + sigmoid(gates) · gated.

    ``scalars``: 1-dimensional irreps with whether they are the trivial one (any activation: silu) or a
    sign representation (needs an odd one: tanh, so that f(-x) = -f(x) keeps it equivariant). ``gates``:
    trivial scalars, one per gated channel. ``gated``: the chunks of dimension > 1.
    """

    scalars: tuple[tuple[int, Hashable, bool], ...]  # (mul, key, trivial)
    gate_key: Hashable | None  # key of the trivial irrep the gates are made of (None: nothing gated)
    gated: tuple[Chunk, ...]

    @property
    def n_gates(self) -> int:
        return sum(m for m, _, _ in self.gated)

    @property
    def chunks_in(self) -> tuple[Chunk, ...]:
        gates = ((self.n_gates, self.gate_key, 1),) if self.gated else ()
        return tuple((m, k, 1) for m, k, _ in self.scalars) + gates + self.gated

    @property
    def chunks_out(self) -> tuple[Chunk, ...]:
        return tuple((m, k, 1) for m, k, _ in self.scalars) + self.gated


def gate(y, plan: GatePlan, xp):
    """act(scalars) ⊕ sigmoid(gates) · gated; activations rescaled to unit second moment (e3nn's Gate)."""
    n = y.shape[0]
    outs, start = [], 0
    for mul, _, trivial in plan.scalars:
        s = y[:, start : start + mul]
        outs.append(second_moment_scale("silu") * xp.silu(s) if trivial else second_moment_scale("tanh") * xp.tanh(s))
        start += mul
    if plan.gated:
        k = plan.n_gates
        g = second_moment_scale("sigmoid") * xp.sigmoid(y[:, start : start + k])
        start += k
        off = 0
        for mul, _, d in plan.gated:
            v = y[:, start : start + mul * d].reshape(n, mul, d)
            outs.append((v * g[:, off : off + mul, None]).reshape(n, mul * d))
            start += mul * d
            off += mul
    return xp.concat(outs, axis=1)


def residual_map(chunks_in: Sequence[Chunk], chunks_out: Sequence[Chunk]) -> tuple[np.ndarray, np.ndarray]:
    """Column indices (src in x, dst in out) of output chunks that also exist, identical, in the input."""
    sl_in, sl_out = chunk_slices(chunks_in), chunk_slices(chunks_out)
    used: set[int] = set()
    src: list[int] = []
    dst: list[int] = []
    for k, chunk in enumerate(chunks_out):
        for i, other in enumerate(chunks_in):
            if i not in used and other == chunk and chunk[0] > 0:
                used.add(i)
                src += list(range(sl_in[i].start, sl_in[i].stop))
                dst += list(range(sl_out[k].start, sl_out[k].stop))
                break
    return frozen(np.asarray(src, dtype=np.int64)), frozen(np.asarray(dst, dtype=np.int64))


# ------------------------------------------------------------------------------------ interaction
@dataclass(frozen=True, eq=False)
class Layer:
    """Everything constant about one interaction: its kernels' tables."""

    n_sh: int  # this convolution reads the first n_sh harmonics (ordered by l) of each edge
    sc: Linear
    lin1: Linear
    lin2: Linear  # reads the convolution's output, in the fused layout when ``conv`` is set
    conv: FusedConv | None  # None: a library's tensor product (the reference kernel)
    gate: GatePlan | None  # None: the read-out
    conv_scale: float  # cos(π/8) · message normalisation: both scale the (linear) lin2(Σ messages)
    residual_src: np.ndarray  # x[:, src] is added to y[:, dst]
    residual_dst: np.ndarray


def interaction(x, edge_attr, edge_basis, senders, receivers, weights: Mapping[str, Mapping[str, Any]], t: Layer, xp,
                library_tp: LibraryTP | None = None):
    """One gated point convolution (the read-out convolution when ``t.gate`` is None): atom features
    ``x`` (N, chunks_in) → (N, chunks_out). ``weights``: ``{"sc"|"lin1"|"lin2": {"weight": flat},
    "radial": {"w0": ..., "w1": ...}}``; ``library_tp`` is the per-edge tensor product when ``t.conv`` is None."""
    if edge_attr.shape[1] != t.n_sh:
        edge_attr = edge_attr[:, : t.n_sh]
    xg = gather_columns(x, t.sc, xp)  # sc and lin1 read the same columns of x
    s = linear_gathered(xg, weights["sc"]["weight"], t.sc, xp)
    h = linear_gathered(xg, weights["lin1"]["weight"], t.lin1, xp)
    radial = weights["radial"]
    perm = t.conv.weight_permutation if t.conv is not None else None
    w = radial_mlp(edge_basis, [radial[f"w{k}"] for k in range(len(radial))], perm, xp)
    if t.conv is not None:
        a = fused_conv(h, edge_attr, w, senders, receivers, t.conv, xp)
    else:
        a = xp.segment_sum(library_tp(xp.take(h, senders, axis=0), edge_attr, w), receivers, x.shape[0])
    y = MIX_SC * s + t.conv_scale * irreps_linear(a, weights["lin2"]["weight"], t.lin2, xp)
    if t.gate is not None:
        y = gate(y, t.gate, xp)
    if len(t.residual_src):
        y = xp.add_at(y, xp.const(t.residual_dst, like=y), xp.take(x, xp.const(t.residual_src, like=x), axis=1), axis=1)
    return y


@lru_cache(maxsize=None)
def degree_halves(sh_ls: tuple[int, ...]) -> np.ndarray:
    """(Σ 2l+1,) per harmonic column: 0 for l = 0, 1/2 for l >= 1 (``normalize_by_neighbors``'s "degree")."""
    return frozen(np.concatenate([np.full(2 * l + 1, 0.0 if l == 0 else 0.5) for l in sh_ls]))


def normalize_by_neighbors(edge_attr, receivers, n_nodes: int, rule: str, xp, degree_half: np.ndarray | None = None):
    """Edge harmonics (E, Σ 2l+1) divided by their receiver's number of incoming edges n ("neighbors"),
    so that every layer's summed message is the mean over the atom's real neighbours; or ("degree") the
    Y^0 column by n and the Y^l (l >= 1) columns by sqrt(n), since Σ_j Y^l(r̂_ij), l >= 1, cancels over a
    shell and what survives grows like sqrt(n). Messages are linear in the harmonics and n is invariant,
    so each degree's block is scaled by an invariant and equivariance is exact. ``degree_half`` is
    ``degree_halves`` of the columns (needed for "degree")."""
    n_in = xp.segment_sum(xp.zeros(receivers.shape, like=edge_attr) + 1.0, receivers, n_nodes)
    n_edge = xp.take(n_in, receivers, axis=0)[:, None]  # every receiver of an edge has >= 1
    if rule == "neighbors":
        return edge_attr / n_edge
    if rule != "degree":
        raise ValueError(f"normalize_by_neighbors: rule must be 'neighbors' or 'degree', got {rule!r}")
    l_half = xp.const(degree_half[: edge_attr.shape[1]], like=edge_attr)
    return edge_attr * n_edge ** (l_half - 1.0)  # n^-(1 - l_half), l_half 0 or 1/2


# --------------------------------------------------------------------------------------- geometry
_UNIT_X = frozen(np.array([1.0, 0.0, 0.0]))


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
