"""Floors of the tensor tasks: the scores of the baselines (``zoo.tasks.baselines``) every model must beat.

For each task and each floor, the floor is fitted on every fold's train data (train + validation, as
matbench) and scored on the fold's test data, on all 5 folds of the task's **k-fold split** (the
committed split files of the real data sets, the seeded split of the embedded data set). Scores are
exactly those ``task.record`` computes (``zoo.tasks.metrics.tensor_metrics``), from point-group
operations computed once per crystal (spglib, symprec 1e-3, as ``tensor_metrics``).

Floors (``FLOORS``):

- ``mean``: training mean tensor, Neumann-averaged over each test crystal's point group
  (``MeanBaseline(mode="point_group")``): symmetric by construction;
- ``mean_nosym``: the training mean as is (``MeanBaseline(mode="none")``);
- ``element_linear``: ridge regression of every Cartesian component on element fractions
  (``ElementLinearBaseline(alpha=1e-4)``), then Neumann-averaged over the test crystal's point group;
- ``element_linear_nosym``: the same regression, not symmetrised (``symmetrize=False``).

Writes (atomically, ``zoo.core.io``) ``<out>/floors.json`` (per task and floor: mean / std / min / max over
folds of every scalar score, per-fold scores, and the provenance: n crystals, task version, split file
and a hash of the fold ids, data file, git commit, package versions, date) and ``<out>/README.md``
(a markdown table, one row per task x floor). Tasks already in ``floors.json`` that are not run again
are kept (``--replace`` drops them).

    OMP_NUM_THREADS=1 zoo report floors                       # all default tasks
    OMP_NUM_THREADS=1 zoo report floors --tasks mp_piezoelectric --data-dir ../shared/data

(or ``python -m zoo.reports.floors ...``). The embedded tasks use their defaults (n_crystals=2000,
seed 0); the first build labels the crystals (under a minute) and caches them in ``$ZOO_CACHE/tasks``
(default ``~/.cache/crystal-zoo/tasks``).
"""
from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from tqdm.auto import tqdm

from zoo import tasks
from zoo.core import provenance
from zoo.core.io import sha256_file, write_json, write_text
from zoo.symmetry import point_group_ops
from zoo.tasks import baselines
from zoo.tasks.base import fold_distribution
from zoo.tasks.datasets import sources
from zoo.tasks.embedded.dataset import split_path
from zoo.tasks.metrics import tensor_metrics

from .common import RESULTS, ROOT, SHARED_DATA, ReportError, get_task, needs_data_dir, resolve_data_dir

FORMAT = 1
DEFAULT_TASKS = (
    "mp_dielectric_total",
    "mp_dielectric_electronic",
    "mp_piezoelectric",
    "mp_elastic_matten_n100",
    "embedded_dielectric",
    "embedded_elastic",
)
DEFAULT_OUT = RESULTS / "floors"
# Ridge strength on element fractions (fractions sum to 1, so alpha is per unit of squared fraction).
ALPHA = 1e-4
# The packages a floor depends on (pyxtal: the embedded generator's Wyckoff tables), recorded with it.
PACKAGES = ("numpy", "scipy", "pandas", "pymatgen", "spglib", "pyxtal", "matminer")

# name -> (baseline class name in zoo.tasks.baselines, kwargs, one-line description)
FLOORS: dict[str, tuple[str, dict[str, Any], str]] = {
    "mean": ("MeanBaseline", {"mode": "point_group"},
             "training mean, Neumann-averaged over each test crystal's point group"),
    "mean_nosym": ("MeanBaseline", {"mode": "none"}, "training mean tensor as is (not symmetrised)"),
    "element_linear": ("ElementLinearBaseline", {"alpha": ALPHA, "features": "fraction", "symmetrize": True},
                       "ridge on element fractions per Cartesian component, then Neumann-averaged over the "
                       "test crystal's point group"),
    "element_linear_nosym": ("ElementLinearBaseline", {"alpha": ALPHA, "features": "fraction", "symmetrize": False},
                             "ridge on element fractions per Cartesian component, not symmetrised"),
}
# Scores shown in the README table (keys of zoo.tasks.metrics.tensor_metrics).
TABLE_METRICS = ("mae", "fnorm", "ewt25", "ewt10", "ewt5", "sym_violation_mean")
PERCENT = ("ewt25", "ewt10", "ewt5")

