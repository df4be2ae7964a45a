"""The training loop: one model, one fold, either backend; every decision it takes is in a module of its own.

``train`` reads the fold (``data``), fits the target normaliser (``targets``), builds the model through a
backend adapter (``adapter``), makes the run folder and its ``Run`` (``run``, ``runs``), and then runs
epochs: shuffled batches (order of epoch e: ``default_rng([seed, e])``), one optimiser step per batch at
the scheduled LR (``schedule``), the validation scores, the best weights by the task's selection score,
a log line and a checkpoint (``checkpoint``); early stopping after ``patience`` epochs without a better
score, counted once the LR has decayed (``LRSchedule.annealed``). At the end the best weights predict
the validation and test sets (``evaluate.finish_run``).
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
from tqdm.auto import tqdm

from zoo import models
from zoo.core import weights
from zoo.core.io import append_jsonl, write_json
from zoo.core.provenance import environment
from zoo.nn.losses import per_graph_loss
from zoo.tasks.spec import TaskSpec

from . import checkpoint, dataid, distributed, runs
from .adapter import Adapter, check_backend, index_batches
from .budget import check_memory
from .config import TrainConfig, TrainingError, UsageError
from .data import FoldData, load_fold, resolve_task
from .evaluate import finish_run
from .run import Run, model_config_for
from .schedule import LRSchedule
from .targets import TargetNormalizer, compute_metrics, resolve_loss

log = logging.getLogger("zoo.training")


@dataclass
class TrainResult:
    run_dir: Path
    summary: dict[str, Any]  # the run folder's metrics.json
    config: TrainConfig  # as the run used it: ``task`` is the task's own name

    @property
    def test_metrics(self) -> dict[str, Any]:
        return self.summary.get("test", {})


def train(
    config: TrainConfig | None = None,
    *,
    task=None,
    resume: str | os.PathLike | None = None,
    epochs: int | None = None,
    on_epoch_end: Callable[[dict[str, Any]], None] | None = None,
    on_start: Callable[[Path], None] | None = None,
) -> TrainResult:
    """Train one model on one fold and write a run folder (see ``zoo.training.runs``).

    ``task`` replaces ``config.task`` with a task object (e.g. an in-memory one). ``resume`` continues
    the run folder of a killed run from its last checkpoint (``epochs`` may extend it). The caller's
    ``config`` is never changed; the resolved one is ``TrainResult.config``. ``on_start(run_dir)`` is
    called once the run folder holds its config; ``on_epoch_end(record)`` after each epoch's checkpoint
    is committed.
    """
    if (config is None) == (resume is None):
        raise ValueError("pass either a TrainConfig (new run) or resume=RUN_DIR (continue a run)")
    if resume is not None and not Path(resume).is_dir():
        raise UsageError(f"--resume {resume}: no such run folder (pass the folder `zoo train` printed)")
    saved = runs.read_config(resume) if resume is not None else None
    first = config if config is not None else TrainConfig.from_dict(saved["train"])
    # A backend that is not installed is named before the process context imports it.
    check_backend(first.backend, first.device)
    # Under torchrun (or several JAX hosts) every process runs this; rank 0 alone writes (``distributed``).
    ctx = distributed.context(first)
    with contextlib.ExitStack() as held:
        held.callback(ctx.close)
        if resume is not None and ctx.main:  # one process per run folder: a second resume is refused, not interleaved
            held.enter_context(runs.lock_run(resume))
        try:
            return _train(config, task, resume, epochs, on_epoch_end, on_start, held, saved, ctx)
        except Exception as exc:
            lost = ctx.lost(exc)
            if lost is None:
                raise
            raise lost from exc


def _train(config, task, resume, epochs, on_epoch_end, on_start, held: contextlib.ExitStack, saved, ctx) -> TrainResult:
    if saved is not None:
        config = TrainConfig.from_dict(saved["train"])
    if epochs is not None:
        config = dataclasses.replace(config, epochs=int(epochs))
    # Everything a user can get wrong is checked before any data is read: the backend and device (in
    # ``train``, before the process context), the task and its options, the model and its hyper-parameters.
    task = resolve_task(config, task)
    config = dataclasses.replace(config, task=task.spec.name)
    model_config = model_config_for(config, task.spec.target, saved["model"]["config"] if saved else None)
    head_space = getattr(model_config, "dipole_target_transform", None) if getattr(model_config, "uses_dipole", False) else None
    if head_space is not None and head_space != config.target_transform:
        raise TrainingError(f"the polarisable read-out outputs in the {head_space!r} space but the run standardises its "
                            f"target with --target-transform {config.target_transform}: pass --target-transform {head_space} "
                            f"or --set dipole_target_transform={config.target_transform}")
    graph_spec = model_config.graph_spec()
    if resume is not None:
        checkpoint.check_same_task(Path(resume), task.spec, graph_spec)

    t0 = time.perf_counter()
    # A task that holds its graphs (zoo.training.sharded: a shard folder) gives its folds itself.
    data = task.fold_data(config.fold, config, graph_spec) if hasattr(task, "fold_data") else load_fold(task, config.fold, config, graph_spec)
    t_data = time.perf_counter() - t0
    normalizer = TargetNormalizer.fit(data.train.y, task.spec.target, config.tensor_center, config.target_transform,
                                     ids=data.train.ids, clip_predictions=config.clip_predictions)
    if saved is None and hasattr(model_config, "with_standardisation"):
        # a read-out that predicts in physical units (TFN's polarisable one) maps into the trainer's units itself;
        # the family reads what it needs from the centre (any rank: a scalar, a 3x3, a 3x3x3x3 array) and the scale
        model_config = model_config.with_standardisation(np.asarray(normalizer.mean), normalizer.scale)
    loss = resolve_loss(config, task.spec.target)
    _check_selection(task.spec, data)

    adapter = distributed.adapter_class(config)(config.model, model_config, config, loss)
    # The memory one step needs is checked on the parameter shapes, before anything is allocated.
    adapter.init(data.train.graphs[: config.batch_size],
                 check=lambda shapes: check_memory(shapes, data.train.graphs + data.val.graphs, config, adapter.memory_limit()))
    prefit_record = init_record = None
    if config.init_weights and resume is None:
        init_record = _init_weights(config, adapter)
    elif resume is None:
        prefit_record = _prefit(config, model_config, adapter, data, normalizer, loss)
    ctx.prepare(adapter)

    # The run folder is made only now that data and model are ready: a run that cannot start leaves
    # no empty folder behind.
    if resume is None:
        run_dir = runs.create_run_dir(config.out, config.model, config.backend, config.task, config.fold) if ctx.main else None
        run_dir = Path(ctx.share(str(run_dir)))
        if ctx.main:
            held.enter_context(runs.lock_run(run_dir))
            log.info("run folder %s", run_dir)
    else:
        run_dir = Path(resume)
    ctx.run_dir = run_dir
    run = Run(run_dir, config, task.spec, model_config, graph_spec, loss, normalizer,
              data=dataid.record(task, config, data.fingerprint, data.validation))
    if ctx.main:
        _write_run_files(run, data, adapter, resumed=resume is not None)
        if prefit_record is not None:
            write_json(run.dir / "prefit.json", prefit_record)
        if init_record is not None:
            write_json(run.dir / "init.json", init_record)
        if on_start is not None:
            on_start(run.dir)

    schedule = LRSchedule(config, math.ceil(len(data.train) / config.batch_size), higher_is_better=run.selection[1])
    if resume is not None:
        if ctx.main:  # rank 0 settles the run folder (fallback checkpoint, log, best weights); the others read it
            checkpoint.resume(run, adapter, schedule)
        ctx.barrier()
        if not ctx.main:
            checkpoint.resume(run, adapter, schedule, write=False)
        log.info("resuming %s after epoch %d", run.dir, run.state.epoch)
        summary_path = run.dir / "metrics.json"
        if summary_path.exists() and run.finished():
            return TrainResult(run.dir, json.loads(summary_path.read_text()), config)

    t_train = time.perf_counter()
    _epochs(run, adapter, schedule, data, on_epoch_end, ctx)
    t_train = time.perf_counter() - t_train

    if not ctx.main:  # rank 0 predicts the test set and writes the summary: wait for it, return the same
        ctx.barrier()
        return TrainResult(run.dir, json.loads((run.dir / "metrics.json").read_text()), config)
    summary = finish_run(run, adapter, data)
    summary["time_s"] = {"data": t_data, "train": t_train}
    summary["jit_compilations"] = adapter.compilations
    summary["device"] = adapter.device()
    write_json(run.dir / "metrics.json", summary)
    ctx.barrier()
    return TrainResult(run.dir, summary, config)


def _init_weights(config: TrainConfig, adapter: Adapter) -> dict[str, Any]:
    """Load ``--init-weights`` into the adapter: every tensor (the default), or with ``--init-partial`` those
    whose names and shapes match this model's. Returns the record written to ``init.json``."""
    state, meta = weights.load(config.init_weights)
    record = {"weights": str(config.init_weights), "sha256": meta.get("sha256"), "partial": config.init_partial}
    if not config.init_partial:
        adapter.load_state_dict(state)
        return {**record, "loaded": sorted(state)}
    own = adapter.state_dict()
    match = {k: v for k, v in state.items() if k in own and tuple(np.shape(v)) == tuple(np.shape(own[k]))}
    if not match:
        raise UsageError(f"--init-weights {config.init_weights}: no tensor matches {config.model}'s by name and shape, "
                         "so --init-partial would load nothing; these are weights of another model family or size")
    adapter.load_state_dict({**own, **match})
    kept = sorted(set(own) - set(match))
    log.info("--init-partial: %d of %d tensors loaded from %s; %s keep their random init",
             len(match), len(own), config.init_weights, ", ".join(kept) or "none")
    return {**record, "loaded": sorted(match), "random_init": kept, "not_used": sorted(set(state) - set(match)),
            "loaded_values": int(sum(np.size(v) for v in match.values())),
            "random_values": int(sum(np.size(own[k]) for k in kept))}


