"""Checkpoints: everything needed to continue a run bit for bit after a kill, and resuming from them.

``checkpoint/epoch_NNNN/`` (made complete before ``checkpoint/LATEST`` names it, ``zoo.training.runs``)::

    model.safetensors/.json    weights after the epoch (torch state_dict names) + rebuild metadata
    best.safetensors/.json     the best weights so far (absent before a finite validation score)
    trainer.safetensors        optimiser arrays (``optimizer/...``) and RNG state (``rng/...``)
    trainer.json               TrainerState, LR schedule state, optimiser and RNG metadata, backend

Randomness is all derived from the seed: model init, the shuffle of epoch e (``default_rng([seed, e])``,
independent of history) and dropout (jax: ``fold_in(key, step)``; torch: its global generator, whose
state the checkpoint saves), so a resumed run replays what an uninterrupted one would have done.

Every file of a checkpoint is verified before any of it is used (the weights by their sidecar's sha256,
``trainer.safetensors`` by the sha256 in ``trainer.json``). A resume starts from the newest checkpoint
that passes; when that is not the newest it says so (a warning naming what was wrong), and it drops the
epochs logged after it. When no checkpoint is usable but the run has a history (logged epochs, best
weights), the resume is refused: starting again from epoch 0 would rewrite that history.
"""
from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load_file, save_file

from zoo.core import weights
from zoo.core.io import atomic_path, read_jsonl, sha256_file, write_json, write_text
from zoo.graphs import GraphSpec
from zoo.tasks.spec import TaskSpec

from . import runs
from .adapter import Adapter
from .config import TrainingError
from .run import Run, TrainerState
from .schedule import LRSchedule

log = logging.getLogger("zoo.training")


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
        "trainer_sha256": sha256_file(path / "trainer.safetensors"),
    })
    runs.commit_checkpoint(run.dir, path)


class CheckpointError(TrainingError):
    """A checkpoint folder that cannot be used (missing, truncated or corrupted files)."""


def read(path: Path) -> dict[str, Any]:
    """Every file of the checkpoint folder ``path``, verified (see the module docstring); nothing is applied."""
    step = "trainer.json"  # the file being read, for the message
    try:
        meta = json.loads((path / step).read_text())
        step = "model.safetensors"
        model = weights.load(path / "model")[0]
        step = "best.safetensors"
        best = weights.load(path / "best")[0] if (path / "best.json").exists() else None
        step = "trainer.safetensors"
        want = meta.get("trainer_sha256")
        if want is not None and sha256_file(path / step) != want:
            raise CheckpointError(f"{step}: its sha256 differs from the one in trainer.json (corrupted)")
        arrays = load_file(str(path / step))
        step = "trainer.json"
        state = TrainerState.from_dict(meta)
    except CheckpointError:
        raise
    except (OSError, ValueError, KeyError, TypeError, SafetensorError) as exc:  # WeightsError, JSONDecodeError ⊂ ValueError
        raise CheckpointError(f"{step}: {type(exc).__name__}: {str(exc).splitlines()[0]}") from None
    return {"meta": meta, "model": model, "best": best, "arrays": arrays, "state": state}


def apply(ckpt: dict[str, Any], run: Run, adapter: Adapter, schedule: LRSchedule) -> None:
    """Restore a checkpoint read by ``read`` into the adapter, the schedule and the run."""
    meta, arrays = ckpt["meta"], ckpt["arrays"]
    adapter.load_state_dict(ckpt["model"])
    adapter.load_optimizer_state({k[len("optimizer/"):]: v for k, v in arrays.items() if k.startswith("optimizer/")}, meta["optimizer"])
    adapter.load_rng_state({k[len("rng/"):]: v for k, v in arrays.items() if k.startswith("rng/")}, meta["rng"])
    schedule.load_state_dict(meta["schedule"])
    run.best_weights = ckpt["best"]
    run.state = dataclasses.replace(ckpt["state"])


def load(path: Path, run: Run, adapter: Adapter, schedule: LRSchedule) -> None:
    """Restore the checkpoint folder ``path`` into the adapter, the schedule and the run."""
    apply(read(path), run, adapter, schedule)


def resume(run: Run, adapter: Adapter, schedule: LRSchedule, write: bool = True) -> None:
    """Continue ``run.dir`` from its newest usable checkpoint: restore it, drop epochs logged after it,
    and rewrite the run's best weights from it (the folder's ``best.*`` may be newer than the checkpoint).
    Refuses (``CheckpointError``) when none is usable and the run has a history to lose. ``write=False``:
    restore only, for the ranks of a distributed run other than rank 0 (which already did the writing)."""
    tried = []
    for path in runs.checkpoint_candidates(run.dir):
        try:
            ckpt = read(path)
            apply(ckpt, run, adapter, schedule)
        except (CheckpointError, ValueError, KeyError) as exc:
            tried.append(f"{path.relative_to(run.dir)}: {str(exc).splitlines()[0]}")
            continue
        logged = runs.logged_epochs(run.dir)
        if not tried and path.parent.name == runs.CHECKPOINT_DIR:
            if logged > run.state.epoch:  # a kill between an epoch's log line and its checkpoint
                log.info("%s: epochs %d-%d were logged after the last checkpoint; they are trained again", run.dir,
                         run.state.epoch + 1, logged)
        elif tried or logged > run.state.epoch:
            why = "; ".join(tried) if tried else "the checkpoint folder that LATEST names is missing"
            log.warning("resuming %s from the fallback checkpoint %s (epoch %d of %d logged): the newer one is not usable "
                        "(%s); the epochs after %d are trained again", run.dir, path.relative_to(run.dir), run.state.epoch,
                        logged, why, run.state.epoch)
        break
    else:
        history = runs.logged_epochs(run.dir)
        if history or (run.dir / "best.json").exists():
            why = "; ".join(tried) if tried else f"{runs.checkpoint_root(run.dir)} and {run.dir / runs.PREVIOUS_DIR} hold none"
            raise CheckpointError(
                f"{run.dir}: no usable checkpoint ({why}), but the run has {history} logged epoch(s); resuming from "
                f"epoch 0 would rewrite that history. Start a new run instead (zoo train with the options in "
                f"{run.dir / 'config.json'}), or restore the checkpoint folder from a backup")
        log.info("%s has no checkpoint and no logged epoch (killed before its first epoch ended): starting at epoch 0", run.dir)
    if not write:
        return
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
    if GraphSpec(**saved["graph_spec"]) != graph_spec:  # as specs: a run saved before a GraphSpec field existed has its default
        raise TrainingError(f"{run_dir}: graph spec {saved['graph_spec']} differs from {dataclasses.asdict(graph_spec)}")