logger = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------------- provenance
def fold_ids_digest(task) -> str:
    """sha256 of the sorted test ids of every fold: two runs with equal digests used the same split."""
    folds = {key: sorted(task.get_test_ids(k)) for k, key in zip(task.folds, task.folds_keys)}
    return hashlib.sha256(json.dumps(folds, sort_keys=True).encode()).hexdigest()


def split_reference(task) -> dict[str, Any]:
    spec = task.spec
    ref: dict[str, Any] = {"kind": spec.split, "n_folds": len(task.folds), "seed": task.config.get("split_seed"),
                           "fold_test_sizes": [len(task.get_test_ids(k)) for k in task.folds],
                           "fold_ids_sha256": fold_ids_digest(task)}
    if task.config.get("split_file"):  # real data sets: a committed file, restricted to the task's rows
        ref["file"] = f"zoo/tasks/datasets/splits/{task.config['split_file']}"
        ref["committed"] = True
    elif "n_crystals" in task.config:  # embedded: made by zoo.tasks.folds.make_split, cached next to the data
        name = split_path(task.config["n_crystals"], task.config["seed"], spec.name, task.config["split_seed"]).name
        ref["file"] = f"$ZOO_CACHE/tasks/{name}"
        ref["committed"] = False
        ref["note"] = ("not committed: remade identically by zoo.tasks.folds.make_split(seed) from the data set's "
                       "ids; compare fold_ids_sha256")
    else:
        ref["file"] = None
    return ref


def data_reference(task, data_dir: Path | None) -> dict[str, Any]:
    """Which data file fed the task (name + sha256), found exactly as the loaders find it."""
    ref: dict[str, Any] = {"dataset": task.config.get("dataset") or task.spec.extra.get("dataset")}
    if data_dir is not None and needs_data_dir(task.spec.name):
        info = sources.DATASETS[ref["dataset"]]
        src = sources.find_file(info.files, data_dir, "--data-dir", info)
        # relative to the repository when possible (../shared/data), so the record is machine-independent
        ref.update({"data_dir": os.path.relpath(data_dir, ROOT), "source_file": str(src.relative_to(data_dir)),
                    "source_sha256": sha256_file(src), "dataset_version": info.version})
    if "n_crystals" in task.config:
        ref.update({"generated": True, "n_candidates": task.config["n_crystals"], "seed": task.config["seed"],
                    "dataset_version": task.config.get("dataset_version")})
    if task.dropped_ids:
        ref["dropped_ids"] = list(task.dropped_ids)
    return ref


# --------------------------------------------------------------------------------------------- scoring
def build_task(name: str, data_dir: Path | None, n_crystals: int | None, seed: int | None, progress: bool):
    """The loaded task ``name``; the embedded tasks take ``n_crystals`` / ``seed`` (None: their defaults)."""
    spec = tasks.spec(name)
    if spec.target.kind != "tensor":
        raise ReportError(f"task {name} has a {spec.target.kind} target; this report scores tensor floors only")
    if spec.split != "kfold":
        raise ReportError(f"task {name} has a {spec.split!r} split; floors are reported on the 5-fold split")
    kwargs: dict[str, Any] = {"progress": progress}
    if not needs_data_dir(name):
        if n_crystals is not None:
            kwargs["n_crystals"] = n_crystals
        if seed is not None:
            kwargs["seed"] = seed
    task = get_task(name, data_dir, **kwargs)
    task.load()
    return task