def _prefit(config: TrainConfig, model_config, adapter: Adapter, data: FoldData, normalizer: TargetNormalizer,
            loss: str) -> dict[str, Any] | None:
    """The family's pre-fit on the training split (``zoo.models.prefit``), loaded into the adapter's weights
    before the first step; its record (for ``prefit.json``), or None where the family fits nothing."""
    def batches() -> list:  # made only if the family's config asks for a fit (most runs do not)
        z = normalizer.forward(data.train.y, data.train.ids)
        return [adapter.batch_arrays(adapter.make_batch([data.train.graphs[i] for i in b], z[b]))
                for b in index_batches(adapter, data.train.graphs, config.batch_size)]

    fitted = adapter.call(models.prefit, config.model, model_config, batches, config.backend, loss)
    if fitted is None:
        return None
    overrides, record = fitted
    state = adapter.state_dict()
    state.update({k: np.asarray(v, dtype=state[k].dtype).reshape(state[k].shape) for k, v in overrides.items()})
    adapter.load_state_dict(state)
    log.info("pre-fit of %s done in %.0f s", ", ".join(overrides), record.get("seconds", 0.0))
    return record


def _epochs(run: Run, adapter: Adapter, schedule: LRSchedule, data: FoldData, on_epoch_end, ctx: distributed.Context) -> None:
    """Epochs from the run's state up to ``config.epochs`` (or an early stop), each logged and checkpointed."""
    c, state = run.config, run.state
    # Both standardised once, before any step: a target the transform refuses (zoo.training.targets) stops
    # the run here, not after an epoch of training.
    z_train = run.normalizer.forward(data.train.y, data.train.ids)
    z_val = run.normalizer.forward(data.val.y, data.val.ids)
    val_batches = [adapter.make_batch([data.val.graphs[i] for i in b], None) for b in index_batches(adapter, data.val.graphs, c.batch_size)]
    bar = tqdm(range(state.epoch, c.epochs), initial=state.epoch, total=c.epochs, unit="epoch",
               desc=f"{c.model}/{c.backend} {c.task} f{c.fold}", disable=not c.progress)
    for epoch0 in bar:
        if state.stopped_early:
            break
        epoch = epoch0 + 1
        te, comp0 = time.perf_counter(), adapter.compilations

        train_loss = _train_epoch(run, adapter, schedule, data, z_train, epoch, ctx)
        val, val_loss = _validate(run, adapter, data, z_val, val_batches, ctx)
        metric = float(val[run.selection[0]])
        schedule.end_epoch(metric)
        improved = run.end_epoch(epoch, metric, adapter.state_dict, counts=schedule.annealed(max(state.step - 1, 0)))
        if improved and ctx.main:
            checkpoint.save_best(run, run.dir / "best")

        record = {
            "epoch": epoch, "lr": schedule.lr(max(state.step - 1, 0)), "train_loss": train_loss, "val_loss": val_loss,
            **{f"val_{k}": v for k, v in val.items() if k != "n" and not k.startswith("n_")},
            "best": improved, "time_s": time.perf_counter() - te, "jit_compilations": adapter.compilations - comp0,
        }
        if ctx.main:
            append_jsonl(run.dir / "metrics.jsonl", record)
            checkpoint.save(run, adapter, schedule)
        bar.set_postfix(train_loss=f"{train_loss:.4g}", val=f"{metric:.4g}", best=state.best_epoch)
        if on_epoch_end is not None:
            on_epoch_end(record)
        if state.stopped_early:
            log.info("early stop after epoch %d (no better validation %s for %d epochs)", epoch, run.selection[0], c.patience)
            break
    bar.close()


