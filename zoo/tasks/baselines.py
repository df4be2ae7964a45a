"""Honest floors every model must beat: both with ``fit(structures, y)`` / ``predict(structures)``.

- ``MeanBaseline``: the training mean. For tensors the mean tensor is then made to respect each test
  crystal's point group (Neumann average over its Cartesian operations, ``mode="point_group"``),
  or reduced to its rotation-invariant part (``mode="isotropic"``: the 0e irreps; zero for the
  odd-rank piezoelectric tensor), or left as is (``mode="none"``).
- ``ElementLinearBaseline``: ridge-regularised least squares on the composition (element fractions
  or element counts per cell), one linear model per Cartesian component, symmetrised to the test
  crystal's point group like the mean. Elements never seen in training contribute nothing.

``y`` is a (N,) array for scalar tasks and (N, 3,...,3) (or a sequence of (3,...,3) arrays) for tensor
tasks, in the crystals' own frames. Inputs may be pymatgen ``Structure``s; the element model also
takes ``Composition``s or formula strings (matbench composition tasks), and the mean baseline
ignores its inputs for scalars. ``predict(..., ops=...)`` takes precomputed point-group operations
(``zoo.symmetry.point_group_ops``) so they are computed once per crystal.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from zoo.symmetry import point_group_ops, symmetrize_batch

from . import metrics as _metrics
from zoo import tensors as _tensors

MAX_Z = 118


def _targets(y: Any) -> np.ndarray:
    return _metrics._stack(y, "y")


def _tensor_rank(y: np.ndarray) -> int:
    rank = y.ndim - 1
    if rank > 0 and y.shape[1:] != (3,) * rank:
        raise ValueError(f"tensor targets must be full Cartesian (N, 3,...,3), got {y.shape}; "
                         f"convert Voigt arrays with tasks.tensors.from_voigt")
    return rank


def _point_group_symmetrize(pred: np.ndarray, structures, ops) -> np.ndarray:
    if ops is None:
        if structures is None:
            raise ValueError("symmetrising to the test point groups needs the test structures or ops=")
        ops = point_group_ops(structures)
    return symmetrize_batch(pred, list(ops))


class MeanBaseline:
    """Predict the training mean (tensors: symmetrised to each test crystal's point group)."""

    MODES = ("point_group", "isotropic", "none")

    def __init__(self, mode: str = "point_group", formula: str | None = None):
        if mode not in self.MODES:
            raise ValueError(f"unknown mode {mode!r}; choose one of {self.MODES}")
        self.mode = mode
        self.formula = formula
        self.mean_: np.ndarray | None = None

    def fit(self, structures: Sequence[Any] | None, y: Any) -> "MeanBaseline":
        y = _targets(y)
        if len(y) == 0:
            raise ValueError("cannot fit a baseline on zero samples")
        if structures is not None and len(structures) != len(y):
            raise ValueError(f"got {len(structures)} structures but {len(y)} targets")
        _tensor_rank(y)
        self.mean_ = y.mean(axis=0)
        return self

    def predict(self, structures: Sequence[Any], ops: Sequence[np.ndarray] | None = None) -> np.ndarray:
        if self.mean_ is None:
            raise RuntimeError("MeanBaseline.predict called before fit")
        n = len(ops) if structures is None and ops is not None else len(structures)
        rank = self.mean_.ndim
        if rank == 0 or self.mode == "none":
            return np.broadcast_to(self.mean_, (n,) + self.mean_.shape).copy()
        if self.mode == "isotropic":
            iso = _tensors.isotropic_part(self.mean_, self.formula or _tensors.default_formula(rank))
            return np.broadcast_to(iso, (n,) + iso.shape).copy()
        pred = np.broadcast_to(self.mean_, (n,) + self.mean_.shape)
        return _point_group_symmetrize(pred, structures, ops)


def composition_features(inputs: Sequence[Any], features: str = "fraction") -> np.ndarray:
    """(N, 118) element fractions (rows sum to 1) or counts per cell (``features="count"``), column Z-1."""
    from pymatgen.core import Composition

    if features not in ("fraction", "count"):
        raise ValueError(f"features must be 'fraction' or 'count', got {features!r}")
    X = np.zeros((len(inputs), MAX_Z))
    for i, obj in enumerate(inputs):
        if isinstance(obj, str):
            comp = Composition(obj)
        elif isinstance(obj, Composition):
            comp = obj
        elif hasattr(obj, "composition"):
            comp = obj.composition
        else:
            raise TypeError(f"input {i} is a {type(obj).__name__}; pass pymatgen Structures, Compositions "
                            f"or formula strings")
        if features == "fraction":
            comp = comp.fractional_composition
        for el, amt in comp.element_composition.items():
            X[i, el.Z - 1] += amt
    return X


class ElementLinearBaseline:
    """Ridge regression of every target component on element fractions (or counts).

    Minimises (1/N) ||Y - X W - b||^2 + alpha ||W||^2 with an unpenalised intercept b (X and Y are
    centred), so ``alpha`` does not depend on the training-set size. Tensors: one output per Cartesian
    component, then the Neumann average over the test crystal's point group (``symmetrize=True``).
    """

    def __init__(self, alpha: float = 1e-4, features: str = "fraction", symmetrize: bool = True):
        if alpha < 0:
            raise ValueError(f"alpha must be >= 0, got {alpha}")
        if features not in ("fraction", "count"):
            raise ValueError(f"features must be 'fraction' or 'count', got {features!r}")
        self.alpha = float(alpha)
        self.features = features
        self.symmetrize = symmetrize
        self.coef_: np.ndarray | None = None
        self.intercept_: np.ndarray | None = None
        self.target_shape_: tuple[int, ...] = ()

    def fit(self, structures: Sequence[Any], y: Any) -> "ElementLinearBaseline":
        y = _targets(y)
        if len(structures) != len(y):
            raise ValueError(f"got {len(structures)} inputs but {len(y)} targets")
        if len(y) == 0:
            raise ValueError("cannot fit a baseline on zero samples")
        _tensor_rank(y)
        self.target_shape_ = y.shape[1:]
        X = composition_features(structures, self.features)
        Y = y.reshape(len(y), -1)
        n = len(X)
        xm, ym = X.mean(axis=0), Y.mean(axis=0)
        Xc, Yc = X - xm, Y - ym
        # Ridge as an augmented least-squares problem (stable when alpha = 0 or columns are empty).
        A = np.vstack([Xc / np.sqrt(n), np.sqrt(self.alpha) * np.eye(MAX_Z)])
        B = np.vstack([Yc / np.sqrt(n), np.zeros((MAX_Z, Y.shape[1]))])
        W, *_ = np.linalg.lstsq(A, B, rcond=None)
        self.coef_ = W
        self.intercept_ = ym - xm @ W
        return self

    def predict(self, structures: Sequence[Any], ops: Sequence[np.ndarray] | None = None) -> np.ndarray:
        if self.coef_ is None:
            raise RuntimeError("ElementLinearBaseline.predict called before fit")
        X = composition_features(structures, self.features)
        pred = (X @ self.coef_ + self.intercept_).reshape((len(X),) + self.target_shape_)
        if self.target_shape_ and self.symmetrize:
            pred = _point_group_symmetrize(pred, structures, ops)
        return pred


BASELINES = {"mean": MeanBaseline, "element_linear": ElementLinearBaseline}


def run_on_task(task: Any, baseline: str | Any = "mean", folds: Sequence[Any] | None = None, **kwargs: Any):
    """Fit/predict/record a baseline on every fold of a task with matbench's interface; returns the task.

    Uses only ``task.folds``, ``get_train_and_val_data(fold)``, ``get_test_data(fold)`` and
    ``record(fold, predictions)``. Classification tasks get the majority class (mean > 0.5).
    """
    factory = BASELINES[baseline] if isinstance(baseline, str) else baseline
    spec = getattr(task, "spec", None)
    classification = getattr(spec, "task_type", "regression") == "classification"
    if hasattr(task, "load"):
        task.load()
    for fold in (task.folds if folds is None else folds):
        inputs, outputs = task.get_train_and_val_data(fold)
        model = factory(**kwargs).fit(list(inputs), list(outputs) if np.ndim(outputs.iloc[0]) else outputs.to_numpy())
        test_inputs = task.get_test_data(fold, include_target=False)
        pred = model.predict(list(test_inputs))
        if classification:
            pred = pred > 0.5
        task.record(fold, list(pred) if pred.ndim > 1 else pred)
    return task


__all__ = ["BASELINES", "ElementLinearBaseline", "MeanBaseline", "composition_features", "run_on_task"]
