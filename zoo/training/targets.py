"""What training does with a task's target: standardise it, pick the loss, score predictions.

- **Standardisation.** Scalars are standardised with the training mean and standard deviation. Tensors
  are *scaled* by the root-mean-square component ``sqrt(mean_n |T_n - M|_F^2 / 3^rank)``, the Frobenius
  norm being O(3)-invariant. ``M`` is zero (``TrainConfig.tensor_center="none"``, the default) or the
  isotropic part of the training mean (``"isotropic"``: its 0e irreps, e.g. Tr(ε)/3 · I for a dielectric
  tensor, zero for an odd rank). Only these are allowed because ``M`` must be invariant under every
  rotation and reflection: ``g·(T - M) = g·T - M`` then, so an equivariant model stays equivariant on
  the standardised target; the full mean tensor is not (a model would have to produce it in every
  orientation of every crystal). Why centre at all: without it the network must build the mean
  permittivity from an output that starts at rms ~0.2 (embedded_dielectric fold 0: Tr/3 of the mean is
  11.1, the rms component 7.6 uncentred and 4.0 centred; results/tfn/TENSOR.md). ``M`` is stored in the normaliser's
  ``mean``, so a run folder's ``normalizer`` undoes itself whichever rule wrote it. Binary classes are
  not scaled (the model outputs a logit).
- **Transform** (``TrainConfig.target_transform``). ``"log"`` learns the logarithm of a positive target
  and undoes it with the exponential: for a scalar ln y; for a symmetric positive-definite rank-2 tensor (a
  dielectric tensor) the matrix logarithm (``zoo.tensors.spectral``). Both tensor maps commute with every
  rotation and reflection, so the model stays exactly equivariant, and every prediction is positive
  (definite). Why: permittivities are heavy-tailed (MP total ε up to ~400 where the median Tr/3 is ~5); on
  log ε the loss weighs a relative error the same on a ε ≈ 3 crystal as on a ε ≈ 80 one, and a
  composition-linear fit of log ε is already 22 % better than one of ε on MP electronic validation
  (results/tfn/LOG_TARGET.md). The centre and scale then apply to the logarithm. Not to be confused with
  ``TargetSpec.transform`` (e.g. "log10" of a modulus): that one is the task's and changes what is
  scored; this one is the training's, and every score stays in the task's units.
  ``"norm_log"`` is for targets with no logarithm (a piezoelectric tensor, a signed scalar): it compresses
  the Frobenius norm, |T| -> s ln(1 + |T|/s), and keeps the direction (``zoo.tensors.norm_log``). The norm is
  O(3)-invariant for every rank, so this too commutes with rotations and reflections. ``s`` is the median
  norm of the training targets, stored as ``transform_scale``.
  ``"cm"`` is for permittivities and the TFN's polarisable read-out: the Clausius-Mossotti map
  (ε - 1)(ε + 2)^-1, a spectral function like the logarithm (so equivariant), undone by
  (1 + 2M)(1 - M)^-1 (``zoo.tensors.spectral``). Why: in the point-dipole model a crystal near the
  polarisation catastrophe has ε -> ∞ for a finite polarisability, and a loss on ε (or log ε) is dominated
  by those crystals' steep walls; the map is ~linear in the polarisabilities (exactly 4πα/3V for a cubic
  crystal) and bounded. Fitting one α per element through the read-out on embedded_dielectric fold 0
  (Adam 0.02, 30 epochs, benchmarks/dipole_element_fit.py): with the Frobenius loss on ε the validation
  Fnorm stalls at 6.3; on the map it reaches 0.92 (results/tfn/dipole/).
- **Clip** (``TrainConfig.clip_predictions="train_range"``). A prediction is brought back into the range of
  the training targets, in the task's units, after the inverse transform: a scalar into [min, max] of the
  training targets, a tensor's Frobenius norm down to the largest training norm (direction kept, so the
  clip is O(3)-equivariant like the transforms). Why: an inverse exponential turns a moderate error in the
  compressed space into an unbounded one in the target's (a TFN on matbench_jdft2d predicted 8066 meV/atom
  for a crystal of 70, where the training targets of every fold end below 1605); no prediction outside what the model
  was trained on has ever been seen to be right. The clip is part of the normaliser, so validation (and
  early stopping) sees clipped predictions as the test does.
- **Loss.** ``auto`` is the mean squared error, binary cross-entropy on the logit for classes.
- **Scores** are ``zoo.tasks.metrics``'s, the ones a task records (classes: matbench's threshold p > 0.5).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from zoo.tasks.metrics import classification_metrics, scalar_metrics, tensor_metrics
from zoo.tasks.spec import TargetSpec
from zoo.tensors import cm_inverse, cm_map, default_formula, isotropic_part, spd_log, sym_exp
from zoo.tensors.norm_log import clip_norm, median_norm, norm_exp, norm_log
from zoo.tensors.spectral import MAX_LOG_EIGENVALUE

from .config import TrainConfig

TENSOR_CENTERS = ("none", "isotropic")
TARGET_TRANSFORMS = ("none", "log", "norm_log", "cm")
PREDICTION_CLIPS = ("none", "train_range")


@dataclass
class TargetNormalizer:
    """y_model = (f(y) - mean) / scale, f the identity or the logarithm (ln y of a scalar, the matrix logarithm
    of a tensor; ``transform``); see the module docstring for what a tensor's mean may be."""

    kind: str  # "scalar" | "tensor" | "class"
    mean: np.ndarray  # () for scalars, target shape for tensors (zeros), () zero for classes
    scale: float
    transform: str = "none"  # "none" | "log" (positive scalars, symmetric positive-definite rank-2 tensors) | "norm_log" | "cm"
    transform_scale: float = 1.0  # norm_log's s, in the target's units (the median training norm)
    # Predictions are clipped to [lo, hi] in the target's units (a tensor: its Frobenius norm, lo = 0); None: not clipped.
    clip: tuple[float, float] | None = None

    @classmethod
    def fit(cls, y: np.ndarray, target: TargetSpec, tensor_center: str = "none", target_transform: str = "none",
            ids: Sequence[str] | None = None, clip_predictions: str = "none") -> "TargetNormalizer":
        """Fitted on the training targets ``y`` (``ids`` name them in errors); ``tensor_center`` ("none" |
        "isotropic") only matters for tensors, ``target_transform`` ("none" | "log" | "norm_log") and
        ``clip_predictions`` ("none" | "train_range") for scalars and tensors (module docstring)."""
        if clip_predictions not in PREDICTION_CLIPS:
            raise ValueError(f"clip_predictions={clip_predictions!r}; choose one of {PREDICTION_CLIPS} (--clip-predictions)")
        if clip_predictions != "none" and target.kind == "class":
            raise ValueError("clip_predictions has no meaning for a class target (a probability); use --clip-predictions none")
        norm = cls._fit(y, target, tensor_center, target_transform, ids)
        if clip_predictions == "train_range" and len(y):
            y = np.asarray(y, dtype=np.float64)
            if norm.kind == "tensor":
                norm.clip = (0.0, float(np.max(np.linalg.norm(y.reshape(len(y), -1), axis=1))))
            else:
                norm.clip = (float(np.min(y)), float(np.max(y)))
        return norm

    @classmethod
    def _fit(cls, y: np.ndarray, target: TargetSpec, tensor_center: str, target_transform: str,
             ids: Sequence[str] | None) -> "TargetNormalizer":
        if tensor_center not in TENSOR_CENTERS:
            raise ValueError(f"tensor_center={tensor_center!r}; choose one of {TENSOR_CENTERS} (--tensor-center)")
        if target_transform not in TARGET_TRANSFORMS:
            raise ValueError(f"target_transform={target_transform!r}; choose one of {TARGET_TRANSFORMS} (--target-transform)")
        y = np.asarray(y, dtype=np.float64)
        if target.kind == "class":
            if target_transform != "none":
                raise ValueError(f"target_transform={target_transform!r} has no meaning for a class target; use "
                                 "--target-transform none")
            return cls("class", np.zeros(()), 1.0)
        if target_transform == "cm":
            formula = (target.formula or default_formula(2)) if y.ndim == 3 else ""
            if target.kind != "tensor" or formula.replace(" ", "") != "ij=ji":
                raise ValueError(f"target_transform='cm' (Clausius-Mossotti) takes a permittivity, a symmetric rank-2 tensor "
                                 f"(formula 'ij=ji'), not a {target.kind} target of formula {target.formula!r}; use "
                                 "--target-transform none")
            y = cm_map(y, ids, "training target")
        if target_transform == "log":
            formula = (target.formula or default_formula(2)) if y.ndim == 3 else ""
            if target.kind == "scalar":
                y = _positive_log(y, ids, "training target")
            elif target.kind != "tensor" or formula.replace(" ", "") != "ij=ji":
                raise ValueError(f"target_transform='log' takes a positive scalar or a symmetric rank-2 tensor target "
                                 f"(formula 'ij=ji'), not a {target.kind} target of formula {target.formula!r}; use "
                                 "--target-transform none")
            else:
                y = spd_log(y, ids, "training target")
        transform_scale = 1.0
        if target_transform == "norm_log":
            transform_scale = median_norm(y, y.ndim - 1)
            y = norm_log(y, y.ndim - 1, transform_scale)
        if target.kind == "tensor":
            rank = y.ndim - 1
            mean = np.zeros(y.shape[1:])
            if tensor_center == "isotropic" and len(y):
                mean = isotropic_part(y.mean(axis=0), target.formula or default_formula(rank))
            d = (y - mean).reshape(len(y), -1)
            rms = float(np.sqrt(np.mean(np.sum(d**2, axis=1)) / 3**rank)) if len(y) else 0.0
            return cls("tensor", mean, rms if rms > 0 else 1.0, target_transform, transform_scale)
        std = float(np.std(y)) if len(y) else 0.0
        return cls("scalar", np.asarray(float(np.mean(y)) if len(y) else 0.0), std if std > 0 else 1.0, target_transform,
                   transform_scale)

    def forward(self, y: np.ndarray, ids: Sequence[str] | None = None) -> np.ndarray:
        y = np.asarray(y, dtype=np.float64)
        if self.transform == "log":
            y = _positive_log(y, ids, "target") if self.kind == "scalar" else spd_log(y, ids, "target")
        elif self.transform == "norm_log":
            y = norm_log(y, np.ndim(self.mean), self.transform_scale)
        elif self.transform == "cm":
            y = cm_map(y, ids, "target")
        return (y - self.mean) / self.scale

    def inverse(self, z: np.ndarray) -> np.ndarray:
        z = np.asarray(z, dtype=np.float64)
        if self.kind == "class":  # logit -> probability of the positive class
            return 1.0 / (1.0 + np.exp(-z))
        y = z * self.scale + self.mean
        if self.transform == "norm_log":
            y = norm_exp(y, np.ndim(self.mean), self.transform_scale)  # a scalar's mean is 0-d: rank 0
        elif self.transform == "log":
            y = np.exp(np.minimum(y, MAX_LOG_EIGENVALUE)) if self.kind == "scalar" else sym_exp(y)
        elif self.transform == "cm":
            y = cm_inverse(y)
        if self.clip is None:
            return y
        lo, hi = self.clip
        if self.kind == "scalar":
            return np.clip(y, lo, hi)
        return clip_norm(y, np.ndim(self.mean), hi) if hi > 0 else np.zeros_like(y)

    def to_dict(self) -> dict[str, Any]:
        d = {"kind": self.kind, "mean": np.asarray(self.mean).tolist(), "scale": float(self.scale)}
        if self.transform != "none":  # absent means "none": run folders and weights written before the field match
            d["transform"] = self.transform
        if self.transform == "norm_log":
            d["transform_scale"] = float(self.transform_scale)
        if self.clip is not None:  # absent means no clip, as in records written before the field
            d["clip"] = [float(self.clip[0]), float(self.clip[1])]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TargetNormalizer":
        transform = d.get("transform", "none")
        if transform not in TARGET_TRANSFORMS or (transform != "none" and d["kind"] == "class"):
            raise ValueError(f"normaliser transform {transform!r} for a {d['kind']} target; known: {TARGET_TRANSFORMS} "
                             "(scalars and tensors)")
        if transform == "norm_log" and not float(d.get("transform_scale", 0.0)) > 0:
            raise ValueError(f"normaliser transform 'norm_log' needs a positive transform_scale, got "
                             f"{d.get('transform_scale')!r}: the record is damaged; retrain or restore it")
        clip = d.get("clip")
        if clip is not None:
            if d["kind"] == "class" or len(clip) != 2 or not all(np.isfinite(clip)) or not clip[0] <= clip[1] \
                    or (d["kind"] == "tensor" and clip[0] != 0):
                raise ValueError(f"normaliser clip {clip!r} for a {d['kind']} target is not a finite [lo, hi] with lo <= hi "
                                 "(a tensor's: [0, largest norm]): the record is damaged; retrain or restore it")
            clip = (float(clip[0]), float(clip[1]))
        return cls(d["kind"], np.asarray(d["mean"], dtype=np.float64), float(d["scale"]), transform,
                   float(d.get("transform_scale", 1.0)), clip)


