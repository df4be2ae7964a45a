"""Real tensor data sets (Materials Project via matminer, MatTen, JARVIS-DFT) and their benchmark tasks.

- :mod:`zoo.tasks.datasets.loaders`: ``load_mp_dielectric``, ``load_mp_piezoelectric``, ``load_mp_elastic``,
  ``load_mp_elastic_matten`` and ``load(name)`` (online through matminer, offline with ``data_dir=`` or
  ``MATMINER_DATA``); :mod:`zoo.tasks.datasets.jarvis`: ``load_jarvis`` (jarvis-tools, or ``JARVIS_DATA``);
  :mod:`zoo.tasks.datasets.sources`: what each data set is (``DATASETS``) and how its file is found.
- :mod:`zoo.tasks.datasets.frames`: ``check_frames`` / ``fix_frames``: is each tensor in its structure's
  Cartesian frame, and the rotation that puts it there (IEEE frame -> structure frame).
- :mod:`zoo.tasks.datasets.splits`: the committed seeded 80/10/10 and 5-fold splits (ids).

Tasks registered with ``zoo.tasks.register`` (``zoo.tasks.get(name, data_dir=..., split="kfold"|"holdout", ...)``):

=============================  =======  =====================  ==========  =============================
task                           rank     formula                unit        data set / column
=============================  =======  =====================  ==========  =============================
mp_dielectric_total            2        ij=ji                  --          mp_dielectric e_total
mp_dielectric_electronic       2        ij=ji                  --          mp_dielectric e_electronic
mp_piezoelectric               3        ijk=ikj                C/m^2       mp_piezoelectric
mp_elastic                     4        ijkl=jikl=klij         GPa         mp_elastic (matminer 2015)
mp_elastic_matten_n100         4        ijkl=jikl=klij         GPa         MatTen example file (100)
jarvis_dielectric_optb88vdw    2        ij=ji                  --          dft_3d epsx/epsy/epsz
jarvis_dielectric_mbj          2        ij=ji                  --          dft_3d mepsx/mepsy/mepsz
jarvis_piezo_max_eij           scalar   --                     C/m^2       dft_3d dfpt_piezo_max_eij
jarvis_elastic                 4        ijkl=jikl=klij         GPa         dft_3d elastic_tensor
=============================  =======  =====================  ==========  =============================

Rows enter a tensor task only when their frame is settled (``frame_status`` in ``keep_frames``, default
"as_is" and "ieee"; rows that only a setting search could fix are ambiguous in sign and are left out,
and so are inconsistent ones); the JARVIS dielectric tasks also need a point group that makes the tensor
diagonal in the structure's frame (dft_3d has only the diagonal).
"""
from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from zoo.tasks import register
from zoo.tasks.base import ArrayTask
from zoo.tasks.spec import TargetSpec, TaskSpec

from . import frames, jarvis, loaders, sources, splits
from .frames import check_frames, fix_frames
from .loaders import load
from .sources import DATASETS, DataNotFoundError

logger = logging.getLogger(__name__)

VERSION = "1"
TENSOR_METRICS = ("mae", "fnorm", "ewt25", "ewt10", "ewt5", "sym_violation_mean")
SCALAR_METRICS = ("mae", "rmse", "mape", "max_error")
DEFAULT_KEEP_FRAMES = (frames.STATUS_AS_IS, frames.STATUS_IEEE)


@dataclasses.dataclass(frozen=True)
class _TaskDef:
    spec: TaskSpec
    dataset: str  # key of sources.DATASETS (and of the split file)
    column: str  # column of the loaded frame that holds the target
    split_name: str  # split file stem
    loader_kwargs: tuple = ()  # fixed loader kwargs
    frame_prefix: str = ""  # JARVIS: flags are "<col>_frame_status"
    diagonal_only: bool = False


def _tensor(name, rank, formula, unit):
    return TargetSpec(name=name, kind="tensor", unit=unit, rank=rank, formula=formula)


def _spec(name, target, dataset, note, metrics=TENSOR_METRICS):
    info = DATASETS[dataset]
    return TaskSpec(name=name, version=VERSION, target=target, metrics=metrics, n_folds=5, split="kfold",
                    source=f"{info.source} ({info.citation})",
                    extra={"dataset": dataset, "dataset_version": info.version, "unit_note": note,
                           "frame_tol": info.frame_tol, "frame_atol": info.frame_atol,
                           "frame_prior": info.frame_prior, "frame_symprec": frames.SYMPREC,
                           "keep_frames": list(DEFAULT_KEEP_FRAMES)})


