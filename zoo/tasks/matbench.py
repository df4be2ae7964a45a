"""Matbench v0.1 structure tasks, through the matbench package itself.

``zoo.tasks.get("matbench_jdft2d")`` returns a :class:`MatbenchZooTask`. Its folds are matbench's, read from
matbench's own files (``split_ids``), and its data are read offline without importing matbench, so a training
run starts without matbench, matminer and scikit-learn (seconds of start-up). The first use of matbench's
behaviour (``record``, ``scores``, ``validate``, ``as_dict``, files) turns it in place into a subclass of
matbench's own ``MatbenchTask`` (matbench 0.6), so results, scores and their layout are matbench's code, not a
copy. It only adds:

- ``task.spec`` (a TaskSpec, version "matbench_v0.1") and ``task.get_validation_ids(fold)`` (always
  ``None``: matbench leaves the inner validation split to the user);
- offline loading: with ``data_dir=`` (or the ``MATMINER_DATA`` environment variable, the one matminer
  itself reads) the task reads ``<data_dir>/<task>.json.gz`` (the frame matminer's
  ``load_dataframe_from_json`` gives) instead of downloading it. matminer checks a downloaded file against
  the official sha256; a local copy that was re-serialised (same data, other bytes) would fail that,
  so here the sha256 is only reported, and the data are checked instead: row count = matbench's
  n_samples, ids = the official fold ids, targets of the right type and finite, and -- when an official
  targets file ``<task>.json.bz2`` (matbench's ``scripts/artifacts``) is in data_dir or given as
  ``reference_targets`` -- every target and composition equal to the official ones. One log line says
  which checks ran. The file is parsed as plain JSON and only pymatgen structures are decoded from it
  (``zoo.tasks.files.read_dataframe_json``: an allow-list, where matminer's reader would import any
  module an entry names); a truncated or corrupt file is refused naming it. ``task.data_files`` records
  the file and its sha256 (they travel with every run, ``zoo.training.dataid``);
- the data load on first use (``get_*_data`` / ``record`` call ``load()``), where matbench raises;
- NaN / inf predictions are refused by ``record`` with the ids named (matbench would pass them to
  scikit-learn, which fails with a message naming no entry).

Without ``data_dir`` and ``MATMINER_DATA``, matbench/matminer download the data as usual (online;
matminer checks the official sha256 before it decodes the file, so what it decodes is the official
content). Without network that fails with one message that says which file to put where.

log_gvrh / log_kvrh: matbench's targets are ALREADY log10(modulus / GPa) ("log10(G_VRH)",
"log10(K_VRH)"): models are trained and scored on those values unchanged. The spec says so with
``transform="log10"`` (``spec.target.inverse(pred)`` gives the modulus in GPa) and
``unit="log10(GPa)"`` (matbench's unit of the values and of the scores); never apply ``forward`` to them.

``write_submission(task, out_dir, info)`` writes matbench's submission files: ``results.json.gz``
(``MatbenchBenchmark.to_file`` with this one task, then gzip-compressed) and ``info.json``.
"""
from __future__ import annotations

import functools
import gzip
import importlib.util
import json
import logging
import math
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from zoo.core import provenance
from zoo.core.io import atomic_path, sha256_file, write_json
from zoo.core.paths import resolve_data_dir

from . import register
from .base import CLF_METRICS, REG_METRICS, Task
from .files import DataFileError, read_dataframe_json, read_json_any, write_json_any
from .spec import TargetSpec, TaskSpec

logger = logging.getLogger(__name__)

VERSION = "matbench_v0.1"
STRUCTURE_TASKS = (
    "matbench_jdft2d",
    "matbench_phonons",
    "matbench_dielectric",
    "matbench_log_gvrh",
    "matbench_log_kvrh",
    "matbench_perovskites",
    "matbench_mp_gap",
    "matbench_mp_is_metal",
    "matbench_mp_e_form",
)
INFO_FIELDS = ("authors", "algorithm", "algorithm_long", "bibtex_refs", "notes", "requirements")
# The classes a results file may name (matbench's own); reading one imports nothing else.
RESULTS_CLASSES = {"matbench.bench": ("MatbenchBenchmark",), "matbench.task": ("MatbenchTask",)}
_LOG_TASKS = {"matbench_log_gvrh": "GPa", "matbench_log_kvrh": "GPa"}


