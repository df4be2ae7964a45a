"""Backend-free bookkeeping for the tensor field network: irreps, layer plans, constants.

Both backends build their modules from the *same* plan computed here (irreps of every layer, the
tensor-product instruction list, the gate split, the residual map, the normalisation constants and the
irreps → Cartesian change of basis), so the torch (e3nn) and the JAX (e3nn-jax) model are the same
function of the same weights. Neither library's own ``sort()``/``simplify()`` is used on a plan: the two
libraries order irreps differently (e3nn puts ``0o`` before ``0e``, e3nn-jax the other way round), so
every irreps list here keeps the order it was written in and both libraries receive it verbatim.

Conventions shared with e3nn and e3nn-jax (checked in tests/test_tfn.py): real spherical harmonics with
``normalization="component"`` (``|Y^l|^2 = 2l+1``), ``D^1(R) = R`` in (x, y, z) order, Wigner-3j from
e3nn's tables, tensor products with ``irrep_normalization="component"`` and ``path_normalization="element"``,
and weights that are N(0, 1) with the path weight applied in the forward pass (e3nn torch's only mode,
e3nn-jax's ``gradient_normalization="path"``).
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Sequence, Union

import numpy as np

MulIr = tuple[int, int, int]  # (multiplicity, l, parity ±1)
IrrepsLike = Union[str, Sequence[MulIr]]

_IR_RE = re.compile(r"^\s*(?:(\d+)\s*x\s*)?(\d+)\s*([eoy])\s*$")


# --------------------------------------------------------------------------------------------- irreps
def parse_irreps(irreps: IrrepsLike) -> tuple[MulIr, ...]:
    """"32x0e+8x1o" (or a sequence of (mul, l, p)) → ((32, 0, 1), (8, 1, -1)); order is kept."""
    if isinstance(irreps, str):
        out = []
        if irreps.strip() == "":
            return ()
        for part in irreps.split("+"):
            m = _IR_RE.match(part)
            if m is None:
                raise ValueError(f"cannot parse irreps {irreps!r} (part {part!r}); write e.g. '32x0e+8x1o+8x2e'")
            mul = int(m.group(1)) if m.group(1) else 1
            l, p = int(m.group(2)), m.group(3)
            if p == "y":
                p = "e" if l % 2 == 0 else "o"
            out.append((mul, l, 1 if p == "e" else -1))
        return tuple(out)
    out = []
    for item in irreps:
        mul, l, p = (int(v) for v in item)
        if mul < 0 or l < 0 or p not in (1, -1):
            raise ValueError(f"bad irrep {item!r}: need (mul >= 0, l >= 0, p = ±1)")
        out.append((mul, l, p))
    return tuple(out)


def ir_str(l: int, p: int) -> str:
    return f"{l}{'e' if p == 1 else 'o'}"


def format_irreps(irreps: IrrepsLike) -> str:
    """The string both e3nn and e3nn-jax parse to the same list, in the same order."""
    return "+".join(f"{mul}x{ir_str(l, p)}" for mul, l, p in parse_irreps(irreps))


def irreps_dim(irreps: IrrepsLike) -> int:
    return sum(mul * (2 * l + 1) for mul, l, p in parse_irreps(irreps))


def irreps_slices(irreps: IrrepsLike) -> list[slice]:
    out, start = [], 0
    for mul, l, _ in parse_irreps(irreps):
        out.append(slice(start, start + mul * (2 * l + 1)))
        start += mul * (2 * l + 1)
    return out


def sh_irreps(lmax: int) -> tuple[MulIr, ...]:
    """Spherical harmonics of a polar vector: Y^l has parity (-1)^l (1x0e+1x1o+1x2e+...)."""
    return tuple((1, l, (-1) ** l) for l in range(lmax + 1))


def ir_product(l1: int, p1: int, l2: int, p2: int) -> list[tuple[int, int]]:
    return [(l, p1 * p2) for l in range(abs(l1 - l2), l1 + l2 + 1)]


def tp_path_exists(irreps1: IrrepsLike, irreps2: IrrepsLike, l: int, p: int) -> bool:
    for mul1, l1, p1 in parse_irreps(irreps1):
        for mul2, l2, p2 in parse_irreps(irreps2):
            if mul1 > 0 and mul2 > 0 and (l, p) in ir_product(l1, p1, l2, p2):
                return True
    return False


# ----------------------------------------------------------------------------------------------- plans
@dataclass(frozen=True)
class ConvPlan:
    """One point convolution: x (irreps_in) ⊗ Y(r̂) (irreps_sh) → irreps_mid ("uvu", per-edge weights) → irreps_out."""

    irreps_in: tuple[MulIr, ...]
    irreps_sh: tuple[MulIr, ...]
    irreps_mid: tuple[MulIr, ...]
    irreps_out: tuple[MulIr, ...]
    instructions: tuple[tuple[int, int, int, str, bool], ...]

    @property
    def weight_numel(self) -> int:
        return sum(self.irreps_in[i][0] * self.irreps_sh[j][0] for i, j, _, _, _ in self.instructions)


@dataclass(frozen=True)
class GatePlan:
    """Gated nonlinearity: input = scalars + gates + gated, output = act(scalars) + sigmoid(gates) * gated."""

    scalars: tuple[MulIr, ...]
    gates: tuple[MulIr, ...]  # one chunk "Kx0e", K = total multiplicity of ``gated``
    gated: tuple[MulIr, ...]

    @property
    def irreps_in(self) -> tuple[MulIr, ...]:
        return self.scalars + self.gates + self.gated

    @property
    def irreps_out(self) -> tuple[MulIr, ...]:
        return self.scalars + self.gated


@dataclass(frozen=True)
class LayerPlan:
    conv: ConvPlan
    gate: GatePlan | None  # None for the read-out convolution
    residual_src: tuple[int, ...]  # x[:, src] is added to out[:, dst] (chunks with equal (mul, l, p))
    residual_dst: tuple[int, ...]

    @property
    def irreps_in(self) -> tuple[MulIr, ...]:
        return self.conv.irreps_in

    @property
    def irreps_out(self) -> tuple[MulIr, ...]:
        return self.gate.irreps_out if self.gate is not None else self.conv.irreps_out


def conv_plan(irreps_in: IrrepsLike, irreps_sh: IrrepsLike, irreps_out: IrrepsLike) -> ConvPlan:
    """Instructions of e3nn's gated point convolution (gate_points_2101.Convolution), without its sort.

    For every (input chunk i, harmonic j, product irrep) whose irrep appears in ``irreps_out``, one "uvu"
    path with per-edge weights (mul_i × 1). The order is the loop order, identical in both backends.
    """
    irreps_in, irreps_sh, irreps_out = parse_irreps(irreps_in), parse_irreps(irreps_sh), parse_irreps(irreps_out)
    wanted = {(l, p) for mul, l, p in irreps_out if mul > 0}
    mid: list[MulIr] = []
    ins: list[tuple[int, int, int, str, bool]] = []
    for i, (mul, l1, p1) in enumerate(irreps_in):
        if mul == 0:
            continue
        for j, (mul2, l2, p2) in enumerate(irreps_sh):
            if mul2 == 0:
                continue
            for l, p in ir_product(l1, p1, l2, p2):
                if (l, p) in wanted:
                    ins.append((i, j, len(mid), "uvu", True))
                    mid.append((mul, l, p))
    return ConvPlan(irreps_in, irreps_sh, tuple(mid), irreps_out, tuple(ins))


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

    def table(self, irreps_sh: IrrepsLike, wigner_3j) -> tuple[np.ndarray, np.ndarray]:
        """(C (d_sh, 2l_in+1, K) float64, path index of each K column); ``wigner_3j(l1, l2, l3)`` from e3nn."""
        irreps_sh = parse_irreps(irreps_sh)
        sh_sl = irreps_slices(irreps_sh)
        C = np.zeros((irreps_dim(irreps_sh), 2 * self.l_in + 1, self.K))
        pidx, k = [], 0
        for q, (_, j, l2, l3, pw) in enumerate(self.paths):
            cg = np.asarray(wigner_3j(self.l_in, l2, l3), dtype=np.float64)  # (d1, d2, d3)
            C[sh_sl[j], :, k : k + 2 * l3 + 1] = pw * cg.transpose(1, 0, 2)
            pidx += [q] * (2 * l3 + 1)
            k += 2 * l3 + 1
        return C, np.asarray(pidx, dtype=np.int64)


def uvu_path_weights(conv: "ConvPlan") -> tuple[float, ...]:
    """e3nn's normalisation of each "uvu" path (irrep_normalization="component", path_normalization="element"):
    sqrt((2 l_out + 1) / Σ_{paths into the same output chunk} mul_sh)."""
    fan = {}
    for i, j, k, _, _ in conv.instructions:
        fan[k] = fan.get(k, 0) + conv.irreps_sh[j][0]
    return tuple(math.sqrt((2 * conv.irreps_mid[k][1] + 1) / fan[k]) for i, j, k, _, _ in conv.instructions)


def fused_mid_permutation(conv: "ConvPlan") -> np.ndarray:
    """Columns of the fused "chunk layout" (per chunk: u-major, then the K path components) that give
    ``irreps_mid`` in e3nn's layout (per mid chunk: u-major, then its 2l+1 components): mid = chunk[:, perm]."""
    mid_sl = irreps_slices(conv.irreps_mid)
    perm = np.empty(irreps_dim(conv.irreps_mid), dtype=np.int64)
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


