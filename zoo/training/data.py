"""A task fold as the training loop sees it: graphs and targets of the training, validation and test sets.

- **Split.** Training uses ``task.get_train_and_val_data(fold)``; the validation ids come from
  ``task.get_validation_ids(fold)`` when the task defines them, otherwise a seeded ``val_fraction`` of
  that set (``numpy.random.default_rng([split_seed, fold])``). Model selection and early stopping look
  only at the validation set; the test set is predicted once, with the best model.
- **Graphs** are built once per task object and graph spec for every structure of the task (one
  ``build_graphs`` call, so the on-disk cache holds one file per data set rather than one per fold).
  A structure whose graph fails is listed and skipped; a failed *test* structure is still predicted
  (with the training mean) so that every test id gets a prediction, as matbench requires.
- **Batches**: consecutive slices of an order; the order of epoch e is ``default_rng([seed, e])``'s
  permutation, which does not depend on history, so a resumed run sees the batches an uninterrupted
  one would have seen.
- **Checks before any work**: task options (``--task-arg``) against the task factory's parameters (name,
  with a did-you-mean, and type); every target finite (a class: true/false), naming the ids that are
  not, before a graph is built or a model made.
- **Identity**: each part of the fold is fingerprinted (``zoo.training.dataid``) so that the run and its
  weights record exactly which data they saw.
"""
from __future__ import annotations

import inspect
import logging
import weakref
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

import numpy as np

from zoo import tasks
from zoo.graphs import GraphSpec, build_graphs
from zoo.tasks.spec import TargetSpec

from . import dataid
from .config import TrainConfig, TrainingError, UsageError, check_arguments

log = logging.getLogger("zoo.training")


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
    failures: dict[str, str]  # every structure of the fold without a graph: id -> message
    fingerprint: dict[str, Any] = field(default_factory=dict)  # part -> {"n", "sha256"} (zoo.training.dataid)
    validation: str = "task"  # "task": the task's fixed validation ids; "seeded": split_seed + val_fraction

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.train), "val": len(self.val), "test": len(self.test), "graph_failures": len(self.failures)}


def resolve_task(config: TrainConfig, task=None):
    """``task`` when given (an object, e.g. an in-memory task), else ``config.task`` from the registry."""
    if task is not None:
        return task
    return build_task(config.task, config.task_kwargs, config.data_dir, progress=config.progress)


def build_task(name: str, task_kwargs: dict[str, Any], data_dir: str | None = None, progress: bool = True):
    """Task ``name`` from the registry, its options checked first (names and types, see ``check_arguments``).
    ``progress=False`` (``--no-progress``) reaches a task whose loader shows progress bars (the tensor
    datasets' frame check), unless ``task_kwargs`` says otherwise."""
    factory = tasks.TASKS.get(name).factory  # KeyError with a did-you-mean for an unknown name
    check_arguments(dict(task_kwargs), factory, f"task {name}", "--task-arg")
    kwargs = dict(task_kwargs)
    params = inspect.signature(inspect.unwrap(factory)).parameters.values()
    if not progress and "progress" in [p.name for p in params]:
        kwargs.setdefault("progress", False)
    if data_dir is not None:
        if "data_dir" not in [p.name for p in params] and not any(p.kind == p.VAR_KEYWORD for p in params):
            raise UsageError(f"task {name} makes its own data: it reads no --data-dir (its options are --task-arg ...)")
        kwargs.setdefault("data_dir", data_dir)
    try:
        return tasks.get(name, **kwargs)
    except TypeError as exc:  # an option the task's factory does not take
        raise UsageError(f"task {name!r} cannot be built with options {sorted(kwargs)}: {exc}") from None


def series_values(s) -> list:
    return list(s.values) if hasattr(s, "values") else list(s)


def series_ids(s, prefix: str) -> list[str]:
    """Ids of a pandas Series (its index), or ``<prefix><position>`` for a plain sequence."""
    if hasattr(s, "index"):
        return [str(i) for i in s.index]
    return [f"{prefix}{i}" for i in range(len(s))]


def stack_targets(values: Sequence, target: TargetSpec, ids: Sequence[str] | None = None, what: str = "targets") -> np.ndarray:
    """Targets as one float64 array (n, *shape); refuses a missing, non-finite or misshapen one (and for a
    class target anything but true/false, 0 or 1), naming the ids, so that no model trains on them."""
    shape = tuple(target.shape)
    if len(values) == 0:
        return np.zeros((0,) + shape)
    ids = list(ids) if ids is not None else [str(i) for i in range(len(values))]
    bad, rows = [], []
    for k, v in zip(ids, values):
        try:
            a = np.asarray(v, dtype=np.float64)
        except (TypeError, ValueError):
            a = np.full(shape, np.nan)
        if a.shape != shape or not np.isfinite(a).all() or (target.kind == "class" and not np.isin(a, (0.0, 1.0)).all()):
            bad.append(k)
            a = np.full(shape, np.nan)
        rows.append(a)
    if bad:
        want = "true/false (or 0/1)" if target.kind == "class" else f"finite numbers of shape {shape}"
        raise TrainingError(f"{what}: {len(bad)} of {len(values)} are missing, NaN/inf or not {want}, e.g. ids "
                            f"{bad[:10]}; drop or fix these rows of the data before training")
    return np.stack(rows)


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


