"""Scoring trained weights: at the end of a run (``finish_run``) and later from the weights alone
(``load_trained``, ``evaluate``).

Every summary sets the model next to its *floor*, always predicting the training mean (a class: the
training prior), scored with the same metrics. Every test structure gets a prediction: one whose graph
failed gets the floor and is flagged in ``predictions_test.csv``, because matbench needs a prediction
for every test entry.
"""
from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from zoo import tasks
from zoo.core import weights
from zoo.core.io import read_jsonl, write_json
from zoo.graphs import GraphSpec, build_graphs
from zoo.models import config_from_dict
from zoo.tasks.spec import TargetSpec

from . import plots, runs
from .adapter import Adapter, get_adapter, predict_graphs
from .config import TrainConfig, TrainingError
from .data import FoldData, series_ids, series_values, stack_targets
from .run import Run
from .targets import TargetNormalizer, compute_metrics, resolve_loss


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

    summary: dict[str, Any] = {
        "task": c.task, "fold": c.fold, "model": c.model, "backend": c.backend, "dtype": c.dtype, "seed": c.seed,
        "best_epoch": run.state.best_epoch, "epochs_run": run.state.epoch, "epochs": c.epochs,
        "stopped_early": run.state.stopped_early, "selection_metric": run.selection_key,
        "val": compute_metrics(target, data.val.y, p_val, structures=data.val.structures),
        "floor": {"val": compute_metrics(target, data.val.y, floor(data.val.y), structures=data.val.structures)},
        "n": {"train": len(data.train), "val": len(data.val), "test": len(data.test), "test_graph_failed": len(data.test_failed)},
    }
    runs.write_predictions(run.dir / "predictions_val.csv", data.val.ids, data.val.y, p_val)

    pred_by_id = dict(zip(data.test.ids, p_test))
    all_pred = np.stack([pred_by_id.get(k, floor_value) for k in data.test_all_ids]) if data.test_all_ids else np.zeros((0,) + shape)
    flags = [k in data.test_failed for k in data.test_all_ids]
    runs.write_predictions(run.dir / "predictions_test.csv", data.test_all_ids, data.test_all_y, all_pred, {"graph_failed": flags})
    if data.test_all_y is not None and len(data.test_all_ids):
        summary["test"] = compute_metrics(target, data.test.y, p_test, structures=data.test.structures)
        summary["floor"]["test"] = compute_metrics(target, data.test.y, floor(data.test.y), structures=data.test.structures)
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


class TrainedModel:
    """Best weights + metadata: builds the model alone and predicts in task units."""

    def __init__(self, state: dict[str, np.ndarray], meta: dict[str, Any], backend: str = "torch", dtype: str | None = None,
                 batch_size: int = 64):
        self.meta = meta
        self.target = TargetSpec(**meta["target"])
        self.model_config = config_from_dict(meta["model"], meta["config"])
        self.graph_spec = GraphSpec(**meta["featurization"])
        self.normalizer = TargetNormalizer.from_dict(meta["normalizer"])
        self.batch_size = batch_size
        cfg = TrainConfig(model=meta["model"], backend=backend, dtype=dtype or meta.get("dtype", "float32"), progress=False,
                          batch_size=batch_size)
        self.adapter = get_adapter(backend)(meta["model"], self.model_config, cfg, resolve_loss(cfg, self.target))
        self._initialised = False
        self._state = state

    def _ensure_init(self, graphs) -> None:
        # The jax model's parameter shapes come from an example batch, so building waits for the first graphs.
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
        graphs, _ = build_graphs(list(structures), self.graph_spec, ids=ids, cache=cache, progress=progress, on_error="raise")
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
        task = tasks.get(task or meta["task"]["name"], **({"data_dir": data_dir} if data_dir else {}))
    fold = meta.get("fold", 0) if fold is None else fold
    if task.spec.target.kind != model.target.kind or task.spec.target.shape != model.target.shape:
        raise TrainingError(f"{path} predicts a {model.target.kind}{model.target.shape} target, task {task.spec.name} needs "
                            f"{task.spec.target.kind}{task.spec.target.shape}")
    if split == "test":
        inputs, outputs = task.get_test_data(fold, include_target=True)
    else:
        inputs, outputs = task.get_train_and_val_data(fold)
    ids, structures = series_ids(inputs, "s-"), series_values(inputs)
    y = stack_targets(series_values(outputs), task.spec.target)
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
        stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        out = run_dir / "evaluations" / f"{stamp}_{task.spec.name}_f{fold}_{backend}.json"
        k = 1
        while out.exists():
            k += 1
            out = out.with_name(f"{stamp}_{task.spec.name}_f{fold}_{backend}_{k}.json")
        write_json(out, result)
        result["written_to"] = str(out)
    return result
