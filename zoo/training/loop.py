"""Backend-neutral training loop: data split, target standardisation, LR schedule, early stopping,
checkpoints, resume, metrics and predictions. The backend adapters (``zoo.training.torch`` /
``zoo.training.jax``) only turn graphs into batches and run one optimisation / prediction step.

Choices (documented in the README, recorded in every run's ``config.json``):

- **Split.** Training uses ``task.get_train_and_val_data(fold)``; the validation ids come from
  ``task.get_validation_ids(fold)`` when the task defines them, otherwise a seeded 10 % of that set
  (``numpy.random.default_rng([split_seed, fold])``). Model selection and early stopping look only at
  the validation set, never at the training error; the test set is predicted once, with the best model.
- **Targets.** Scalars are standardised with the training mean and standard deviation. Tensors are only
  *scaled*, by the root-mean-square component ``sqrt(mean_n |T_n|_F^2 / 3^rank)``: the Frobenius norm is
  O(3)-invariant and no mean is subtracted, so an equivariant model stays equivariant on the scaled
  target. Binary classes are not scaled (the model outputs a logit; loss = BCE).
- **Optimiser.** Adam or AdamW (decoupled weight decay, the same rule in torch and optax).
- **Schedule.** ``cosine`` (default): linear warm-up over ``warmup_epochs`` then cosine decay to
  ``lr * min_lr_factor`` at the last epoch, updated every step. ``plateau``: multiply the LR by
  ``plateau_factor`` after ``plateau_patience`` epochs without a better validation metric (floored at
  ``lr * min_lr_factor``). ``constant``. The LR is computed here in Python and handed to the step, so
  both backends follow exactly the same schedule.
- **Early stopping.** Stop after ``patience`` epochs without a better validation metric (0 = never).
- **Randomness.** Everything is derived from ``seed``: model init (``torch.manual_seed(seed)`` /
  ``jax.random.PRNGKey(seed)``), the shuffle of epoch e (``default_rng([seed, e])``) and dropout keys
  (jax: ``fold_in(key, step)``; torch: its global generator, saved in every checkpoint). Shuffles do not
  depend on history, so a resumed run replays exactly the batches an uninterrupted run would have seen.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import time
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from zoo.core.io import append_jsonl, read_jsonl, write_json, write_text

from . import runs

log = logging.getLogger("zoo.training")

DEFAULT_TASK = "embedded_dielectric_iso"


class TrainingError(RuntimeError):
    pass


# ==================================================================================================
# configuration


@dataclass
class TrainConfig:
    """Everything that decides a training run (the model's own hyper-parameters go in ``model_overrides``)."""

    model: str = "cgcnn"
    task: str = DEFAULT_TASK
    backend: str = "torch"
    fold: int = 0
    epochs: int = 100
    batch_size: int = 64
    lr: float = 1e-3
    optimizer: str = "adamw"  # "adam" | "adamw"
    weight_decay: float = 0.0
    schedule: str = "cosine"  # "cosine" | "plateau" | "constant"
    warmup_epochs: float = 1.0
    min_lr_factor: float = 0.01
    plateau_factor: float = 0.5
    plateau_patience: int = 10
    patience: int = 30  # early stopping, in epochs without a better validation metric; 0 = off
    grad_clip: float = 0.0  # max global gradient norm; 0 = off
    loss: str = "auto"  # "auto" (mse; bce for classes) | "mse" | "l1" | "bce"
    seed: int = 0
    split_seed: int = 0
    val_fraction: float = 0.1
    dtype: str = "float32"  # "float32" | "float64"
    device: str | None = None  # torch device ("cpu", "cuda"); jax uses its default device
    out: str = "runs"
    data_dir: str | None = None
    task_kwargs: dict[str, Any] = field(default_factory=dict)
    model_overrides: dict[str, Any] = field(default_factory=dict)
    init_weights: str | None = None  # start from these weights (zoo.core.weights stem) instead of a random init
    graph_cache: bool = True
    progress: bool = True

    def __post_init__(self) -> None:
        choices = {
            "backend": ("torch", "jax"),
            "optimizer": ("adam", "adamw"),
            "schedule": ("cosine", "plateau", "constant"),
            "loss": ("auto", "mse", "l1", "bce"),
            "dtype": ("float32", "float64"),
        }
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"TrainConfig.{name}={getattr(self, name)!r}; choose one of {allowed}")
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError(f"epochs ({self.epochs}) and batch_size ({self.batch_size}) must be >= 1")
        if not (self.lr > 0):
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if not (0.0 < self.val_fraction < 1.0):
            raise ValueError(f"val_fraction must be in (0, 1), got {self.val_fraction}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown training options {sorted(unknown)}: config written by another version?")
        return cls(**d)


# ==================================================================================================
# targets


