"""The tensor field network's plan: irreps of every layer, tensor-product instructions, gates, residuals.

Pure bookkeeping (no arrays): ``network_plan`` turns a config into a ``NetworkPlan`` that both backends
build from, so the torch (e3nn) and the JAX (e3nn-jax) model are the same function of the same weights.
Neither library's own ``sort()``/``simplify()`` is used on a plan: the two libraries order irreps
differently (e3nn puts ``0o`` before ``0e``, e3nn-jax the other way round), so every irreps list here
keeps the order it was written in and both libraries receive it verbatim. How the kernels lay out
their columns for a plan is ``core.py``'s business.

Conventions shared with e3nn and e3nn-jax (checked in tests/models/tfn): real spherical harmonics with
``normalization="component"`` (``|Y^l|^2 = 2l+1``), ``D^1(R) = R`` in (x, y, z) order, Wigner-3j from
the libraries' tables, tensor products with ``irrep_normalization="component"`` and
``path_normalization="element"``, and weights that are N(0, 1) with the path weight applied in the
forward pass (e3nn torch's only mode, e3nn-jax's ``gradient_normalization="path"``).
"""
from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from zoo.nn import equivariant
from zoo.tensors import irreps_string
from zoo.tensors.formula import MulIr

IrrepsLike = str | Sequence[MulIr]  # "32x0e+8x1o" or ((32, 0, 1), (8, 1, -1))

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
    return irreps_string(parse_irreps(irreps))


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

    @property
    def path_weights(self) -> tuple[float, ...]:
        """e3nn's normalisation of each "uvu" path (irrep_normalization="component",
        path_normalization="element"): sqrt((2 l_out + 1) / Σ_{paths into the same output chunk} mul_sh)."""
        fan: dict[int, int] = {}
        for _, j, k, _, _ in self.instructions:
            fan[k] = fan.get(k, 0) + self.irreps_sh[j][0]
        return tuple(math.sqrt((2 * self.irreps_mid[k][1] + 1) / fan[k]) for _, _, k, _, _ in self.instructions)


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
    as_chunks = lambda irreps: tuple((mul, (l, p), 2 * l + 1) for mul, l, p in parse_irreps(irreps))  # noqa: E731
    src, dst = equivariant.residual_map(as_chunks(irreps_in), as_chunks(irreps_out))
    return tuple(int(i) for i in src), tuple(int(i) for i in dst)


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