def _package_dir(name: str) -> Path | None:
    """Folder of an installed package, without importing it (matbench's import takes seconds)."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


@functools.lru_cache(maxsize=1)
def task_metadata() -> dict[str, dict[str, Any]]:
    """matbench v0.1's per-task metadata (input_type, n_samples, target, task_type, unit, mad) merged
    with matminer's (url, hash = sha256 of the official file, num_entries) -- what matbench itself does
    in ``matbench/metadata.py``, read from the package files without importing the packages."""
    mb = _package_dir("matbench")
    if mb is None:
        return {}
    meta = json.loads((mb / "matbench_v0.1_dataset_metadata.json").read_text())
    mm = _package_dir("matminer")
    if mm is not None and (mm / "datasets" / "dataset_metadata.json").exists():
        mm_meta = json.loads((mm / "datasets" / "dataset_metadata.json").read_text())
        for name, d in meta.items():
            for k in ("url", "hash", "file_type", "num_entries"):
                if k in mm_meta.get(name, {}):
                    d[k] = mm_meta[name][k]
    return meta


def matbench_spec(name: str) -> TaskSpec:
    """The TaskSpec of matbench task ``name`` (from matbench's own metadata)."""
    meta = task_metadata()
    if name not in meta:
        raise KeyError(f"{name!r} is not a matbench v0.1 task; tasks: {sorted(meta)}")
    m = meta[name]
    clf = m["task_type"] == "classification"
    extra: dict[str, Any] = {
        "n_samples": m["n_samples"],
        "url": m.get("url"),
        "sha256": m.get("hash"),
    }
    if clf:
        extra["frac_true"] = m.get("frac_true")
    else:
        extra["mad"] = m.get("mad")
    transform = None
    if name in _LOG_TASKS:
        transform = "log10"
        extra["physical_unit"] = _LOG_TASKS[name]
        extra["note"] = ("matbench's targets are already log10(modulus/GPa); train and score on them as they "
                         "are; spec.target.inverse(prediction) gives GPa")
    target = TargetSpec(
        name=m["target"],
        kind="class" if clf else "scalar",
        unit=m["unit"] or "",
        transform=transform,
    )
    return TaskSpec(
        name=name,
        version=VERSION,
        target=target,
        input_type=m["input_type"],
        task_type=m["task_type"],
        metrics=CLF_METRICS if clf else REG_METRICS,
        n_folds=5,
        split="kfold",
        source=f"matbench v0.1 (Dunn et al., npj Comput. Mater. 6, 138 (2020)); data {m.get('url')}",
        extra=extra,
    )


def mbids(name: str, n: int, index=None) -> list[str]:
    """matbench's ids from the row index (0..n-1): ``mb-<task>-<i+1>`` zero-padded to floor(log10 n)+1
    digits, as ``matbench.data_ops.load``."""
    width = math.floor(math.log(n, 10)) + 1
    prefix = name.replace("matbench", "mb").replace("_", "-")
    return [f"{prefix}-{int(i) + 1:0{width}d}" for i in (range(n) if index is None else index)]


def load_offline(
    name: str,
    data_dir: str | os.PathLike,
    reference_targets: str | os.PathLike | None = None,
    progress: bool = False,
    why: str = "the data_dir argument",
):
    """Read matbench task ``name`` from ``<data_dir>/<name>.json.gz`` and check it against the task.

    Returns matbench's DataFrame: indexed by mbid, columns (input_type, target). Raises
    FileNotFoundError (naming the file, the folder and the download URL) when the file is missing,
    ValueError when the data do not match the official task.
    """
    meta = task_metadata()[name]
    folder = Path(data_dir)
    path = folder / f"{name}.{meta.get('file_type', 'json.gz')}"
    if not path.is_file():
        raise FileNotFoundError(
            f"matbench task {name}: data file {path.name!r} not found in {folder.resolve()} (searched because of "
            f"{why}). Download it from {meta.get('url')} (sha256 {meta.get('hash')}) into that folder, or drop "
            f"data_dir / unset MATMINER_DATA to let matminer download it."
        )
    df = read_dataframe_json(path)  # matminer's frame, decoded through the allow-list (module docstring)
    n_expected = meta["n_samples"]
    if len(df) != n_expected:
        raise ValueError(f"{path}: {len(df)} rows, but matbench task {name} has {n_expected}; not this task's data")
    # matbench.data_ops.load: ids from the row index, then keep (input, target).
    df["mbid"] = mbids(name, len(df), df.index)
    df = df.set_index("mbid")
    cols = [meta["input_type"], meta["target"]]
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise ValueError(f"{path}: no column(s) {missing} (has {list(df.columns)}); not matbench task {name}")
    df = df[cols]
    checks = [f"{len(df)} rows = n_samples"]

    splits = split_ids(name)
    official = set()
    for fold in splits.values():
        official |= set(fold["test"])
    if set(df.index) != official:
        raise DataFileError(f"{path}: ids do not match matbench's official fold ids for {name}")
    checks.append(f"ids = official ids of all {len(splits)} folds")

    y = df[meta["target"]]
    if meta["task_type"] == "regression":
        vals = y.to_numpy(dtype=np.float64)
        if not np.isfinite(vals).all():
            raise ValueError(f"{path}: {int((~np.isfinite(vals)).sum())} targets are not finite")
        checks.append("targets finite")
    else:
        if not all(isinstance(v, (bool, np.bool_)) for v in y):
            raise ValueError(f"{path}: classification targets of {name} must be booleans")
        checks.append("targets boolean")

    ref = Path(reference_targets) if reference_targets is not None else folder / f"{name}.json.bz2"
    if ref.is_file():
        checks.append(_check_reference(df, name, meta, ref))
    elif reference_targets is not None:
        raise FileNotFoundError(f"reference targets file {ref} not found")

    digest = sha256_file(path)
    df.attrs["data_files"] = {str(path.resolve()): digest}
    if digest == meta.get("hash"):
        logger.info("matbench task %s: %s has the official sha256 (%s...); checked: %s", name, path, digest[:12],
                    "; ".join(checks))
    else:
        logger.info("matbench task %s: %s is not the official file (sha256 %s... != official %s...; a re-serialised "
                    "copy), verified instead: %s", name, path, digest[:12], str(meta.get("hash"))[:12],
                    "; ".join(checks))
    return df


def _check_reference(df, name: str, meta: dict, ref: Path) -> str:
    """Compare targets and compositions with matbench's official artifact (scripts/artifacts/<task>.json.bz2:
    mbid, target, composition by row)."""
    from pymatgen.core import Composition

    d = read_json_any(ref)
    ids = [d["mbid"][str(i)] for i in range(len(d["mbid"]))]
    if ids != list(df.index):
        raise ValueError(f"{ref}: its mbids are not those of the data (row order differs)")
    target = meta["target"]
    ref_y = np.array([d[target][str(i)] for i in range(len(ids))])
    y = df[target].to_numpy()
    if meta["task_type"] == "regression":
        bad = ~np.isclose(y.astype(np.float64), ref_y.astype(np.float64), rtol=1e-8, atol=1e-10)
    else:
        bad = y.astype(bool) != ref_y.astype(bool)
    if bad.any():
        raise ValueError(f"{ref}: {int(bad.sum())} targets differ from the data, e.g. {list(df.index[bad][:5])}")
    if "composition" in d and meta["input_type"] == "structure":
        comp_bad = [i for k, i in enumerate(ids)
                    if Composition(d["composition"][str(k)]) != df.iloc[k][meta["input_type"]].composition]
        if comp_bad:
            raise ValueError(f"{ref}: {len(comp_bad)} compositions differ from the structures, e.g. {comp_bad[:5]}")
        return f"targets and compositions equal the official artifact {ref.name}"
    return f"targets equal the official artifact {ref.name}"


# matbench's public attributes (matbench 0.6: MatbenchTask's methods and the attributes its __init__ sets) that
# the lazy task below does not provide itself: touching one turns the task into matbench's class in place.
MATBENCH_ATTRS = frozenset({
    "REDIRECT", "all_folds_recorded", "as_dict", "from_dict", "get_info", "has_polymorphs", "info", "is_recorded",
    "metadata", "record", "results", "save", "scores", "to_file", "to_json", "unsafe_hash", "validate",
    "validate_monty_v1", "validate_monty_v2", "validation",
})


@functools.cache
def split_ids(name: str) -> dict[str, dict[str, list[str]]]:
    """matbench v0.1's folds of task ``name``, ``{"fold_0": {"train": [mbid...], "test": [mbid...]}, ...}``:
    the ``splits[name]`` entry of matbench's ``matbench_v0.1_validation.json`` (what
    ``matbench.metadata.mbv01_validation.splits[name]`` holds), read without importing matbench.

    The file holds every task's folds (46 MB; json.load of it all takes ~0.5 s): only this task's entry is
    decoded, by the json module, starting at its key inside "splits" (task names appear only as keys there,
    ids are "mb-..." strings)."""
    mb = _package_dir("matbench")
    if mb is None:
        raise ImportError("matbench task folds need the matbench package: pip install 'crystal-zoo[matbench]'")
    path = mb / "matbench_v0.1_validation.json"
    raw = path.read_bytes()
    splits_at = raw.find(b'"splits"')
    key_at = raw.find(json.dumps(name).encode(), splits_at) if splits_at >= 0 else -1
    if key_at < 0:
        raise KeyError(f"{path} has no folds for {name!r}")
    colon = raw.index(b":", key_at)
    folds, _ = json.JSONDecoder().raw_decode(raw[colon + 1:].decode().lstrip())
    if not (isinstance(folds, dict) and all(set(f) == {"train", "test"} for f in folds.values())):
        raise DataFileError(f"{path}: the entry of {name!r} is not matbench's fold layout (fold_i: train, test)")
    return folds


class MatbenchZooTask:
    """A matbench v0.1 task that imports matbench only for matbench's own behaviour.

    Folds, data and ``get_*_data`` come from matbench's files (:func:`split_ids`, :func:`load_offline`), so
    a training run starts without importing matbench, matminer and scikit-learn (seconds of start-up).
    The first use of anything else of matbench's (``record``, ``scores``, ``as_dict``, ``to_file``, ...;
    :data:`MATBENCH_ATTRS`) turns the object, in place, into :func:`matbench_task_class` -- a subclass of
    matbench's ``MatbenchTask`` -- so results, scores and files are matbench's code, not a copy.
    """

    def __init__(self, dataset_name, autoload=False, benchmark=VERSION, data_dir=None, reference_targets=None,
                 progress=False):
        if benchmark != VERSION:
            raise ValueError(f"benchmark {benchmark!r}: only {VERSION} is defined (as in matbench)")
        self.dataset_name = dataset_name
        self.benchmark_name = benchmark
        self.df = None
        self.spec = matbench_spec(dataset_name)
        self.data_files: dict[str, str] = {}  # {path: sha256} of the local file read, once loaded
        self.data_dir, self._data_dir_why = resolve_data_dir(data_dir)
        self.reference_targets = reference_targets
        self.progress = progress
        self._splits = split_ids(dataset_name)
        # matbench's fold bookkeeping (MatbenchTask.__init__)
        self.folds_keys = list(self._splits)
        self.folds_nums = list(range(len(self.folds_keys)))
        self.folds_map = dict(zip(self.folds_nums, self.folds_keys))
        self.folds = self.folds_nums
        if autoload:
            self.load()

    def __getattr__(self, name: str):
        # Only reached for attributes the object lacks: matbench's, before the switch to matbench's class.
        if name not in MATBENCH_ATTRS or isinstance(self, matbench_task_class()):
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        self._become_matbench()
        return getattr(self, name)

    def _become_matbench(self):
        """Switch to matbench's class and run MatbenchTask.__init__ (metadata, validation, results), keeping
        the loaded data."""
        from matbench.task import MatbenchTask

        df = self.df
        self.__class__ = matbench_task_class()
        MatbenchTask.__init__(self, self.dataset_name, autoload=False, benchmark=self.benchmark_name)
        self.df = df

    def load(self):
        if self.df is not None:
            return
        if self.data_dir is None:
            from matbench.task import MatbenchTask

            try:
                MatbenchTask.load(self)  # matminer downloads and checks the official sha256
            except Exception as exc:  # requests/urllib errors, a failed hash: all mean "no usable copy"
                meta = task_metadata()[self.dataset_name]
                raise FileNotFoundError(
                    f"matbench task {self.dataset_name}: could not download its data ({type(exc).__name__}: "
                    f"{str(exc).splitlines()[0][:200]}). Without network, download "
                    f"{self.dataset_name}.{meta.get('file_type', 'json.gz')} from {meta.get('url')} on another "
                    f"machine, put it in a folder and pass --data-dir FOLDER (or set MATMINER_DATA=FOLDER)") from exc
        else:
            self.df = load_offline(self.dataset_name, self.data_dir, self.reference_targets,
                                   progress=self.progress, why=self._data_dir_why)
            self.data_files = self.df.attrs.get("data_files", {})

    def _check_is_loaded(self):
        if self.df is None:
            self.load()

    # matbench's get_*_data (MatbenchTask 0.6), on the folds read above
    def _fold_frame(self, fold_number, part: str, as_type: str):
        self._check_is_loaded()
        meta = task_metadata()[self.dataset_name]
        df = self.df.loc[self._splits[self.folds_map[fold_number]][part]]
        return df if as_type == "df" else (df[meta["input_type"]], df[meta["target"]])

    def get_train_and_val_data(self, fold_number, as_type="tuple"):
        return self._fold_frame(fold_number, "train", as_type)

    def get_test_data(self, fold_number, as_type="tuple", include_target=False):
        data = self._fold_frame(fold_number, "test", as_type)
        if include_target:
            return data
        return data[0] if as_type == "tuple" else data[[task_metadata()[self.dataset_name]["input_type"]]]

    def get_validation_ids(self, fold_number):
        """matbench v0.1 has no fixed validation split: None (choose one inside the train data)."""
        self.folds_map[fold_number]  # noqa: B018 - KeyError for an unknown fold
        return None

    def record(self, fold_number, predictions, ci=None, std=None, params=None):
        ids = self._splits[self.folds_map[fold_number]]["test"]
        arr = np.asarray(predictions.to_list() if hasattr(predictions, "to_list") else predictions)
        if arr.dtype.kind in "fc":
            bad = ~np.isfinite(arr)
            if bad.any():
                names = [ids[i] for i in np.flatnonzero(bad)[:10]] if len(arr) == len(ids) else []
                raise ValueError(f"task {self.dataset_name} {self.folds_map[fold_number]}: {int(bad.sum())} "
                                 f"predictions are NaN or inf{', e.g. for ids ' + str(names) if names else ''}")
        self._check_is_loaded()
        if not isinstance(self, matbench_task_class()):
            self._become_matbench()
        from matbench.task import MatbenchTask

        return MatbenchTask.record(self, fold_number, predictions, ci=ci, std=std, params=params)

    @classmethod
    def from_file(cls, filename):
        return matbench_task_class().from_dict(read_json_any(filename, allowed=RESULTS_CLASSES))


Task.register(MatbenchZooTask)  # isinstance(task, tasks.base.Task) holds for matbench tasks too


@functools.lru_cache(maxsize=1)
def matbench_task_class():
    """MatbenchZooTask as a subclass of matbench's ``MatbenchTask`` (defined on first use: importing
    matbench costs seconds)."""
    from matbench.task import MatbenchTask

    class MatbenchZooTask_(MatbenchZooTask, MatbenchTask):
        """matbench's ``MatbenchTask`` plus ``spec``, ``get_validation_ids`` and offline loading."""

        def __init__(self, dataset_name, autoload=False, benchmark=VERSION, **kwargs):
            MatbenchZooTask.__init__(self, dataset_name, benchmark=benchmark, **kwargs)
            self._become_matbench()
            if autoload:
                self.load()

        def as_dict(self):
            # Exactly matbench's dict: results files stay readable by plain matbench.
            d = super().as_dict()
            d["@module"], d["@class"] = MatbenchTask.__module__, MatbenchTask.__name__
            return d

        def to_file(self, filename):
            """matbench's task dict as JSON; gzip-compressed when the name ends in .gz (matbench 0.6
            writes plain JSON whatever the name, see matbench issue #249; the content is the same)."""
            write_json_any(filename, self.as_dict())

    MatbenchZooTask_.__module__ = __name__
    MatbenchZooTask_.__qualname__ = MatbenchZooTask_.__name__ = "MatbenchZooTask"
    return MatbenchZooTask_


def get_task(name: str, data_dir: str | os.PathLike | None = None, autoload: bool = False,
             reference_targets: str | os.PathLike | None = None, progress: bool = False):
    """A matbench v0.1 task; data load on first use. matbench's own class from the start when matbench is
    already imported (nothing to save then), otherwise the lazy :class:`MatbenchZooTask`, which becomes it
    on first use of matbench's behaviour."""
    cls = matbench_task_class() if "matbench.task" in sys.modules else MatbenchZooTask
    return cls(name, autoload=autoload, data_dir=data_dir, reference_targets=reference_targets, progress=progress)


# The packages a submission's numbers depend on, recorded in info.json's "requirements".
REQUIREMENTS = ("crystal-zoo", "matbench", "matminer", "pymatgen", "numpy", "torch", "jax", "flax", "e3nn", "e3nn-jax")


def _default_requirements() -> dict[str, list[str]]:
    versions = provenance.package_versions(REQUIREMENTS)
    return {"python": [f"{pkg}=={versions[pkg]}" for pkg in REQUIREMENTS if versions[pkg] is not None]}


def write_submission(task, out_dir: str | os.PathLike, info: dict[str, Any]) -> dict[str, Path]:
    """Write a matbench submission for one recorded task: ``results.json.gz`` and ``info.json``.

    ``results.json.gz`` is ``MatbenchBenchmark.to_file`` of a benchmark holding this one task,
    gzip-compressed (so ``MatbenchBenchmark.from_file`` of matbench >= the #249 fix reads it; with
    matbench 0.6 use :func:`load_submission`). ``info`` needs matbench's submission fields
    {authors, algorithm, algorithm_long, bibtex_refs, notes}; ``requirements`` defaults to the
    installed versions of the packages that matter.
    """
    from matbench.bench import MatbenchBenchmark

    missing = [k for k in INFO_FIELDS if k != "requirements" and k not in info]
    if missing:
        raise ValueError(f"info is missing the matbench submission field(s) {missing}; required: {list(INFO_FIELDS)}")
    extra = [k for k in info if k not in INFO_FIELDS]
    if extra:
        raise ValueError(f"info has fields matbench's info.json does not know: {extra}; allowed: {list(INFO_FIELDS)}")
    if not task.all_folds_recorded:
        missing_folds = [f for f, ok in task.is_recorded.items() if not ok]
        raise ValueError(f"task {task.dataset_name}: folds {missing_folds} are not recorded; a submission needs all")

    bench = MatbenchBenchmark(benchmark=VERSION, autoload=False, subset=[task.dataset_name])
    bench.tasks_map[task.dataset_name] = task
    errors = bench.validate()
    if errors:
        raise ValueError(f"matbench rejects the results of {task.dataset_name}:\n{errors[task.dataset_name]}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    results = out / "results.json.gz"
    with tempfile.TemporaryDirectory(dir=out) as tmpdir:
        plain = Path(tmpdir) / "results.json"
        bench.to_file(str(plain))  # matbench's own writer (plain JSON)
        with atomic_path(results) as gz_tmp, open(plain, "rb") as src, open(gz_tmp, "wb") as raw, \
                gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz:
            shutil.copyfileobj(src, gz)
    full_info = {k: info[k] for k in INFO_FIELDS if k in info}
    full_info.setdefault("requirements", _default_requirements())
    write_json(out / "info.json", full_info)
    logger.info("matbench submission for %s written to %s", task.dataset_name, out)
    return {"results": results, "info": out / "info.json"}


def load_submission(path: str | os.PathLike):
    """``MatbenchBenchmark`` from a results file, gzip-compressed or not (matbench 0.6's ``from_file``
    reads uncompressed JSON only)."""
    from matbench.bench import MatbenchBenchmark

    return MatbenchBenchmark.from_dict(read_json_any(path, allowed=RESULTS_CLASSES))


def _factory(name: str):
    def build(**kwargs):
        return get_task(name, **kwargs)

    build.__name__ = f"build_{name}"
    build.__wrapped__ = get_task  # its parameters (names, types) for checking options before building
    return build


if task_metadata():
    for _name in STRUCTURE_TASKS:
        register(matbench_spec(_name), _factory(_name))
else:  # matbench is an optional dependency (crystal-zoo[matbench])
    logger.debug("matbench is not installed: matbench tasks are not registered")