def make_floor(name: str):
    cls_name, kwargs, _ = FLOORS[name]
    return getattr(baselines, cls_name)(**kwargs)


def _numeric(d: dict[str, Any]) -> dict[str, float]:
    # The same filter as tasks.base.tensor_scores: only numbers are averaged over folds.
    return {k: float(v) for k, v in d.items() if isinstance(v, (int, float, np.floating, np.integer))
            and not isinstance(v, bool)}


def score_task(task, floors: Sequence[str], progress: bool = True) -> dict[str, Any]:
    """Fit and score every floor on every fold of a loaded task -> {floor: {"per_fold", "summary"}}."""
    target = task.spec.target
    ids_all = list(task.df.index)
    # Point groups once per crystal: they serve the symmetrised floors and the symmetry scores.
    ops_all = dict(zip(ids_all, point_group_ops(task.df["structure"].to_list(), progress=progress)))
    out: dict[str, Any] = {f: {"per_fold": []} for f in floors}
    bar = tqdm(total=len(floors) * len(task.folds), desc=f"floors {task.spec.name}", disable=not progress,
               unit="fold")
    for fold in task.folds:
        train_x, train_y = task.get_train_and_val_data(fold)
        test_ids = task.get_test_ids(fold)
        test_x = task.get_test_data(fold).to_list()
        test_ops = [ops_all[i] for i in test_ids]
        truth = task.targets_array(test_ids)
        for f in floors:
            model = make_floor(f).fit(train_x.to_list(), train_y.to_list())
            pred = np.asarray(model.predict(test_x, ops=test_ops), dtype=np.float64)
            if pred.shape != truth.shape or not np.isfinite(pred).all():
                raise RuntimeError(f"floor {f} on {task.spec.name} fold {fold}: predictions of shape {pred.shape} "
                                   f"(expected {truth.shape}) or not finite")
            scores = _numeric(tensor_metrics(truth, pred, ops=test_ops, formula=target.formula))
            out[f]["per_fold"].append(scores)
            bar.update(1)
    bar.close()
    for f in floors:
        out[f]["summary"] = fold_distribution(out[f]["per_fold"])
    return out


def run_task(name: str, floors: Sequence[str], data_dir: Path | None, n_crystals: int | None = None,
             seed: int | None = None, progress: bool = True) -> dict[str, Any]:
    """Everything floors.json holds for one task."""
    task = build_task(name, data_dir, n_crystals, seed, progress)
    t = task.spec.target
    truth = task.targets_array(list(task.df.index))
    norms = np.linalg.norm(truth.reshape(len(truth), -1), axis=1)
    return {
        "task": name,
        "version": task.spec.version,
        "target": {"name": t.name, "rank": t.rank, "formula": t.formula, "unit": t.unit,
                   "unit_note": task.spec.extra.get("unit_note", "")},
        "n_crystals": len(task.df),
        # Scale of the targets, to read MAE / Fnorm against: mean and median ||T_true||_F.
        "target_fnorm_mean": float(norms.mean()),
        "target_fnorm_median": float(np.median(norms)),
        "split": split_reference(task),
        "data": data_reference(task, data_dir),
        "config": {k: v for k, v in task.config.items() if isinstance(v, (str, int, float, bool, list, type(None)))},
        "floors": score_task(task, floors, progress),
        # git_info's "dirty" counts tracked files only (others' untracked work does not); the hash of this
        # module's text pins the code that made the numbers either way (the key keeps its format-1 name).
        "git": provenance.git_info(),
        "script_sha256": sha256_file(Path(__file__)),
        "packages": provenance.package_versions(PACKAGES),
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }


# --------------------------------------------------------------------------------------------- outputs
def _unit(entry: dict[str, Any]) -> str:
    return entry["target"]["unit"] or "1 (dimensionless)"


