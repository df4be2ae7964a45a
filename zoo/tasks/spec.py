"""Declarative task specs (lm-eval-harness style): what a task is, separate from how its data loads.

Bump ``TaskSpec.version`` whenever a change can move a task's scores (data, split, transform, metric).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class TargetSpec:
    """The quantity a task asks for.

    ``kind`` is "scalar", "class" (binary classification) or "tensor". For tensors, ``rank`` and the
    e3nn ``CartesianTensor`` index-symmetry ``formula`` (dielectric "ij=ji", piezoelectric "ijk=ikj",
    elastic "ijkl=jikl=klij") say what the model must output; arrays are always full Cartesian
    (3,)*rank in the frame of the structure. ``transform`` is owned by the task (e.g. "log10" for
    moduli): models are trained and scored on the transformed value, users get the inverse.
    """

    name: str
    kind: str = "scalar"
    unit: str = ""
    rank: int = 0
    formula: str | None = None
    transform: str | None = None  # None | "log10"

    @property
    def shape(self) -> tuple[int, ...]:
        return (3,) * self.rank if self.kind == "tensor" else ()

    def forward(self, y: np.ndarray) -> np.ndarray:
        y = np.asarray(y, dtype=np.float64)
        if self.transform is None:
            return y
        if self.transform == "log10":
            return np.log10(y)
        raise ValueError(f"unknown transform {self.transform!r}")

    def inverse(self, y: np.ndarray) -> np.ndarray:
        y = np.asarray(y, dtype=np.float64)
        if self.transform is None:
            return y
        if self.transform == "log10":
            return 10.0**y
        raise ValueError(f"unknown transform {self.transform!r}")


# Scores where larger is better; every other score is an error (smaller is better).
HIGHER_IS_BETTER = frozenset({"r2", "accuracy", "balanced_accuracy", "f1", "rocauc", "ewt25", "ewt10", "ewt5"})


@dataclass(frozen=True)
class TaskSpec:
    name: str
    version: str
    target: TargetSpec
    input_type: str = "structure"
    task_type: str = "regression"  # "regression" | "classification"
    metrics: tuple[str, ...] = ("mae", "rmse")  # scores recorded per fold (matbench's set for matbench tasks)
    n_folds: int = 5
    split: str = "kfold"  # "kfold" (matbench style) | "holdout" (80/10/10)
    source: str = ""  # where the data comes from (citation / loader)
    extra: dict[str, Any] = field(default_factory=dict)
    # Validation score that picks the best epoch and drives early stopping; None: "mae" (classification:
    # "log_loss", which unlike accuracy still moves when every label is already right).
    selection_metric: str | None = None

    @property
    def selection(self) -> tuple[str, bool]:
        """(validation score that picks the best epoch, whether larger is better)."""
        name = self.selection_metric or ("log_loss" if self.target.kind == "class" else "mae")
        return name, name in HIGHER_IS_BETTER
