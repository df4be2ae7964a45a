"""``TrainConfig``: everything that decides a training run, one field per option of ``zoo train``.

The command line is derived from these fields (``zoo.cli``), so an option is declared once, here: the
field ``batch_size`` is the flag ``--batch-size``, its annotation the flag's type, a ``Literal`` its
choices (``__post_init__`` checks the same choices for callers from Python), ``metadata["help"]`` its
help text and ``metadata["flag"]`` a flag spelt otherwise (``--set``, ``--no-progress``). A model's own
hyper-parameters are not fields: they go in ``model_overrides`` (``--set n_conv=4``), checked by the
family's config.
"""
from __future__ import annotations

import collections.abc
import dataclasses
import difflib
import functools
import inspect
import json
import math
import os
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Callable, Literal

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
    # Why early stopping waits for the LR to decay: zoo.training.schedule (module docstring).
    patience_lr_fraction: float = option(0.1, help="early stopping counts only epochs whose LR has decayed to this fraction of the way from its floor to --lr (1 = from the start)")
    grad_clip: float = option(0.0, help="largest global gradient norm, 0 = off")
    loss: Literal["auto", "mse", "l1", "fnorm", "bce"] = option(
        "auto", help="training loss (auto: mse; bce for classes; fnorm: the Frobenius norm of a tensor's error, "
        "frame-independent)")
    # Why only an isotropic centre keeps a tensor model equivariant: zoo.training.targets (module docstring).
    tensor_center: Literal["none", "isotropic"] = option(
        "none", help="tensor targets: subtract nothing or the isotropic part of the training mean (e.g. Tr/3 * I) before scaling")
    # Why a (matrix) logarithm keeps the model equivariant and the prediction positive (definite): zoo.training.targets.
    target_transform: Literal["none", "log", "norm_log", "cm"] = option(
        "none", help="log: positive scalar or symmetric positive-definite rank-2 targets (dielectric): learn the (matrix) "
        "logarithm, predict its exponential; norm_log: any tensor or signed scalar (piezoelectric): compress the "
        "Frobenius norm logarithmically, keep the direction; cm: permittivities, learn the Clausius-Mossotti map "
        "(eps - 1)(eps + 2)^-1 (the space of TFN's polarisable read-out, --set readout=dipole)")
    # Why: an inverse exponential can turn a moderate error into an unbounded one (zoo.training.targets).
    clip_predictions: Literal["none", "train_range"] = option(
        "none", help="train_range: bring predictions back into the training targets' range (scalars: [min, max]; tensors: "
        "the largest training Frobenius norm, direction kept), validation and test alike")
    seed: int = option(0, help="seed of init, shuffling and dropout")
    split_seed: int = option(0, help="seed of the validation split (tasks without a fixed one)")
    val_fraction: float = option(0.1, help="share of a fold's training data held out for validation")
    dtype: Literal["float32", "float64"] = option("float32", help="float precision of the model and the step")
    device: str | None = option(None, help="torch device (cpu, cuda); jax uses its default device")
    # Data parallelism (zoo.training.distributed / parallel_jax): torch through torchrun's variables, jax
    # over a device mesh; --batch-size stays the global batch, so the steps see the same graphs.
    jax_devices: int = option(1, help="jax: shard each batch over this many devices, parameters replicated (0 = all)")
    # Each padded shape is one XLA compilation (zoo.graphs.batch: BucketPolicy, FixedPolicy); a short run's
    # cost is mostly compiling, a long run's mostly steps on padding.
    jax_padding: Literal["buckets", "fixed"] = option(
        "buckets", help="jax: padded batch shapes; buckets: a few sizes that fit each batch (long runs), fixed: one "
        "shape grown only when a batch does not fit (short runs, where compiling costs more than padding)")
    dist_timeout_s: float = option(600.0, help="torchrun: seconds a rank waits for the others before the run stops with an error")
    out: str = option("runs", help="folder that receives the run folders")
    data_dir: str | None = option(None, help="folder with local data files (matbench: <task>.json.gz; also MATMINER_DATA)")
    task_kwargs: dict[str, Any] = option(factory=dict, flag="--task-arg", help="task option, e.g. --task-arg n_crystals=300")
    model_overrides: dict[str, Any] = option(factory=dict, flag="--set", help="model hyper-parameter, e.g. --set n_conv=4")
    init_weights: str | None = option(None, help="start from these weights (a zoo.core.weights stem) instead of a random init")
    # Transfer between tasks (pre-train on one target, fine-tune on another): the trunk's tensors match by
    # name and shape, the read-out of another rank does not and keeps its random init (init.json says which).
    init_partial: bool = option(False, help="with --init-weights: load only the tensors whose names and shapes match "
                                "this model's (the others keep their random init; listed in the run's init.json)")
    # A model to publish after the folds were scored: it sees every structure, so it has no test set and
    # no test metrics (the per-fold figures are the evaluation); validation is still held out for selection.
    full_data: bool = option(False, help="train on all of the task's data (the fold's test set too); no test metrics")
    graph_cache: bool = option(True, flag="--no-graph-cache", help="do not cache featurised graphs on disk")
    progress: bool = option(True, flag="--no-progress", help="no progress bars")
    # The family recipe whose fields this config took ("tfn.scalar"), set by zoo.training.recipes.resolve; the
    # fields themselves are recorded above, so a run replays without the recipe file. None: no recipe.
    recipe: str | None = option(None, help="family recipe (zoo/models/<family>/recipes.json): a task kind (scalar, rank2, ...) "
                                "or none; zoo train/reproduce/tune default to the one for the task's kind")

    def __post_init__(self) -> None:
        """Every option checked before any work starts: its type, its choices and its range."""
        for name, allowed in literal_choices().items():
            if getattr(self, name) not in allowed:
                raise UsageError(f"TrainConfig.{name}={getattr(self, name)!r}; choose one of {allowed}")
        for f in dataclasses.fields(self):
            if f.name not in literal_choices():
                check_type(getattr(self, f.name), field_types()[f.name], f"TrainConfig.{f.name} ({flag_of(f)})")
        if self.epochs < 1 or self.batch_size < 1:
            raise UsageError(f"epochs ({self.epochs}) and batch_size ({self.batch_size}) must be >= 1")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise UsageError(f"lr must be a finite number > 0, got {self.lr} (--lr, e.g. --lr 1e-3)")
        if not (0.0 < self.val_fraction < 1.0):
            raise UsageError(f"val_fraction must be in (0, 1), got {self.val_fraction}")
        if self.init_partial and not self.init_weights:
            raise UsageError("--init-partial says which tensors of --init-weights to load; pass --init-weights too")
        _in_range(self, "fold", 0, None, "the first fold is 0")
        _in_range(self, "patience", 0, None, "0 turns early stopping off")
        _in_range(self, "patience_lr_fraction", 0.0, 1.0, "a fraction of the LR's decay; 1 counts from the first epoch", low_open=True)
        _in_range(self, "plateau_patience", 1, None, "epochs without a better score before the LR drops")
        _in_range(self, "weight_decay", 0.0, None, "0 = none")
        _in_range(self, "grad_clip", 0.0, None, "0 = off")
        _in_range(self, "warmup_epochs", 0.0, None, "epochs of linear warm-up")
        _in_range(self, "min_lr_factor", 0.0, 1.0, "a fraction of --lr")
        _in_range(self, "plateau_factor", 0.0, 1.0, "the LR multiplier of the plateau schedule", low_open=True)
        _in_range(self, "jax_devices", 0, None, "0 = every device jax sees")
        _in_range(self, "dist_timeout_s", 1.0, None, "seconds, e.g. 600")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown training options {sorted(unknown)}: config written by another version?")
        # A run written before patience_lr_fraction existed counted patience from its first epoch.
        d = {"patience_lr_fraction": 1.0, **d}
        return cls(**d)


