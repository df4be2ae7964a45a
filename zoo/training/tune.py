"""``zoo tune``: a small grid search on VALIDATION folds, to choose a family's recipe for a task.

    zoo tune tfn --task matbench_jdft2d --data-dir DIR --grid lr=1e-3,5e-3 loss=mse,l1 [--epochs 40]
             [--folds 0] [--seeds 0] [--budget-minutes 60] [--write]

Every candidate (one point of the grid, on top of the family's recipe and the options given) trains
through the normal loop (``zoo.training.train``) on each fold x seed. The task it sees is the real one
**without its test split** (``ValidationOnly``: the test set it is handed is empty, and the real task's
test data are never asked for); each finished run is checked to hold no test prediction or score.
Candidates are ranked by the task's selection metric on the validation set (MAE; classes: log-loss),
the median over folds and seeds.

Folders: ``<out>/<family>_<task>/<candidate>/`` (``out`` = runs/tune), one per candidate, named by its
grid values and a hash of its whole resolved config; inside, each (fold, seed) run folder and a
``f<fold>_s<seed>.json`` record once it finished. Calling the same search again skips finished runs and
resumes a killed one from its checkpoint, so a search can be stopped and continued, or extended with
more grid values. ``tune.json`` and ``tune.md`` (the ranked table) are written after every candidate;
the recipe of the best candidate is printed as the JSON to paste into ``recipes.json``, and ``write``
puts it there (atomically).

Grid keys are ``TrainConfig`` recipe fields (``zoo.training.recipes.RECIPE_FIELDS``) or ``set.KEY`` for a
model hyper-parameter (``--set KEY``). Values are parsed like ``--set`` values (numbers, true/false, JSON).
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import difflib
import hashlib
import itertools
import json
import logging
import math
import os
import statistics
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import pandas as pd

from zoo.core.io import write_json, write_text

from . import recipes
from .config import TrainConfig, TrainingError, UsageError, conforms, field_types, parse_value
from .data import build_task
from .loop import train

log = logging.getLogger("zoo.training")

MODEL_PREFIX = "set."


# ------------------------------------------------------------------------------------------ the data
class ValidationOnly:
    """A task as ``train`` sees it during a search: its training and validation data, and an empty test
    set. The real task's ``get_test_data`` is never called, and its data frame is not handed on (the loop
    would featurise every structure of it, test ones included; here only the fold's training data are)."""

    def __init__(self, task):
        if hasattr(task, "fold_data"):
            raise UsageError(f"task {task.spec.name} gives its folds itself (a shard folder): zoo tune needs a task "
                             "that hands out training and test data apart")
        self._task = task
        self.spec = task.spec

    @property
    def folds(self):
        return self._task.folds

    @property
    def data_files(self):
        return getattr(self._task, "data_files", None)

    @property
    def is_loaded(self) -> bool:
        return getattr(self._task, "is_loaded", True)

    def load(self) -> None:
        if hasattr(self._task, "load"):
            self._task.load()

    def get_train_and_val_data(self, fold):
        return self._task.get_train_and_val_data(fold)

    def get_validation_ids(self, fold):
        getter = getattr(self._task, "get_validation_ids", None)
        return getter(fold) if getter is not None else None

    def get_test_data(self, fold, include_target: bool = True):
        empty = pd.Series([], dtype=object)
        return empty, (empty if include_target else None)


def _check_no_test(summary: dict[str, Any], run_dir: Path) -> None:
    """A search run must not have seen a test structure: no test score, no test prediction."""
    if "test" in summary or summary.get("n", {}).get("test", 0) != 0:
        raise AssertionError(f"{run_dir}: a zoo tune run scored a test set; the search must use validation data only")