def _positive_log(y: np.ndarray, ids: Sequence[str] | None, name: str) -> np.ndarray:
    bad = np.flatnonzero(~(y > 0))
    if len(bad):
        k = int(bad[0])
        label = repr(ids[k]) if ids is not None and k < len(ids) else f"#{k}"
        raise ValueError(f"{name} {label} (and {len(bad) - 1} more) is {float(y[k])!r}, not positive, so it has no logarithm; "
                         "train this target with --target-transform none")
    return np.log(y)


def resolve_loss(config: TrainConfig, target: TargetSpec) -> str:
    """The loss a run trains with: ``config.loss``, or for ``auto`` mse (bce for a class target)."""
    if config.loss != "auto":
        if (config.loss == "bce") != (target.kind == "class"):
            raise ValueError(f"loss {config.loss!r} does not fit a {target.kind} target")
        return config.loss
    return "bce" if target.kind == "class" else "mse"


def compute_metrics(target: TargetSpec, y_true: np.ndarray, y_pred: np.ndarray, structures: Sequence | None = None,
                    ops: Sequence[np.ndarray] | None = None, progress: bool | None = None) -> dict[str, Any]:
    """Scores in task units, from ``zoo.tasks.metrics`` by target kind (classes: probabilities of the
    positive class). Tensors: the point-group symmetry scores need ``structures`` (or their point-group
    ``ops``, computed once when several predictions of the same crystals are scored); without them (as
    every epoch's validation) only the frame-free scores. An empty set gives ``{"n": 0}``."""
    if len(y_true) == 0:
        return {"n": 0}
    if target.kind == "class":
        return classification_metrics(y_true, y_pred)
    if target.kind == "tensor":
        return tensor_metrics(y_true, y_pred, structures=structures, formula=target.formula, ops=ops, progress=progress)
    return scalar_metrics(y_true, y_pred)