def fused_weight_permutation(conv: "ConvPlan") -> np.ndarray:
    """Columns of e3nn's per-edge weight vector (per path: mul_in channels) in the fused layout (per
    chunk: channel major, then its paths), ``w_fused = w[:, perm]``: a chunk's weights are then one
    (E·mul, P) matrix that a single product with the 0/1 path → component map expands."""
    perm = []
    for ch in fused_chunks(conv):
        P = len(ch.paths)
        perm += [ch.w_start + q * ch.mul + u for u in range(ch.mul) for q in range(P)]
    return np.asarray(perm, dtype=np.int64)


def fused_chunks(conv: "ConvPlan") -> tuple[FusedChunk, ...]:
    pws = uvu_path_weights(conv)
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


@dataclass(frozen=True)
class LinearGroup:
    """All paths of an equivariant linear map between chunks of one irrep type (l, p), as ONE matmul.

    ``x[:, in_cols]`` reshaped to (N·(2l+1), Σ mul_in) times ``flat_weight[w_index] * path_weight``
    (Σ mul_in, Σ mul_out) gives the type's outputs, reshaped (N, 2l+1, Σ mul_out).
    """

    l: int
    p: int
    in_cols: np.ndarray  # (2l+1)·Σ mul_in input columns, component-major then channel
    w_index: np.ndarray  # (Σ mul_in, Σ mul_out) positions in the flat weight vector
    path_weight: float  # e3nn "element" normalisation: 1/sqrt(Σ mul_in of this type)


