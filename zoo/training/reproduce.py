"""``zoo reproduce``: every fold of a task (for each seed), then matbench's submission files.

For each seed the results land in ``<results>/<matbench_v0.1 | crystal-zoo>/<task>/<model>-<backend>[-seed<k>]/``:
``results.json.gz`` + ``info.json`` (matbench's layout, scored by the task's own ``record``), each
fold's provenance (``runs/fold_<k>/{config,env,metrics}.json``) and ``progress.json``, which names
the run folder of every fold as soon as it exists. Finished results are never overwritten. A killed
reproduction is continued by calling it again with the same settings: finished folds are reused, an
unfinished one is resumed from its last checkpoint.

One reproduction at a time writes a result folder: the folder's lock (``zoo.core.lock``) is held from
the first fold to the submission files, so a second ``zoo reproduce`` with the same task, model,
backend and seed is refused at once instead of training the same folds again and writing the same
``results.json.gz``; the lock is released whenever the process ends, so a killed one can be continued.
"""
from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from zoo.core.io import write_json, write_text
from zoo.core.lock import hold
from zoo.models import get_family
from zoo.tasks.matbench import write_submission

from . import distributed, runs
from .adapter import check_backend
from .config import TrainConfig, UsageError
from .data import build_task
from .loop import train

# Options that may differ between the calls of one reproduction: where the data and the progress bars are.
_FREE = ("fold", "progress", "data_dir")


def results_dir(root: str | os.PathLike, task, model: str, backend: str, seed: int, seeds: Sequence[int]) -> Path:
    version = task.spec.version if task.spec.version == "matbench_v0.1" else "crystal-zoo"
    name = f"{model}-{backend}" + (f"-seed{seed}" if (len(seeds) > 1 or seed != 0) else "")
    return Path(root) / version / task.spec.name / name


def reproduce(base: TrainConfig, seeds: Sequence[int] = (0,), folds: Sequence[int] | None = None,
              results: str | os.PathLike = "results") -> list[Path]:
    """Train ``base`` (model, backend, task and options) on every fold (or ``folds``: then no
    submission is written) for each seed; returns the result folders. Prints its progress and the
    task's headline scores (``task.spec.metrics``)."""
    if len(set(seeds)) != len(seeds):
        raise UsageError(f"--seeds has duplicates: {list(seeds)}")
    check_backend(base.backend, base.device)
    outs = []
    for seed in seeds:
        task = build_task(base.task, base.task_kwargs, base.data_dir, progress=base.progress)
        todo = list(task.folds) if folds is None else list(folds)
        unknown = sorted(set(todo) - set(task.folds))
        if unknown:
            raise UsageError(f"--folds {unknown}: task {task.spec.name} has folds {list(task.folds)}")
        out = results_dir(results, task, base.model, base.backend, seed, seeds)
        _refuse_finished(out)
        # under torchrun every rank reproduces (each fold's train() is data-parallel); rank 0 alone writes here
        writer = distributed.writes_files(base)
        with hold(out, f"result folder {out}", "another `zoo reproduce` with the same task, model, backend and seed "
                  "is writing it; wait for it to finish (a killed one is continued by calling it again)") if writer else contextlib.nullcontext():
            _refuse_finished(out)  # finished by the holder of the lock while this one waited to start
            cfg = TrainConfig.from_dict({**base.to_dict(), "seed": seed})
            progress = _progress(out / "progress.json", cfg)
            print(f"== {base.task}: {base.model} ({base.backend}), seed {seed}, folds {todo} -> {out}")
            for fold in todo:
                summary = _fold(task, cfg, fold, out / "progress.json", progress)
                print(f"   fold {fold}: " + _headline(task, summary.get("test", {})))
            outs.append(out)
            if folds is not None and set(todo) != set(task.folds):
                print(f"   only folds {todo}: no submission written (all of {list(task.folds)} are needed)")
                continue
            if writer:
                _write_results(task, out, progress, cfg)
    return outs


def _refuse_finished(out: Path) -> None:
    if (out / "results.json.gz").exists():
        raise UsageError(f"{out}/results.json.gz already exists; results are never overwritten. Move it away, or pick other --seeds.")


def _progress(path: Path, cfg: TrainConfig) -> dict[str, Any]:
    """The reproduction's progress file (new, or that of a killed call with the same settings)."""
    progress = json.loads(path.read_text()) if path.exists() else {"config": cfg.to_dict(), "runs": {}}
    keep = {k: v for k, v in cfg.to_dict().items() if k not in _FREE}
    # Through from_dict, as a resumed run's config: a progress file written before an option existed gets
    # that option's default (its behaviour then), instead of differing from every newer call.
    old = {k: v for k, v in TrainConfig.from_dict(progress["config"]).to_dict().items() if k not in _FREE}
    if old != keep:
        raise UsageError(f"{path.parent} holds an unfinished reproduction with other settings "
                         f"({sorted(k for k in keep if keep[k] != old.get(k))} differ); move it away or use the same options")
    return progress