@dataclass
class TargetNormalizer:
    """y_model = (y - mean) / scale; see the module docstring for why tensors get scale only."""

    kind: str  # "scalar" | "tensor" | "class"
    mean: np.ndarray  # () for scalars, target shape for tensors (zeros), () zero for classes
    scale: float

    @classmethod
    def fit(cls, y: np.ndarray, target) -> "TargetNormalizer":
        y = np.asarray(y, dtype=np.float64)
        if target.kind == "class":
            return cls("class", np.zeros(()), 1.0)
        if target.kind == "tensor":
            rank = y.ndim - 1
            rms = float(np.sqrt(np.mean(np.sum(y.reshape(len(y), -1) ** 2, axis=1)) / 3**rank)) if len(y) else 0.0
            return cls("tensor", np.zeros(y.shape[1:]), rms if rms > 0 else 1.0)
        std = float(np.std(y)) if len(y) else 0.0
        return cls("scalar", np.asarray(float(np.mean(y)) if len(y) else 0.0), std if std > 0 else 1.0)

    def forward(self, y: np.ndarray) -> np.ndarray:
        return (np.asarray(y, dtype=np.float64) - self.mean) / self.scale

    def inverse(self, z: np.ndarray) -> np.ndarray:
        z = np.asarray(z, dtype=np.float64)
        if self.kind == "class":  # logit -> probability of the positive class
            return 1.0 / (1.0 + np.exp(-z))
        return z * self.scale + self.mean

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "mean": np.asarray(self.mean).tolist(), "scale": float(self.scale)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TargetNormalizer":
        return cls(d["kind"], np.asarray(d["mean"], dtype=np.float64), float(d["scale"]))


def resolve_loss(config: TrainConfig, target) -> str:
    if config.loss != "auto":
        if (config.loss == "bce") != (target.kind == "class"):
            raise ValueError(f"loss {config.loss!r} does not fit a {target.kind} target")
        return config.loss
    return "bce" if target.kind == "class" else "mse"


# ==================================================================================================
# metrics


def compute_metrics(target, y_true: np.ndarray, y_pred: np.ndarray, structures=None, full: bool = True) -> dict[str, float]:
    """Metrics in task units. ``mae``/``rmse`` are always present (``mae`` of a tensor = mean component
    error); ``full`` adds ``zoo.tasks.metrics`` (scalar: max_error, r2; tensor: Fnorm, EwT, symmetry ...)."""
    y_true = np.asarray(y_true, dtype=np.float64)
    y_pred = np.asarray(y_pred, dtype=np.float64)
    if len(y_true) == 0:
        return {"n": 0}
    if target.kind == "class":
        return _class_metrics(y_true, y_pred)
    err = y_pred - y_true
    out: dict[str, float] = {"n": int(len(y_true)), "mae": float(np.mean(np.abs(err))), "rmse": float(np.sqrt(np.mean(err**2)))}
    if not full:
        return out
    try:
        from zoo.tasks import metrics as task_metrics
    except ImportError:  # zoo/tasks/metrics.py absent from this installation: mae / rmse only
        log.warning("tasks.metrics is not importable: reporting mae and rmse only")
        return out
    if target.kind == "tensor":
        extra = task_metrics.tensor_metrics(y_true, y_pred, structures=structures, formula=target.formula)
    else:
        extra = task_metrics.scalar_metrics(y_true, y_pred)
    for k, v in extra.items():
        out.setdefault(k, float(v) if np.ndim(v) == 0 else np.asarray(v).tolist())
    return out


def _class_metrics(y_true: np.ndarray, p: np.ndarray) -> dict[str, float]:
    from sklearn import metrics as skm

    y = y_true.astype(bool)
    pred = p >= 0.5
    pc = np.clip(p, 1e-12, 1 - 1e-12)
    out = {
        "n": int(len(y)),
        "accuracy": float(skm.accuracy_score(y, pred)),
        "balanced_accuracy": float(skm.balanced_accuracy_score(y, pred)),
        "f1": float(skm.f1_score(y, pred, zero_division=0)),
        "log_loss": float(-np.mean(y * np.log(pc) + (~y) * np.log(1 - pc))),
    }
    out["rocauc"] = float(skm.roc_auc_score(y, p)) if 0 < y.sum() < len(y) else float("nan")
    return out


def selection_metric(target) -> str:
    """The validation number that picks the best epoch (lower is better)."""
    return "log_loss" if target.kind == "class" else "mae"


# ==================================================================================================
# learning-rate schedule


class LRSchedule:
    def __init__(self, config: TrainConfig, steps_per_epoch: int):
        self.c = config
        self.steps_per_epoch = max(int(steps_per_epoch), 1)
        self.total = self.c.epochs * self.steps_per_epoch
        # Warm-up never takes more than a tenth of the run (a 3-epoch smoke run still decays).
        self.warmup = int(min(self.c.warmup_epochs * self.steps_per_epoch, 0.1 * self.total))
        self.factor = 1.0  # plateau multiplier
        self.best = math.inf
        self.bad_epochs = 0

    def lr(self, step: int) -> float:
        base, floor = self.c.lr, self.c.lr * self.c.min_lr_factor
        if self.warmup > 0 and step < self.warmup:
            return base * (step + 1) / self.warmup
        if self.c.schedule == "cosine":
            t = (step - self.warmup) / max(self.total - self.warmup, 1)
            return floor + 0.5 * (base - floor) * (1.0 + math.cos(math.pi * min(max(t, 0.0), 1.0)))
        if self.c.schedule == "plateau":
            return max(base * self.factor, floor)
        return base

    def end_epoch(self, metric: float) -> None:
        if self.c.schedule != "plateau" or not np.isfinite(metric):
            return
        if metric < self.best * (1 - 1e-4):
            self.best, self.bad_epochs = metric, 0
        else:
            self.bad_epochs += 1
            if self.bad_epochs >= self.c.plateau_patience:
                self.factor *= self.c.plateau_factor
                self.bad_epochs = 0

    def state_dict(self) -> dict[str, Any]:
        return {"factor": self.factor, "best": _finite_or_none(self.best), "bad_epochs": self.bad_epochs}

    def load_state_dict(self, d: dict[str, Any]) -> None:
        self.factor, self.bad_epochs = float(d["factor"]), int(d["bad_epochs"])
        self.best = math.inf if d["best"] is None else float(d["best"])