@functools.cache
def field_types() -> dict[str, Any]:
    """The resolved annotation of every ``TrainConfig`` field (the module uses postponed annotations)."""
    return typing.get_type_hints(TrainConfig)


@functools.cache
def literal_choices() -> dict[str, tuple[Any, ...]]:
    """``{field: allowed values}`` for the fields annotated with a ``Literal``."""
    return {name: typing.get_args(t) for name, t in field_types().items() if typing.get_origin(t) is Literal}


# ------------------------------------------------------------------------------------ option checks
def flag_of(f: dataclasses.Field) -> str:
    """The command-line flag of a ``TrainConfig`` field (``--batch-size``, ``--set`` ...)."""
    return f.metadata.get("flag", "--" + f.name.replace("_", "-"))


def _in_range(config: TrainConfig, name: str, low: float | None, high: float | None, meaning: str,
              low_open: bool = False) -> None:
    value = getattr(config, name)
    ok = math.isfinite(value) and (low is None or (value > low if low_open else value >= low)) and (high is None or value <= high)
    if not ok:
        bounds = (f"{'>' if low_open else '>='} {low}" if high is None else
                  f"in {'(' if low_open else '['}{low}, {high}]") if low is not None else f"<= {high}"
        flag = "--" + name.replace("_", "-")
        raise UsageError(f"TrainConfig.{name}={value!r} ({flag}): must be a finite number {bounds} ({meaning})")


