"""The point-group network's plan: feature chunks, filters, coupling paths and gates of one holohedry.

Backend-free bookkeeping and numpy tables for ``zoo.nn.equivariant``'s kernels. Features are ordered
direct sums of irreps of the holohedry H (m-3m or 6/mmm) in its standard orientation
(``zoo.symmetry.groups``): chunks ``(multiplicity, Mulliken label, dimension)``. A convolution couples
a neighbour's features (irrep α) with an *edge filter* (irrep β) into irrep γ:

- filters are the edge direction's real spherical harmonics Y^l (e3nn's basis, l <= lmax, parity
  (-1)^l) subduced into H-irreps: Y^l B with B (2l+1, m d) = ``G.subduction(l, (-1)^l)``, one filter
  per copy of each irrep in each l;
- every (α chunk, filter β, γ in α ⊗ β that the next layer keeps, coupling copy c) is one "uvu" path
  with a learned per-edge weight per channel (from the radial MLP), exactly as the tensor field
  network's paths; its block is B contracted with Dirl's coefficients U_c (``G.coupling``):
  block[s, a, n] = Σ_b B[s, b] U_c[a, b, n]. The harmonics themselves feed the kernel, so the
  subduction costs nothing per edge.

Normalisation: U_c is an isometry (orthonormal columns) and B orthogonal, so a path maps unit-variance
inputs to unit-variance outputs per component; no path weight is needed (1), unlike e3nn's Wigner
symbols whose outputs it rescales by sqrt(2l+1).

The equivariance is exact for the operations of H in its standard frame: Y(h r̂) = D(h) Y(r̂),
D(h) B = B Γ_β(h) and (Γ_α ⊗ Γ_β)(h) U = U Γ_γ(h) (``docs/point_groups.md``).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from zoo.nn.equivariant import Chunk, ConvPath, GatePlan
from zoo.symmetry import point_group
from zoo.symmetry.groups import GIrreps
from zoo.tensors import cartesian_irreps


@dataclass(frozen=True)
class Filter:
    """One edge filter: copy ``copy`` of irrep ``label`` in Y^l; ``B`` (2l+1, d) its subduction block."""

    l: int
    label: str
    copy: int
    B: np.ndarray

    @property
    def sh_rows(self) -> slice:
        """Rows of the filter's harmonics in the per-edge Y (l = 0, 1, ... concatenated)."""
        return slice(self.l**2, (self.l + 1) ** 2)


@lru_cache(maxsize=None)
def filters(group: str, lmax: int) -> tuple[Filter, ...]:
    """The subduced harmonics Y^l (l <= lmax), in order l, then irrep order, then copy."""
    G = point_group(group)
    out = []
    for l in range(lmax + 1):
        for label, (m, B) in G.subduction(l, (-1) ** l).items():
            d = G.dim(label)
            for k in range(m):
                block = np.ascontiguousarray(B[:, k * d : (k + 1) * d])
                block.setflags(write=False)
                out.append(Filter(l, label, k, block))
    return tuple(out)


def parse_chunks(spec: str, group: str) -> tuple[Chunk, ...]:
    """"16xA1g + 8xT1u" → ((16, "A1g", 1), (8, "T1u", 3)), order kept (validated against the group)."""
    G = point_group(group)
    return tuple((m, lab, G.dim(lab)) for m, lab in GIrreps.parse(spec, G).terms if m > 0)


def format_chunks(chunks: tuple[Chunk, ...]) -> str:
    return " + ".join(f"{m}x{lab}" for m, lab, _ in chunks)


