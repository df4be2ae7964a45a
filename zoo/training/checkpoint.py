"""Checkpoints: everything needed to continue a run bit for bit after a kill, and resuming from them.

``checkpoint/epoch_NNNN/`` (made complete before ``checkpoint/LATEST`` names it, ``zoo.training.runs``)::

    model.safetensors/.json    weights after the epoch (torch state_dict names) + rebuild metadata
    best.safetensors/.json     the best weights so far (absent before a finite validation score)
    trainer.safetensors        optimiser arrays (``optimizer/...``) and RNG state (``rng/...``)
    trainer.json               TrainerState, LR schedule state, optimiser and RNG metadata, backend

Randomness is all derived from the seed: model init, the shuffle of epoch e (``default_rng([seed, e])``,
independent of history) and dropout (jax: ``fold_in(key, step)``; torch: its global generator, whose
state the checkpoint saves), so a resumed run replays what an uninterrupted one would have done.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file, save_file

from zoo.core import weights
from zoo.core.io import atomic_path, read_jsonl, write_json, write_text
from zoo.graphs import GraphSpec
from zoo.tasks.spec import TaskSpec

from . import runs
from .adapter import Adapter
from .config import TrainingError
from .run import Run, TrainerState
from .schedule import LRSchedule


def save_best(run: Run, stem: Path) -> None:
    """The run's best weights so far, with their epoch and validation score, at ``stem``.*"""
    meta = run.weights_meta(**{"epoch": run.state.best_epoch, run.selection_key: run.state.best_metric, "run": run.dir.name})
    weights.save(stem, run.best_weights, meta)


def save(run: Run, adapter: Adapter, schedule: LRSchedule) -> None:
    """Checkpoint the epoch that just finished and make it the one a resume starts from."""
    s = run.state
    path = runs.new_checkpoint_dir(run.dir, s.epoch)
    weights.save(path / "model", adapter.state_dict(), run.weights_meta(epoch=s.epoch, run=run.dir.name))
    if run.best_weights is not None:
        save_best(run, path / "best")
    opt_arrays, opt_meta = adapter.optimizer_state()
    rng_arrays, rng_meta = adapter.rng_state()
    arrays = {f"optimizer/{k}": v for k, v in opt_arrays.items()}
    arrays.update({f"rng/{k}": v for k, v in rng_arrays.items()})
    with atomic_path(path / "trainer.safetensors") as tmp:
        # reshape: np.ascontiguousarray makes 0-d arrays (step counters, the learning rate) 1-d.
        save_file({k: np.ascontiguousarray(v).reshape(np.shape(v)) for k, v in arrays.items()}, str(tmp))
    write_json(path / "trainer.json", {
        **s.to_dict(), "schedule": schedule.state_dict(), "optimizer": opt_meta,
        "rng": {**rng_meta, "numpy_shuffle": f"default_rng([{run.config.seed}, epoch])"}, "backend": run.config.backend,
    })
    runs.commit_checkpoint(run.dir, path)


def load(path: Path, run: Run, adapter: Adapter, schedule: LRSchedule) -> None:
    """Restore the checkpoint folder ``path`` into the adapter, the schedule and the run."""
    meta = json.loads((path / "trainer.json").read_text())
    adapter.load_state_dict(weights.load(path / "model")[0])
    run.best_weights = weights.load(path / "best")[0] if (path / "best.json").exists() else None
    arrays = load_file(str(path / "trainer.safetensors"))
    adapter.load_optimizer_state({k[len("optimizer/"):]: v for k, v in arrays.items() if k.startswith("optimizer/")}, meta["optimizer"])
    adapter.load_rng_state({k[len("rng/"):]: v for k, v in arrays.items() if k.startswith("rng/")}, meta["rng"])
    schedule.load_state_dict(meta["schedule"])
    run.state = TrainerState.from_dict(meta)


def resume(run: Run, adapter: Adapter, schedule: LRSchedule) -> None:
    """Continue ``run.dir`` from its last checkpoint: restore it, drop epochs logged after it, and
    rewrite the run's best weights from it (the folder's ``best.*`` may be newer than the checkpoint)."""
    ckpt = runs.latest_checkpoint(run.dir)
    if ckpt is not None:
        load(ckpt, run, adapter, schedule)
    _truncate_log(run.dir / "metrics.jsonl", run.state.epoch)
    if run.best_weights is not None:
        save_best(run, run.dir / "best")


def _truncate_log(path: Path, epoch: int) -> None:
    """Drop epochs logged after the checkpoint (a kill between the log line and the checkpoint)."""
    if not path.exists():
        return
    rows = [r for r in read_jsonl(path) if int(r.get("epoch", 0)) <= epoch]
    write_text(path, "".join(json.dumps(r) + "\n" for r in rows))


def check_same_task(run_dir: Path, task: TaskSpec, graph_spec: GraphSpec) -> None:
    """A run folder continues only on the task version and graphs it started with."""
    saved = runs.read_config(run_dir)
    if saved["task"]["name"] != task.name or saved["task"]["version"] != task.version:
        raise TrainingError(f"{run_dir} was trained on {saved['task']['name']} v{saved['task']['version']}, not {task.name} v{task.version}")
    if saved["graph_spec"] != dataclasses.asdict(graph_spec):
        raise TrainingError(f"{run_dir}: graph spec {saved['graph_spec']} differs from {dataclasses.asdict(graph_spec)}")
