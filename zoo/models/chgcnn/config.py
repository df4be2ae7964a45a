"""CHGCNN configuration (backend-free): the crystal hypergraph convolutional network's hyper-parameters.

Heilman, Gong & Yan, "Crystal Hypergraph Convolutional Networks", arXiv 2411.12616 (2024); reference
code qmatyanlab/CHGCNN (and ajh011/chgcnn-clean). The layers (``layers``) are written in a small
grammar: one string per layer, one letter per hyperedge order whose messages that layer sums,

- ``b`` bonds (the graph's edges, two atoms), ``t`` triplets (a centre and two of its bonds),
  ``m`` motifs (a centre and its CrystalNN coordination shell), ``c`` the unit cell (all its atoms):
  the aggregated convolution x_i ⊕ h ⊕ AGG{x_w : w ∈ h} of every hyperedge h that i receives from;
- ``B``, ``T``, ``M``: the inter-order ("relatives") variant of that order, x_i ⊕ h ⊕ x_k for every
  other member k of h (``B`` is CGCNN's convolution). The unit cell has none (it would pair every
  two atoms of a crystal).

so ``("btm",) * 3`` is three layers of x_i <- softplus(x_i + bond term + triplet term + motif term),
and ``("b", "b", "m")`` two bond layers then a motif layer. Bonds and triplets send their message to
their centre, motifs and the cell to every member (see ``core``).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from zoo.core.weights import WeightsError, check_state_matches
from zoo.graphs import GraphSpec, HyperSpec
from zoo.models import register_family
from zoo.nn.functional import check_density_basis, gaussian_expansion
from zoo.nn.hyper import COMBINE, check_aggregations, combined_width
from zoo.nn.norm import StateLayout

ATOM_FEATURES = ("cgcnn", "cgcnn_derived", "embedding")  # as CGCNN's (zoo.models.cgcnn.config)
TABLE_ROWS = 101
ORDERS = {"b": "bond", "t": "triplet", "m": "motif", "c": "cell"}
RELATIVES = {"B": "bond", "T": "triplet", "M": "motif"}


@register_family(
    "chgcnn",
    backends={"torch": "zoo.models.chgcnn.torch:CHGCNN", "jax": "zoo.models.chgcnn.jax:CHGCNN"},
    outputs=("scalar", "class"),
    description="Crystal hypergraph convolutional network: bond, triplet, motif and unit-cell hyperedges "
                "(Heilman, Gong & Yan, arXiv 2411.12616)",
    citation=(
        "@misc{heilman2024chgcnn, title={Crystal Hypergraph Convolutional Networks}, author={Heilman, Alexander J. "
        "and Gong, Weiyi and Yan, Qimin}, year={2024}, eprint={2411.12616}, archivePrefix={arXiv}, "
        "primaryClass={cond-mat.mtrl-sci}}"
    ),
    reference_code="https://github.com/qmatyanlab/CHGCNN",
)
@dataclass(frozen=True)
class CHGCNNConfig:
    atom_fea_len: int = 64  # A: atom features in the convolutions
    layers: tuple[str, ...] = ("btm", "btm", "btm")  # see the module docstring
    aggregations: tuple[str, ...] = ("mean", "std", "max", "min")  # AGG over a hyperedge's members
    combine: str = "concat"  # "concat": k*A wide; "attention": A wide (zoo.nn.hyper.combine)
    h_fea_len: int = 128
    n_h: int = 1
    orig_atom_fea_len: int = 92
    atom_features: str = "cgcnn"
    # Bonds: CGCNN's neighbour rule (max_neighbors nearest within radius Å; None: all within radius) and
    # its Gaussian expansion of the bond length, centres dmin..dmax every step Å, width var (None: step).
    radius: float = 8.0
    max_neighbors: int | None = 12
    dmin: float = 0.0
    dmax: float = 8.0
    step: float = 0.2
    var: float | None = None
    # Triplets: pairs of each centre's triplet_neighbors shortest bonds (and those tied with the last);
    # feature: Gaussians of the bond angle's cosine, centres -1..1 every angle_step, width angle_step.
    triplet_neighbors: int = 6
    angle_step: float = 0.1
    # Motifs: shell method ("crystalnn" with a MinimumDistanceNN fallback, or "mindist") and features
    # ("lsop+csm", "lsop", "csm"; zoo.graphs.motifs).
    motif_nn: str = "crystalnn"
    motif_features: str = "lsop+csm"
    classification: bool = False
    dropout: float = 0.5  # classification only, as CGCNN
    # The crystal's volume per atom (Å^3/atom) as an input, in ``density_basis`` Gaussians of ln(1 + v)
    # added to every atom's embedding (0: off, the paper's model). CGCNN's and the TFN's jdft2d searches
    # chose it (zoo.nn.functional.density_features): mean pooling cannot otherwise see how densely the atoms
    # are packed, e.g. the spacing of a layered crystal's sheets beyond the 12 nearest neighbours.
    density_basis: int = 0

    def __post_init__(self) -> None:
        layers = self.layers.split(",") if isinstance(self.layers, str) else self.layers
        object.__setattr__(self, "layers", tuple(str(x).strip() for x in layers))
        aggs = self.aggregations.split(",") if isinstance(self.aggregations, str) else self.aggregations
        object.__setattr__(self, "aggregations", check_aggregations(str(a).strip() for a in aggs))
        for name in ("atom_fea_len", "h_fea_len", "n_h", "orig_atom_fea_len", "triplet_neighbors"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"CHGCNNConfig.{name} must be a positive integer, got {value!r}")
        if not self.layers:
            raise ValueError("CHGCNNConfig.layers is empty: give at least one layer, e.g. layers=('btm',)")
        for k, layer in enumerate(self.layers):
            bad = [c for c in layer if c not in ORDERS and c not in RELATIVES]
            if not layer or bad or len(set(layer)) != len(layer):
                raise ValueError(
                    f"CHGCNNConfig.layers[{k}]={layer!r}: each layer is a string of distinct letters from "
                    f"{''.join(ORDERS)} (aggregated: bond, triplet, motif, cell) and {''.join(RELATIVES)} (inter-order "
                    "variant of bond, triplet, motif), e.g. layers=('btm', 'btm', 'btm') or --set layers=bt,bt,BM")
        if self.combine not in COMBINE:
            raise ValueError(f"CHGCNNConfig.combine must be one of {COMBINE}, got {self.combine!r}")
        if self.atom_features not in ATOM_FEATURES:
            raise ValueError(f"CHGCNNConfig.atom_features must be one of {ATOM_FEATURES}, got {self.atom_features!r}")
        if self.atom_features != "embedding" and self.orig_atom_fea_len != 92:
            raise ValueError(f"CHGCNNConfig.orig_atom_fea_len={self.orig_atom_fea_len} but the {self.atom_features!r} atom "
                             "table is 92 wide: leave it at 92, or use atom_features='embedding'")
        if not (self.step > 0 and self.dmax > self.dmin) or not self.angle_step > 0:
            raise ValueError(f"CHGCNNConfig: need step > 0, dmax > dmin and angle_step > 0 (got step={self.step}, "
                             f"dmin={self.dmin}, dmax={self.dmax}, angle_step={self.angle_step})")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"CHGCNNConfig.dropout must be in [0, 1), got {self.dropout}")
        check_density_basis(self.density_basis, "CHGCNNConfig")
        self.graph_spec()  # checks radius, max_neighbors and the motif options

    # -- what the layers use
    def uses(self, letters: str) -> bool:
        return any(c in layer for layer in self.layers for c in letters)

    def hyper_spec(self) -> HyperSpec:
        return HyperSpec(triplets=self.triplet_neighbors if self.uses("tT") else 0,
                         motifs=self.motif_nn if self.uses("mM") else "none",
                         motif_features=self.motif_features, motif_pairs=self.uses("M"))

    def graph_spec(self) -> GraphSpec:
        hs = self.hyper_spec()
        rule = "cgcnn" if self.max_neighbors is not None else "radius"
        return GraphSpec(rule=rule, radius=self.radius, max_neighbors=self.max_neighbors,
                         featurizer=hs.to_string() if hs.any else "")

    # -- widths
    @property
    def bond_fea_len(self) -> int:
        return int(gaussian_expansion(np.zeros(1), dmin=self.dmin, dmax=self.dmax, step=self.step, var=self.var).shape[-1])

    @property
    def angle_fea_len(self) -> int:
        return int(gaussian_expansion(np.zeros(1), dmin=-1.0, dmax=1.0, step=self.angle_step).shape[-1])

    @property
    def motif_fea_len(self) -> int:
        return HyperSpec(motifs=self.motif_nn, motif_features=self.motif_features).motif_fea_len

    def hedge_fea_len(self, order: str) -> int:
        return {"bond": self.bond_fea_len, "triplet": self.angle_fea_len, "motif": self.motif_fea_len, "cell": 0}[order]

    def terms(self, k: int) -> list[tuple[str, bool]]:
        """(order, relatives) of every term of layer k, in the layer string's order."""
        return [(ORDERS[c], False) if c in ORDERS else (RELATIVES[c], True) for c in self.layers[k]]

    @staticmethod
    def term_name(order: str, relatives: bool) -> str:
        return f"{order}_rel" if relatives else order

    @property
    def n_outputs(self) -> int:
        return 2 if self.classification else 1

    def atom_table(self):
        """The fixed (101, 92) float64 element table (CGCNN's), or None for a learnable embedding."""
        if self.atom_features == "embedding":
            return None
        from zoo.graphs import features

        table = features.original_cgcnn_atom_features() if self.atom_features == "cgcnn" else features.cgcnn_atom_features()
        return np.asarray(table, dtype=np.float64)

    def with_target(self, target) -> "CHGCNNConfig":
        kind = getattr(target, "kind", None)
        if kind == "scalar":
            return dataclasses.replace(self, classification=False)
        if kind == "class":
            return dataclasses.replace(self, classification=True)
        raise ValueError(f"CHGCNN predicts invariant scalars or binary classes, not the {kind!r} target "
                         f"{getattr(target, 'name', '?')!r}; use the 'tfn' model for tensor targets")


