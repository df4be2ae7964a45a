"""The ``Run``: one training run's settings and progress, shared by the loop (``loop.py``), the
checkpoints (``checkpoint.py``) and the end-of-run evaluation (``evaluate.finish_run``).

A run is fixed by its resolved ``TrainConfig``, the task spec, the model config and graph spec, the
loss and the target normaliser (fitted on the training targets); it moves through ``TrainerState``
(epoch, optimiser step, best validation score, early-stopping count), which every checkpoint saves.

Model selection follows the task: ``task.selection`` names the validation score that picks the best
epoch and says whether larger is better; early stopping counts the epochs since that best one.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from zoo.graphs import GraphSpec
from zoo.models import config_from_dict, config_to_dict, get_family, make_config
from zoo.tasks.spec import TargetSpec, TaskSpec

from .config import TrainConfig, TrainingError, check_arguments
from .targets import TargetNormalizer


@dataclass
class TrainerState:
    """Where a run stands after its last finished epoch (a checkpoint's ``trainer.json``)."""

    epoch: int = 0  # finished epochs
    step: int = 0  # optimiser steps so far (the LR schedule's clock)
    best_metric: float | None = None  # selection score of the best epoch; None until one is finite
    best_epoch: int = 0
    bad_epochs: int = 0  # epochs since the best one that count towards patience (LRSchedule.annealed)
    stopped_early: bool = False

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainerState":
        return cls(**{f.name: d[f.name] for f in dataclasses.fields(cls)})


@dataclass
class Run:
    dir: Path
    config: TrainConfig  # resolved: ``task`` is the task's own name, ``epochs`` the (possibly extended) target
    task: TaskSpec
    model_config: Any  # the family's config dataclass, fitted to the target
    graph_spec: GraphSpec
    loss: str  # "mse" | "l1" | "fnorm" | "bce"
    normalizer: TargetNormalizer
    state: TrainerState = field(default_factory=TrainerState)
    best_weights: dict[str, np.ndarray] | None = None  # torch-named state of the best epoch so far
    data: dict[str, Any] = field(default_factory=dict)  # what data the run saw (zoo.training.dataid.record)

    @property
    def target(self) -> TargetSpec:
        return self.task.target

    @property
    def selection(self) -> tuple[str, bool]:
        """(validation score that picks the best epoch, whether larger is better)."""
        return self.task.selection

    @property
    def selection_key(self) -> str:
        return "val_" + self.selection[0]

    @property
    def title(self) -> str:
        c = self.config
        return f"{c.model} ({c.backend}) on {c.task}, fold {c.fold}"

    def end_epoch(self, epoch: int, metric: float, weights: Callable[[], dict[str, np.ndarray]], counts: bool = True) -> bool:
        """Count a finished epoch with validation selection score ``metric``; keep ``weights()`` when it
        is the best so far. Returns whether it is. ``counts``: whether an epoch without progress counts
        towards ``patience`` (the loop passes ``LRSchedule.annealed``: not while the LR is still high)."""
        s, higher = self.state, self.selection[1]
        improved = math.isfinite(metric) and (
            s.best_metric is None or (metric > s.best_metric if higher else metric < s.best_metric))
        if improved:
            s.best_metric, s.best_epoch, s.bad_epochs = metric, epoch, 0
            self.best_weights = weights()
        elif counts:
            s.bad_epochs += 1
        s.epoch = epoch
        if self.config.patience and s.bad_epochs >= self.config.patience:
            s.stopped_early = True
        return improved

    def finished(self) -> bool:
        return self.state.epoch >= self.config.epochs or self.state.stopped_early

    def weights_meta(self, **extra: Any) -> dict[str, Any]:
        """What a weights file carries so that the model can be rebuilt from it alone."""
        c = self.config
        return {
            "model": c.model,
            "config": config_to_dict(self.model_config),
            "featurization": dataclasses.asdict(self.graph_spec),
            "target": dataclasses.asdict(self.target),
            "normalizer": self.normalizer.to_dict(),
            "task": {"name": self.task.name, "version": self.task.version},
            "fold": c.fold,
            "backend": c.backend,
            "dtype": c.dtype,
            "data": self.data,
            **extra,
        }

    def resolved_config(self, sizes: dict[str, int]) -> dict[str, Any]:
        """The run folder's ``config.json``."""
        name, higher = self.selection
        return {
            "train": self.config.to_dict(),
            "model": {"name": self.config.model, "config": config_to_dict(self.model_config)},
            "graph_spec": dataclasses.asdict(self.graph_spec),
            "task": {"name": self.task.name, "version": self.task.version, "target": dataclasses.asdict(self.target),
                     "fold": self.config.fold},
            "loss": self.loss,
            "selection_metric": "val_" + name,
            "selection_higher_is_better": higher,
            "normalizer": self.normalizer.to_dict(),
            "n": sizes,
            "data": self.data,
        }

    def seeds(self) -> dict[str, Any]:
        """Every seed of the run and what it drives (``env.json``)."""
        c = self.config
        return {"seed": c.seed, "split_seed": c.split_seed, "shuffle": "numpy default_rng([seed, epoch])",
                "init": f"{c.backend} seeded with {c.seed}"}


def model_config_for(config: TrainConfig, target: TargetSpec, saved: dict | None = None):
    """The family config of a run: ``saved`` (a resumed run's) or the defaults with ``model_overrides``,
    fitted to ``target``. Refuses a target kind the family cannot predict."""
    kinds = get_family(config.model).outputs
    if target.kind not in kinds:
        raise TrainingError(f"model {config.model!r} predicts {list(kinds)}, but task {config.task!r} needs a {target.kind} target")
    if saved is None:  # --set names and types, with a did-you-mean, before the family's own checks
        check_arguments(dict(config.model_overrides), get_family(config.model).config, f"model {config.model}", "--set")
    mc = config_from_dict(config.model, saved) if saved is not None else make_config(config.model, **config.model_overrides)
    return mc.with_target(target)