_DIEL = ("ij=ji", "relative permittivity (dimensionless), full Cartesian 3x3 in the structure frame")
_ELAST = "elastic stiffness C_ijkl in GPa, full Cartesian (3,3,3,3) in the structure frame (not Voigt)"
TASKS: dict[str, _TaskDef] = {d.spec.name: d for d in (
    _TaskDef(_spec("mp_dielectric_total", _tensor("e_total", 2, _DIEL[0], ""), "mp_dielectric",
                   "total (electronic + ionic) static " + _DIEL[1]), "mp_dielectric", "e_total", "mp_dielectric"),
    _TaskDef(_spec("mp_dielectric_electronic", _tensor("e_electronic", 2, _DIEL[0], ""), "mp_dielectric",
                   "electronic (high-frequency) " + _DIEL[1]), "mp_dielectric", "e_electronic", "mp_dielectric"),
    _TaskDef(_spec("mp_piezoelectric", _tensor("piezoelectric_tensor", 3, "ijk=ikj", "C/m^2"), "mp_piezoelectric",
                   "piezoelectric stress constants e_ijk in C/m^2, full Cartesian (3,3,3), no Voigt factors"),
             "mp_piezoelectric", "piezoelectric_tensor", "mp_piezoelectric"),
    _TaskDef(_spec("mp_elastic", _tensor("elastic_tensor", 4, "ijkl=jikl=klij", "GPa"), "mp_elastic", _ELAST),
             "mp_elastic", "elastic_tensor", "mp_elastic"),
    _TaskDef(_spec("mp_elastic_matten_n100", _tensor("elastic_tensor", 4, "ijkl=jikl=klij", "GPa"),
                   "mp_elastic_matten", _ELAST + "; MatTen's 100-crystal example file (all cubic)"),
             "mp_elastic_matten", "elastic_tensor", "mp_elastic_matten_n100"),
    _TaskDef(_spec("jarvis_dielectric_optb88vdw", _tensor("dielectric_optb88vdw", 2, _DIEL[0], ""), "jarvis_dft_3d",
                   "OptB88vdW optical (electronic, LOPTICS) " + _DIEL[1] + "; only crystals whose symmetry makes "
                   "it diagonal"), "jarvis_dft_3d", "dielectric_optb88vdw", "jarvis_dft_3d",
             frame_prefix="dielectric_optb88vdw_", diagonal_only=True),
    _TaskDef(_spec("jarvis_dielectric_mbj", _tensor("dielectric_mbj", 2, _DIEL[0], ""), "jarvis_dft_3d",
                   "TBmBJ optical (electronic, LOPTICS) " + _DIEL[1] + "; only crystals whose symmetry makes "
                   "it diagonal"), "jarvis_dft_3d", "dielectric_mbj", "jarvis_dft_3d",
             frame_prefix="dielectric_mbj_", diagonal_only=True),
    _TaskDef(_spec("jarvis_piezo_max_eij", TargetSpec(name="piezo_max_eij", kind="scalar", unit="C/m^2"),
                   "jarvis_dft_3d", "max |e_ij| of the DFPT piezoelectric tensor, C/m^2", metrics=SCALAR_METRICS),
             "jarvis_dft_3d", "piezo_max_eij", "jarvis_dft_3d"),
    _TaskDef(_spec("jarvis_elastic", _tensor("elastic_tensor", 4, "ijkl=jikl=klij", "GPa"), "jarvis_dft_3d", _ELAST),
             "jarvis_dft_3d", "elastic_tensor", "jarvis_dft_3d", frame_prefix="elastic_tensor_"),
)}

# One loaded data set per (data set, source) in this process: the two dielectric tasks share one load.
_LOADED: dict[tuple, pd.DataFrame] = {}


def load_cached(dataset: str, kwargs: dict[str, Any]) -> pd.DataFrame:
    """Data set ``dataset`` loaded with ``kwargs`` (``loaders.load``'s), once per process: the frame the tasks
    built from it read, with every column (point groups, frame flags) where a task keeps only its target."""
    key = (dataset, tuple(sorted((k, str(v)) for k, v in kwargs.items() if k != "progress")))
    if key not in _LOADED:
        _LOADED[key] = loaders.load(dataset, **kwargs)
    return _LOADED[key]


def clear_cache() -> None:
    """Forget the data sets loaded by tasks in this process."""
    _LOADED.clear()


def task_rows(df: pd.DataFrame, tdef: _TaskDef, keep_frames=DEFAULT_KEEP_FRAMES) -> pd.Index:
    """Ids of the rows of a loaded data set that enter task ``tdef`` (see the module docstring)."""
    col = tdef.column
    have = df[col].map(lambda v: v is not None and not (isinstance(v, float) and not np.isfinite(v)))
    mask = have.to_numpy(dtype=bool)
    status_col = f"{tdef.frame_prefix}frame_status"
    if tdef.spec.target.kind == "tensor" and status_col in df.columns:
        mask &= df[status_col].isin(list(keep_frames)).to_numpy(dtype=bool)
    if tdef.diagonal_only:
        mask &= df["dielectric_diagonal_by_symmetry"].to_numpy(dtype=bool)
    return df.index[mask]


