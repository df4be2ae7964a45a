"""Tensor field network configuration (backend-free).

A periodic tensor field network (Thomas et al., arXiv:1802.08219, 2018) in the form of e3nn's gated
point convolution (``e3nn.nn.models.gate_points_2101``): node features are O(3) irreps, messages are
tensor products of a neighbour's features with the real spherical harmonics of the edge vector (times
a smooth cutoff), weighted per edge by a radial MLP of the distance; a gated nonlinearity, a linear
self-connection and a residual follow. The read-out is a last convolution into exactly the irreps of
the target (``0e`` for a scalar, the irreps of the e3nn ``CartesianTensor`` formula for a tensor),
pooled over atoms and, for tensors, mapped to Cartesian components with a fixed change of basis, so a
dielectric prediction is symmetric and an elastic prediction has every index symmetry by construction.
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from zoo.graphs import GraphSpec
from zoo.graphs.features import CGCNN_FEATURE_DIM, original_cgcnn_atom_features
from zoo.models import register_family
from zoo.nn.functional import check_density_basis
from zoo.tensors import cartesian_irreps, irreps_string, rank_of

from . import irreps as _ir

POOLINGS = ("mean", "sum")
RADIAL_BASES = ("bessel", "gaussian")
TARGET_KINDS = ("scalar", "tensor")
TP_IMPLS = ("fused", "e3nn")
MESSAGE_NORMS = ("mean", "sqrt", "neighbors", "degree")
ATOM_FEATURES = ("embedding", "cgcnn")
READOUTS = ("pool", "dipole")
DIPOLE_TRANSFORMS = ("none", "cm")
N_SPECIES = 101  # embedding rows indexed by atomic number Z = 0..100; row 0 is only used by padding nodes


@register_family(
    "tfn",
    backends={"torch": "zoo.models.tfn.torch:Model", "jax": "zoo.models.tfn.jax:Model"},
    outputs=("scalar", "tensor"),
    description="Periodic tensor field network (Thomas et al. 2018) with e3nn gated point convolutions; O(3)-equivariant scalar and Cartesian tensor heads",
    citation=(
        "@article{thomas2018tfn, title={Tensor field networks: Rotation- and translation-equivariant neural networks for 3D "
           "point clouds}, author={Thomas, Nathaniel and Smidt, Tess and Kearnes, Steven and Yang, Lusann and Li, Li and "
           "Kohlhoff, Kai and Riley, Patrick}, journal={arXiv:1802.08219}, year={2018}}"
    ),
    reference_code="https://github.com/e3nn/e3nn",
    prefit="zoo.models.tfn.prefit:prefit",
)
@dataclass(frozen=True)
class TFNConfig:
    # Hidden features: both parities of l = 0, 1, 2. A layer keeps the irreps its convolution can reach.
    hidden_irreps: str = "32x0e+32x0o+8x1e+8x1o+8x2e+8x2o"
    n_layers: int = 3  # gated convolutions, plus one read-out convolution
    lmax: int = 2  # spherical harmonics of the edge direction, l = 0..lmax (2-4)
    # Harmonics of the read-out convolution; None: max(lmax, highest l of the output irreps). Why: a
    # feature of degree l at an atom must be invariant under the atom's site symmetry, and at sites of
    # cubic symmetry no l = 1, 2 feature is (Td: the first invariant is l = 3, xyz; Oh: l = 4). With
    # Y(l <= 2) everywhere, the read-out of a zinc-blende or half-Heusler crystal (all sites -43m) has
    # no path to the 3o part of a piezoelectric tensor, which is the only part -43m allows: the model
    # predicted exactly 0 for all 18 such crystals of the mp_piezoelectric fold-0 test set (their
    # true |e| is 0.05-5.7 C/m²). Likewise the cubic anisotropy of an elastic tensor (4e) at Oh sites.
    # Y(l) summed over a site's neighbours carries exactly these invariants, so the read-out needs them.
    readout_lmax: int | None = None
    radius: float = 5.0  # Å, neighbour cutoff (graph rule "radius") and radial cutoff of the envelope
    n_basis: int = 8  # radial basis functions of the distance
    radial_basis: str = "bessel"  # "bessel": sin(nπd/rc)/(d/rc); "gaussian": e3nn's soft one-hot
    radial_hidden: int = 64  # width of the radial MLP (distance → per-edge tensor-product weights)
    radial_layers: int = 2  # hidden layers of the radial MLP
    envelope_p: int = 6  # polynomial cutoff exponent (DimeNet): smooth to 2nd order at ``radius``
    embed_dim: int = 32  # scalars "embed_dim x 0e" from the species embedding (learnable, row Z)
    # The species input (scalars only, so equivariance is untouched): "embedding", a learnable row per
    # atomic number; "cgcnn", CGCNN's fixed 92-dim element table (zoo.graphs.features, the table CGCNN
    # shipped: group, period, electronegativity, radius, ... as one-hot blocks) times a learnable
    # (92, embed_dim) matrix, so elements that share properties share input features (jdft2d: 22 of its
    # 77 training elements occur in fewer than 5 crystals). The table is data, not a weight.
    atom_features: str = "embedding"
    # A crystal-level invariant input: the volume per atom (Å^3/atom) in ``density_basis`` Gaussians of
    # ln(1 + v) (zoo.nn.functional.density_features), times a learnable (density_basis, embed_dim)
    # matrix, added to every atom's embedding. 0 = off. Why: with messages averaged over the real
    # neighbours ("neighbors") and mean pooling, nothing in the network sees how densely the atoms are
    # packed, and a permittivity is first of all a polarisability per volume (Clausius-Mossotti): on
    # embedded_dielectric a composition-linear model of ε improves from 9.07 to 7.59 Fnorm on validation
    # when its features are atoms per volume instead of atom fractions (results/tfn/LOG_TARGET.md).
    density_basis: int = 0
    avg_num_neighbors: float = 20.0  # typical incoming edges per atom (estimate_avg_num_neighbors)
    # Summed messages are divided by avg_num_neighbors ("mean", as MACE) or by its square root ("sqrt", as
    # e3nn's gate_points / NequIP). Neighbours in a crystal send nearly the same message at initialisation,
    # so a sum grows like avg_num_neighbors, not its root: with "sqrt" the features' second moment grows
    # ~3x per layer on matbench_jdft2d (1 -> 10 after 3 layers at 5 Å), with "mean" it stays ~0.3-1.
    # "neighbors": divided by each atom's own number of incoming edges (core.inputs), for data sets whose
    # neighbour counts within the radius spread widely (embedded_dielectric: 1 to ~300 at 5 Å).
    # "degree": as "neighbors" for the edge harmonic Y^0, but the Y^l (l >= 1) parts of each edge divided
    # by the square root of its receiver's count (core.inputs). Why: Σ_j Y^l(r̂_ij) over an atom's shell
    # cancels for l >= 1 (exactly at a centrosymmetric or cubic site) and what survives grows like
    # sqrt(count), so dividing it by the count leaves the l >= 1 messages, and the anisotropic part of a
    # tensor prediction, 20-300x weaker in second moment than the scalars (results/tfn/DIAGNOSIS.md, 2).
    message_norm: str = "mean"
    pooling: str = "mean"  # "mean" (intensive targets) or "sum" (extensive) over the atoms of a graph
    residual: bool = True  # add the input to the output channels with identical irreps
    # Convolution kernel; both compute the same function of the same weights (to rounding, tested):
    # "fused": all paths of an input chunk in two contractions + per-chunk scatter (core.fused_conv);
    # "e3nn": e3nn's o3.TensorProduct (torch) / e3nn-jax's legacy FunctionalTensorProduct (jax), path
    # by path, the reference. "fused" is the faster one in both backends, measured on 2 CPU cores (one
    # jdft2d training step, batch 32, ~5000 edges): torch ~2.5x e3nn's, jax 63 vs 84 ms per step.
    tp_impl: str = "fused"
    # Read-out of a dielectric (symmetric rank-2) target. "pool": the pooled irreps of the target
    # (A1 + E + ... in Cartesian form). "dipole": the polarisable read-out (zoo.nn.dipole): one more 0e
    # output per atom gives its polarisability α_i (Å^3; dipole_alpha0 at an output of 0); the crystal's
    # susceptibility χ follows from the self-consistent dipoles in the periodic (Ewald) dipole field with
    # Thole damping. The prediction is this ε in the trainer's standardised units, (f(ε) - dipole_center·1)
    # / dipole_scale, plus the pooled head of the other outputs (a learned correction). f is the trainer's --target-transform (dipole_target_transform: "none", or "cm", the
    # Clausius-Mossotti map (ε - 1)(ε + 2)^-1, where it trains; zoo.training.targets), and the centre and
    # scale are the trainer's, written into the config when the run starts (``with_standardisation``):
    # learned instead, the scale (~1/0.1 in the "cm" space) did not grow within a 340-step run and the
    # polarisabilities grew in its place (results/tfn/dipole/). Why at all: on embedded_dielectric the
    # pooled head learns the isotropic part but barely the anisotropy (results/tfn/embedded_data_curve/),
    # which comes from the long-range, many-body local field that the dipole coupling computes exactly.
    # Needs the "dipole" graph featuriser (graph_spec() asks for it). Measured on embedded_dielectric, whose
    # labeller this read-out contains (per-element α): 5-fold test Fnorm 0.52 with the pre-fitted reference
    # (dipole_prefit_epochs; 0.058x the best floor, the pooled read-out 7.51), 8.66 without it (stop 27). On
    # mp_dielectric_electronic fold 1 it is worse on validation than the pooled read-out (Fnorm 5.69 vs 5.39):
    # an option for dielectric tasks, not the rank-2 recipe (results/tfn/dipole_prefit/).
    readout: str = "pool"
    dipole_target_transform: str = "cm"
    # Å^3, α_i at an output of 0. Small, so that no crystal starts near the polarisation catastrophe (a
    # singular 1 - α T): with α ~ 3.5 Å^3 at the start the first epoch's loss reached 3e4 (results/tfn/dipole/)
    dipole_alpha0: float = 1.0
    # α_i = α_max·sigmoid(gain·out + logit(α0/α_max)): the gain slows how fast α follows the network. At 1,
    # AdamW at lr 5e-3 moved α through the catastrophe within the first epoch (validation Fnorm 7e4; the
    # δ-regularised solve kept it finite, not right); results/tfn/dipole/.
    dipole_alpha_gain: float = 0.1
    # Plus a learned per-element reference, dipole.alpha[Z] (zero at the start) times this gain: the logit of
    # α then moves ~gain·lr per step for every element, as in the one-α-per-element fit that reaches a
    # validation Fnorm of 0.92 (benchmarks/dipole_element_fit.py: Adam at 0.02 = 4 x 5e-3). Without it the
    # network's output alone learned α too slowly (validation Fnorm 8.7 after 10 of 20 epochs).
    dipole_element_gain: float = 4.0
    # The regularised inverse of zoo.nn.dipole (K (K² + δ²)^-1 for K^-1): no pole at the polarisation catastrophe
    dipole_delta: float = 0.01
    # Epochs of the per-element reference's pre-fit on the training split, with the network's α output at
    # zero, before the network trains (zoo.models.tfn.prefit; 0: none, the reference starts at 0). Why: the
    # joint training of 20 epochs does not find the polarisabilities (stop 27: test Fnorm 8.66, 0.97x the
    # floor), the element fit alone does. 30 epochs (~40 s) and 100 were level on fold 0's validation
    # (0.327 / 0.326 after the network's 20 epochs): the cheaper one (results/tfn/dipole_prefit/).
    dipole_prefit_epochs: int = 30
    dipole_center: float = 0.0  # the trainer's isotropic centre (Tr/3 of its mean) in the transformed space
    dipole_scale: float = 1.0  # the trainer's scale in the transformed space
    # Output head, set by with_target(): a scalar (shape (G,)) or a Cartesian tensor (G, 3, ..., 3).
    target_kind: str = "scalar"
    target_rank: int = 0
    target_formula: str | None = None  # e3nn CartesianTensor index symmetries, e.g. "ij=ji"

    def __post_init__(self) -> None:
        for name in ("n_layers", "lmax", "n_basis", "radial_hidden", "embed_dim", "envelope_p"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"TFNConfig.{name} must be a positive integer, got {value!r}")
        check_density_basis(self.density_basis, "TFNConfig")
        if not isinstance(self.radial_layers, int) or self.radial_layers < 0:
            raise ValueError(f"TFNConfig.radial_layers must be an integer >= 0, got {self.radial_layers!r}")
        if self.lmax > 6:
            raise ValueError(f"TFNConfig.lmax={self.lmax}: use 2-4 (higher l costs O(l^6) per tensor product)")
        if self.readout_lmax is not None and (not isinstance(self.readout_lmax, int) or isinstance(self.readout_lmax, bool)
                                              or not 0 <= self.readout_lmax <= 6):
            raise ValueError(f"TFNConfig.readout_lmax must be None or an integer 0-6, got {self.readout_lmax!r}")
        if not self.radius > 0:
            raise ValueError(f"TFNConfig.radius must be > 0 Å, got {self.radius!r}")
        if self.radial_basis not in RADIAL_BASES:
            raise ValueError(f"TFNConfig.radial_basis must be one of {RADIAL_BASES}, got {self.radial_basis!r}")
        if self.radial_basis == "gaussian" and self.n_basis < 2:
            raise ValueError("TFNConfig: the gaussian radial basis needs n_basis >= 2")
        if self.tp_impl not in TP_IMPLS:
            raise ValueError(f"TFNConfig.tp_impl must be one of {TP_IMPLS}, got {self.tp_impl!r}")
        if self.pooling not in POOLINGS:
            raise ValueError(f"TFNConfig.pooling must be one of {POOLINGS}, got {self.pooling!r}")
        if self.atom_features not in ATOM_FEATURES:
            raise ValueError(f"TFNConfig.atom_features must be one of {ATOM_FEATURES}, got {self.atom_features!r}")
        if self.message_norm not in MESSAGE_NORMS:
            raise ValueError(f"TFNConfig.message_norm must be one of {MESSAGE_NORMS}, got {self.message_norm!r}")
        if not self.avg_num_neighbors > 0:
            raise ValueError(f"TFNConfig.avg_num_neighbors must be > 0, got {self.avg_num_neighbors!r}")
        hidden = _ir.parse_irreps(self.hidden_irreps)  # raises on a bad string
        if not any(mul > 0 and l == 0 and p == 1 for mul, l, p in hidden):
            raise ValueError(f"TFNConfig.hidden_irreps={self.hidden_irreps!r} needs 0e channels (they carry the species and drive the gates)")
        if self.target_kind not in TARGET_KINDS:
            raise ValueError(f"TFNConfig.target_kind must be one of {TARGET_KINDS}, got {self.target_kind!r}")
        if self.target_kind == "scalar":
            if self.target_rank != 0 or self.target_formula is not None:
                raise ValueError("TFNConfig: a scalar target has target_rank=0 and target_formula=None")
        else:
            if not 1 <= self.target_rank <= 4:
                raise ValueError(f"TFNConfig: a tensor target needs 1 <= target_rank <= 4, got {self.target_rank}")
            if self.target_formula is None:
                raise ValueError("TFNConfig: a tensor target needs target_formula (use with_target(), which fills it in)")
            if rank_of(self.target_formula) != self.target_rank:
                raise ValueError(f"TFNConfig.target_formula={self.target_formula!r} has rank {rank_of(self.target_formula)}, not target_rank={self.target_rank}")
        if self.readout not in READOUTS:
            raise ValueError(f"TFNConfig.readout must be one of {READOUTS}, got {self.readout!r}")
        if self.readout == "dipole":
            if self.target_kind == "tensor" and (self.target_formula or "").replace(" ", "") != "ij=ji":
                raise ValueError(f"TFNConfig.readout='dipole' predicts a dielectric-like symmetric rank-2 tensor (formula "
                                 f"'ij=ji'), not {self.target_formula!r}; use readout='pool'")
            if self.pooling != "mean":
                raise ValueError("TFNConfig.readout='dipole' pools its direct head with the mean (ε is intensive); use pooling='mean'")
            if self.dipole_target_transform not in DIPOLE_TRANSFORMS:
                raise ValueError(f"TFNConfig.dipole_target_transform must be one of {DIPOLE_TRANSFORMS}, got "
                                 f"{self.dipole_target_transform!r}")
            if not (0 < self.dipole_alpha0 < 50 and self.dipole_scale > 0 and math.isfinite(self.dipole_center)
                    and 0 <= self.dipole_delta < 1 and self.dipole_alpha_gain > 0 and self.dipole_element_gain >= 0):
                raise ValueError("TFNConfig.dipole_alpha0 must be in (0, 50) Å^3 (the bound on α is 99 Å^3), dipole_scale "
                                 "> 0, dipole_center finite, dipole_delta in [0, 1), dipole_alpha_gain > 0 and dipole_element_gain >= 0")
            if not isinstance(self.dipole_prefit_epochs, int) or isinstance(self.dipole_prefit_epochs, bool) or self.dipole_prefit_epochs < 0:
                raise ValueError(f"TFNConfig.dipole_prefit_epochs must be an integer >= 0, got {self.dipole_prefit_epochs!r}")
            if self.dipole_prefit_epochs and self.dipole_element_gain == 0:
                raise ValueError("TFNConfig.dipole_prefit_epochs fits the per-element reference, which dipole_element_gain=0 switches off")
        # Building the plan checks that the read-out can reach every output irrep.
        self.plan()

    # ------------------------------------------------------------------------------------------ shapes
    @property
    def output_irreps(self) -> str:
        """Irreps of the read-out: "1x0e" for a scalar, those of ``CartesianTensor(target_formula)``."""
        if self.target_kind == "scalar":
            return "1x0e"
        target = irreps_string(cartesian_irreps(self.target_formula))
        return f"1x0e+{target}" if self.readout == "dipole" else target  # dipole: α_i first

    @property
    def message_scale(self) -> float:
        """Factor applied to the sum of the messages an atom receives."""
        if self.message_norm in ("neighbors", "degree"):  # the per-atom count is applied to the edges (core.inputs)
            return 1.0
        n = float(self.avg_num_neighbors)
        return 1.0 / n if self.message_norm == "mean" else 1.0 / math.sqrt(n)

    def atom_table(self) -> np.ndarray | None:
        """(N_SPECIES, 92) float64 element table for ``atom_features="cgcnn"``, each row divided by its
        L2 norm (6-9 ones per element), so a row times N(0, 1) weights has unit variance like an embedding
        row; row 0 (padding) zeros. None for ``"embedding"``."""
        if self.atom_features == "embedding":
            return None
        table = np.asarray(original_cgcnn_atom_features(), dtype=np.float64)
        norm = np.linalg.norm(table, axis=1, keepdims=True)
        return table / np.where(norm > 0, norm, 1.0)

    @property
    def embedding_shape(self) -> tuple[int, int]:
        """Shape of the learnable ``embedding.weight``: a row per species, or the element table's width x embed_dim."""
        return (N_SPECIES if self.atom_features == "embedding" else CGCNN_FEATURE_DIM, self.embed_dim)

    @property
    def out_shape(self) -> tuple[int, ...]:
        return (3,) * self.target_rank if self.target_kind == "tensor" else ()

    def plan(self) -> _ir.NetworkPlan:
        return _ir.network_plan(self.hidden_irreps, self.n_layers, self.lmax, self.embed_dim, self.output_irreps, self.residual,
                                self.readout_sh_lmax)

    @property
    def readout_sh_lmax(self) -> int:
        """Highest harmonic of the read-out convolution (``readout_lmax`` or its default, see there)."""
        if self.readout_lmax is not None:
            return self.readout_lmax
        return max([self.lmax] + [l for _, l, _ in _ir.parse_irreps(self.output_irreps)])

    # ----------------------------------------------------------------------------------- shared API
    def graph_spec(self) -> GraphSpec:
        return GraphSpec(rule="radius", radius=self.radius, max_neighbors=None,
                         featurizer="dipole" if self.uses_dipole else "")

    def with_standardisation(self, center, scale: float) -> TFNConfig:
        """The trainer's target standardisation (its centre, an array of the target's shape, and scale), which
        the polarisable read-out's physical prediction is mapped into; unchanged for any other read-out, so
        for every target that is not a rank-2 tensor. The centre is isotropic by construction (the
        trainer's ``TargetNormalizer``), so for the read-out's 3x3 target Tr/3 says it all; a scalar centre
        is that value itself."""
        if not self.uses_dipole:
            return self
        c = np.asarray(center, dtype=float)
        if c.shape not in ((), (3, 3)):
            raise ValueError(f"the polarisable read-out predicts a 3x3 tensor; the trainer's centre has shape {c.shape}")
        iso = float(c) if c.ndim == 0 else float(np.trace(c)) / 3.0
        return dataclasses.replace(self, dipole_center=iso, dipole_scale=float(scale))

    @property
    def uses_dipole(self) -> bool:
        """Whether the polarisable read-out is on (it is only for tensor targets; a scalar config ignores it)."""
        return self.readout == "dipole" and self.target_kind == "tensor"

    @staticmethod
    def migrate(d: dict) -> dict:
        """A config dict written by an older version, in today's fields (``zoo.models.config_from_dict``).

        Removed: ``output_scale`` / ``output_shift`` (a fixed affine map of the output that nothing ever
        set; configs hold the defaults 1.0 / 0.0) and ``tp_impl="auto"`` (it chose "fused" in both
        backends). A removed field with any other value would change the model's function, so it is
        refused rather than dropped. Added with a default that differs from what older runs did:
        ``dipole_prefit_epochs`` (stop 28; runs before it had no pre-fit, 0).
        """
        d = dict(d)
        if "readout" in d:  # written since the polarisable read-out exists (stop 27)
            d.setdefault("dipole_prefit_epochs", 0)
        for name, default in (("output_scale", 1.0), ("output_shift", 0.0)):
            if name in d:
                value = d.pop(name)
                if value != default:
                    raise ValueError(f"this TFN config has {name}={value!r}; {name} was removed (only {default} was ever "
                                     "used): load it with the crystal-zoo version that wrote it")
        if d.get("tp_impl") == "auto":
            d["tp_impl"] = "fused"
        return d

    def with_target(self, target) -> TFNConfig:
        """Set the output head for ``target`` (a ``zoo.tasks.spec.TargetSpec``): scalar or Cartesian tensor."""
        kind = getattr(target, "kind", None)
        name = getattr(target, "name", "?")
        if kind == "scalar":
            return dataclasses.replace(self, target_kind="scalar", target_rank=0, target_formula=None)
        if kind == "tensor":
            rank = int(getattr(target, "rank", 0))
            if rank < 1 or rank > 4:
                raise ValueError(f"tensor target {name!r} has rank {rank}; TFN supports ranks 1-4")
            formula = getattr(target, "formula", None) or "ijkl"[:rank]  # no index symmetry given: a general tensor
            try:
                return dataclasses.replace(self, target_kind="tensor", target_rank=rank, target_formula=formula)
            except ValueError as exc:
                raise ValueError(f"TFN cannot predict tensor target {name!r} ({formula!r}) with this config: {exc}") from exc
        raise ValueError(
            f"TFN supports 'scalar' and 'tensor' targets, got kind {kind!r} for target {name!r}; "
            "use 'cgcnn' for classification"
        )