def state_layout(config: CHGCNNConfig) -> dict[str, tuple[str, tuple[int, ...]]]:
    """The torch ``state_dict`` of a CHGCNN built from ``config``: ``{name: (kind, shape)}``, in order.

    Per layer k and term (``CHGCNNConfig.terms``): ``convs.k.<order>[_rel].fc_full`` Linear(A + F + W -> 2A)
    (F: the hyperedge's features, W: the combined AGG (aggregated) or A (relatives)), ``bn1`` (2A, over
    incidences), ``bn2`` (A, over atoms), and ``query`` (A,) with ``combine="attention"``.
    """
    A, H, F0 = config.atom_fea_len, config.h_fea_len, config.orig_atom_fea_len
    out = StateLayout()
    linear, bn = out.linear, out.batch_norm

    if config.atom_features == "embedding":
        out["atom_embedding.weight"] = ("embedding.weight", (TABLE_ROWS, F0))
    linear("embedding", F0, A)
    for k in range(len(config.layers)):
        for order, rel in config.terms(k):
            name = f"convs.{k}.{config.term_name(order, rel)}"
            width = A if rel else combined_width(A, config.aggregations, config.combine)
            linear(f"{name}.fc_full", A + config.hedge_fea_len(order) + width, 2 * A)
            bn(f"{name}.bn1", 2 * A)
            bn(f"{name}.bn2", A)
            if not rel and config.combine == "attention":
                out[f"{name}.query"] = ("query", (A,))
    linear("conv_to_fc", A, H)
    for k in range(config.n_h - 1):
        linear(f"fcs.{k}", H, H)
    linear("fc_out", H, config.n_outputs)
    if config.density_basis:  # last, so that the other modules draw the same initial weights for a seed
        linear("density", config.density_basis, A)
    return dict(out)