def _finite_or_none(x: float) -> float | None:
    """JSON has no infinity: "no value yet" is written as null."""
    return float(x) if math.isfinite(x) else None


# ==================================================================================================
# data


@dataclass
class Split:
    ids: list[str]
    graphs: list  # CrystalGraph
    y: np.ndarray  # task units, (n, *target_shape)
    structures: list

    def __len__(self) -> int:
        return len(self.ids)


@dataclass
class FoldData:
    train: Split
    val: Split
    test: Split
    test_failed: dict[str, str]  # test structures without a graph (predicted with the floor)
    test_all_ids: list[str]  # every test id, in the task's order
    test_all_y: np.ndarray | None
    failures: dict[str, str]


def _series_values(s) -> list:
    return list(s.values) if hasattr(s, "values") else list(s)


def _series_ids(s, prefix: str) -> list[str]:
    if hasattr(s, "index"):
        return [str(i) for i in s.index]
    return [f"{prefix}{i}" for i in range(len(s))]


def _stack_targets(values: Sequence, target) -> np.ndarray:
    shape = target.shape
    if len(values) == 0:
        return np.zeros((0,) + tuple(shape))
    arr = np.stack([np.asarray(v, dtype=np.float64) for v in values])
    if arr.shape[1:] != tuple(shape):
        raise TrainingError(f"targets have shape {arr.shape[1:]} but the task says {tuple(shape)}")
    return arr


def validation_ids(task, fold, train_ids: Sequence[str], config: TrainConfig) -> list[str]:
    ids = None
    getter = getattr(task, "get_validation_ids", None)
    if getter is not None:
        ids = getter(fold)
    if ids is not None:
        ids = [str(i) for i in ids]
        missing = set(ids) - set(train_ids)
        if missing:
            raise TrainingError(f"task validation ids are not in the training data of fold {fold}: {sorted(missing)[:5]}")
        return ids
    rng = np.random.default_rng([config.split_seed, int(fold) if str(fold).isdigit() else 0])
    n_val = max(1, int(round(config.val_fraction * len(train_ids))))
    if n_val >= len(train_ids):
        raise TrainingError(f"fold {fold} has only {len(train_ids)} training structures: too few to hold out a validation set")
    pick = rng.permutation(len(train_ids))[:n_val]
    return [train_ids[i] for i in sorted(pick)]


_TASK_GRAPHS: "weakref.WeakKeyDictionary[Any, dict]" = weakref.WeakKeyDictionary()


def task_graphs(task, graph_spec, config: TrainConfig):
    """Graphs of every structure of a task, built once per (task object, graph spec) and shared by its
    folds: ``({id: CrystalGraph | None}, {id: failure message})``, or ``(None, {})`` for a task that
    has no ``df`` with a "structure" column. The whole data set is one ``build_graphs`` call, so the
    on-disk cache holds one file per data set rather than one per fold."""
    from zoo.graphs import build_graphs

    df = getattr(task, "df", None)
    if df is None or "structure" not in getattr(df, "columns", ()):
        return None, {}
    try:
        memo = _TASK_GRAPHS.setdefault(task, {})
    except TypeError:  # not weak-referenceable: no memo, the on-disk cache still applies
        memo = {}
    key = repr(graph_spec)
    if key not in memo:
        ids = [str(i) for i in df.index]
        graphs, failures = build_graphs(list(df["structure"]), graph_spec, ids=ids, cache=config.graph_cache,
                                        progress=config.progress, on_error="skip")
        failures = {str(k): str(v) for k, v in (failures or {}).items()}
        for k, v in failures.items():
            log.warning("graph of %s failed, structure skipped: %s", k, v)
        memo[key] = (dict(zip(ids, graphs)), failures)
    return memo[key]


def load_fold(task, fold, config: TrainConfig, graph_spec) -> FoldData:
    """Read a fold, split off validation, and build every graph once (cached; failures skipped)."""
    from zoo.graphs import build_graphs

    target = task.spec.target
    if hasattr(task, "load") and not getattr(task, "is_loaded", False):
        task.load()
    tv_in, tv_out = task.get_train_and_val_data(fold)
    te_in, te_out = task.get_test_data(fold, include_target=True)
    tv_ids, te_ids = _series_ids(tv_in, "train-"), _series_ids(te_in, "test-")
    tv_struct, te_struct = _series_values(tv_in), _series_values(te_in)
    tv_y = _stack_targets(_series_values(tv_out), target)
    te_y = _stack_targets(_series_values(te_out), target) if te_out is not None else None

    by_id, failures = task_graphs(task, graph_spec, config)
    if by_id is not None and all(k in by_id for k in tv_ids + te_ids):
        graphs = [by_id[k] for k in tv_ids + te_ids]
        failures = {k: failures[k] for k in tv_ids + te_ids if k in failures}
    else:  # a task without a data frame: this fold's structures only
        graphs, failures = build_graphs(
            tv_struct + te_struct, graph_spec, ids=tv_ids + te_ids, cache=config.graph_cache, progress=config.progress, on_error="skip"
        )
        failures = {str(k): str(v) for k, v in (failures or {}).items()}
        for k, v in failures.items():
            log.warning("graph of %s failed, structure skipped: %s", k, v)
    tv_graphs, te_graphs = graphs[: len(tv_ids)], graphs[len(tv_ids):]

    val_set = set(validation_ids(task, fold, tv_ids, config))

    def make(idx: Iterable[int], ids, structs, ys, gs) -> Split:
        idx = [i for i in idx if gs[i] is not None]
        return Split([ids[i] for i in idx], [gs[i] for i in idx], ys[idx] if ys is not None else np.zeros((len(idx),)), [structs[i] for i in idx])

    train = make([i for i, k in enumerate(tv_ids) if k not in val_set], tv_ids, tv_struct, tv_y, tv_graphs)
    val = make([i for i, k in enumerate(tv_ids) if k in val_set], tv_ids, tv_struct, tv_y, tv_graphs)
    test = make(range(len(te_ids)), te_ids, te_struct, te_y, te_graphs)
    if len(train) == 0 or len(val) == 0:
        raise TrainingError(f"fold {fold}: no training or validation structure has a graph ({len(failures)} failures; see failures.json)")
    test_failed = {k: failures[k] for k in te_ids if k in failures}
    return FoldData(train, val, test, test_failed, te_ids, te_y, failures)


