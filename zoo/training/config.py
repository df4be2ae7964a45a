"""``TrainConfig``: everything that decides a training run, one field per option of ``zoo train``.

The command line is derived from these fields (``zoo.cli``), so an option is declared once, here: the
field ``batch_size`` is the flag ``--batch-size``, its annotation the flag's type, a ``Literal`` its
choices (``__post_init__`` checks the same choices for callers from Python), ``metadata["help"]`` its
help text and ``metadata["flag"]`` a flag spelt otherwise (``--set``, ``--no-progress``). A model's own
hyper-parameters are not fields: they go in ``model_overrides`` (``--set n_conv=4``), checked by the
family's config.
"""
from __future__ import annotations

import dataclasses
import functools
import typing
from dataclasses import dataclass, field
from typing import Any, Literal

DEFAULT_TASK = "embedded_dielectric_iso"


class TrainingError(RuntimeError):
    """A run that cannot start or go on: unusable data, a diverged loss, a run folder that does not fit."""


class UsageError(ValueError):
    """Options that cannot work together (the command line prints the message and exits with status 2)."""


def option(default: Any = dataclasses.MISSING, *, help: str, flag: str | None = None, factory: Any = dataclasses.MISSING):
    """A ``TrainConfig`` field with its command-line help (and its flag when not ``--<name>``)."""
    meta = {"help": help} if flag is None else {"help": help, "flag": flag}
    return field(default=default, default_factory=factory, metadata=meta)


@dataclass
class TrainConfig:
    """Everything that decides a training run (see the module docstring); recorded in ``config.json``."""

    model: str = option("cgcnn", help="model family (zoo list)")
    task: str = option(DEFAULT_TASK, help="task name (zoo list)")
    backend: Literal["torch", "jax"] = option("torch", help="array backend that trains the model")
    fold: int = option(0, help="fold number")
    epochs: int = option(100, help="training epochs")
    batch_size: int = option(64, help="graphs per batch")
    lr: float = option(1e-3, help="peak learning rate")
    # adamw: decoupled weight decay (the same rule in torch and optax); adam: torch's Adam, whose weight
    # decay is an L2 term added to the gradient (optax: add_decayed_weights before adam).
    optimizer: Literal["adam", "adamw"] = option("adamw", help="optimiser (adamw: decoupled weight decay)")
    weight_decay: float = option(0.0, help="weight decay (AdamW: decoupled)")
    schedule: Literal["cosine", "plateau", "constant"] = option(
        "cosine", help="LR schedule (cosine: linear warm-up, then cosine decay to lr * min_lr_factor)")
    warmup_epochs: float = option(1.0, help="epochs of linear LR warm-up (at most a tenth of the run)")
    min_lr_factor: float = option(0.01, help="last (cosine) or lowest (plateau) LR, as a fraction of lr")
    plateau_factor: float = option(0.5, help="plateau schedule: LR multiplier after plateau_patience bad epochs")
    plateau_patience: int = option(10, help="plateau schedule: epochs without a better validation score")
    patience: int = option(30, help="early stopping: epochs without a better validation score, 0 = off")
    grad_clip: float = option(0.0, help="largest global gradient norm, 0 = off")
    loss: Literal["auto", "mse", "l1", "bce"] = option("auto", help="training loss (auto: mse; bce for classes)")
    seed: int = option(0, help="seed of init, shuffling and dropout")
    split_seed: int = option(0, help="seed of the validation split (tasks without a fixed one)")
    val_fraction: float = option(0.1, help="share of a fold's training data held out for validation")
    dtype: Literal["float32", "float64"] = option("float32", help="float precision of the model and the step")
    device: str | None = option(None, help="torch device (cpu, cuda); jax uses its default device")
    out: str = option("runs", help="folder that receives the run folders")
    data_dir: str | None = option(None, help="folder with local data files (matbench: <task>.json.gz; also MATMINER_DATA)")
    task_kwargs: dict[str, Any] = option(factory=dict, flag="--task-arg", help="task option, e.g. --task-arg n_crystals=300")
    model_overrides: dict[str, Any] = option(factory=dict, flag="--set", help="model hyper-parameter, e.g. --set n_conv=4")
    init_weights: str | None = option(None, help="start from these weights (a zoo.core.weights stem) instead of a random init")
    graph_cache: bool = option(True, flag="--no-graph-cache", help="do not cache featurised graphs on disk")
    progress: bool = option(True, flag="--no-progress", help="no progress bars")

    def __post_init__(self) -> None:
        for name, allowed in literal_choices().items():
            if getattr(self, name) not in allowed:
                raise UsageError(f"TrainConfig.{name}={getattr(self, name)!r}; choose one of {allowed}")
        if self.epochs < 1 or self.batch_size < 1:
            raise UsageError(f"epochs ({self.epochs}) and batch_size ({self.batch_size}) must be >= 1")
        if not (self.lr > 0):
            raise UsageError(f"lr must be > 0, got {self.lr}")
        if not (0.0 < self.val_fraction < 1.0):
            raise UsageError(f"val_fraction must be in (0, 1), got {self.val_fraction}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown training options {sorted(unknown)}: config written by another version?")
        return cls(**d)


@functools.cache
def field_types() -> dict[str, Any]:
    """The resolved annotation of every ``TrainConfig`` field (the module uses postponed annotations)."""
    return typing.get_type_hints(TrainConfig)


@functools.cache
def literal_choices() -> dict[str, tuple[Any, ...]]:
    """``{field: allowed values}`` for the fields annotated with a ``Literal``."""
    return {name: typing.get_args(t) for name, t in field_types().items() if typing.get_origin(t) is Literal}
