"""The task interface: matbench's vocabulary and results layout, for any data set.

Mirrors ``matbench.task.MatbenchTask`` (matbench 0.6):

- ``task.folds`` (ints), ``task.folds_keys`` ("fold_0", ...), ``task.folds_map`` {int: key}
- ``task.load()``, ``task.df``: DataFrame indexed by id with columns "structure" and the target
  (``spec.target.name``)
- ``task.get_train_and_val_data(fold, as_type="tuple"|"df")``: everything that is NOT the fold's test
  set (matbench's "train"); ``task.get_validation_ids(fold)`` names the fixed validation subset of it
  (``None`` where the task leaves validation to the user, as matbench does)
- ``task.get_test_data(fold, as_type="tuple", include_target=False)``
- ``task.record(fold, predictions, params=None)``, ``task.results``, ``task.scores``,
  ``task.is_recorded``, ``task.all_folds_recorded``, ``task.to_file(path)`` / ``Task.from_file(path)``

Results layout (as matbench's ``MatbenchTask.as_dict``)::

    {"@module", "@class", "benchmark_name", "dataset_name",
     "results": {"fold_0": {"data": {id: prediction}, "parameters": {...}, "scores": {metric: float},
                            "uncertainty": None}, ...},
     # crystal-zoo additions (matbench has no place for them):
     "version": spec.version, "spec": {...}, "config": {...}}

Tensor predictions are stored as nested lists (full Cartesian (3,)*rank arrays). ``scores`` is
``{metric: {"mean", "max", "min", "std"}}`` over folds, like matbench (np.std: population std).

Values are always in the task's own space: where ``spec.target.transform`` is set (e.g. "log10" for
moduli) the targets, predictions and scores are the transformed values and
``spec.target.inverse(prediction)`` gives the physical quantity.

NaN targets: :class:`ArrayTask` DROPS rows whose target is missing or not finite, before any split is
made, with a logged warning that names the ids (``task.dropped_ids`` keeps them). A split file that
names a dropped id is an error. NaN / inf *predictions* are always an error (``record`` names the ids).

Splits (``make_split``, ``check_split``, split files) live in :mod:`zoo.tasks.folds`; the results-file
readers and writers in :mod:`zoo.tasks.files`.
"""
from __future__ import annotations

import abc
import json
import logging
import math
import os
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np
import pandas as pd

from zoo.core.io import json_default

from .files import read_json_any, spec_from_dict, spec_to_dict, write_json_any
from .folds import check_split, fold_keys, resolve_split
from .metrics import classification_metrics, scalar_metrics, tensor_metrics
from .spec import TaskSpec

logger = logging.getLogger(__name__)

# Matbench's names and metric sets (matbench/constants.py), repeated so that this module works without
# matbench installed.
REG_METRICS = ("mae", "rmse", "mape", "max_error")
CLF_METRICS = ("accuracy", "balanced_accuracy", "f1", "rocauc")
FOLD_DIST_METRICS = ("mean", "max", "min", "std")
STRUCTURE_KEY = "structure"
DATA_KEY, PARAMS_KEY, SCORES_KEY, UNCERTAINTY_KEY = "data", "parameters", "scores", "uncertainty"
BENCHMARK_NAME = "crystal-zoo"


# --------------------------------------------------------------------------------------------- metrics
def regression_scores(y_true: Sequence[float], y_pred: Sequence[float]) -> dict[str, float]:
    """matbench's regression scores of one fold (``REG_METRICS`` of ``metrics.scalar_metrics``)."""
    out = scalar_metrics(y_true, y_pred)
    return {k: out[k] for k in REG_METRICS}


def classification_scores(y_true: Sequence[bool], y_pred: Sequence[float | bool]) -> dict[str, float]:
    """matbench's classification scores of one fold (``CLF_METRICS`` of ``metrics.classification_metrics``)."""
    out = classification_metrics(y_true, y_pred)
    return {k: out[k] for k in CLF_METRICS}