def describe_type(annotation: Any) -> str:
    """``int | None`` -> "int or None" (for messages)."""
    if annotation is Any:
        return "any value"
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(describe_type(a) for a in typing.get_args(annotation))
    if origin is Literal:
        return " or ".join(repr(a) for a in typing.get_args(annotation))
    if annotation is type(None):
        return "None"
    if origin is not None:
        return getattr(origin, "__name__", str(origin))
    return getattr(annotation, "__name__", str(annotation))


def conforms(value: Any, annotation: Any) -> bool:
    """Whether ``value`` is of the annotated type, the way an option is meant: an int is not a bool, a
    float may be given as an int, a path as a str; annotations this does not know accept anything."""
    if annotation is Any or annotation is inspect.Parameter.empty:
        return True
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(conforms(value, a) for a in typing.get_args(annotation))
    if origin is Literal:
        return value in typing.get_args(annotation)
    if annotation is type(None) or annotation is None:
        return value is None
    cls = origin if origin is not None else annotation
    if cls is bool:
        return isinstance(value, bool)
    if cls is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if cls is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if cls in (tuple, list, collections.abc.Sequence):
        return isinstance(value, (list, tuple))
    if cls is os.PathLike:
        return isinstance(value, (str, os.PathLike))
    if isinstance(cls, type):
        return isinstance(value, cls)
    return True


def check_type(value: Any, annotation: Any, what: str) -> None:
    if not conforms(value, annotation):
        raise UsageError(f"{what} must be {describe_type(annotation)}, got {value!r} ({type(value).__name__})")


def check_arguments(values: dict[str, Any], target: Callable | type, what: str, flag: str) -> None:
    """Names and types of ``values`` against the parameters of ``target`` (a function, or a dataclass's
    fields): an unknown name gets a did-you-mean, a value of the wrong type names the expected one.
    Parameters without an annotation take the type of their default (an int default wants an int)."""
    if not values:
        return
    if dataclasses.is_dataclass(target):
        hints = typing.get_type_hints(target)
        params = {f.name: (hints.get(f.name, Any), f.default) for f in dataclasses.fields(target)}
        open_ended = False
    else:
        func = inspect.unwrap(target)
        sig = inspect.signature(func)
        try:
            hints = typing.get_type_hints(func)
        except Exception:  # an annotation that does not resolve: fall back to the defaults' types
            hints = {}
        # Parameters without a default are the ones the factory fills in itself (a task's spec or name).
        params = {n: (hints.get(n, p.annotation if not isinstance(p.annotation, str) else inspect.Parameter.empty),
                      p.default) for n, p in sig.parameters.items()
                  if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD) and p.default is not inspect.Parameter.empty}
        open_ended = any(p.kind == p.VAR_KEYWORD for p in sig.parameters.values())
    for key, value in values.items():
        if key not in params:
            if open_ended:
                continue
            close = difflib.get_close_matches(key, list(params), n=3, cutoff=0.6)
            hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
            raise UsageError(f"{what} has no option {key!r} ({flag} {key}=...){hint} Options: {', '.join(sorted(params))}")
        annotation, default = params[key]
        if annotation in (Any, inspect.Parameter.empty) and default not in (None, inspect.Parameter.empty,
                                                                             dataclasses.MISSING):
            annotation = type(default)
        if not conforms(value, annotation):
            raise UsageError(f"{what}: {flag} {key}={value!r} must be {describe_type(annotation)}, "
                             f"not {type(value).__name__}")


def parse_value(text: str):
    """A command-line value: '3' -> 3, '5e-3' -> 0.005, 'true' -> True, 'none' -> None, '[1,2]' -> [1, 2],
    else the string (stripped). One rule for ``--set``, ``--task-arg`` and ``zoo tune --grid``."""
    low = text.strip().lower()
    if low in ("none", "null"):
        return None
    if low in ("true", "false"):
        return low == "true"
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text.strip()