def fmt_pm(summary: dict[str, dict[str, float]], metric: str) -> str:
    """"mean ± std" of a metric over folds (EwT in %; symmetry violation in scientific notation)."""
    if metric not in summary:
        return "–"
    m, s = summary[metric]["mean"], summary[metric]["std"]
    if metric in PERCENT:
        return f"{100 * m:.1f} ± {100 * s:.1f}"
    if metric.startswith("sym_violation"):
        return f"{m:.1e} ± {s:.0e}"
    return f"{m:.4g} ± {s:.2g}"


def markdown_table(results: dict[str, Any]) -> str:
    head = ("| task | floor | n | unit | MAE | Fnorm | EwT25 (%) | EwT10 (%) | EwT5 (%) | sym. violation |\n"
            "|---|---|---|---|---|---|---|---|---|---|\n")
    rows = []
    for name, entry in results["tasks"].items():
        for floor, r in entry["floors"].items():
            cells = [fmt_pm(r["summary"], m) for m in TABLE_METRICS]
            rows.append(f"| {name} | {floor} | {entry['n_crystals']} | {_unit(entry)} | " + " | ".join(cells) + " |")
    return head + "\n".join(rows) + "\n"


def _task_row(name: str, e: dict[str, Any]) -> str:
    first = next(iter(e["floors"].values()))["summary"]
    noise = first.get("true_sym_violation_mean", {}).get("mean", float("nan"))
    split = e["split"].get("file")
    split = f"`{split}`" if split and e["split"].get("committed") else "seeded `make_split` (cached, not committed)"
    commit = (e["git"].get("commit") or "?")[:10] + ("+dirty" if e["git"].get("dirty") else "")
    return (f"| {name} | {e['version']} | {e['n_crystals']} | {_unit(e)} | {e['target_fnorm_mean']:.4g} | "
            f"{e['target_fnorm_median']:.4g} | {noise:.1e} | {split} | {commit} | {e['date'][:10]} |")


def readme(results: dict[str, Any]) -> str:
    tasks_ = results["tasks"]
    floors_txt = "\n".join(f"- `{k}`: {v[2]}" for k, v in FLOORS.items())
    scale = "\n".join(_task_row(n, e) for n, e in tasks_.items())
    return f"""# Floors: the scores every model must beat

Generated by `zoo report floors` (`zoo/reports/floors.py`; do not edit by hand; numbers and provenance in
`floors.json`).

Every floor is fitted on each fold's train data (train + validation) and scored on the fold's test
data, on all **5 folds of the k-fold split** of each task; cells are **mean ± std over the 5 folds**
(population std, ddof = 0, as matbench). Scores are those of `tasks.metrics.tensor_metrics`, i.e.
what `task.record` gives a model:

- MAE: mean absolute error over all Cartesian components (target unit);
- Fnorm: mean over crystals of ||T_pred − T_true||_F (target unit);
- EwT25/10/5: share of test crystals whose relative Frobenius error ||T_pred − T_true||_F / ||T_true||_F
  is below 25/10/5 %, **in percent** here (floors.json stores fractions in [0, 1]);
- sym. violation: mean over crystals of ||T − Sym_G T||_F / ||T||_F of the *predictions*, G = the
  crystal's own point group (spglib, symprec 1e-3); dimensionless, 0 = fully symmetric.

Floors:

{floors_txt}

Units: dielectric tasks are dimensionless (relative permittivity), piezoelectric C/m², elastic GPa
(full Cartesian C_ijkl, so the Frobenius norm counts each Voigt off-diagonal block several times).

{markdown_table(results)}
Tasks (target scale = ||T_true||_F over all crystals; data noise = mean symmetry violation of the
reference tensors themselves):

| task | version | n | unit | mean ‖T‖_F | median ‖T‖_F | data noise (sym. viol.) | split | commit | date |
|---|---|---|---|---|---|---|---|---|---|
{scale}

Reproduce: `OMP_NUM_THREADS=1 .venv/bin/zoo report floors --data-dir ../shared/data`
"""