@dataclass(frozen=True)
class LinearPlan:
    """e3nn's ``o3.Linear(irreps_in, irreps_out)`` (no biases, path_normalization="element") regrouped.

    The flat weight vector is e3nn's (and e3nn-jax's ``FunctionalLinear``'s): one (mul_in, mul_out)
    block per pair of chunks with equal irreps, input chunk major. e3nn applies one small product per
    block; here every irrep type is one product (``groups``), and ``out_perm`` puts the concatenated
    group outputs (each flattened (2l+1, Σ mul_out)) back in e3nn's layout (per chunk: channel major,
    then 2l+1); it points at column ``n_group_cols`` (a zero column) for outputs no input can reach.
    """

    numel: int
    groups: tuple[LinearGroup, ...]
    out_perm: np.ndarray
    n_group_cols: int

    @property
    def needs_zero_column(self) -> bool:
        return bool((self.out_perm == self.n_group_cols).any())


def type_columns(irreps: IrrepsLike) -> dict[tuple[int, int], np.ndarray]:
    """{(l, p): columns of all chunks of that irrep type}, types in order of first appearance; a type's
    columns are component major, then channel over its chunks in order, so ``x[:, cols]`` reshapes to
    (N, 2l+1, Σ mul) — the layout in which one matmul mixes every chunk of the type."""
    irreps = parse_irreps(irreps)
    sl = irreps_slices(irreps)
    out: dict[tuple[int, int], np.ndarray] = {}
    for l, p in dict.fromkeys((l, p) for mul, l, p in irreps if mul > 0):
        chunks = [i for i, (m, l1, p1) in enumerate(irreps) if (l1, p1) == (l, p) and m > 0]
        d = 2 * l + 1
        out[(l, p)] = np.array([sl[i].start + u * d + c for c in range(d) for i in chunks for u in range(irreps[i][0])], dtype=np.int64)
    return out