# ------------------------------------------------------------------------------------------ the grid
def parse_grid(items: Sequence[str]) -> dict[str, list[Any]]:
    """``["lr=1e-3,5e-3", "loss=mse,l1", "set.n_layers=2,3"]`` -> ``{"lr": [0.001, 0.005], ...}``, every key
    checked (a recipe field or ``set.KEY``) with a did-you-mean."""
    grid: dict[str, list[Any]] = {}
    for item in items:
        if "=" not in item:
            raise UsageError(f"--grid expects KEY=V1,V2,..., got {item!r} (e.g. --grid lr=1e-3,5e-3 loss=mse,l1)")
        key, values = (part.strip() for part in item.split("=", 1))
        key = key.replace("-", "_")
        if not key.startswith(MODEL_PREFIX) and key not in recipes.RECIPE_FIELDS or key == "model_overrides":
            close = difflib.get_close_matches(key, recipes.RECIPE_FIELDS, n=3, cutoff=0.6)
            hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
            raise UsageError(f"--grid {item}: {key!r} is not a recipe option{hint} Search one of "
                             f"{[f for f in recipes.RECIPE_FIELDS if f != 'model_overrides']}, or set.KEY for a model "
                             "hyper-parameter (e.g. set.n_layers=2,3)")
        parsed = [_grid_value(key, v) for v in values.split(",") if v.strip()]
        if not parsed or key in grid:
            raise UsageError(f"--grid {item}: give each key once, with at least one value")
        grid[key] = parsed
    if not grid:
        raise UsageError("--grid needs at least one KEY=V1,V2 (e.g. --grid lr=1e-3,5e-3)")
    return grid


def _grid_value(key: str, text: str) -> Any:
    """One grid value. A recipe field whose type takes the word as written keeps it: ``target_transform=none``
    and ``tensor_center=none`` are the Literal ``"none"``, not Python's None (which those fields refuse)."""
    value = parse_value(text)
    if not key.startswith(MODEL_PREFIX) and key in field_types():
        annotation = field_types()[key]
        if not conforms(value, annotation) and conforms(text.strip(), annotation):
            return text.strip()
    return value