def load_existing(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        d = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        logger.warning("ignoring unreadable %s (%s)", path, exc)
        return None
    if d.get("format") != FORMAT or not isinstance(d.get("tasks"), dict):
        logger.warning("ignoring %s: not a floors.json of format %s", path, FORMAT)
        return None
    return d


def write_outputs(entries: Sequence[dict[str, Any]], out_dir: Path, replace: bool = False) -> dict[str, Any]:
    """Merge ``entries`` into ``out_dir/floors.json`` (or replace it) and rewrite README.md; atomic."""
    out_dir = Path(out_dir)
    old = None if replace else load_existing(out_dir / "floors.json")
    merged = dict(old["tasks"]) if old else {}
    for e in entries:
        merged[e["task"]] = e
    results = {
        "format": FORMAT,
        "description": "floor baselines on the tensor tasks: mean/std/min/max over the 5 k-fold folds "
                       "(std: population, ddof=0); ewt* are fractions in [0, 1]; see README.md",
        "floors": {k: {"class": f"zoo.tasks.baselines.{v[0]}", "kwargs": v[1], "description": v[2]}
                   for k, v in FLOORS.items()},
        "updated": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "tasks": merged,
    }
    write_json(out_dir / "floors.json", results, indent=1)
    write_text(out_dir / "README.md", readme(results))
    return results


# --------------------------------------------------------------------------------------------- CLI
def _split_list(values: Sequence[str] | None) -> list[str] | None:
    if not values:
        return None
    return [x for v in values for x in v.replace(",", " ").split()]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tasks", nargs="+", default=None,
                   help=f"task names (comma or space separated); default: {' '.join(DEFAULT_TASKS)}")
    p.add_argument("--floors", nargs="+", default=None, help=f"floors to run; default all: {' '.join(FLOORS)}")
    p.add_argument("--data-dir", default=None,
                   help=f"folder with the real data files (default: $MATMINER_DATA, else {SHARED_DATA} when present)")
    p.add_argument("--out", default=str(DEFAULT_OUT), help="output folder (floors.json, README.md)")
    p.add_argument("--n-crystals", type=int, default=None,
                   help="embedded tasks only: number of generated candidates (default: the task's, 2000)")
    p.add_argument("--seed", type=int, default=None, help="embedded tasks only: data seed (default: the task's, 0)")
    p.add_argument("--replace", action="store_true", help="drop tasks of an existing floors.json not run now")
    p.add_argument("--no-progress", action="store_true", help="no tqdm bars")
    return p.parse_args(argv)


def run(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Score the floors the arguments ask for, write floors.json and README.md; returns floors.json's
    content. Raises ReportError on unknown tasks or floors and on missing data."""
    args = parse_args(argv)
    names = _split_list(args.tasks) or list(DEFAULT_TASKS)
    floors = _split_list(args.floors) or list(FLOORS)
    known = tasks.list()
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ReportError(f"unknown task(s) {unknown}; available: {known}")
    bad = [f for f in floors if f not in FLOORS]
    if bad:
        raise ReportError(f"unknown floor(s) {bad}; choose from {list(FLOORS)}")
    data_dir = resolve_data_dir(args.data_dir, names)
    entries = []
    for name in names:
        logger.info("task %s", name)
        entries.append(run_task(name, floors, data_dir, args.n_crystals, args.seed, progress=not args.no_progress))
    results = write_outputs(entries, Path(args.out), replace=args.replace)
    print(markdown_table({"tasks": {e["task"]: e for e in entries}}))
    print(f"wrote {Path(args.out) / 'floors.json'} and {Path(args.out) / 'README.md'}")
    return results


def main(argv: Sequence[str] | None = None) -> int:
    try:
        run(argv)
    except ReportError as exc:
        print(f"zoo report floors: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    sys.exit(main())