@dataclass(frozen=True)
class ConvPlan:
    """One convolution: chunks_in ⊗ filters → chunks_mid (one chunk per path) → chunks_out (linear)."""

    group: str
    lmax: int  # filters from Y^l, l <= lmax
    chunks_in: tuple[Chunk, ...]
    chunks_mid: tuple[Chunk, ...]
    chunks_out: tuple[Chunk, ...]
    paths: tuple[tuple[int, int, str, int], ...]  # (input chunk, filter, output label, coupling copy)

    @property
    def weight_numel(self) -> int:
        """Per-edge weights of the radial MLP's output: one per path and input channel."""
        return sum(self.chunks_in[i][0] for i, _, _, _ in self.paths)

    @property
    def n_sh(self) -> int:
        return (self.lmax + 1) ** 2

    def conv_paths(self) -> list[ConvPath]:
        """The kernels' path blocks (d_sh, d_in, d_out): the filter's subduction contracted with U_c."""
        G = point_group(self.group)
        fs = filters(self.group, self.lmax)
        out = []
        for k, (i, f, gamma, c) in enumerate(self.paths):
            alpha, flt = self.chunks_in[i][1], fs[f]
            U = G.coupling(alpha, flt.label, gamma)[c]  # (d_α, d_β, d_γ)
            block = np.zeros((self.n_sh, U.shape[0], U.shape[2]))
            block[flt.sh_rows] = np.einsum("sb,abn->san", flt.B, U)
            out.append(ConvPath(i, k, block))
        return out


def reachable(group: str, chunks_in: tuple[Chunk, ...], lmax: int) -> set[str]:
    """Irreps a convolution with filters l <= lmax can produce from ``chunks_in``."""
    G = point_group(group)
    labels = {lab for m, lab, _ in chunks_in if m > 0}
    return {gamma for a in labels for f in filters(group, lmax) for gamma in G.product(a, f.label)}


def conv_plan(group: str, chunks_in: tuple[Chunk, ...], lmax: int, chunks_out: tuple[Chunk, ...]) -> ConvPlan:
    """Every path whose output irrep appears in ``chunks_out``, in the loop order (input chunk, filter,
    output irrep in the group's order, coupling copy): the order of the per-edge weights."""
    G = point_group(group)
    wanted = {lab for m, lab, _ in chunks_out if m > 0}
    mid: list[Chunk] = []
    paths: list[tuple[int, int, str, int]] = []
    for i, (mul, alpha, _) in enumerate(chunks_in):
        if mul == 0:
            continue
        for f, flt in enumerate(filters(group, lmax)):
            for gamma, m in G.product(alpha, flt.label).items():
                if gamma not in wanted:
                    continue
                for c in range(m):
                    paths.append((i, f, gamma, c))
                    mid.append((mul, gamma, G.dim(gamma)))
    return ConvPlan(group, lmax, tuple(chunks_in), tuple(mid), tuple(chunks_out), tuple(paths))


def gate_plan(group: str, hidden: tuple[Chunk, ...], chunks_in: tuple[Chunk, ...], lmax: int) -> GatePlan:
    """Keep the hidden irreps the convolution can reach. 1-d irreps are scalars: the trivial one takes
    silu, the sign representations tanh (odd, so f(-x) = -f(x) keeps them equivariant); irreps of
    dimension > 1 are gated by sigmoid(trivial gate channels)."""
    G = point_group(group)
    reach = reachable(group, chunks_in, lmax)
    kept = [c for c in hidden if c[0] > 0 and c[1] in reach]
    scalars = tuple((m, lab, lab == G.trivial) for m, lab, d in kept if d == 1)
    gated = tuple(c for c in kept if c[2] > 1)
    if gated and G.trivial not in reach:
        raise ValueError(f"no {G.trivial} path to drive the gates of {format_chunks(gated)}; add {G.trivial} channels")
    return GatePlan(scalars, G.trivial if gated else None, gated)


@dataclass(frozen=True)
class LayerPlan:
    conv: ConvPlan
    gate: GatePlan | None  # None for a read-out

    @property
    def chunks_out(self) -> tuple[Chunk, ...]:
        return self.gate.chunks_out if self.gate is not None else self.conv.chunks_out