def tensor_scores(y_true: np.ndarray, y_pred: np.ndarray, structures=None, formula=None) -> dict[str, float]:
    """Tensor scores of one fold (``metrics.tensor_metrics``: component MAE, Frobenius norm error, EwT,
    and the symmetry violation of the predictions when ``structures`` are given)."""
    out = tensor_metrics(y_true, y_pred, structures=structures, formula=formula)
    # Only scalar numbers can be averaged over folds (matbench keeps floats only).
    return {k: float(v) for k, v in out.items() if isinstance(v, (int, float, np.floating, np.integer))}


def fold_distribution(per_fold: Iterable[dict[str, float]]) -> dict[str, dict[str, float]]:
    """{metric: {mean, max, min, std}} over folds (matbench's ``MatbenchTask.scores``)."""
    per_fold = list(per_fold)
    metrics = [m for m in per_fold[0] if all(m in f for f in per_fold)]
    return {
        m: {op: float(getattr(np, op)([f[m] for f in per_fold])) for op in FOLD_DIST_METRICS}
        for m in metrics
    }


class Task(abc.ABC):
    """A benchmark task with matbench's interface (see the module docstring).

    Subclasses provide the data: ``_load_data() -> (df, fold_ids)``. ``fold_ids`` maps "fold_k" to
    ``{"train": [...], "test": [...], "validation": [...] (optional)}`` with matbench's meaning of
    "train" (all non-test ids).
    """

    def __init__(self, spec: TaskSpec):
        self.spec = spec
        self.folds_keys = fold_keys(spec)
        self.folds_nums = list(range(len(self.folds_keys)))
        self.folds_map = dict(zip(self.folds_nums, self.folds_keys))
        self.folds = self.folds_nums
        self.df: pd.DataFrame | None = None
        self.fold_ids: dict[str, dict[str, list[str]]] | None = None
        self.results: dict[str, dict[str, Any]] = {k: {} for k in self.folds_keys}
        self.config: dict[str, Any] = {}

    # -- names matbench uses
    @property
    def dataset_name(self) -> str:
        return self.spec.name

    @property
    def benchmark_name(self) -> str:
        return BENCHMARK_NAME

    @property
    def target(self) -> str:
        return self.spec.target.name

    def __repr__(self) -> str:
        t = self.spec.target
        return (f"{type(self).__name__}(name={self.spec.name}, version={self.spec.version}, "
                f"target={t.name} [{t.unit}] {t.kind}{'' if t.kind != 'tensor' else ' rank ' + str(t.rank)}, "
                f"folds={len(self.folds)}, loaded={self.df is not None})")

    # -- data
    @abc.abstractmethod
    def _load_data(self) -> tuple[pd.DataFrame, dict[str, dict[str, list[str]]]]:
        """Return (df indexed by id with "structure" and the target column, fold ids)."""

    def load(self) -> None:
        """Load the data set into memory (no-op when already loaded)."""
        if self.df is not None:
            return
        df, fold_ids = self._load_data()
        missing = [c for c in (STRUCTURE_KEY, self.target) if c not in df.columns]
        if missing:
            raise ValueError(f"task {self.spec.name}: data has no column(s) {missing}; columns: {list(df.columns)}")
        if set(fold_ids) != set(self.folds_keys):
            raise ValueError(f"task {self.spec.name}: split has folds {sorted(fold_ids)}, the spec expects "
                             f"{self.folds_keys}")
        check_split(fold_ids, df.index, what=f"task {self.spec.name}")
        self.df, self.fold_ids = df, fold_ids

    def _check_is_loaded(self) -> None:
        if self.df is None:
            self.load()

    def _fold_key(self, fold: int | str) -> str:
        if isinstance(fold, str) and fold in self.folds_keys:
            return fold
        try:
            return self.folds_map[int(fold)]
        except (KeyError, ValueError, TypeError):
            raise KeyError(f"task {self.spec.name} has folds {self.folds}; got {fold!r}") from None

    def _get_data_from_df(self, ids: list[str], as_type: str):
        relevant = self.df.loc[ids]
        if as_type == "df":
            return relevant
        if as_type == "tuple":
            return relevant[STRUCTURE_KEY], relevant[self.target]
        raise ValueError(f"as_type must be 'tuple' or 'df', got {as_type!r}")

    def get_train_and_val_data(self, fold_number: int, as_type: str = "tuple"):
        """All non-test data of the fold (training + validation), as matbench."""
        self._check_is_loaded()
        return self._get_data_from_df(self.fold_ids[self._fold_key(fold_number)]["train"], as_type)

    def get_test_data(self, fold_number: int, as_type: str = "tuple", include_target: bool = False):
        """The fold's test inputs (and targets with ``include_target=True``), in recording order."""
        self._check_is_loaded()
        ids = self.fold_ids[self._fold_key(fold_number)]["test"]
        if include_target:
            return self._get_data_from_df(ids, as_type)
        if as_type == "tuple":
            return self._get_data_from_df(ids, as_type)[0]
        return self._get_data_from_df(ids, as_type)[[STRUCTURE_KEY]]

    def get_validation_ids(self, fold_number: int) -> list[str] | None:
        """The fixed validation ids inside the fold's train data, or None when the task leaves
        validation to the user."""
        self._check_is_loaded()
        val = self.fold_ids[self._fold_key(fold_number)].get("validation")
        return None if val is None else list(val)

    def get_test_ids(self, fold_number: int) -> list[str]:
        self._check_is_loaded()
        return list(self.fold_ids[self._fold_key(fold_number)]["test"])

    def targets_array(self, ids: Sequence[str]) -> np.ndarray:
        """Targets of ``ids`` stacked: (n,) for scalars, (n, 3, ..., 3) for tensors (float64)."""
        self._check_is_loaded()
        vals = self.df.loc[list(ids), self.target].to_list()
        if self.spec.target.kind == "class":
            return np.asarray(vals, dtype=bool)
        return np.asarray(np.stack([np.asarray(v, dtype=np.float64) for v in vals]) if vals else
                          np.zeros((0, *self.spec.target.shape)), dtype=np.float64)

    # -- recording
    @property
    def is_recorded(self) -> dict[int, bool]:
        return {n: bool(self.results.get(k, {}).get(DATA_KEY)) for n, k in self.folds_map.items()}

    @property
    def all_folds_recorded(self) -> bool:
        return all(self.is_recorded.values())

    def _check_predictions(self, fold_key: str, ids: list[str], predictions) -> np.ndarray:
        t = self.spec.target
        if isinstance(predictions, (pd.Series, pd.DataFrame)):
            predictions = predictions.to_list() if isinstance(predictions, pd.Series) else predictions.values
        if t.kind == "tensor":
            arr = np.asarray([np.asarray(p, dtype=np.float64) for p in predictions]) if len(predictions) else \
                np.zeros((0, *t.shape))
        elif t.kind == "class":
            arr = np.asarray(predictions)
            if arr.dtype.kind not in "bf":
                raise TypeError(f"task {self.spec.name}: classification predictions must be bools or "
                                f"probabilities (floats in [0, 1]), got dtype {arr.dtype}")
            if arr.dtype.kind == "f" and ((arr < 0) | (arr > 1)).any():
                raise ValueError(f"task {self.spec.name}: probabilities must lie in [0, 1]")
        else:
            arr = np.asarray(predictions, dtype=np.float64)
        if len(arr) != len(ids):
            raise ValueError(f"task {self.spec.name} {fold_key}: got {len(arr)} predictions for {len(ids)} test "
                             f"entries; predict every entry of get_test_data({fold_key[5:]}), in its order")
        want = (len(ids), *t.shape)
        if arr.shape != want:
            raise ValueError(f"task {self.spec.name} {fold_key}: predictions have shape {arr.shape}, expected "
                             f"{want} ({'full Cartesian (3,)*rank tensors' if t.kind == 'tensor' else 'one number each'})")
        if arr.dtype.kind == "f":
            bad = ~np.isfinite(arr.reshape(len(arr), -1)).all(axis=1)
            if bad.any():
                names = [ids[i] for i in np.flatnonzero(bad)]
                raise ValueError(f"task {self.spec.name} {fold_key}: {len(names)} predictions are NaN or inf, "
                                 f"e.g. for ids {names[:10]}; a model diverged or an input broke it")
        return arr

    def _score(self, fold_key: str, ids: list[str], arr: np.ndarray) -> dict[str, float]:
        kind = self.spec.target.kind
        truth = self.targets_array(ids)
        if kind == "tensor":
            structures = self.df.loc[ids, STRUCTURE_KEY].to_list() if self.config.get("score_symmetry", True) else None
            return tensor_scores(truth, arr, structures=structures, formula=self.spec.target.formula)
        if kind == "class":
            return classification_scores(truth, arr)
        return regression_scores(truth, arr)

    def record(self, fold_number: int, predictions, params: dict | None = None) -> None:
        """Record (and score) the predictions for the test data of ``fold_number``, in the order of
        ``get_test_data(fold_number)``. Raises on a second record of a fold, a wrong length or shape,
        and NaN/inf predictions (naming the ids)."""
        self._check_is_loaded()
        fold_key = self._fold_key(fold_number)
        if self.is_recorded[self.folds_keys.index(fold_key)]:
            raise ValueError(f"task {self.spec.name} {fold_key} is already recorded; build a new task to "
                             f"record another run")
        if not isinstance(params, (dict, type(None))):
            raise TypeError(f"params must be a dict, not {type(params).__name__}")
        ids = self.get_test_ids(fold_number)
        arr = self._check_predictions(fold_key, ids, predictions)
        if self.spec.target.kind == "tensor":
            data = {i: a.tolist() for i, a in zip(ids, arr)}
        elif arr.dtype.kind == "b":
            data = {i: bool(a) for i, a in zip(ids, arr)}
        else:
            data = {i: float(a) for i, a in zip(ids, arr)}
        scores = self._score(fold_key, ids, arr)
        self.results[fold_key] = {
            DATA_KEY: data,
            PARAMS_KEY: json.loads(json.dumps(params or {}, default=json_default)),
            SCORES_KEY: scores,
            UNCERTAINTY_KEY: None,
        }
        logger.info("recorded %s %s: %s", self.spec.name, fold_key,
                    ", ".join(f"{k}={v:.4g}" for k, v in scores.items()))

    def _check_all_folds_recorded(self, msg: str) -> None:
        if not self.all_folds_recorded:
            missing = [f for f, ok in self.is_recorded.items() if not ok]
            raise ValueError(f"{msg}; folds {missing} of task {self.spec.name} not recorded")

    @property
    def scores(self) -> dict[str, dict[str, float]]:
        """{metric: {mean, max, min, std}} over all folds (all folds must be recorded)."""
        self._check_all_folds_recorded("cannot score unless all folds are recorded")
        return fold_distribution(self.results[k][SCORES_KEY] for k in self.folds_keys)

    # -- files
    def as_dict(self) -> dict[str, Any]:
        return {
            "@module": type(self).__module__,
            "@class": type(self).__name__,
            "benchmark_name": self.benchmark_name,
            "dataset_name": self.spec.name,
            "results": {k: self.results[k] for k in self.folds_keys if self.results.get(k)},
            "version": self.spec.version,
            "spec": spec_to_dict(self.spec),
            "config": self.config,
        }

    def to_file(self, path: str | os.PathLike) -> Path:
        """Write the results (matbench's layout, see module docstring); gzip JSON when the name ends in
        ``.gz``. Written atomically."""
        path = Path(path)
        write_json_any(path, self.as_dict())
        logger.info("wrote results of %s to %s", self.spec.name, path)
        return path

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> "ArrayTask":
        """Read results written by :meth:`to_file`. The task comes back without its data (like
        matbench's): results, scores and fold test ids are available; ``load()`` needs the data."""
        d = read_json_any(path)
        return ArrayTask.from_dict(d, source=str(path))


