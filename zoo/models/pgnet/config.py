"""Point-group equivariant network configuration (backend-free).

A ``pgnet`` sees every crystal in the idealised standard frame of its holohedry (``GraphSpec(frame=
"standard")``, ``zoo.symmetry.standard``): cubic to triclinic crystals in the frame of m-3m (O_h),
trigonal and hexagonal ones in the frame of 6/mmm (D_6h). Its features are irreps of that holohedry
(``hidden_oh`` / ``hidden_d6h``, e.g. "32xA1g + 8xT1u + ..."), so the network is exactly equivariant
under the holohedry's 48 (24) operations, and a crystal's own point group — a subgroup in that
frame — leaves every prediction invariant (Neumann's principle, by construction). A prediction made
in the standard frame is rotated back to the crystal's frame.

One model, two branches: a crystal goes through the branch of its holohedry. The branches share the
species embedding (it feeds the trivial irrep A1g, the same in both groups) and nothing else: the
other irreps of O_h and D_6h have nothing in common, so sharing their weights would tie unrelated
features. A task whose crystals are all cubic trains the O_h branch only; the D_6h weights then stay
at their initialisation (and are still saved, so one weight file serves every crystal).
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from functools import lru_cache

from zoo.graphs import GraphSpec
from zoo.models import register_family
from zoo.nn.equivariant import linear_tables
from zoo.nn.functional import check_density_basis
from zoo.tensors import cartesian_irreps, rank_of

from . import plan as _plan

HOLOHEDRIES = ("m-3m", "6/mmm")  # the frames of zoo.symmetry.standard, in frame_holohedry order
BRANCHES = ("oh", "d6h")  # parameter prefixes of the two branches (torch names: "oh.layers.0.lin1.weight")
POOLINGS = ("mean", "sum")
RADIAL_BASES = ("bessel", "gaussian")
MESSAGE_NORMS = ("mean", "sqrt", "neighbors", "degree")
TARGET_KINDS = ("scalar", "tensor")
N_SPECIES = 101  # embedding rows indexed by atomic number Z = 0..100; row 0 is padding

CITATION = (
    "@misc{crystalzoo_pgnet, title={Point-group equivariant networks with Dirl coupling coefficients}, "
    "author={crystal-zoo}, note={features indexed by irreps of the holohedries O_h and D_6h; couplings by "
    "R. Dirl, J. Math. Phys. 20, 659 (1979)}, year={2026}}"
)


@register_family(
    "pgnet",
    backends={"torch": "zoo.models.pgnet.torch:Model", "jax": "zoo.models.pgnet.jax:Model"},
    outputs=("scalar", "tensor"),
    description="Point-group equivariant network: features are irreps of O_h / D_6h in each crystal's standard frame, "
                "coupled by Dirl's coefficients; exact Neumann symmetry of tensor outputs",
    citation=CITATION,
)
@dataclass(frozen=True)
class PGNetConfig:
    # Hidden features per holohedry (every irrep, both parities). A layer keeps the irreps its
    # convolution can reach from the previous one.
    hidden_oh: str = "32xA1g + 6xA2g + 6xEg + 6xT1g + 6xT2g + 6xA1u + 6xA2u + 6xEu + 6xT1u + 6xT2u"
    hidden_d6h: str = ("32xA1g + 6xA2g + 6xB1g + 6xB2g + 6xE1g + 6xE2g + 6xA1u + 6xA2u + 6xB1u + 6xB2u + 6xE1u "
                       "+ 6xE2u")
    n_layers: int = 3  # gated convolutions, plus one read-out convolution
    lmax: int = 2  # edge filters: the harmonics Y^l, l <= lmax, subduced into irreps of the holohedry
    # Harmonics of the read-out; None: max(lmax, highest l of the target's O(3) irreps). The reason is
    # the TFN's (results/tfn/ANALYSIS.md): a site of cubic symmetry has its first non-trivial invariant
    # at l = 3 (Td: A2u) or 4 (Oh: the cubic anisotropy), so a piezoelectric or elastic read-out needs them.
    readout_lmax: int | None = None
    radius: float = 5.0  # Å, neighbour cutoff and radial cutoff of the envelope
    symprec: float = 1e-3  # Å, spglib's tolerance of the standard frame (zoo.symmetry.standard)
    n_basis: int = 8
    radial_basis: str = "bessel"
    radial_hidden: int = 32  # with 32, one branch has about the TFN's parameter count (66k O_h, 86k D_6h; TFN 85k)
    radial_layers: int = 2
    envelope_p: int = 6
    embed_dim: int = 32  # A1g channels from the species embedding (shared by both branches)
    # The crystal's volume per atom as an A1g input added to every atom's embedding, 0 = off (why and how:
    # TFNConfig.density_basis; the same features, zoo.nn.functional.density_features; shared by both branches).
    density_basis: int = 0
    avg_num_neighbors: float = 20.0
    # Sum of messages / avg_num_neighbors ("mean") or / its square root ("sqrt"); or, as the TFN's
    # (TFNConfig.message_norm), / each atom's own count of incoming edges ("neighbors"; "degree": Y^0 by
    # the count, Y^l >= 1 by its square root), for data sets whose counts within the radius spread widely
    # (embedded_dielectric: 1 to ~300 at 5 Å), where a fixed divisor leaves sparse atoms nearly silent.
    message_norm: str = "mean"
    pooling: str = "mean"
    residual: bool = True
    # Output head, set by with_target(): a scalar (G,) or a Cartesian tensor (G, 3, ..., 3).
    target_kind: str = "scalar"
    target_rank: int = 0
    target_formula: str | None = None
    # An optional per-site head: a Cartesian tensor of this formula per atom (``Model.site_tensors``),
    # e.g. "ij=ji" for an electric-field-gradient-like quantity; it obeys each site's site symmetry.
    site_formula: str | None = None

    def __post_init__(self) -> None:
        for name in ("n_layers", "lmax", "n_basis", "radial_hidden", "embed_dim", "envelope_p"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"PGNetConfig.{name} must be a positive integer, got {value!r}")
        check_density_basis(self.density_basis, "PGNetConfig")
        if not isinstance(self.radial_layers, int) or self.radial_layers < 0:
            raise ValueError(f"PGNetConfig.radial_layers must be an integer >= 0, got {self.radial_layers!r}")
        if self.lmax > 6 or (self.readout_lmax is not None and not 0 <= self.readout_lmax <= 6):
            raise ValueError("PGNetConfig: harmonics up to l = 6 are subduced (zoo.symmetry.groups); use lmax, readout_lmax <= 6")
        if not self.radius > 0 or not self.symprec > 0 or not self.avg_num_neighbors > 0:
            raise ValueError("PGNetConfig: radius (Å), symprec (Å) and avg_num_neighbors must be > 0")
        for name, allowed in (("radial_basis", RADIAL_BASES), ("pooling", POOLINGS), ("message_norm", MESSAGE_NORMS),
                              ("target_kind", TARGET_KINDS)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"PGNetConfig.{name} must be one of {allowed}, got {getattr(self, name)!r}")
        if self.target_kind == "scalar" and (self.target_rank != 0 or self.target_formula is not None):
            raise ValueError("PGNetConfig: a scalar target has target_rank=0 and target_formula=None")
        if self.target_kind == "tensor":
            if self.target_formula is None or rank_of(self.target_formula) != self.target_rank or not 1 <= self.target_rank <= 4:
                raise ValueError("PGNetConfig: a tensor target needs 1 <= target_rank <= 4 and a formula of that rank "
                                 "(use with_target(), which fills them in)")
        if self.site_formula is not None:
            rank_of(self.site_formula)  # a clear error for a bad formula
        for group in HOLOHEDRIES:
            self.plan(group)  # builds and checks both branches (unknown irreps, unreachable outputs)

    # ------------------------------------------------------------------------------ shapes and plans
    @property
    def out_shape(self) -> tuple[int, ...]:
        return (3,) * self.target_rank if self.target_kind == "tensor" else ()

    @property
    def readout_sh_lmax(self) -> int:
        if self.readout_lmax is not None:
            return self.readout_lmax
        formulas = [f for f in (self.target_formula, self.site_formula) if f is not None]
        return max([self.lmax] + [l for f in formulas for _, l, _ in cartesian_irreps(f)])

    @property
    def sh_lmax(self) -> int:
        """Highest degree of the edge harmonics either branch uses (every layer slices its own columns)."""
        return max(self.plan(g).sh_lmax for g in HOLOHEDRIES)

    @property
    def message_scale(self) -> float:
        """Factor applied to the sum of the messages an atom receives."""
        if self.message_norm in ("neighbors", "degree"):  # the per-atom count is applied to the edges (core)
            return 1.0
        n = float(self.avg_num_neighbors)
        return 1.0 / n if self.message_norm == "mean" else 1.0 / math.sqrt(n)

    def hidden(self, group: str) -> str:
        return self.hidden_oh if group == HOLOHEDRIES[0] else self.hidden_d6h

    def plan(self, group: str) -> _plan.NetworkPlan:
        return _network_plan(self, group)

    def graph_spec(self) -> GraphSpec:
        return GraphSpec(rule="radius", radius=self.radius, max_neighbors=None, frame="standard", symprec=self.symprec)

    @staticmethod
    def batch_key(graph) -> int:
        """Batch crystals of one holohedry together (the training loop and inference ask for it): a
        batch runs only the branches it holds, so a mixed batch costs both (measured 1.7-1.8x per step
        on jdft2d, torch, batch 32)."""
        return int(graph.frame_holohedry)

    def with_target(self, target) -> "PGNetConfig":
        """Set the output head for ``target`` (a ``zoo.tasks.TargetSpec``): scalar or Cartesian tensor."""
        kind, name = getattr(target, "kind", None), getattr(target, "name", "?")
        if kind == "scalar":
            return dataclasses.replace(self, target_kind="scalar", target_rank=0, target_formula=None)
        if kind == "tensor":
            rank = int(getattr(target, "rank", 0))
            formula = getattr(target, "formula", None) or "ijkl"[:rank]
            try:
                return dataclasses.replace(self, target_kind="tensor", target_rank=rank, target_formula=formula)
            except ValueError as exc:
                raise ValueError(f"pgnet cannot predict tensor target {name!r} ({formula!r}) with this config: {exc}") from exc
        raise ValueError(f"pgnet predicts 'scalar' and 'tensor' targets, got kind {kind!r} for target {name!r}; use 'cgcnn' for classes")


@lru_cache(maxsize=None)
def _network_plan(config: PGNetConfig, group: str) -> _plan.NetworkPlan:
    out = _plan.output_map(group, config.target_formula if config.target_kind == "tensor" else None)
    site = _plan.output_map(group, config.site_formula) if config.site_formula is not None else None
    return _plan.network_plan(group, config.hidden(group), config.n_layers, config.lmax, config.embed_dim, out,
                              config.readout_sh_lmax, site)


def layer_weight_shapes(config: PGNetConfig, layer: _plan.LayerPlan) -> dict[str, dict[str, tuple[int, ...]]]:
    """The parameters of one interaction, ``{module: {parameter: shape}}``: the flat weights of the
    equivariant linears ``lin1`` (x → h), ``lin2`` (messages → output), ``sc`` (self-connection), and the
    radial MLP's matrices ``w0, w1, ...`` (n_basis → hidden → one weight per path and input channel)."""
    conv = layer.conv
    sizes = (config.n_basis,) + (config.radial_hidden,) * config.radial_layers + (conv.weight_numel,)
    return {
        "lin1": {"weight": (linear_tables(conv.chunks_in, conv.chunks_in).numel,)},
        "radial": {f"w{k}": (sizes[k], sizes[k + 1]) for k in range(len(sizes) - 1)},
        "lin2": {"weight": (linear_tables(conv.chunks_mid, conv.chunks_out).numel,)},
        "sc": {"weight": (linear_tables(conv.chunks_in, conv.chunks_out).numel,)},
    }


def interactions(config: PGNetConfig, group: str) -> dict[str, _plan.LayerPlan]:
    """The named interactions of one branch: ``layers.k``, ``readout`` (and ``site``)."""
    p = config.plan(group)
    out = {f"layers.{k}": lp for k, lp in enumerate(p.layers)}
    out["readout"] = p.readout
    if p.site_readout is not None:
        out["site"] = p.site_readout
    return out


def state_layout(config: PGNetConfig) -> dict[str, tuple[int, ...]]:
    """The torch ``state_dict``: ``{name: shape}``, in order (the weight format of both backends)."""
    out: dict[str, tuple[int, ...]] = {"embedding.weight": (N_SPECIES, config.embed_dim)}
    if config.density_basis:
        out["density.weight"] = (config.density_basis, config.embed_dim)
    for branch, group in zip(BRANCHES, HOLOHEDRIES):
        for name, layer in interactions(config, group).items():
            for module, params in layer_weight_shapes(config, layer).items():
                for pname, shape in params.items():
                    out[f"{branch}.{name}.{module}.{pname}"] = shape
    return out


def n_parameters(config: PGNetConfig) -> int:
    return sum(math.prod(s) for s in state_layout(config).values())