def candidates(grid: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """Every point of the grid, in the order the values were given (the last key varies fastest)."""
    keys = list(grid)
    return [dict(zip(keys, values)) for values in itertools.product(*(grid[k] for k in keys))]


def candidate_config(base: dict[str, Any], point: dict[str, Any], recipe: str | None, target=None) -> TrainConfig:
    """``base`` (explicit options) with the grid point on top, resolved against the family's recipe."""
    kw = dict(base)
    overrides = dict(kw.get("model_overrides", {}))
    for key, value in point.items():
        if key.startswith(MODEL_PREFIX):
            overrides[key[len(MODEL_PREFIX):]] = value
        else:
            kw[key] = value
    kw["model_overrides"] = overrides
    return recipes.resolve(kw, recipe, target)


def label(point: dict[str, Any]) -> str:
    return " ".join(f"{k}={v}" for k, v in point.items())


def _folder_name(point: dict[str, Any], config: TrainConfig) -> str:
    # The hash covers everything that decides the runs (not where they go or how they print), so a search
    # called again with other fixed options does not reuse runs made under the old ones. Only values that
    # differ from the defaults count: a new TrainConfig option (with a default) keeps the old runs valid.
    defaults = TrainConfig().to_dict()
    identity = {k: v for k, v in config.to_dict().items()
                if k not in ("out", "progress", "fold", "seed", "data_dir") and v != defaults.get(k)}
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()[:8]
    text = "_".join(f"{k}={v}" for k, v in point.items())
    safe = "".join(c if c.isalnum() or c in "=._-" else "-" for c in text)[:80]
    return f"{safe}_{digest}"


# ------------------------------------------------------------------------------------------ the search
def tune(base: dict[str, Any], grid: dict[str, list[Any]], *, folds: Sequence[int] = (0,), seeds: Sequence[int] = (0,),
         out: str | os.PathLike = "runs/tune", recipe: str | None = recipes.AUTO, budget_minutes: float | None = None,
         command: str = "", write: bool = False, task=None, echo: Callable[[str], None] = print) -> dict[str, Any]:
    """Run the search (module docstring); returns the table written to ``tune.json``.

    ``base``: the explicit ``TrainConfig`` options (``model`` and ``task`` at least); ``task``: a task
    object instead of ``base["task"]`` from the registry (tests, in-memory tasks)."""
    if "model" not in base:
        raise UsageError("zoo tune needs a model family (zoo tune FAMILY --task TASK --grid ...)")
    for name in ("fold", "seed", "out"):
        if name in base:
            raise UsageError(f"zoo tune sets {name} itself (--folds, --seeds, --out)")
    if len(set(folds)) != len(folds) or len(set(seeds)) != len(seeds):
        raise UsageError(f"--folds {list(folds)} / --seeds {list(seeds)} have duplicates")
    real = task if task is not None else build_task(base.get("task", TrainConfig().task), base.get("task_kwargs", {}),
                                                   base.get("data_dir"))
    unknown = sorted(set(folds) - set(real.folds))
    if unknown:
        raise UsageError(f"--folds {unknown}: task {real.spec.name} has folds {list(real.folds)}")
    base = {**base, "task": real.spec.name}
    seen = ValidationOnly(real)
    points = candidates(grid)
    configs = [candidate_config(base, p, recipe, real.spec.target) for p in points]  # every candidate checked before any training
    root = Path(out) / f"{base['model']}_{real.spec.name}"
    metric, higher = real.spec.selection
    t_start = time.monotonic()
    rows: list[dict[str, Any]] = []
    for i, (point, config) in enumerate(zip(points, configs), 1):
        folder = root / _folder_name(point, config)
        row = {"candidate": label(point), "point": point, "folder": str(folder), "runs": []}
        rows.append(row)
        for fold, seed in itertools.product(folds, seeds):
            done = folder / f"f{fold}_s{seed}.json"
            where = f"[{i}/{len(points)}] {label(point)}  fold {fold} seed {seed}"
            if done.is_file():
                record = json.loads(done.read_text())
                echo(f"{where}: finished before, val {metric} {record['value']:.4g} (skipped)")
            elif budget_minutes is not None and time.monotonic() - t_start > 60.0 * budget_minutes:
                echo(f"{where}: not run (--budget-minutes {budget_minutes} spent)")
                continue
            else:
                record = _run_one(config, seen, folder, fold, seed, metric)
                write_json(done, record)
                echo(f"{where}: val {metric} {record['value']:.4g} (best epoch {record['best_epoch']} of "
                     f"{record['epochs_run']}, {record['time_s']:.0f} s)")
            row["runs"].append(record)
        values = [r["value"] for r in row["runs"]]
        row["median"] = statistics.median(values) if values else None
        row["complete"] = len(values) == len(folds) * len(seeds)
        table = _table(rows, metric, higher, base, folds, seeds, command, real, recipe, configs, points)
        write_json(root / "tune.json", table)
        write_text(root / "tune.md", _markdown(table))
    echo(_markdown(table))
    best = table["best"]
    if best is None:
        echo("no candidate finished every fold and seed: no recipe to propose")
        return table
    fragment = {table["kind"]: table["recipe"]}
    echo(f"recipe for {base['model']} ({table['kind']}), to paste under \"recipes\" in "
         f"{recipes.recipes_path(base['model'])}:\n{json.dumps(fragment, indent=2)}")
    if write:
        write_recipe(base["model"], table["kind"], table["recipe"])
        echo(f"written to {recipes.recipes_path(base['model'])}")
    return table


def _run_one(config: TrainConfig, task: ValidationOnly, folder: Path, fold: int, seed: int, metric: str) -> dict[str, Any]:
    config = dataclasses.replace(config, fold=fold, seed=seed, out=str(folder))
    started = folder / f"f{fold}_s{seed}.started"
    run_dir = Path(started.read_text().strip()) if started.is_file() else None
    if run_dir is not None and (run_dir / "checkpoint").exists():
        log.info("resuming %s", run_dir)
        res = train(task=task, resume=run_dir)
    else:
        res = train(config, task=task, on_start=lambda d: write_text(started, str(d)))
    _check_no_test(res.summary, res.run_dir)
    value = res.summary["val"][metric]
    if not math.isfinite(value):
        raise TrainingError(f"{res.run_dir}: validation {metric} is {value}")
    return {"fold": fold, "seed": seed, "value": float(value), "best_epoch": res.summary["best_epoch"],
            "epochs_run": res.summary["epochs_run"], "floor": res.summary["floor"]["val"].get(metric),
            "time_s": float(res.summary.get("time_s", {}).get("train", float("nan"))), "run_dir": str(res.run_dir)}


def _table(rows, metric, higher, base, folds, seeds, command, task, recipe, configs, points) -> dict[str, Any]:
    ranked = sorted((r for r in rows if r["complete"]), key=lambda r: -r["median"] if higher else r["median"])
    for rank, r in enumerate(ranked, 1):
        r["rank"] = rank
    kind = recipes.task_kind(task.spec.target)
    table = {"model": base["model"], "task": task.spec.name, "kind": kind, "folds": list(folds), "seeds": list(seeds),
             "split": "validation", "metric": metric, "higher_is_better": higher, "unit": task.spec.target.unit,
             "command": command, "recipe_base": recipe, "candidates": rows, "best": None, "recipe": None}
    if ranked:
        best = ranked[0]
        config = configs[[label(p) for p in points].index(best["candidate"])]
        table["best"] = best["candidate"]
        searched = tuple("model_overrides" if k.startswith(MODEL_PREFIX) else k for k in points[0])
        table["recipe"] = {
            "fields": recipes.recipe_values(config, searched),
            "provenance": {
                "validated": True, "task": task.spec.name, "folds": list(folds), "seeds": list(seeds),
                "split": "validation", "search": command, "metric": metric, "unit": task.spec.target.unit,
                "value": best["median"], "floor": statistics.median([r["floor"] for r in best["runs"]]),
                "based_on": config.recipe,  # the recipe the grid was laid over (None: the TrainConfig defaults)
                "candidates": {r["candidate"]: r["median"] for r in ranked},
                "date": dt.date.today().isoformat(),
            },
        }
    return table


def _markdown(table: dict[str, Any]) -> str:
    unit = f" ({table['unit']})" if table["unit"] else ""
    lines = [f"# zoo tune: {table['model']} on {table['task']} ({table['kind']}), validation {table['metric']}{unit}",
             "", f"Folds {table['folds']}, seeds {table['seeds']}; median over them; the test split was not read.",
             f"Command: `{table['command']}`" if table["command"] else "", "",
             "| rank | candidate | median | per run (fold/seed: value, best epoch) | validation floor |", "|---|---|---|---|---|"]
    for r in sorted(table["candidates"], key=lambda r: r.get("rank", math.inf)):
        runs = "; ".join(f"f{x['fold']}/s{x['seed']}: {x['value']:.4g} (e{x['best_epoch']})" for x in r["runs"]) or "not run"
        floor = statistics.median([x["floor"] for x in r["runs"]]) if r["runs"] else float("nan")
        med = f"{r['median']:.4g}" if r["median"] is not None else "-"
        lines.append(f"| {r.get('rank', '-' if r['complete'] else 'incomplete')} | {r['candidate']} | {med} | {runs} | {floor:.4g} |")
    return "\n".join(lines) + "\n"


def write_recipe(family: str, kind: str, recipe: dict[str, Any]) -> Path:
    """Put ``recipe`` under ``kind`` in the family's ``recipes.json`` (atomically), dropping a pending note."""
    recipes.check_recipe(recipe, f"zoo tune's {family} {kind} recipe")
    path = recipes.recipes_path(family)
    data = json.loads(path.read_text()) if path.is_file() else {"family": family, "recipes": {}}
    data.setdefault("recipes", {})[kind] = recipe
    data.get("pending", {}).pop(kind, None)
    if not data.get("pending", True):
        del data["pending"]
    write_json(path, data)
    return path