def _fold(task, cfg: TrainConfig, fold: int, progress_path: Path, progress: dict) -> dict[str, Any]:
    """One fold: reuse a finished run, resume an unfinished one, or train; returns its summary."""
    run_dir = progress["runs"].get(str(fold))
    if run_dir and (Path(run_dir) / "metrics.json").exists():
        print(f"   fold {fold}: done earlier in {run_dir}")
    elif run_dir and (Path(run_dir) / "config.json").exists():
        # From its newest usable checkpoint (or epoch 0 if it was killed before the first one).
        print(f"   fold {fold}: resuming {run_dir}")
        train(resume=run_dir, task=task)
    else:
        def note(new_dir: Path) -> None:  # remembered as soon as it exists, so a killed call resumes it
            progress["runs"][str(fold)] = str(new_dir)
            write_json(progress_path, progress)

        run_dir = str(train(TrainConfig.from_dict({**cfg.to_dict(), "fold": fold}), task=task, on_start=note).run_dir)
    progress["runs"][str(fold)] = str(run_dir)
    if distributed.writes_files(cfg):
        write_json(progress_path, progress)
    return json.loads((Path(run_dir) / "metrics.json").read_text())


def _headline(task, scores: dict[str, Any]) -> str:
    return ", ".join(f"{k} {float(scores[k]):.4g}" for k in task.spec.metrics if k in scores)


def archive_runs(out: Path, progress: dict) -> None:
    """Keep each fold's provenance next to the submission (run folders live in runs/, outside git):
    resolved config, environment (seeds, package versions, git commit, device) and metrics."""
    for fold, run_dir in sorted(progress["runs"].items()):
        for name in ("config.json", "env.json", "metrics.json"):
            src = Path(run_dir) / name
            if src.exists():
                write_text(out / "runs" / f"fold_{fold}" / name, src.read_text())


def _write_results(task, out: Path, progress: dict, cfg: TrainConfig) -> None:
    tensor = task.spec.target.kind == "tensor"
    for fold in task.folds:
        run_dir = Path(progress["runs"][str(fold)])
        preds = runs.read_predictions(run_dir / "predictions_test.csv", shape=task.spec.target.shape)
        inputs = task.get_test_data(fold, include_target=False)
        want = [str(i) for i in (inputs.index if hasattr(inputs, "index") else range(len(inputs)))]
        if preds["id"] != want:
            raise UsageError(f"{run_dir}/predictions_test.csv does not list fold {fold}'s test ids in the task's order")
        n_failed = int(sum(bool(v) for v in preds.get("graph_failed", [])))
        params = {"run": run_dir.name, "seed": cfg.seed, "backend": cfg.backend, "epochs": cfg.epochs,
                  "graph_failures_predicted_with_training_mean": n_failed}
        y = preds["y_pred"]
        task.record(fold, np.stack([np.asarray(v) for v in y]) if tensor else [float(v) for v in y], params=params)
    info = {
        "authors": "crystal-zoo",
        "algorithm": f"{cfg.model}-{cfg.backend}",
        "algorithm_long": (f"crystal-zoo {cfg.model} trained with the {cfg.backend} backend: {cfg.optimizer}, lr {cfg.lr}, "
                           f"{cfg.schedule} schedule, batch {cfg.batch_size}, up to {cfg.epochs} epochs, early stopping "
                           f"(patience {cfg.patience}) on a seeded {int(cfg.val_fraction * 100)} % validation split of each "
                           f"fold's training data, seed {cfg.seed}, {cfg.dtype}. Model options: {cfg.model_overrides or 'defaults'}."),
        "bibtex_refs": get_family(cfg.model).citation,
        "notes": f"Run folders: {', '.join(Path(progress['runs'][str(f)]).name for f in task.folds)}",
    }
    if task.spec.version == "matbench_v0.1":
        paths = write_submission(task, out, info)
    else:
        task.to_file(out / "results.json.gz")
        write_json(out / "info.json", info)
        paths = {"results": out / "results.json.gz", "info": out / "info.json"}
    archive_runs(out, progress)
    scores = task.scores
    print("   scores over folds: " + ", ".join(f"{k} {scores[k]['mean']:.4g} ± {scores[k]['std']:.2g}"
                                            for k in task.spec.metrics if k in scores))
    print(f"   wrote {paths['results']} and {paths['info']}")