def _train_epoch(run: Run, adapter: Adapter, schedule: LRSchedule, data: FoldData, z_train: np.ndarray, epoch: int,
                 ctx: distributed.Context) -> float:
    """One pass over the shuffled training set; returns the mean per-graph loss (standardised units)."""
    c, state = run.config, run.state
    rng = np.random.default_rng([c.seed, epoch])
    shuffle = getattr(data.train.graphs, "permutation", None)  # graphs on disk: shuffled shard by shard (sharded.py)
    order = shuffle(rng) if shuffle is not None else rng.permutation(len(data.train))
    train_batches = index_batches(adapter, data.train.graphs, c.batch_size, order)
    if hasattr(adapter.model_config, "batch_key"):
        # grouped batches come key by key: shuffle their order too (a family without groups keeps
        # the plain permutation, so its runs reproduce bit for bit across this change)
        train_batches = [train_batches[i] for i in np.random.default_rng([c.seed, epoch, 1]).permutation(len(train_batches))]
    # A batch bar only where an epoch is long enough to need one (it disappears at the epoch's end).
    total, count = 0.0, 0
    for b in tqdm(train_batches, desc=f"epoch {epoch}", unit="batch", leave=False, disable=not c.progress or len(train_batches) < 50):
        mine, adapter.loss_scale = ctx.local(b)  # torchrun: this rank's slice of the global batch
        batch = adapter.make_batch([data.train.graphs[i] for i in mine], z_train[mine])
        total += adapter.train_step(batch, schedule.lr(state.step)) * (adapter.loss_scale > 0)
        count += len(b)
        state.step += 1
    train_loss = ctx.sum(total) / max(count, 1)
    if not np.isfinite(train_loss):
        raise TrainingError(_diverged(run, f"training loss became {train_loss}", epoch))
    return train_loss