@dataclass(frozen=True)
class OutputMap:
    """Read-out chunks of H-irreps → O(3) irreps coefficients of a Cartesian tensor (e3nn's basis).

    Each O(3) irrep (l, p) of the target (``zoo.tensors.cartesian_irreps``) subduces into H-irreps; the
    read-out produces exactly those (for a symmetric rank-2 tensor under m-3m: A1g + Eg + T2g) and
    ``matrix`` (D, D) maps them back: o3 = y @ matrix (orthogonal, built from the subduction blocks).
    """

    chunks: tuple[Chunk, ...]
    matrix: np.ndarray


@lru_cache(maxsize=None)
def output_map(group: str, formula: str | None) -> OutputMap:
    """``formula`` None: a scalar, one trivial channel."""
    G = point_group(group)
    if formula is None:
        return OutputMap(((1, G.trivial, 1),), np.ones((1, 1)))
    o3 = []  # (l, p, copy) in cartesian_irreps order
    for mul, l, p in cartesian_irreps(formula):
        o3 += [(l, p)] * mul
    # channels of each H-irrep, in the group's irrep order: (O(3) copy index, subduction block of that copy)
    per_label: dict[str, list[tuple[int, np.ndarray]]] = {}
    for n, (l, p) in enumerate(o3):
        for label, (m, B) in G.subduction(l, p).items():
            d = G.dim(label)
            for k in range(m):
                per_label.setdefault(label, []).append((n, B[:, k * d : (k + 1) * d]))
    o3_start = np.cumsum([0] + [2 * l + 1 for l, _ in o3])
    chunks = tuple((len(per_label[lab]), lab, G.dim(lab)) for lab in G.irreps if lab in per_label)
    D = int(o3_start[-1])
    M = np.zeros((D, D))
    col = 0
    for lab in G.irreps:
        if lab not in per_label:
            continue
        d = G.dim(lab)
        for u, (n, B) in enumerate(per_label[lab]):
            # o3[n][s] = Σ_c B[s, c] y[channel u, component c]; y is channel major, then component
            M[col + u * d : col + (u + 1) * d, o3_start[n] : o3_start[n + 1]] = B.T
        col += len(per_label[lab]) * d
    M.setflags(write=False)
    return OutputMap(chunks, M)


@dataclass(frozen=True)
class NetworkPlan:
    group: str
    chunks_embed: tuple[Chunk, ...]
    layers: tuple[LayerPlan, ...]
    readout: LayerPlan
    site_readout: LayerPlan | None  # per-site tensors (``PGNetConfig.site_formula``)
    sh_lmax: int  # harmonics computed per edge: l <= max(lmax, read-out lmax)


def network_plan(group: str, hidden: str, n_layers: int, lmax: int, embed_dim: int, output: OutputMap,
                 readout_lmax: int, site: OutputMap | None = None) -> NetworkPlan:
    G = point_group(group)
    hidden_chunks = parse_chunks(hidden, group)
    if not any(lab == G.trivial for _, lab, _ in hidden_chunks):
        raise ValueError(f"hidden irreps {hidden!r} of {group} need {G.trivial} channels (they carry the species and drive the gates)")
    chunks = ((embed_dim, G.trivial, 1),)
    embed = chunks
    layers = []
    for _ in range(n_layers):
        gate = gate_plan(group, hidden_chunks, chunks, lmax)
        layers.append(LayerPlan(conv_plan(group, chunks, lmax, gate.chunks_in), gate))
        chunks = gate.chunks_out

    def readout(out: OutputMap) -> LayerPlan:
        missing = [lab for m, lab, _ in out.chunks if lab not in reachable(group, chunks, readout_lmax)]
        if missing:
            raise ValueError(f"the {group} read-out cannot produce {missing} from {format_chunks(chunks)} with harmonics "
                             f"l <= {readout_lmax}; raise readout_lmax or add hidden irreps")
        return LayerPlan(conv_plan(group, chunks, readout_lmax, out.chunks), None)

    return NetworkPlan(group, embed, tuple(layers), readout(output), readout(site) if site is not None else None,
                       max(lmax, readout_lmax))