# --------------------------------------------------------------------------------------------- ArrayTask
class ArrayTask(Task):
    """A task over an in-memory DataFrame and explicit fold id lists.

    Args:
        spec: the task's TaskSpec.
        df: DataFrame indexed by id (str) with a "structure" column (pymatgen Structure) and the target
            column ``spec.target.name`` (floats, bools, or arrays of shape ``spec.target.shape``) in the
            task's space (``spec.target.forward`` already applied; see ``transform_raw``). Other
            columns (space group, ...) are kept in ``task.meta``.
        fold_ids: ``{"fold_k": {"train", "test", "validation"?}}`` (e.g. from :func:`make_split`).
        loader: instead of df / fold_ids, a callable returning ``(df, fold_ids)`` on ``load()``.
        transform_raw: apply ``spec.target.forward`` to the target column (physical -> task space).
        config: free-form settings recorded in the results file (n, seed, ...).

    Rows with a missing / non-finite target are dropped with a warning naming them (``dropped_ids``).
    """

    def __init__(
        self,
        spec: TaskSpec,
        df: pd.DataFrame | None = None,
        fold_ids: dict[str, dict[str, list[str]]] | None = None,
        loader: Callable[[], tuple[pd.DataFrame, dict]] | None = None,
        transform_raw: bool = False,
        config: dict[str, Any] | None = None,
    ):
        super().__init__(spec)
        if (df is None) != (fold_ids is None):
            raise ValueError("give both df and fold_ids (or a loader)")
        self._df_in, self._fold_ids_in, self._loader = df, fold_ids, loader
        self._transform_raw = transform_raw
        self.config = dict(config or {})
        self.dropped_ids: list[str] = []
        self.meta: pd.DataFrame | None = None
        self._results_only_source: str | None = None
        if df is not None:
            self.load()

    # -- construction helpers
    @classmethod
    def from_dataframe(
        cls,
        spec: TaskSpec,
        df: pd.DataFrame,
        seed: int = 0,
        split_file: str | os.PathLike | None = None,
        val_fraction: float = 0.1,
        transform_raw: bool = False,
        config: dict[str, Any] | None = None,
    ) -> "ArrayTask":
        """Build a task from a DataFrame with a seed-derived split (``spec.split``, ``spec.n_folds``).

        With ``split_file``: if it exists, its folds are used (a file that does not fit the data is an
        error); if not, the split is made and written there (JSON: ids per fold), so later runs and
        other tools use the very same ids. Rows with a missing target are dropped BEFORE the split is
        made.
        """
        df = cls.clean(spec, df, transform_raw)
        fold_ids = resolve_split(spec, df, seed, split_file, val_fraction, stale="raise")
        config = dict(config or {})
        config.setdefault("split_seed", seed)
        # df is already cleaned (and transformed): cleaning again is a no-op, transforming is not.
        return cls(spec, df=df, fold_ids=fold_ids, config=config, transform_raw=False)

    @classmethod
    def from_builder(
        cls,
        spec: TaskSpec,
        build: Callable[[], pd.DataFrame],
        seed: int = 0,
        split_file: str | os.PathLike | None = None,
        val_fraction: float = 0.1,
        transform_raw: bool = False,
        config: dict[str, Any] | None = None,
        stale_split: str = "raise",
    ) -> "ArrayTask":
        """Like :meth:`from_dataframe`, but ``build()`` makes the DataFrame on first use (``load()`` or
        any ``get_*_data``), so building the task object costs nothing. ``stale_split="remake"``
        replaces a split file that does not fit the data (with a warning) instead of raising: for
        split files kept in a cache next to the data they were made for."""

        def loader():
            df = cls.clean(spec, build(), transform_raw)
            return df, resolve_split(spec, df, seed, split_file, val_fraction, stale=stale_split)

        config = dict(config or {})
        config.setdefault("split_seed", seed)
        return cls(spec, loader=loader, config=config, transform_raw=False)

    @staticmethod
    def clean(spec: TaskSpec, df: pd.DataFrame, transform_raw: bool = False) -> pd.DataFrame:
        """A copy of ``df`` ready for a task: ids as str, rows with a missing / non-finite / misshapen
        target dropped (a warning names them; ``df.attrs["dropped_ids"]``), tensors as float64 arrays,
        and ``spec.target.forward`` applied when ``transform_raw``."""
        t = spec.target
        if t.name not in df.columns:
            raise ValueError(f"task {spec.name}: the data has no target column {t.name!r}; columns: {list(df.columns)}")
        df = df.copy()
        df.index = df.index.map(str)
        if df.index.has_duplicates:
            raise ValueError(f"task {spec.name}: duplicated ids {sorted(set(df.index[df.index.duplicated()]))[:10]}")

        def ok(v) -> bool:
            if v is None:
                return False
            if t.kind == "class":
                return not (isinstance(v, float) and math.isnan(v))
            a = np.asarray(v, dtype=np.float64)
            return a.shape == t.shape and bool(np.isfinite(a).all())

        good = np.array([ok(v) for v in df[t.name]], dtype=bool)
        if not good.all():
            bad = list(df.index[~good])
            logger.warning("task %s: dropping %d of %d rows whose target %r is missing, non-finite or not of "
                           "shape %s: %s%s", spec.name, len(bad), len(df), t.name, t.shape, bad[:20],
                           " ..." if len(bad) > 20 else "")
            df = df.loc[good].copy()
            df.attrs["dropped_ids"] = bad
        if t.kind == "tensor":
            df[t.name] = [np.asarray(v, dtype=np.float64) for v in df[t.name]]
        elif t.kind == "scalar":
            df[t.name] = df[t.name].astype(np.float64)
        if transform_raw and t.transform is not None:
            if t.kind == "tensor":
                df[t.name] = [t.forward(v) for v in df[t.name]]
            else:
                df[t.name] = t.forward(df[t.name].to_numpy())
        return df

    def _load_data(self):
        if self._df_in is not None:
            df, fold_ids = self._df_in, self._fold_ids_in
        elif self._loader is not None:
            df, fold_ids = self._loader()
        elif self._results_only_source is not None:
            raise ValueError(f"task {self.spec.name} was read from results file {self._results_only_source} "
                             f"and has no data; build it with tasks.get({self.spec.name!r}, ...) to load data")
        else:
            raise ValueError(f"task {self.spec.name} has no data and no loader")
        df = self.clean(self.spec, df, self._transform_raw)
        self.dropped_ids = list(df.attrs.get("dropped_ids", []))
        keep = [STRUCTURE_KEY, self.target]
        self.meta = df.drop(columns=keep)
        return df[keep], fold_ids

    # -- results-only tasks from files
    @classmethod
    def from_dict(cls, d: dict[str, Any], source: str = "<dict>") -> "ArrayTask":
        for k in ("dataset_name", "results", "spec"):
            if k not in d:
                raise KeyError(f"{source}: required key {k!r} not found; is this a crystal-zoo results file?")
        spec = spec_from_dict(d["spec"])
        obj = cls(spec, config=d.get("config", {}))
        obj._results_only_source = source
        for k, fold in d["results"].items():
            if k not in obj.folds_keys:
                raise KeyError(f"{source}: fold {k!r} is not one of {obj.folds_keys}")
            for req in (DATA_KEY, SCORES_KEY):
                if req not in fold:
                    raise KeyError(f"{source}: {k} has no {req!r}")
            obj.results[k] = dict(fold)
        return obj

    def get_test_ids(self, fold_number: int) -> list[str]:
        if self.df is None and self._results_only_source is not None:
            return list(self.results[self._fold_key(fold_number)].get(DATA_KEY, {}))
        return super().get_test_ids(fold_number)

    def predictions(self, fold_number: int) -> tuple[list[str], np.ndarray]:
        """Recorded (ids, predictions array) of a fold."""
        data = self.results[self._fold_key(fold_number)].get(DATA_KEY)
        if not data:
            raise ValueError(f"task {self.spec.name}: fold {fold_number} is not recorded")
        ids = list(data)
        return ids, np.asarray([data[i] for i in ids])