def _validate(run: Run, adapter: Adapter, data: FoldData, z_val: np.ndarray, val_batches: list,
              ctx: distributed.Context) -> tuple[dict[str, Any], float]:
    """Validation scores in task units (no point-group scores: those need a structure analysis) and the
    validation loss in standardised units, for the learning curve."""
    zv = ctx.predict(adapter, data.val.graphs, run.config.batch_size, val_batches)
    if not np.all(np.isfinite(zv)):
        raise TrainingError(_diverged(run, "validation predictions became non-finite", run.state.epoch + 1))
    scores = compute_metrics(run.target, data.val.y, run.normalizer.inverse(zv))
    val_loss = float(np.mean(per_graph_loss(run.loss, zv, z_val)))
    return scores, val_loss


def _diverged(run: Run, what: str, epoch: int) -> str:
    return f"{what} at epoch {epoch} ({run.dir}); lower --lr (now {run.config.lr}) or use --dtype float64"


def _check_selection(spec: TaskSpec, data: FoldData) -> None:
    """The task's selection score must be one the loop computes every epoch; checked before any folder
    is made (scoring the validation targets against themselves names every score cheaply)."""
    name = spec.selection[0]
    available = compute_metrics(spec.target, data.val.y, data.val.y)
    if name not in available:
        raise TrainingError(f"task {spec.name} selects the best epoch by {name!r}, which is not a validation score; "
                            f"choose one of {sorted(k for k in available if k != 'n')}")


def _write_run_files(run: Run, data: FoldData, adapter: Adapter, resumed: bool) -> None:
    """config.json, env.json and failures.json of a new run; a resumed run must have the same targets."""
    runs.write_failures(run.dir, data.failures)
    resolved = run.resolved_config(data.sizes())
    if not resumed:
        write_json(run.dir / "config.json", resolved)
        write_json(run.dir / "env.json", environment(adapter.device(), run.seeds()))
        return
    old = runs.read_config(run.dir)
    if old.get("data"):  # runs that recorded their data: the fold must be the very same
        changed = dataid.differences(old["data"], run.data, ["train_val", "test", "val_ids"])
        if changed:
            raise TrainingError(f"{run.dir}: the data differ from the ones the run started with ({'; '.join(changed)}); "
                                "cannot resume: re-create the same data (task options, data files) or start a new run")
    if old.get("normalizer") != resolved["normalizer"]:
        raise TrainingError(f"{run.dir}: the training targets differ from the ones the run started with; cannot resume")
    if old["train"]["epochs"] != run.config.epochs:
        write_json(run.dir / "config.json", resolved)
