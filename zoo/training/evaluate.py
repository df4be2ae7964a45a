"""Scoring trained weights: at the end of a run (``finish_run``) and later from the weights alone
(``evaluate``; the model itself: ``load_trained`` in ``zoo.training.trained``).

Every summary sets the model next to its *floor*, always predicting the training mean (a class: the
training prior), scored with the same metrics. Every test structure gets a prediction: one whose graph
failed gets the floor and is flagged in ``predictions_test.csv``, because matbench needs a prediction
for every test entry.

``evaluate`` scores weights only on the data they are meant for. By default it re-creates the task the
run was trained on, with the recorded task options and data folder, and checks the fold against the
fingerprint recorded with the weights (``zoo.training.dataid``): other data (another n_crystals, another
version of a data file, another fold, whose test set was part of this run's training data) are refused
with what differs. Another task is refused too, even with a target of the same kind and shape: it
measures another property. ``allow_other_data`` / ``allow_other_task`` (``--allow-other-data``,
``--allow-other-task``) score anyway, and the result says that it is not the run's own evaluation.
"""
from __future__ import annotations

import datetime as dt
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from zoo.core.io import read_jsonl, write_json
from zoo.graphs import build_graphs
from zoo.symmetry import point_group_ops

from . import dataid, plots, runs
from .adapter import Adapter, predict_graphs
from .config import TrainingError, UsageError
from .data import FoldData, build_task, series_ids, series_values, stack_targets
from .run import Run
from .targets import compute_metrics
from .trained import TrainedModel, load_trained, resolve_weights

log = logging.getLogger("zoo.training")

__all__ = ["TrainedModel", "evaluate", "finish_run", "load_trained", "resolve_weights"]


def finish_run(run: Run, adapter: Adapter, data: FoldData) -> dict[str, Any]:
    """Predict the validation and test sets with the best weights, write the predictions and plots,
    and return the summary (``metrics.json``, less the timings)."""
    if run.best_weights is None:
        raise TrainingError(f"{run.dir}: no epoch finished with a finite validation metric; nothing to evaluate")
    c, target, shape = run.config, run.target, run.target.shape
    adapter.load_state_dict(run.best_weights)
    p_val = run.normalizer.inverse(predict_graphs(adapter, data.val.graphs, c.batch_size))
    p_test = run.normalizer.inverse(predict_graphs(adapter, data.test.graphs, c.batch_size)) if len(data.test) else np.zeros((0,) + shape)

    floor_value = np.mean(data.train.y, axis=0)

    def floor(y: np.ndarray) -> np.ndarray:
        return np.broadcast_to(floor_value, y.shape)

    def point_groups(structures) -> list | None:
        """Each crystal's point group, once for the model's and the floor's scores (spglib: ~5 s per 200 crystals)."""
        if target.kind != "tensor" or structures is None or not len(structures):
            return None
        return point_group_ops(structures, progress=c.progress)

    ops_val = point_groups(data.val.structures)
    summary: dict[str, Any] = {
        "task": c.task, "fold": c.fold, "model": c.model, "backend": c.backend, "dtype": c.dtype, "seed": c.seed,
        "best_epoch": run.state.best_epoch, "epochs_run": run.state.epoch, "epochs": c.epochs,
        "stopped_early": run.state.stopped_early, "selection_metric": run.selection_key,
        "val": compute_metrics(target, data.val.y, p_val, ops=ops_val),
        "floor": {"val": compute_metrics(target, data.val.y, floor(data.val.y), ops=ops_val)},
        "n": {"train": len(data.train), "val": len(data.val), "test": len(data.test), "test_graph_failed": len(data.test_failed)},
    }
    runs.write_predictions(run.dir / "predictions_val.csv", data.val.ids, data.val.y, p_val)

    pred_by_id = dict(zip(data.test.ids, p_test))
    all_pred = np.stack([pred_by_id.get(k, floor_value) for k in data.test_all_ids]) if data.test_all_ids else np.zeros((0,) + shape)
    flags = [k in data.test_failed for k in data.test_all_ids]
    runs.write_predictions(run.dir / "predictions_test.csv", data.test_all_ids, data.test_all_y, all_pred, {"graph_failed": flags})
    if data.test_all_y is not None and len(data.test_all_ids):
        ops_test = point_groups(data.test.structures)
        summary["test"] = compute_metrics(target, data.test.y, p_test, ops=ops_test)
        summary["floor"]["test"] = compute_metrics(target, data.test.y, floor(data.test.y), ops=ops_test)
        if data.test_failed:
            # Scored on every test structure, the failed ones carrying the floor prediction (what matbench sees).
            summary["test_all"] = compute_metrics(target, data.test_all_y, all_pred)

    plot_dir = run.dir / "plots"
    plots.learning_curve(read_jsonl(run.dir / "metrics.jsonl"), plot_dir / "learning_curve.png", metric=run.selection_key,
                         best_epoch=run.state.best_epoch, title=run.title)
    plots.parity(data.val.y, p_val, plot_dir / "parity_val.png", target=target, title=run.title + " (validation)")
    if "test" in summary:
        plots.parity(data.test.y, p_test, plot_dir / "parity_test.png", target=target, title=run.title + " (test)")
    summary["plots"] = sorted(str(p.relative_to(run.dir)) for p in plot_dir.glob("*.png"))
    summary["finished"] = True
    return summary