def check_state(config: CHGCNNConfig, state: dict, what: str = "CHGCNN weights") -> None:
    """Raise ``WeightsError`` unless ``state`` (torch names) fits a CHGCNN built from ``config``; the message
    names the layers / terms that differ before the tensors."""
    want = state_layout(config)
    have_terms = sorted({".".join(k.split(".")[:3]) for k in state if k.startswith("convs.")})
    want_terms = sorted({".".join(k.split(".")[:3]) for k in want if k.startswith("convs.")})
    if have_terms != want_terms:
        raise WeightsError(f"{what} do not fit this model: the weights have convolution terms {have_terms} but the model "
                           f"(layers={config.layers}) has {want_terms}. Build the model from the config saved next to the "
                           "weights (zoo.core.weights.load returns it).")
    w = state.get("density.weight")
    have_density = int(np.shape(w)[1]) if w is not None and len(np.shape(w)) == 2 else 0
    if have_density != config.density_basis:
        raise WeightsError(f"{what} do not fit this model: the weights have density_basis={have_density} but the model "
                           f"was built with density_basis={config.density_basis}. Build the model from the config saved "
                           "next to the weights (zoo.core.weights.load returns it).")
    check_state_matches({k: np.empty(s) for k, (_, s) in want.items()}, state, what=what)