def estimate_avg_num_neighbors(graphs: Iterable) -> float:
    """Mean number of incoming edges per atom over ``graphs`` (CrystalGraphs), for ``avg_num_neighbors``."""
    n_edges = n_nodes = 0
    for g in graphs:
        n_edges += int(g.n_edges)
        n_nodes += int(g.n_nodes)
    if n_nodes == 0:
        raise ValueError("estimate_avg_num_neighbors: no atoms in the given graphs")
    return max(n_edges / n_nodes, 1.0)


def _linear_numel(irreps_in, irreps_out) -> int:
    # e3nn's o3.Linear / e3nn-jax's FunctionalLinear: one (mul_in, mul_out) block per pair of equal irreps
    return sum(m1 * m2 for m1, l1, p1 in irreps_in for m2, l2, p2 in irreps_out if (l1, p1) == (l2, p2))


def layer_weight_shapes(config: TFNConfig, layer: _ir.LayerPlan) -> dict[str, dict[str, tuple[int, ...]]]:
    """The parameters of one interaction, ``{module: {parameter: shape}}`` in weight-file order: the
    flat e3nn-layout weights of the linears ``lin1`` (x → h), ``lin2`` (messages → output) and ``sc``
    (self-connection), and the radial MLP's matrices ``w0, w1, ...`` (n_basis → hidden → per-edge
    tensor-product weights). Both backends declare exactly these."""
    conv = layer.conv
    sizes = (config.n_basis,) + (config.radial_hidden,) * config.radial_layers + (conv.weight_numel,)
    return {
        "lin1": {"weight": (_linear_numel(conv.irreps_in, conv.irreps_in),)},
        "radial": {f"w{k}": (sizes[k], sizes[k + 1]) for k in range(len(sizes) - 1)},
        "lin2": {"weight": (_linear_numel(conv.irreps_mid, conv.irreps_out),)},
        "sc": {"weight": (_linear_numel(conv.irreps_in, conv.irreps_out),)},
    }


def state_layout(config: TFNConfig) -> dict[str, tuple[int, ...]]:
    """The torch ``state_dict`` of a TFN built from ``config``: ``{name: shape}``, in order.

    This is the weight format of both backends (the flax parameter paths are the same names with
    ``layers.0`` written ``layers_0``, ``zoo.backend.params``). e3nn's buffers are derived from the
    config and are not in it.
    """
    plan = config.plan()
    out: dict[str, tuple[int, ...]] = {"embedding.weight": config.embedding_shape}
    if config.density_basis:
        out["density.weight"] = (config.density_basis, config.embed_dim)
    named = [(f"layers.{k}", lp) for k, lp in enumerate(plan.layers)] + [("readout", plan.readout)]
    for name, lp in named:
        for module, shapes in layer_weight_shapes(config, lp).items():
            out.update({f"{name}.{module}.{param}": shape for param, shape in shapes.items()})
    if config.uses_dipole:  # the per-element polarisability reference, last (both adapters declare it last)
        out["dipole.alpha"] = (N_SPECIES,)
    return out


def n_parameters(config: TFNConfig) -> int:
    return sum(math.prod(shape) for shape in state_layout(config).values())