def evaluate(path: str | os.PathLike, task=None, fold: int | None = None, backend: str = "torch", data_dir: str | None = None,
             split: str = "test", progress: bool = True, write: bool = True, task_kwargs: dict[str, Any] | None = None,
             allow_other_task: bool = False, allow_other_data: bool = False) -> dict[str, Any]:
    """Score saved weights on a task fold: by default the task, options and fold they were trained on,
    re-created and checked against the recorded data (module docstring).

    ``task``: a name or a task object (default: the one trained on); ``task_kwargs`` replace recorded task
    options; ``data_dir`` the recorded data folder. Writes ``evaluations/<UTC time>_<task>_f<fold>_<backend>.json``
    into the run folder (when ``path`` is one).
    """
    if split not in ("test", "train"):
        raise UsageError(f"split must be 'test' or 'train', got {split!r}")
    model = load_trained(path, backend=backend)
    meta = model.meta
    record = meta.get("data") or {}
    trained_on = meta.get("task", {}).get("name")
    name = task.spec.name if task is not None and not isinstance(task, str) else (task or trained_on)
    other_task = name != trained_on
    if other_task and not allow_other_task:
        raise UsageError(f"{path} was trained on task {trained_on!r}; scores on {name!r} would measure another property "
                         "(even where kind, shape and units agree). Drop --task to score it on its own task, or pass "
                         "--allow-other-task (allow_other_task=True) to score it anyway")
    kwargs = None  # the options the task is built with here (unknown for a task object)
    if task is None or isinstance(task, str):
        kwargs = {**({} if other_task else record.get("task_kwargs", {})), **(task_kwargs or {})}
        folder = data_dir if data_dir is not None else (None if other_task else record.get("data_dir"))
        task = build_task(name, kwargs, folder)
    trained_fold = meta.get("fold", 0)
    fold = trained_fold if fold is None else fold
    if task.spec.target.kind != model.target.kind or task.spec.target.shape != model.target.shape:
        raise TrainingError(f"{path} predicts a {model.target.kind}{model.target.shape} target, task {task.spec.name} needs "
                            f"{task.spec.target.kind}{task.spec.target.shape}")
    if split == "test":
        inputs, outputs = task.get_test_data(fold, include_target=True)
    else:
        inputs, outputs = task.get_train_and_val_data(fold)
    ids, structures = series_ids(inputs, "s-"), series_values(inputs)
    y = stack_targets(series_values(outputs), task.spec.target, ids, f"task {task.spec.name} fold {fold}: {split} targets")
    problems = [] if other_task else _data_problems(record, task, kwargs, fold, trained_fold, split, ids, y, structures)
    if problems and not allow_other_data:
        fix = (f"drop --fold (the run's fold is {trained_fold})" if str(fold) != str(trained_fold) else
               "re-create them (the task options recorded in the run's config.json, the same data files)")
        raise UsageError(f"{path}: not the data these weights were {'tested' if split == 'test' else 'trained'} on: "
                         f"{'; '.join(problems)}. To score the run's own data, {fix}; to score these anyway, pass "
                         "--allow-other-data (allow_other_data=True)")
    for p in problems:
        log.warning("%s: scoring on other data than recorded: %s", path, p)
    graphs, failures = build_graphs(structures, model.graph_spec, ids=ids, cache=True, progress=progress, on_error="skip")
    keep = [i for i, g in enumerate(graphs) if g is not None]
    pred = model.predict_graphs([graphs[i] for i in keep])
    result = {
        "weights": str(resolve_weights(path)), "task": task.spec.name, "task_version": task.spec.version, "fold": fold,
        "split": split, "backend": backend, "n": len(ids), "graph_failures": {str(k): str(v) for k, v in (failures or {}).items()},
        "metrics": compute_metrics(task.spec.target, y[keep], pred, structures=[structures[i] for i in keep]),
        # True only when the data are the ones recorded with the weights (the run's own evaluation).
        "data_verified": not other_task and not problems,
        "other_task": other_task, "data_differences": problems,
    }
    run_dir = Path(path) if Path(path).is_dir() else None
    if write and run_dir is not None:
        stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        out = run_dir / "evaluations" / f"{stamp}_{task.spec.name}_f{fold}_{backend}.json"
        k = 1
        while out.exists():
            k += 1
            out = out.with_name(f"{stamp}_{task.spec.name}_f{fold}_{backend}_{k}.json")
        write_json(out, result)
        result["written_to"] = str(out)
    return result


def _data_problems(record: dict[str, Any], task, kwargs, fold, trained_fold, split: str, ids, y, structures) -> list[str]:
    """Why the data about to be scored are not those recorded with the weights (empty: they are)."""
    if not record.get("fingerprint"):
        return ["the weights record no fingerprint of their data (written before crystal-zoo kept one), so the data "
                "cannot be checked"]
    problems = []
    if str(fold) != str(trained_fold):
        problems.append(f"fold {fold} is not the fold {trained_fold} the run was trained on"
                        + (f": fold {fold}'s test structures were part of its training data" if split == "test" else ""))
    part = "test" if split == "test" else "train_val"
    now = {"task": task.spec.name, "version": task.spec.version,
           "task_kwargs": record.get("task_kwargs") if kwargs is None else kwargs,
           "files": dataid.data_files(task), "fingerprint": {part: dataid.fingerprint(ids, y, structures)}}
    if not problems:
        problems += dataid.differences(record, now, [part])
    return problems