def batches(n: int, batch_size: int, order: np.ndarray | None = None) -> list[np.ndarray]:
    order = np.arange(n) if order is None else order
    return [order[i : i + batch_size] for i in range(0, n, batch_size)]


# ==================================================================================================
# backend adapters


class Adapter:
    """What the loop needs from a backend. Implementations: ``zoo.training.torch.TorchAdapter``,
    ``zoo.training.jax.JaxAdapter`` (they mirror each other)."""

    backend = ""
    compilations = 0  # jit traces so far (jax); 0 for torch

    def __init__(self, model_name: str, model_config, config: TrainConfig, loss: str):
        raise NotImplementedError

    def init(self, example: dict[str, np.ndarray]) -> None:
        """Create parameters (seeded) and the optimiser, given an example collated batch."""

    def make_batch(self, graphs: Sequence, y: np.ndarray | None) -> Any:
        raise NotImplementedError

    def train_step(self, batch: Any, lr: float) -> float:
        """One optimiser step; returns the *sum* of the per-graph losses (normalised units)."""
        raise NotImplementedError

    def predict(self, batch: Any) -> np.ndarray:
        """Raw model output (normalised units) for the real graphs of ``batch``, float64."""
        raise NotImplementedError

    def state_dict(self) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        raise NotImplementedError

    def optimizer_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        raise NotImplementedError

    def load_optimizer_state(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        raise NotImplementedError

    def rng_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        return {}, {}

    def load_rng_state(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        pass

    def device(self) -> str:
        return "cpu"


def get_adapter(backend: str):
    if backend == "torch":
        from .torch import TorchAdapter

        return TorchAdapter
    if backend == "jax":
        from .jax import JaxAdapter

        return JaxAdapter
    raise ValueError(f"unknown backend {backend!r}; choose torch or jax")


# ==================================================================================================
# prediction helpers


def predict_graphs(adapter: Adapter, graphs: Sequence, batch_size: int, cached: list | None = None) -> np.ndarray:
    """Raw (normalised) predictions for ``graphs`` in order; ``cached`` holds pre-made batches."""
    if len(graphs) == 0:
        return np.zeros((0,))
    made = cached if cached is not None else [adapter.make_batch([graphs[i] for i in b], None) for b in batches(len(graphs), batch_size)]
    return np.concatenate([adapter.predict(b) for b in made])


def _loss_value(loss: str, z_true: np.ndarray, z_pred: np.ndarray) -> float:
    """The training loss on a whole set (normalised units), for the learning curve."""
    if loss == "bce":
        # log(1 + e^z) - y z, written stably.
        return float(np.mean(np.logaddexp(0.0, z_pred) - z_true * z_pred))
    err = (z_pred - z_true).reshape(len(z_true), -1)
    return float(np.mean(np.abs(err)) if loss == "l1" else np.mean(err**2))


# ==================================================================================================
# training


@dataclass
class TrainResult:
    run_dir: Path
    summary: dict[str, Any]

    @property
    def test_metrics(self) -> dict[str, Any]:
        return self.summary.get("test", {})


def _model_config(config: TrainConfig, target, saved: dict | None = None):
    from zoo.models import config_from_dict, get_family, make_config

    entry = get_family(config.model)
    kinds = entry.outputs
    if target.kind not in kinds:
        raise TrainingError(f"model {config.model!r} predicts {list(kinds)}, but task {config.task!r} needs a {target.kind} target")
    mc = config_from_dict(config.model, saved) if saved is not None else make_config(config.model, **config.model_overrides)
    return mc.with_target(target)


def _weights_meta(config: TrainConfig, model_config, graph_spec, target, normalizer: TargetNormalizer, task_spec, extra: dict) -> dict:
    from zoo.models import config_to_dict

    return {
        "model": config.model,
        "config": config_to_dict(model_config),
        "featurization": dataclasses.asdict(graph_spec),
        "target": dataclasses.asdict(target),
        "normalizer": normalizer.to_dict(),
        "task": {"name": task_spec.name, "version": task_spec.version},
        "fold": config.fold,
        "backend": config.backend,
        "dtype": config.dtype,
        **extra,
    }


def _resolve_task(config: TrainConfig, task=None):
    if task is not None:
        return task
    from zoo import tasks

    kwargs = dict(config.task_kwargs)
    if config.data_dir is not None:
        kwargs.setdefault("data_dir", config.data_dir)
    try:
        return tasks.get(config.task, **kwargs)
    except TypeError as exc:  # an option the task's factory does not take (e.g. data_dir for a generated task)
        raise TrainingError(f"task {config.task!r} cannot be built with options {sorted(kwargs)}: {exc}") from None


def train(
    config: TrainConfig | None = None,
    *,
    task=None,
    resume: str | os.PathLike | None = None,
    epochs: int | None = None,
    on_epoch_end: Callable[[dict[str, Any]], None] | None = None,
    on_start: Callable[[Path], None] | None = None,
) -> TrainResult:
    """Train one model on one fold and write a run folder (see ``zoo.training.runs``).

    ``task`` overrides ``config.task`` with a task object (e.g. an in-memory one). ``resume`` continues
    the run folder of a killed run from its last checkpoint (``epochs`` may extend it).
    ``on_start(run_dir)`` is called once the run folder holds its config; ``on_epoch_end(record)``
    after each epoch's checkpoint is committed.
    """
    if (config is None) == (resume is None):
        raise ValueError("pass either a TrainConfig (new run) or resume=RUN_DIR (continue a run)")
    saved_model_config = None
    if resume is not None:
        run_dir = Path(resume)
        saved = runs.read_config(run_dir)
        config = TrainConfig.from_dict(saved["train"])
        if epochs is not None:
            config.epochs = int(epochs)
        saved_model_config = saved["model"]["config"]
    elif epochs is not None:
        config = dataclasses.replace(config, epochs=int(epochs))
    assert config is not None
    if config.dtype == "float64" and config.backend == "jax":
        import jax

        jax.config.update("jax_enable_x64", True)

    task = _resolve_task(config, task)
    task_spec, target = task.spec, task.spec.target
    config.task = task_spec.name
    model_config = _model_config(config, target, saved_model_config)
    graph_spec = model_config.graph_spec()
    loss = resolve_loss(config, target)

    if resume is not None:
        _check_same_task(run_dir, task_spec, graph_spec)

    t0 = time.perf_counter()
    data = load_fold(task, config.fold, config, graph_spec)
    t_data = time.perf_counter() - t0
    normalizer = TargetNormalizer.fit(data.train.y, target)

    Adapter_ = get_adapter(config.backend)
    adapter = Adapter_(config.model, model_config, config, loss)
    example = data.train.graphs[: min(len(data.train), config.batch_size)]
    adapter.init(example)
    if config.init_weights and resume is None:
        from zoo.core import weights

        state, _ = weights.load(config.init_weights)
        adapter.load_state_dict(state)

    # The run folder is made only now that data and model are ready: a run that cannot start leaves
    # no empty folder behind.
    if resume is None:
        run_dir = runs.create_run_dir(config.out, config.model, config.backend, config.task, config.fold)
        log.info("run folder %s", run_dir)
    runs.write_failures(run_dir, data.failures)

    from zoo.models import config_to_dict

    resolved = {
        "train": config.to_dict(),
        "model": {"name": config.model, "config": config_to_dict(model_config)},
        "graph_spec": dataclasses.asdict(graph_spec),
        "task": {"name": task_spec.name, "version": task_spec.version, "target": dataclasses.asdict(target), "fold": config.fold},
        "loss": loss,
        "selection_metric": "val_" + selection_metric(target),
        "normalizer": normalizer.to_dict(),
        "n": {"train": len(data.train), "val": len(data.val), "test": len(data.test), "graph_failures": len(data.failures)},
    }
    seeds = {"seed": config.seed, "split_seed": config.split_seed, "shuffle": "numpy default_rng([seed, epoch])",
             "init": f"{config.backend} seeded with {config.seed}"}
    if resume is None:
        write_json(run_dir / "config.json", resolved)
        write_json(run_dir / "env.json", runs.environment(adapter.device(), seeds))
    else:
        old = runs.read_config(run_dir)
        if old.get("normalizer") != resolved["normalizer"]:
            raise TrainingError(f"{run_dir}: the training targets differ from the ones the run started with; cannot resume")
        if old["train"]["epochs"] != config.epochs:
            write_json(run_dir / "config.json", resolved)
    if on_start is not None:
        on_start(run_dir)

    sched = LRSchedule(config, math.ceil(len(data.train) / config.batch_size))
    state = {"epoch": 0, "step": 0, "best_metric": math.inf, "best_epoch": 0, "bad_epochs": 0, "stopped_early": False}
    best_state: dict[str, np.ndarray] | None = None
    if resume is not None:
        ckpt = runs.latest_checkpoint(run_dir)
        if ckpt is not None:
            state, best_state = _load_checkpoint(ckpt, adapter, sched)
            log.info("resuming %s after epoch %d", run_dir, state["epoch"])
        _truncate_log(run_dir / "metrics.jsonl", state["epoch"])
        if best_state is not None:  # the run folder's best.* may be newer than the checkpoint
            _save_best(run_dir / "best", best_state, config, model_config, graph_spec, target, normalizer, task_spec, state, run_dir)
        summary_path = run_dir / "metrics.json"
        if summary_path.exists() and (state["epoch"] >= config.epochs or state["stopped_early"]):
            return TrainResult(run_dir, json.loads(summary_path.read_text()))
    elif (run_dir / "metrics.jsonl").exists():
        (run_dir / "metrics.jsonl").unlink()

    z_train = normalizer.forward(data.train.y)
    z_val = normalizer.forward(data.val.y)
    val_batches = [adapter.make_batch([data.val.graphs[i] for i in b], None) for b in batches(len(data.val), config.batch_size)]
    metric_name = selection_metric(target)

    from tqdm.auto import tqdm

    t_train = time.perf_counter()
    bar = tqdm(
        range(state["epoch"], config.epochs), initial=state["epoch"], total=config.epochs,
        desc=f"{config.model}/{config.backend} {config.task} f{config.fold}", disable=not config.progress, unit="epoch",
    )
    for epoch0 in bar:
        if state["stopped_early"]:
            break
        epoch = epoch0 + 1
        te = time.perf_counter()
        comp0 = adapter.compilations
        order = np.random.default_rng([config.seed, epoch]).permutation(len(data.train))
        total, count = 0.0, 0
        train_batches = batches(len(data.train), config.batch_size, order)
        # A batch bar only where an epoch is long enough to need one (it disappears at the epoch's end).
        inner = tqdm(train_batches, desc=f"epoch {epoch}", unit="batch", leave=False,
                     disable=not config.progress or len(train_batches) < 50)
        for b in inner:
            batch = adapter.make_batch([data.train.graphs[i] for i in b], z_train[b])
            lr = sched.lr(state["step"])
            total += adapter.train_step(batch, lr)
            count += len(b)
            state["step"] += 1
        train_loss = total / max(count, 1)
        if not np.isfinite(train_loss):
            raise TrainingError(
                f"training loss became {train_loss} at epoch {epoch} ({run_dir}); lower --lr (now {config.lr}) or use --dtype float64"
            )
        zv = predict_graphs(adapter, data.val.graphs, config.batch_size, val_batches)
        val = compute_metrics(target, data.val.y, normalizer.inverse(zv), full=False)
        val_loss = _loss_value(loss, z_val, zv)
        metric = float(val[metric_name]) if metric_name in val else val_loss
        sched.end_epoch(metric)
        improved = metric < state["best_metric"]
        if improved:
            state.update(best_metric=metric, best_epoch=epoch, bad_epochs=0)
            best_state = adapter.state_dict()
            _save_best(run_dir / "best", best_state, config, model_config, graph_spec, target, normalizer, task_spec, state, run_dir)
        else:
            state["bad_epochs"] += 1
        state["epoch"] = epoch
        if config.patience and state["bad_epochs"] >= config.patience:
            state["stopped_early"] = True
        record = {
            "epoch": epoch, "lr": sched.lr(max(state["step"] - 1, 0)), "train_loss": train_loss, "val_loss": val_loss,
            **{f"val_{k}": v for k, v in val.items() if k != "n"},
            "best": improved, "time_s": time.perf_counter() - te, "jit_compilations": adapter.compilations - comp0,
        }
        append_jsonl(run_dir / "metrics.jsonl", record)
        _save_checkpoint(run_dir, epoch, adapter, sched, state, best_state, config, model_config, graph_spec, target, normalizer, task_spec)
        bar.set_postfix(train_loss=f"{train_loss:.4g}", val=f"{metric:.4g}", best=state["best_epoch"])
        if on_epoch_end is not None:
            on_epoch_end(record)
        if state["stopped_early"]:
            log.info("early stop after epoch %d (no better validation %s for %d epochs)", epoch, metric_name, config.patience)
            break
    bar.close()
    t_train = time.perf_counter() - t_train

    summary = _finish(run_dir, config, adapter, data, normalizer, target, best_state, state, loss)
    summary["time_s"] = {"data": t_data, "train": t_train}
    summary["jit_compilations"] = adapter.compilations
    summary["device"] = adapter.device()
    write_json(run_dir / "metrics.json", summary)
    return TrainResult(run_dir, summary)


def _finish(run_dir: Path, config: TrainConfig, adapter: Adapter, data: FoldData, normalizer, target, best_state, state, loss) -> dict:
    from . import plots

    if best_state is None:
        raise TrainingError(f"{run_dir}: no epoch finished with a finite validation metric; nothing to evaluate")
    adapter.load_state_dict(best_state)
    bs = config.batch_size
    p_val = normalizer.inverse(predict_graphs(adapter, data.val.graphs, bs))
    p_test = normalizer.inverse(predict_graphs(adapter, data.test.graphs, bs)) if len(data.test) else np.zeros((0,) + target.shape)

    # Floor: always predict the training mean (class: the training prior).
    floor_value = np.mean(data.train.y, axis=0)
    val_m = compute_metrics(target, data.val.y, p_val, structures=data.val.structures)
    floor_val = compute_metrics(target, data.val.y, np.broadcast_to(floor_value, data.val.y.shape), structures=data.val.structures)
    summary: dict[str, Any] = {
        "task": config.task, "fold": config.fold, "model": config.model, "backend": config.backend, "dtype": config.dtype,
        "seed": config.seed, "best_epoch": state["best_epoch"], "epochs_run": state["epoch"], "epochs": config.epochs,
        "stopped_early": state["stopped_early"], "selection_metric": "val_" + selection_metric(target),
        "val": val_m, "floor": {"val": floor_val},
        "n": {"train": len(data.train), "val": len(data.val), "test": len(data.test), "test_graph_failed": len(data.test_failed)},
    }
    runs.write_predictions(run_dir / "predictions_val.csv", data.val.ids, data.val.y, p_val)

    # Every test structure gets a prediction: structures without a graph get the floor and are flagged.
    pred_by_id = {k: p for k, p in zip(data.test.ids, p_test)}
    all_pred = np.stack([pred_by_id.get(k, floor_value) for k in data.test_all_ids]) if data.test_all_ids else np.zeros((0,) + target.shape)
    flags = [k in data.test_failed for k in data.test_all_ids]
    runs.write_predictions(run_dir / "predictions_test.csv", data.test_all_ids, data.test_all_y, all_pred, {"graph_failed": flags})
    if data.test_all_y is not None and len(data.test_all_ids):
        summary["test"] = compute_metrics(target, data.test.y, p_test, structures=data.test.structures)
        summary["floor"]["test"] = compute_metrics(target, data.test.y, np.broadcast_to(floor_value, data.test.y.shape), structures=data.test.structures)
        if data.test_failed:
            # Scored on every test structure, the failed ones carrying the floor prediction (what matbench sees).
            summary["test_all"] = compute_metrics(target, data.test_all_y, all_pred, full=False)

    rows = read_jsonl(run_dir / "metrics.jsonl")
    plots.learning_curve(rows, run_dir / "plots" / "learning_curve.png", best_epoch=state["best_epoch"], title=_title(config))
    plots.parity(data.val.y, p_val, run_dir / "plots" / "parity_val.png", target=target, title=_title(config) + " (validation)")
    if "test" in summary:
        plots.parity(data.test.y, p_test, run_dir / "plots" / "parity_test.png", target=target, title=_title(config) + " (test)")
    summary["plots"] = sorted(str(p.relative_to(run_dir)) for p in (run_dir / "plots").glob("*.png"))
    summary["finished"] = True
    return summary


def _title(config: TrainConfig) -> str:
    return f"{config.model} ({config.backend}) on {config.task}, fold {config.fold}"


def _check_same_task(run_dir: Path, task_spec, graph_spec) -> None:
    saved = runs.read_config(run_dir)
    if saved["task"]["name"] != task_spec.name or saved["task"]["version"] != task_spec.version:
        raise TrainingError(
            f"{run_dir} was trained on {saved['task']['name']} v{saved['task']['version']}, not {task_spec.name} v{task_spec.version}"
        )
    if saved["graph_spec"] != dataclasses.asdict(graph_spec):
        raise TrainingError(f"{run_dir}: graph spec {saved['graph_spec']} differs from {dataclasses.asdict(graph_spec)}")


# ==================================================================================================
# checkpoints


def _save_best(stem: Path, best_state, config, model_config, graph_spec, target, normalizer, task_spec, state, run_dir) -> None:
    from zoo.core import weights

    meta = _weights_meta(config, model_config, graph_spec, target, normalizer, task_spec,
                         {"epoch": state["best_epoch"], "val_" + selection_metric(target): state["best_metric"], "run": run_dir.name})
    weights.save(stem, best_state, meta)


def _save_checkpoint(run_dir: Path, epoch: int, adapter: Adapter, sched: LRSchedule, state: dict, best_state,
                     config, model_config, graph_spec, target, normalizer, task_spec) -> None:
    from safetensors.numpy import save_file

    from zoo.core import weights
    from zoo.core.io import atomic_path

    path = runs.new_checkpoint_dir(run_dir, epoch)
    meta = _weights_meta(config, model_config, graph_spec, target, normalizer, task_spec, {"epoch": epoch, "run": run_dir.name})
    weights.save(path / "model", adapter.state_dict(), meta)
    if best_state is not None:
        _save_best(path / "best", best_state, config, model_config, graph_spec, target, normalizer, task_spec, state, run_dir)
    opt_arrays, opt_meta = adapter.optimizer_state()
    rng_arrays, rng_meta = adapter.rng_state()
    arrays = {f"optimizer/{k}": v for k, v in opt_arrays.items()}
    arrays.update({f"rng/{k}": v for k, v in rng_arrays.items()})
    with atomic_path(path / "trainer.safetensors") as tmp:
        # reshape: np.ascontiguousarray makes 0-d arrays (step counters, the learning rate) 1-d.
        save_file({k: np.ascontiguousarray(v).reshape(np.shape(v)) for k, v in arrays.items()}, str(tmp))
    write_json(path / "trainer.json", {
        "epoch": epoch, "step": state["step"], "best_metric": _finite_or_none(state["best_metric"]), "best_epoch": state["best_epoch"],
        "bad_epochs": state["bad_epochs"], "stopped_early": state["stopped_early"], "schedule": sched.state_dict(),
        "optimizer": opt_meta, "rng": {**rng_meta, "numpy_shuffle": f"default_rng([{config.seed}, epoch])"},
        "backend": config.backend,
    })
    runs.commit_checkpoint(run_dir, path)


def _load_checkpoint(path: Path, adapter: Adapter, sched: LRSchedule):
    from safetensors.numpy import load_file

    from zoo.core import weights

    meta = json.loads((path / "trainer.json").read_text())
    model_state, _ = weights.load(path / "model")
    adapter.load_state_dict(model_state)
    best_state = weights.load(path / "best")[0] if (path / "best.json").exists() else None
    arrays = load_file(str(path / "trainer.safetensors"))
    adapter.load_optimizer_state({k[len("optimizer/"):]: v for k, v in arrays.items() if k.startswith("optimizer/")}, meta["optimizer"])
    adapter.load_rng_state({k[len("rng/"):]: v for k, v in arrays.items() if k.startswith("rng/")}, meta["rng"])
    sched.load_state_dict(meta["schedule"])
    state = {k: meta[k] for k in ("epoch", "step", "best_metric", "best_epoch", "bad_epochs", "stopped_early")}
    state["best_metric"] = math.inf if state["best_metric"] is None else float(state["best_metric"])
    return state, best_state


def _truncate_log(path: Path, epoch: int) -> None:
    """Drop epochs logged after the checkpoint (a kill between the log line and the checkpoint)."""
    if not path.exists():
        return
    rows = [r for r in read_jsonl(path) if int(r.get("epoch", 0)) <= epoch]
    write_text(path, "".join(json.dumps(r) + "\n" for r in rows))


# ==================================================================================================
# loading a trained model and evaluating it


class TrainedModel:
    """Best weights + metadata: builds the model alone and predicts in task units."""

    def __init__(self, state: dict[str, np.ndarray], meta: dict[str, Any], backend: str = "torch", dtype: str | None = None, batch_size: int = 64):
        from zoo.tasks.spec import TargetSpec
        from zoo.graphs import GraphSpec
        from zoo.models import config_from_dict

        self.meta = meta
        self.target = TargetSpec(**meta["target"])
        self.model_config = config_from_dict(meta["model"], meta["config"])
        self.graph_spec = GraphSpec(**meta["featurization"])
        self.normalizer = TargetNormalizer.from_dict(meta["normalizer"])
        self.batch_size = batch_size
        cfg = TrainConfig(model=meta["model"], backend=backend, dtype=dtype or meta.get("dtype", "float32"), progress=False, batch_size=batch_size)
        if cfg.dtype == "float64" and backend == "jax":
            import jax

            jax.config.update("jax_enable_x64", True)
        self.adapter = get_adapter(backend)(meta["model"], self.model_config, cfg, resolve_loss(cfg, self.target))
        self._initialised = False
        self._state = state

    def _ensure_init(self, graphs) -> None:
        if not self._initialised:
            self.adapter.init(list(graphs[: self.batch_size]))
            self.adapter.load_state_dict(self._state)
            self._initialised = True

    def predict_graphs(self, graphs: Sequence) -> np.ndarray:
        if len(graphs) == 0:
            return np.zeros((0,) + self.target.shape)
        self._ensure_init(graphs)
        return self.normalizer.inverse(predict_graphs(self.adapter, graphs, self.batch_size))

    def predict(self, structures: Sequence, ids: Sequence[str] | None = None, cache: bool = True, progress: bool = False) -> np.ndarray:
        """Predictions in task units; a structure whose graph fails raises (use ``predict_graphs`` to skip)."""
        from zoo.graphs import build_graphs

        graphs, failures = build_graphs(list(structures), self.graph_spec, ids=ids, cache=cache, progress=progress, on_error="raise")
        return self.predict_graphs(graphs)


def resolve_weights(path: str | os.PathLike) -> Path:
    """A run folder -> its ``best`` stem; a ``.safetensors``/``.json``/stem path -> that stem."""
    path = Path(path)
    if path.is_dir():
        if not (path / "best.json").exists():
            raise FileNotFoundError(f"{path} has no best.json/best.safetensors: not a finished run folder (resume it with `zoo train --resume {path}`)")
        return path / "best"
    return path.with_suffix("") if path.suffix in (".safetensors", ".json") else path


def load_trained(path: str | os.PathLike, backend: str = "torch", dtype: str | None = None, batch_size: int = 64) -> TrainedModel:
    from zoo.core import weights

    state, meta = weights.load(resolve_weights(path))
    for key in ("model", "config", "featurization", "target", "normalizer"):
        if key not in meta:
            raise TrainingError(f"{path}: weights metadata lacks {key!r}; these weights were not written by zoo.training")
    return TrainedModel(state, meta, backend=backend, dtype=dtype, batch_size=batch_size)


def evaluate(path: str | os.PathLike, task=None, fold: int | None = None, backend: str = "torch", data_dir: str | None = None,
             split: str = "test", progress: bool = True, write: bool = True) -> dict[str, Any]:
    """Score saved weights on a task fold (default: the task and fold they were trained on).

    Writes ``evaluations/<UTC time>_<task>_f<fold>_<backend>.json`` into the run folder (when ``path`` is one).
    """
    model = load_trained(path, backend=backend)
    meta = model.meta
    if task is None or isinstance(task, str):
        from zoo import tasks

        name = task or meta["task"]["name"]
        task = tasks.get(name, **({"data_dir": data_dir} if data_dir else {}))
    fold = meta.get("fold", 0) if fold is None else fold
    if task.spec.target.kind != model.target.kind or task.spec.target.shape != model.target.shape:
        raise TrainingError(f"{path} predicts a {model.target.kind}{model.target.shape} target, task {task.spec.name} needs "
                            f"{task.spec.target.kind}{task.spec.target.shape}")
    from zoo.graphs import build_graphs

    if split == "test":
        inputs, outputs = task.get_test_data(fold, include_target=True)
    else:
        inputs, outputs = task.get_train_and_val_data(fold)
    ids, structures = _series_ids(inputs, "s-"), _series_values(inputs)
    y = _stack_targets(_series_values(outputs), task.spec.target)
    graphs, failures = build_graphs(structures, model.graph_spec, ids=ids, cache=True, progress=progress, on_error="skip")
    keep = [i for i, g in enumerate(graphs) if g is not None]
    pred = model.predict_graphs([graphs[i] for i in keep])
    result = {
        "weights": str(resolve_weights(path)), "task": task.spec.name, "task_version": task.spec.version, "fold": fold,
        "split": split, "backend": backend, "n": len(ids), "graph_failures": {str(k): str(v) for k, v in (failures or {}).items()},
        "metrics": compute_metrics(task.spec.target, y[keep], pred, structures=[structures[i] for i in keep]),
    }
    run_dir = Path(path) if Path(path).is_dir() else None
    if write and run_dir is not None:
        import datetime as dt

        stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        out = run_dir / "evaluations" / f"{stamp}_{task.spec.name}_f{fold}_{backend}.json"
        k = 1
        while out.exists():
            k += 1
            out = out.with_name(f"{stamp}_{task.spec.name}_f{fold}_{backend}_{k}.json")
        write_json(out, result)
        result["written_to"] = str(out)
    return result