def linear_plan(irreps_in: IrrepsLike, irreps_out: IrrepsLike) -> LinearPlan:
    irreps_in, irreps_out = parse_irreps(irreps_in), parse_irreps(irreps_out)
    sl_out = irreps_slices(irreps_out)
    # e3nn's flat layout: instructions (i_in, i_out) for i_in, for i_out of equal irreps, each (mul_in, mul_out)
    offsets, n = {}, 0
    for i, (m1, l1, p1) in enumerate(irreps_in):
        for o, (m2, l2, p2) in enumerate(irreps_out):
            if (l1, p1) == (l2, p2):
                offsets[(i, o)] = n
                n += m1 * m2
    groups, out_cols, col = [], {}, 0
    in_types = type_columns(irreps_in)
    for l, p in dict.fromkeys((l, p) for _, l, p in irreps_out):
        ins = [i for i, (m, l1, p1) in enumerate(irreps_in) if (l1, p1) == (l, p) and m > 0]
        outs = [o for o, (m, l2, p2) in enumerate(irreps_out) if (l2, p2) == (l, p) and m > 0]
        if not ins or not outs:
            continue
        d = 2 * l + 1
        in_cols = in_types[(l, p)]
        rows = []
        for i in ins:
            m1 = irreps_in[i][0]
            blocks = [offsets[(i, o)] + np.arange(m1 * irreps_out[o][0]).reshape(m1, irreps_out[o][0]) for o in outs]
            rows.append(np.concatenate(blocks, axis=1))
        w_index = np.concatenate(rows, axis=0)
        n_out = w_index.shape[1]
        w0 = 0
        for o in outs:
            m2 = irreps_out[o][0]
            for w in range(m2):
                for c in range(d):
                    out_cols[sl_out[o].start + w * d + c] = col + c * n_out + w0 + w
            w0 += m2
        groups.append(LinearGroup(l, p, in_cols, w_index, 1.0 / math.sqrt(sum(irreps_in[i][0] for i in ins))))
        col += d * n_out
    out_perm = np.array([out_cols.get(c, col) for c in range(irreps_dim(irreps_out))], dtype=np.int64)
    return LinearPlan(n, tuple(groups), out_perm, col)


def gate_plan(hidden: IrrepsLike, irreps_in: IrrepsLike, irreps_sh: IrrepsLike) -> GatePlan:
    """Keep the hidden irreps that the convolution can reach (as gate_points_2101 does)."""
    hidden = parse_irreps(hidden)
    reach = [(mul, l, p) for mul, l, p in hidden if mul > 0 and tp_path_exists(irreps_in, irreps_sh, l, p)]
    scalars = tuple(x for x in reach if x[1] == 0)
    gated = tuple(x for x in reach if x[1] > 0)
    if gated and not tp_path_exists(irreps_in, irreps_sh, 0, 1):
        raise ValueError(f"no 0e path from {format_irreps(irreps_in)} to drive the gates; add 0e channels to the hidden irreps")
    gates = ((sum(m for m, _, _ in gated), 0, 1),) if gated else ()
    return GatePlan(scalars, gates, gated)