def _build(structures: list, ids: list[str], graph_spec: GraphSpec, config: TrainConfig) -> tuple[list, dict[str, str]]:
    graphs, failures = build_graphs(structures, graph_spec, ids=ids, cache=config.graph_cache, progress=config.progress,
                                    on_error="skip")
    failures = {str(k): str(v) for k, v in (failures or {}).items()}
    if failures:  # build_graphs has logged the first few with their reasons; every one goes to failures.json
        log.warning("%d of %d structures have no graph and are left out of training and scoring (ids and reasons: "
                    "the run's failures.json)", len(failures), len(ids))
    return graphs, failures


_TASK_GRAPHS: "weakref.WeakKeyDictionary[Any, dict]" = weakref.WeakKeyDictionary()


def task_graphs(task, graph_spec: GraphSpec, config: TrainConfig):
    """Graphs of every structure of a task, built once per (task object, graph spec) and shared by its
    folds: ``({id: CrystalGraph | None}, {id: failure message})``, or ``(None, {})`` for a task that
    has no ``df`` with a "structure" column."""
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
        graphs, failures = _build(list(df["structure"]), ids, graph_spec, config)
        memo[key] = (dict(zip(ids, graphs)), failures)
    return memo[key]


def load_fold(task, fold, config: TrainConfig, graph_spec: GraphSpec) -> FoldData:
    """Read a fold, split off validation, and build every graph once (cached; failures skipped)."""
    target = task.spec.target
    if hasattr(task, "load") and not getattr(task, "is_loaded", False):
        task.load()
    tv_in, tv_out = task.get_train_and_val_data(fold)
    te_in, te_out = task.get_test_data(fold, include_target=True)
    tv_ids, te_ids = series_ids(tv_in, "train-"), series_ids(te_in, "test-")
    tv_struct, te_struct = series_values(tv_in), series_values(te_in)
    name = getattr(getattr(task, "spec", None), "name", "task")
    tv_y = stack_targets(series_values(tv_out), target, tv_ids, f"task {name} fold {fold}: training targets")
    te_y = (stack_targets(series_values(te_out), target, te_ids, f"task {name} fold {fold}: test targets")
            if te_out is not None else None)
    if config.full_data:  # the fold's test set trains too (validation is still split off below); nothing is tested
        if te_y is None:
            raise UsageError(f"task {name} has no test targets, so --full-data cannot train on them; drop --full-data")
        tv_ids, tv_struct, tv_y = tv_ids + te_ids, tv_struct + te_struct, np.concatenate([tv_y, te_y])
        te_ids, te_struct, te_y = [], [], te_y[:0]
    prints = {"train_val": dataid.fingerprint(tv_ids, tv_y, tv_struct), "test": dataid.fingerprint(te_ids, te_y, te_struct)}

    by_id, failures = task_graphs(task, graph_spec, config)
    if by_id is not None and all(k in by_id for k in tv_ids + te_ids):
        graphs = [by_id[k] for k in tv_ids + te_ids]
        failures = {k: failures[k] for k in tv_ids + te_ids if k in failures}
    else:  # a task without a data frame: this fold's structures only
        graphs, failures = _build(tv_struct + te_struct, tv_ids + te_ids, graph_spec, config)
    tv_graphs, te_graphs = graphs[: len(tv_ids)], graphs[len(tv_ids):]

    val_ids = validation_ids(task, fold, tv_ids, config)
    val_set = set(val_ids)
    prints["val_ids"] = dataid.fingerprint(sorted(val_set), None, [])

    def make(idx: Iterable[int], ids, structs, ys, gs) -> Split:
        idx = [i for i in idx if gs[i] is not None]
        return Split([ids[i] for i in idx], [gs[i] for i in idx], ys[idx] if ys is not None else np.zeros((len(idx),)), [structs[i] for i in idx])

    train = make([i for i, k in enumerate(tv_ids) if k not in val_set], tv_ids, tv_struct, tv_y, tv_graphs)
    val = make([i for i, k in enumerate(tv_ids) if k in val_set], tv_ids, tv_struct, tv_y, tv_graphs)
    test = make(range(len(te_ids)), te_ids, te_struct, te_y, te_graphs)
    if len(train) == 0 or len(val) == 0:
        raise TrainingError(f"fold {fold}: no training or validation structure has a graph ({len(failures)} failures; see failures.json)")
    test_failed = {k: failures[k] for k in te_ids if k in failures}
    has_own = getattr(task, "get_validation_ids", None) is not None and task.get_validation_ids(fold) is not None
    return FoldData(train, val, test, test_failed, te_ids, te_y, failures, prints, "task" if has_own else "seeded")


def batches(n: int, batch_size: int, order: np.ndarray | None = None, groups: Sequence | None = None) -> list[np.ndarray]:
    """Index arrays of consecutive batches of ``order`` (default 0..n-1); the last may be short.

    With ``groups`` (one hashable key per index), a batch holds indices of one key only: the keys in
    order of first appearance, each key's indices in ``order``'s order. A family asks for this through
    its config's ``batch_key(graph)`` when mixing kinds of graph in a batch costs it (pgnet runs one
    branch per holohedry; a batch of one holohedry runs one branch)."""
    order = np.arange(n) if order is None else np.asarray(order)
    if groups is None:
        return [order[i : i + batch_size] for i in range(0, n, batch_size)]
    keys = [groups[i] for i in order]
    out = []
    for key in dict.fromkeys(keys):
        sel = order[np.array([k == key for k in keys])]
        out += [sel[i : i + batch_size] for i in range(0, len(sel), batch_size)]
    return out