def make_task(
    name: str,
    data_dir: str | os.PathLike | None = None,
    path: str | os.PathLike | None = None,
    split: str = "kfold",
    seed: int = splits.SPLIT_SEED,
    keep_frames=DEFAULT_KEEP_FRAMES,
    progress: bool = True,
    score_symmetry: bool = True,
    exclude_ids: str | os.PathLike | None = None,
    **loader_kwargs,
):
    """An ``ArrayTask`` for task ``name`` whose data load on first use.

    ``data_dir`` / ``path``: see the loaders (offline); ``split``: "kfold" (5 folds, matbench-style, the
    default) or "holdout" (80/10/10, one fold); ``seed``: the split seed (the committed split files use
    ``splits.SPLIT_SEED``); ``keep_frames``: frame statuses admitted (``frames.STATUSES``); other kwargs go to
    the loader (e.g. ``check_hash=False``, ``voigt_order="standard"`` for JARVIS).

    ``exclude_ids``: a text file of data-set ids (one per line, ``#`` comments) that this task leaves out,
    e.g. another task's test crystals when this one pre-trains a model for it
    (``benchmarks/exclude_ids.py`` writes such a file). The remaining ids keep their folds. The task's
    config records the file, its sha256 and the number of ids it removed; every run records the file and
    its sha256 with the data files (``task.data_files``).
    """
    tdef = TASKS[name]
    if split not in splits.KINDS:
        raise ValueError(f"split must be one of {splits.KINDS}, got {split!r}")
    bad = sorted(set(keep_frames) - set(frames.STATUSES))
    if bad:
        raise ValueError(f"keep_frames {bad} are not frame statuses {frames.STATUSES}")
    spec = tdef.spec
    if split != spec.split or tuple(keep_frames) != DEFAULT_KEEP_FRAMES:
        spec = dataclasses.replace(spec, split=split, extra={**spec.extra, "keep_frames": list(keep_frames)})
    kwargs = dict(tdef.loader_kwargs)
    kwargs.update(loader_kwargs)
    kwargs["progress"] = progress
    if data_dir is not None:
        kwargs["data_dir"] = data_dir
    if path is not None:
        kwargs["path"] = path
    config = {"dataset": tdef.dataset, "split": split, "split_seed": seed, "keep_frames": list(keep_frames),
              "score_symmetry": score_symmetry}
    excluded = read_id_file(exclude_ids) if exclude_ids is not None else None
    if excluded is not None:
        config["exclude_ids"] = {"file": str(exclude_ids), "sha256": excluded["sha256"], "n_in_file": len(excluded["ids"])}

    def load_data():
        df = load_cached(tdef.dataset, kwargs)
        ids = task_rows(df, tdef, keep_frames)
        if excluded is not None:
            keep = ~ids.isin(list(excluded["ids"]))
            task.config["exclude_ids"]["n_removed"] = int((~keep).sum())
            logger.info("task %s: %d rows left out by %s", name, int((~keep).sum()), exclude_ids)
            ids = ids[keep]
        dropped = len(df) - len(ids)
        if dropped:
            logger.info("task %s: %d of %d rows enter (%d left out: missing target, frame status not in %s%s)",
                        name, len(ids), len(df), dropped, list(keep_frames),
                        ", not diagonal by symmetry" if tdef.diagonal_only else "")
        folds, meta = splits.dataset_folds(tdef.split_name, split, list(ids), all_ids=list(df.index), seed=seed)
        # ArrayTask copies config: record on the task itself (bound below, before any load)
        task.config["split_file"] = meta.get("file")
        task.config["n_rows_dataset"] = len(df)
        task.data_files = dict(df.attrs.get("data_files", {}))  # {path: sha256}, recorded by every run
        if excluded is not None:  # the id file shapes the data as much as the data file does
            task.data_files[os.path.abspath(exclude_ids)] = excluded["sha256"]
        out = df.loc[ids].copy()
        if tdef.column != tdef.spec.target.name:
            out = out.rename(columns={tdef.column: tdef.spec.target.name})
        return out, folds

    task = ArrayTask(spec, loader=load_data, config=config)
    return task


def read_id_file(path: str | os.PathLike) -> dict[str, Any]:
    """The ids of a text file (one per line; blank lines and ``#`` comments skipped) and its sha256."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"exclude_ids file {p} not found: write one id per line (benchmarks/exclude_ids.py "
                                "writes a task fold's ids)")
    raw = p.read_bytes()
    ids = [ln.split("#", 1)[0].strip() for ln in raw.decode("utf-8").splitlines()]
    return {"ids": frozenset(i for i in ids if i), "sha256": hashlib.sha256(raw).hexdigest()}


def _factory(name: str) -> Callable[..., Any]:
    def build(**kwargs):
        return make_task(name, **kwargs)

    build.__name__ = f"build_{name}"
    build.__doc__ = make_task.__doc__
    build.__wrapped__ = make_task  # its parameters (names, types) for checking options before building
    return build


for _name, _tdef in TASKS.items():
    register(_tdef.spec, _factory(_name))


__all__ = [
    "DATASETS", "DEFAULT_KEEP_FRAMES", "DataNotFoundError", "TASKS", "VERSION", "check_frames", "clear_cache",
    "fix_frames", "frames", "jarvis", "load", "load_cached", "loaders", "make_task", "read_id_file", "sources", "splits", "task_rows",
]