def residual_map(irreps_in: IrrepsLike, irreps_out: IrrepsLike) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Component indices (src in x, dst in out) of output chunks that also exist, identical, in the input."""
    irreps_in, irreps_out = parse_irreps(irreps_in), parse_irreps(irreps_out)
    sl_in, sl_out = irreps_slices(irreps_in), irreps_slices(irreps_out)
    used: set[int] = set()
    src: list[int] = []
    dst: list[int] = []
    for k, chunk in enumerate(irreps_out):
        for i, other in enumerate(irreps_in):
            if i not in used and other == chunk and chunk[0] > 0:
                used.add(i)
                src += list(range(sl_in[i].start, sl_in[i].stop))
                dst += list(range(sl_out[k].start, sl_out[k].stop))
                break
    return tuple(src), tuple(dst)


@dataclass(frozen=True)
class NetworkPlan:
    irreps_sh: tuple[MulIr, ...]  # harmonics computed per edge: l = 0..max(lmax, readout lmax)
    irreps_embed: tuple[MulIr, ...]
    layers: tuple[LayerPlan, ...]
    readout: LayerPlan
    irreps_output: tuple[MulIr, ...]


def network_plan(hidden: IrrepsLike, n_layers: int, lmax: int, embed_dim: int, irreps_output: IrrepsLike, residual: bool = True,
                 readout_lmax: int | None = None) -> NetworkPlan:
    """Layer plans of the network. The hidden convolutions use Y(l <= lmax); the read-out convolution
    uses Y(l <= readout_lmax) (default lmax). Harmonics are ordered by l, so every convolution reads a
    prefix of the per-edge ``irreps_sh``."""
    sh = sh_irreps(lmax)
    sh_out = sh_irreps(lmax if readout_lmax is None else readout_lmax)
    irreps = ((embed_dim, 0, 1),)
    embed = irreps
    layers = []
    for _ in range(n_layers):
        gate = gate_plan(hidden, irreps, sh)
        conv = conv_plan(irreps, sh, gate.irreps_in)
        src, dst = residual_map(irreps, gate.irreps_out) if residual else ((), ())
        layers.append(LayerPlan(conv, gate, src, dst))
        irreps = gate.irreps_out
    out = parse_irreps(irreps_output)
    missing = [ir_str(l, p) for mul, l, p in out if not tp_path_exists(irreps, sh_out, l, p)]
    if missing:
        raise ValueError(
            f"the read-out cannot produce {missing} from the last hidden irreps {format_irreps(irreps)} ⊗ Y(l<={len(sh_out) - 1}); "
            "raise lmax or readout_lmax, add higher-l hidden irreps, or use more layers"
        )
    readout = LayerPlan(conv_plan(irreps, sh_out, out), None, (), ())
    return NetworkPlan(sh if len(sh) >= len(sh_out) else sh_out, embed, tuple(layers), readout, out)


# ------------------------------------------------------------------------------------------- constants
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


MIX_SC = math.sin(math.pi / 8)  # self-connection / convolution mixing of gate_points_2101
MIX_CONV = math.cos(math.pi / 8)


# ------------------------------------------------------------------------------ radial basis (numpy ref)
def bessel_basis_np(d: np.ndarray, r_max: float, n: int) -> np.ndarray:
    """sin(nπ d/r_max) / (d/r_max), n = 1..N; O(1) values for 0 < d < r_max (Å)."""
    x = np.asarray(d, dtype=np.float64)[..., None] / r_max
    return np.sin(np.pi * np.arange(1, n + 1) * x) / x


def gaussian_basis_np(d: np.ndarray, r_max: float, n: int) -> np.ndarray:
    """exp(-((d-μ_k)/σ)^2) / 1.12 * sqrt(N), μ_k = linspace(0, r_max, N), σ = spacing (e3nn's soft one-hot)."""
    mu = np.linspace(0.0, r_max, n)
    sigma = mu[1] - mu[0]
    return np.exp(-(((np.asarray(d)[..., None] - mu) / sigma) ** 2)) / 1.12 * math.sqrt(n)


def envelope_np(d: np.ndarray, r_max: float, p: int = 6) -> np.ndarray:
    """Polynomial cutoff (DimeNet): 1 at 0, 0 with vanishing 1st and 2nd derivatives at r_max."""
    x = np.asarray(d, dtype=np.float64) / r_max
    u = 1 - (p + 1) * (p + 2) / 2 * x**p + p * (p + 2) * x ** (p + 1) - p * (p + 1) / 2 * x ** (p + 2)
    return np.where(x < 1, u, 0.0)


def envelope_coefficients(p: int) -> tuple[float, float, float]:
    return ((p + 1) * (p + 2) / 2, p * (p + 2), p * (p + 1) / 2)


__all__ = [
    "ConvPlan",
    "GatePlan",
    "LayerPlan",
    "NetworkPlan",
    "parse_irreps",
    "format_irreps",
    "irreps_dim",
    "irreps_slices",
    "sh_irreps",
    "tp_path_exists",
    "conv_plan",
    "gate_plan",
    "residual_map",
    "network_plan",
    "second_moment_scale",
]
