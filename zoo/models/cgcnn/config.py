"""CGCNN configuration (backend-free): the hyper-parameters of Xie & Grossman, PRL 120, 145301 (2018).

Defaults are those of the reference implementation (txie-93/cgcnn ``main.py`` / ``model.py``):
64 hidden atom features, 3 convolutions, one 128-wide hidden layer after pooling, 92-dim atom
features, Gaussian distance expansion with centres 0, 0.2, ..., 8 Å (41 centres, width 0.2 Å), and
at most 12 neighbours within 8 Å.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from zoo.core.weights import WeightsError, check_state_matches
from zoo.models import register_family
from zoo.nn.functional import check_density_basis
from zoo.nn.functional import gaussian_expansion
from zoo.nn.norm import StateLayout

# "cgcnn": the exact table CGCNN shipped (atom_init.json); "cgcnn_derived": the same encoding rebuilt from
# pymatgen (zoo.graphs.features.cgcnn_atom_features); "embedding": learnable. Fixed tables are data,
# not weights, so they are not saved with the model: the name in the config selects them.
ATOM_FEATURES = ("cgcnn", "cgcnn_derived", "embedding")
TABLE_ROWS = 101  # table rows are indexed by atomic number Z = 0..100; row 0 is padding (zeros)


@register_family(
    "cgcnn",
    backends={"torch": "zoo.models.cgcnn.torch:CGCNN", "jax": "zoo.models.cgcnn.jax:CGCNN"},
    outputs=("scalar", "class"),
    description="Crystal Graph Convolutional Neural Network (Xie & Grossman, PRL 120, 145301, 2018)",
    citation=(
        "@article{xie2018cgcnn, title={Crystal Graph Convolutional Neural Networks for an Accurate and Interpretable "
        "Prediction of Material Properties}, author={Xie, Tian and Grossman, Jeffrey C.}, journal={Phys. Rev. Lett.}, "
        "volume={120}, pages={145301}, year={2018}}"
    ),
    reference_code="https://github.com/txie-93/cgcnn",
)
@dataclass(frozen=True)
class CGCNNConfig:
    atom_fea_len: int = 64  # hidden atom features in the convolutions
    n_conv: int = 3
    h_fea_len: int = 128  # width of the hidden layers after pooling
    n_h: int = 1  # hidden layers after pooling (conv_to_fc counts as the first)
    orig_atom_fea_len: int = 92  # width of the input atom features (92 for the CGCNN table)
    # Gaussian expansion of the bond length, Å: centres dmin, dmin+step, ..., dmax; width var (None: step).
    dmin: float = 0.0
    dmax: float = 8.0
    step: float = 0.2
    var: float | None = None
    # Neighbour list (CGCNN rule): the max_neighbors nearest images within radius Å.
    radius: float = 8.0
    max_neighbors: int = 12
    classification: bool = False  # binary classification: 2 log-probabilities, as the original
    dropout: float = 0.5  # classification only (the original's nn.Dropout() default p = 0.5)
    # "cgcnn": the fixed 92-dim element table of the paper (see ATOM_FEATURES, atom_table());
    # "embedding": a learnable nn.Embedding(101, orig_atom_fea_len) in its place.
    atom_features: str = "cgcnn"
    # The crystal's volume per atom (Å^3/atom) in this many Gaussians of ln(1 + V/N), through a Linear to
    # atom_fea_len, added to every atom's embedded features; 0 = off (the paper's model). Why: the TFN's
    # ``density_basis`` (zoo.nn.functional.density_features): a permittivity follows the polarisability per
    # volume, and CGCNN's 12 nearest neighbours see only the local packing.
    density_basis: int = 0

    def __post_init__(self) -> None:
        for name in ("atom_fea_len", "n_conv", "h_fea_len", "n_h", "orig_atom_fea_len", "max_neighbors"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"CGCNNConfig.{name} must be a positive integer, got {value!r}")
        check_density_basis(self.density_basis, "CGCNNConfig")
        if self.atom_features not in ATOM_FEATURES:
            raise ValueError(f"CGCNNConfig.atom_features must be one of {ATOM_FEATURES}, got {self.atom_features!r}")
        if self.atom_features != "embedding" and self.orig_atom_fea_len != 92:
            raise ValueError(
                f"CGCNNConfig.orig_atom_fea_len={self.orig_atom_fea_len} but the 'cgcnn' atom table is 92 wide: "
                "leave it at 92, or use atom_features='embedding' for a learnable table of another width"
            )
        if not (self.step > 0 and self.dmax > self.dmin):
            raise ValueError(f"CGCNNConfig: need step > 0 and dmax > dmin, got dmin={self.dmin}, dmax={self.dmax}, step={self.step}")
        if self.radius <= 0:
            raise ValueError(f"CGCNNConfig.radius must be > 0 Å, got {self.radius}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"CGCNNConfig.dropout must be in [0, 1), got {self.dropout}")

    @property
    def nbr_fea_len(self) -> int:
        """Number of Gaussian centres (41 for the defaults), taken from the expansion itself so they agree."""
        return int(gaussian_expansion(np.zeros(1), dmin=self.dmin, dmax=self.dmax, step=self.step, var=self.var).shape[-1])

    def atom_table(self):
        """The fixed (101, 92) float64 atom-feature table (row Z, row 0 zeros), or None for "embedding"."""
        if self.atom_features == "embedding":
            return None
        from zoo.graphs import features

        table = features.original_cgcnn_atom_features() if self.atom_features == "cgcnn" else features.cgcnn_atom_features()
        table = np.asarray(table, dtype=np.float64)
        if table.shape != (TABLE_ROWS, self.orig_atom_fea_len):
            raise ValueError(f"the {self.atom_features!r} atom table has shape {table.shape}, expected ({TABLE_ROWS}, {self.orig_atom_fea_len})")
        return table

    @property
    def n_outputs(self) -> int:
        return 2 if self.classification else 1

    def graph_spec(self):
        from zoo.graphs import GraphSpec

        return GraphSpec(rule="cgcnn", radius=self.radius, max_neighbors=self.max_neighbors)

    def with_target(self, target) -> "CGCNNConfig":
        """Set the output head for ``target`` (a ``zoo.tasks.spec.TargetSpec``)."""
        kind = getattr(target, "kind", None)
        if kind == "scalar":
            return dataclasses.replace(self, classification=False)
        if kind == "class":
            return dataclasses.replace(self, classification=True)
        if kind == "tensor":
            raise ValueError(
                f"CGCNN cannot predict the tensor target {getattr(target, 'name', '?')!r} (rank {getattr(target, 'rank', '?')}): "
                "its features are rotation invariant, so it can only output scalars. Use the 'tfn' model "
                "(point-group equivariant) for tensor targets."
            )
        raise ValueError(f"CGCNN supports 'scalar' and 'class' targets, got kind {kind!r} for target {target!r}")



def state_layout(config: CGCNNConfig) -> dict[str, tuple[str, tuple[int, ...]]]:
    """The torch ``state_dict`` of a CGCNN built from ``config``: ``{name: (kind, shape)}``, in order.

    ``kind`` is "linear.weight", "linear.bias", "bn.weight", "bn.bias", "bn.running_mean",
    "bn.running_var", "bn.num_batches_tracked" or "embedding.weight". This is the weight format of
    both backends; the fixed "cgcnn" atom table is not part of it (it is data, not a weight).
    """
    A, H, F0, M = config.atom_fea_len, config.h_fea_len, config.orig_atom_fea_len, config.nbr_fea_len
    out = StateLayout()
    linear, bn = out.linear, out.batch_norm

    if config.atom_features == "embedding":
        out["atom_embedding.weight"] = ("embedding.weight", (TABLE_ROWS, F0))
    linear("embedding", F0, A)
    for k in range(config.n_conv):
        linear(f"convs.{k}.fc_full", 2 * A + M, 2 * A)
        bn(f"convs.{k}.bn1", 2 * A)
        bn(f"convs.{k}.bn2", A)
    linear("conv_to_fc", A, H)
    for k in range(config.n_h - 1):
        linear(f"fcs.{k}", H, H)
    linear("fc_out", H, config.n_outputs)
    if config.density_basis:  # last, so that the other modules draw the same initial weights for a seed
        linear("density", config.density_basis, A)
    return dict(out)


def _widths_of_state(state: dict) -> dict[str, object]:
    """The hyper-parameters a CGCNN state_dict was built with, as far as its names and shapes tell."""
    found: dict[str, object] = {}
    shape = {k: tuple(np.shape(v)) for k, v in state.items()}
    if len(shape.get("embedding.weight", ())) == 2:
        found["atom_fea_len"], found["orig_atom_fea_len"] = shape["embedding.weight"]
        fc = shape.get("convs.0.fc_full.weight", ())
        if len(fc) == 2:
            found["nbr_fea_len"] = fc[1] - fc[0]  # fc_full maps 2A + M -> 2A
    convs = {k.split(".")[1] for k in state if k.startswith("convs.")}
    found["n_conv"] = len(convs)
    if len(shape.get("conv_to_fc.weight", ())) == 2:
        found["h_fea_len"] = shape["conv_to_fc.weight"][0]
    found["n_h"] = 1 + len({k.split(".")[1] for k in state if k.startswith("fcs.")})
    if len(shape.get("fc_out.weight", ())) == 2:
        found["classification"] = shape["fc_out.weight"][0] == 2
    found["atom_features"] = "embedding" if "atom_embedding.weight" in state else "a fixed table"
    found["density_basis"] = shape["density.weight"][1] if len(shape.get("density.weight", ())) == 2 else 0
    return found


def check_state(config: CGCNNConfig, state: dict, what: str = "CGCNN weights") -> None:
    """Raise ``zoo.core.weights.WeightsError`` unless ``state`` (torch names) fits a CGCNN built from ``config``.

    The message names the hyper-parameters that differ (e.g. weights of another width), then the
    tensors, so the fix (build the model from the config saved with the weights) is obvious.
    """
    want = {
        "atom_fea_len": config.atom_fea_len,
        "orig_atom_fea_len": config.orig_atom_fea_len,
        "nbr_fea_len": config.nbr_fea_len,
        "n_conv": config.n_conv,
        "h_fea_len": config.h_fea_len,
        "n_h": config.n_h,
        "classification": config.classification,
        "atom_features": "embedding" if config.atom_features == "embedding" else "a fixed table",
        "density_basis": config.density_basis,
    }
    found = _widths_of_state(state)
    diff = {k: (found[k], want[k]) for k in want if k in found and found[k] != want[k]}
    if diff:
        raise WeightsError(
            f"{what} do not fit this model: the weights have "
            + ", ".join(f"{k}={a!r}" for k, (a, _) in diff.items())
            + " but the model was built with "
            + ", ".join(f"{k}={b!r}" for k, (_, b) in diff.items())
            + ". Build the model from the config saved next to the weights (zoo.core.weights.load returns it)."
        )
    check_state_matches({k: np.empty(s) for k, (_, s) in state_layout(config).items()}, state, what=what)
