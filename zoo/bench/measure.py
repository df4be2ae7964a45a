"""The measurements of the benchmark suite, one function each, shared by ``zoo bench``, the performance gate
(``zoo.bench.gate``) and the asv benchmarks (``benchmarks/asv_*.py``).

- ``short_training(model, backend, task, seed)``: the fixed-seed short training of the main job
  (``zoo.training.train`` with the family's bench recipe, ``zoo.bench.plan``): the test metric with the
  task's floor next to it, the symmetry violation of tensor predictions, the parameter count, the
  compile time of the run and the steady-state training / inference throughput (``Steps``).
- ``Steps``: one model in one backend through the trainer's own adapter (``zoo.training.get_adapter``),
  on fixed batches: a timed training pass (forward, loss, backward, optimiser step) and a timed
  inference pass, after a warm-up pass that compiles every batch shape (jax) and allocates (torch).
- ``calibration(backend)``: a fixed matmul + scatter workload in the same framework, timed next to a
  model so that a slowdown is read as a ratio that survives a busy machine.
- ``equivariance_error``, ``parity_error``, ``symmetry_violation``: ``zoo.testing``'s
  ``equivariance_errors`` / ``backend_parity_errors`` and ``zoo.symmetry.symmetry_violation`` on the
  suite's fixed crystals (``check_crystals``), random weights.

Times are seconds (``time.perf_counter``); throughputs are structures per second; errors are relative
(see ``zoo.testing``). Nothing here asserts a bound: the gate does.
"""
from __future__ import annotations

import json
import math
import statistics
import time
from collections.abc import Callable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from zoo import tasks
from zoo.models import config_from_dict
from zoo.symmetry import point_group_ops
from zoo.symmetry import symmetry_violation as _violation
from zoo.tasks.spec import HIGHER_IS_BETTER, TargetSpec
from zoo.testing import (
    backend_parity_errors,
    equivariance_errors,
    predictor,
    random_crystals,
)
from zoo.training import TrainConfig, get_adapter, train
from zoo.training.adapter import index_batches
from zoo.training.data import load_fold

from . import plan
from .phases import Phases

# The suite's fixed crystals for the symmetry checks: the embedded generator's, seeded, small cells
# (a float64 check runs every crystal through 5 transformations, supercells double the atoms).
CHECK_SEED = 20240601
CHECK_MAX_ATOMS = 8


# =============================================================================================== timing
def calibration(backend: str, size: int = 1) -> Callable[[], float]:
    """A fixed workload in ``backend``'s framework, shaped like one message-passing layer (dense matmul,
    gather, scatter-add over 4096 edges into 512 nodes, 64 channels), already warm. Returns a function
    that runs it and returns its time in seconds (~5-20 ms on one busy core; ``size`` repeats it)."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((512, 64)).astype(np.float32)
    w = (rng.standard_normal((64, 64)) / 8).astype(np.float32)
    senders = rng.integers(0, 512, 4096)
    receivers = np.sort(rng.integers(0, 512, 4096))
    if backend == "torch":
        import torch

        tx, tw = torch.from_numpy(x), torch.from_numpy(w)
        ts, tr = torch.from_numpy(senders), torch.from_numpy(receivers)

        def work() -> None:
            h = tx
            for _ in range(4 * size):
                m = torch.tanh(h[ts] @ tw)
                h = torch.zeros_like(h).index_add_(0, tr, m) / 8.0
            float(h.sum())
    elif backend == "jax":
        import jax
        import jax.numpy as jnp

        @jax.jit
        def layers(h, w, s, r):
            for _ in range(4 * size):
                h = jax.ops.segment_sum(jnp.tanh(h[s] @ w), r, num_segments=512) / 8.0
            return h.sum()

        args = (jnp.asarray(x), jnp.asarray(w), jnp.asarray(senders), jnp.asarray(receivers))

        def work() -> None:
            float(layers(*args))
    else:
        raise ValueError(f"unknown backend {backend!r}; choose 'torch' or 'jax'")

    def timed() -> float:
        t0 = time.perf_counter()
        work()
        return time.perf_counter() - t0

    timed()  # warm: first-call allocation (torch) and compilation (jax) are not part of the workload
    return timed


class Steps:
    """One model in one backend through the trainer's adapter, on fixed batches of ``graphs``.

    ``y``: standardised targets (only their shape matters for timing). ``n_batches`` caps the batches
    (the trainer's ``index_batches``, so a family's batch groups apply); ``jax_padding`` as
    ``TrainConfig``'s. ``prime``: graphs batched before the timed batches and dropped, as the training
    loop batches its validation set right after ``init``: a padding policy that grows with the batches
    it sees (``FixedPolicy``) then pads the timed batches as the run padded its first steps, and JAX's
    compilation cache (``zoo bench``) gives back the run's compiled steps. ``plant``: a test hook that runs
    the model's forward pass twice (``zoo.bench.gate``: a planted 2x slowdown; never a production path).
    """

    def __init__(self, model: str, backend: str, model_config, graphs: Sequence, y: np.ndarray, batch_size: int,
                 n_batches: int | None = None, dtype: str = "float32", seed: int = 0, lr: float = 1e-3, plant: bool = False,
                 jax_padding: str = "buckets", prime: Sequence | None = None):
        config = TrainConfig(model=model, backend=backend, batch_size=batch_size, dtype=dtype, seed=seed, lr=lr, progress=False,
                             jax_padding=jax_padding)
        self.backend, self.lr = backend, lr
        self.adapter = get_adapter(backend)(model, model_config, config, "mse")
        self.adapter.init(list(graphs[:batch_size]))
        if plant:
            plant_slowdown(self.adapter)
        if prime is not None:  # batched and dropped, in the training loop's order (see the class docstring)
            for b in index_batches(self.adapter, list(prime), batch_size):
                self.adapter.make_batch([prime[i] for i in b], None)
        idx = index_batches(self.adapter, list(graphs), batch_size)[:n_batches]
        self.batches = [self.adapter.make_batch([graphs[i] for i in b], y[b]) for b in idx]
        self.n_structures = int(sum(len(b) for b in idx))
        state = self.adapter.state_dict()
        params = set(self._parameter_names())
        self.n_parameters = int(sum(np.size(v) for k, v in state.items() if k in params))

    def _parameter_names(self) -> list[str]:
        if self.backend == "torch":
            return [k for k, _ in self.adapter.model.named_parameters()]
        from zoo.backend.params import torch_from_flax

        return list(torch_from_flax({"params": self.adapter.params}))

    def train_pass(self) -> float:
        """Seconds for one optimiser step on every batch (``train_step`` returns a Python float, so the
        device work has finished when it returns)."""
        t0 = time.perf_counter()
        for b in self.batches:
            self.adapter.train_step(b, self.lr)
        return time.perf_counter() - t0

    def infer_pass(self) -> float:
        """Seconds for eval-mode predictions of every batch (returned as host numpy: the work is done)."""
        t0 = time.perf_counter()
        for b in self.batches:
            self.adapter.predict(b)
        return time.perf_counter() - t0

    def warm_up(self) -> float:
        """One training and one inference pass that compile (jax) / allocate (torch); returns their time."""
        return self.train_pass() + self.infer_pass()


def plant_slowdown(adapter) -> None:
    """TEST HOOK (performance gate, ``--plant``): make ``adapter``'s model run its forward pass twice.

    torch: the module's ``forward`` is wrapped on the instance. jax: the flax module's ``apply`` is
    wrapped so that the second call's inputs depend on the first call's output (a NaN test that is
    never true), which keeps XLA from merging the two identical computations; the adapter's jitted
    steps are rebuilt around it. Training then pays one extra forward pass, inference twice the time.
    """
    if adapter.backend == "torch":
        module = adapter.model
        forward = module.forward

        def twice(*args, **kwargs):
            forward(*args, **kwargs)
            return forward(*args, **kwargs)

        module.forward = twice
        return
    import jax
    import jax.numpy as jnp

    module = adapter.module
    apply = module.apply

    def apply_twice(variables, batch, *args, **kwargs):
        first = apply(variables, batch, *args, **kwargs)
        out = first[0] if isinstance(first, tuple) else first
        dep = jax.lax.stop_gradient(jnp.where(jnp.isnan(jnp.sum(out)), 1.0, 0.0))
        moved = {k: (v + dep.astype(v.dtype) if jnp.issubdtype(v.dtype, jnp.floating) else v) for k, v in batch.items()}
        return apply(variables, moved, *args, **kwargs)

    object.__setattr__(module, "apply", apply_twice)
    adapter._build_steps()


def timed_ratios(steps: Steps, calibrate: Callable[[], float], repeats: int = 5) -> dict[str, Any]:
    """Training and inference passes interleaved with the calibration workload, ``repeats`` times.

    Each pass is divided by the mean of the calibrations run just before and just after it, so that a
    machine that is busier for a while slows both alike; the medians over the repeats are returned with
    every raw time (seconds) and the throughputs (structures/s) of the median passes."""
    cal = [calibrate()]
    train_s, infer_s, r_train, r_infer = [], [], [], []
    for _ in range(repeats):
        train_s.append(steps.train_pass())
        cal.append(calibrate())
        r_train.append(train_s[-1] / ((cal[-2] + cal[-1]) / 2))
        infer_s.append(steps.infer_pass())
        cal.append(calibrate())
        r_infer.append(infer_s[-1] / ((cal[-2] + cal[-1]) / 2))
    n = steps.n_structures
    return {
        "train_ratio": statistics.median(r_train), "infer_ratio": statistics.median(r_infer),
        "train_ratios": r_train, "infer_ratios": r_infer,
        "train_s": train_s, "infer_s": infer_s, "calibration_s": cal,
        "train_structures_per_s": n / statistics.median(train_s), "infer_structures_per_s": n / statistics.median(infer_s),
        "n_structures": n, "n_batches": len(steps.batches),
    }


# =============================================================================================== training
def short_training(model: str, backend: str, task: str | None = None, seed: int = 0, *, task_object=None,
                   out: str = "runs/bench", progress: bool = False, timing_batches: int = 3, timing_repeats: int = 3,
                   phases: Phases | None = None, **overrides: Any) -> dict[str, Any]:
    """The main job's fixed-seed short training of ``model`` in ``backend`` on ``task`` (default: the
    family's bench task, ``plan.bench_task``), fold 0, with the family's bench recipe (``plan.recipe``)
    and ``overrides`` on top (``TrainConfig`` fields: ``epochs=3``, ``model_overrides={...}``,
    ``task_kwargs={"n_crystals": 300}`` ...). ``task_object``: an already built task (shares its graphs).

    Returns the test metric (``metric``, ``value``) with the floor's (``floor``: always the training
    mean), every test metric, the symmetry violation of the test predictions (tensor tasks, else None),
    epochs, parameters, the run's compile time (``compile_s``: the time its compiling epochs took
    beyond a steady epoch), the training and inference throughput on the training set in steady state
    (structures/s, ``Steps`` after a warm-up), the run folder and the wall time. ``phases`` (a ``Phases``)
    receives "training" (data, model, epochs with their validation), "evaluation" (the best weights'
    validation and test predictions, run files) and "throughput"; they are returned as ``phases``.
    """
    t0 = time.perf_counter()
    phases = phases if phases is not None else Phases()
    task = task or plan.bench_task(model)
    config = plan.train_config(model, backend, task, seed=seed, out=out, progress=progress, **overrides)
    records: list[dict[str, Any]] = []
    marks = [phases.mark()]

    def epoch_end(record: dict[str, Any]) -> None:
        records.append(record)
        marks.append(phases.mark())

    res = train(config, task=task_object, on_epoch_end=epoch_end)
    phases.between("training", marks[0], marks[-1])
    phases.between("evaluation", marks[-1], phases.mark())
    summary = res.summary
    spec = tasks.spec(res.config.task) if task_object is None else task_object.spec
    metric = spec.metrics[0]
    test, floor = summary.get("test", {}), summary.get("floor", {}).get("test", {})
    t_train = time.perf_counter() - t0

    # Steady-state throughput on the fold's training graphs (cached: the run just built them).
    with phases("throughput"):
        fitted = run_model_config(res.run_dir, model)
        data = load_fold(task_object or plan.fold_task(res.config), res.config.fold, res.config, fitted.graph_spec())
        y = np.random.default_rng(seed).standard_normal((len(data.train),) + tuple(spec.target.shape or ()))
        # The run's padding, primed as the run's was: the same padded shapes as its training (when the timed
        # batches fit the shape of its first steps), whose compiled steps JAX's compilation cache gives back.
        steps = Steps(model, backend, fitted, data.train.graphs, y, res.config.batch_size, n_batches=timing_batches,
                      seed=seed, lr=res.config.lr, jax_padding=res.config.jax_padding, prime=data.val.graphs)
        steps.warm_up()
        timing = timed_ratios(steps, calibration(backend), repeats=timing_repeats)
    return {
        "model": model, "backend": backend, "task": spec.name, "seed": seed, "fold": res.config.fold,
        "metric": metric, "value": test.get(metric), "floor": floor.get(metric), "higher_is_better": metric in HIGHER_IS_BETTER,
        "test": test, "floor_test": floor,
        "symmetry_violation": test.get("sym_violation_mean"),
        "epochs": summary.get("epochs_run"), "best_epoch": summary.get("best_epoch"),
        "n_train": len(data.train), "n_test": test.get("n"),
        "parameters": steps.n_parameters,
        "compile_s": compile_seconds(records),
        "train_structures_per_s": timing["train_structures_per_s"], "infer_structures_per_s": timing["infer_structures_per_s"],
        "timing": timing, "training_s": t_train, "run_dir": str(res.run_dir),
        "recipe": {"batch_size": res.config.batch_size, "lr": res.config.lr, "epochs": res.config.epochs,
                   "model_overrides": dict(res.config.model_overrides), "task_kwargs": dict(res.config.task_kwargs)},
        "wall_s": time.perf_counter() - t0, "phases": phases.table,
    }


def run_model_config(run_dir: str | Path, model: str):
    """The family config a finished run used (its ``config.json``), fitted to the task's target."""
    saved = json.loads((Path(run_dir) / "config.json").read_text())
    return config_from_dict(model, saved["model"]["config"])


def compile_seconds(records: Sequence[dict[str, Any]]) -> float:
    """Seconds a run's epochs spent beyond a steady epoch in the epochs that compiled (jit traces, from
    ``metrics.jsonl`` records); 0 for a run that never compiled (torch)."""
    steady = [r["time_s"] for r in records if not r.get("jit_compilations")]
    if not steady:  # every epoch compiled: the last one is the best estimate of a steady epoch
        steady = [records[-1]["time_s"]] if records else [0.0]
    base = statistics.median(steady)
    return float(sum(max(r["time_s"] - base, 0.0) for r in records if r.get("jit_compilations")))


# =============================================================================================== symmetry
@lru_cache(maxsize=4)
def _check_crystals(n: int) -> tuple:
    return tuple(random_crystals(n, seed=CHECK_SEED, max_atoms=CHECK_MAX_ATOMS))


def check_crystals(n: int = 3) -> list:
    """The suite's fixed crystals for the symmetry checks (deterministic in ``n``)."""
    return list(_check_crystals(int(n)))


def bench_target(model: str, task: str | None = None) -> TargetSpec:
    """The target the family is benchmarked on (its bench task's, ``plan.bench_task``)."""
    return tasks.spec(task or plan.bench_task(model)).target


def model_config(model: str, target: TargetSpec | None = None, **model_overrides: Any):
    """The family's bench config (``plan.recipe``'s model overrides, then ``model_overrides``) with the head
    of ``target`` (default: the bench task's)."""
    from zoo.models import make_config

    overrides = {**plan.recipe(model).get("model_overrides", {}), **model_overrides}
    return make_config(model, **overrides).with_target(target or bench_target(model))


def equivariance_error(model: str, backend: str, dtype: str = "float64", config=None, n_crystals: int = 3,
                       checks: Sequence[str] = ("rotation", "improper", "translation", "permutation", "supercell"),
                       n_trials: int = 1, seed: int = 0, weights=None) -> float:
    """Largest relative error of ``zoo.testing.equivariance_errors`` over ``checks`` (``check_crystals(n_crystals)``;
    the rank of the config's target); ``weights`` as ``zoo.testing.predictor`` (None: random init seeded by ``seed``)."""
    return equivariance_and_output(model, backend, dtype, config, n_crystals, checks, n_trials, seed, weights)[0]


def equivariance_and_output(model: str, backend: str, dtype: str = "float64", config=None, n_crystals: int = 3,
                            checks: Sequence[str] = ("rotation", "improper"), n_trials: int = 1, seed: int = 0,
                            weights=None) -> tuple[float, np.ndarray]:
    """``equivariance_error`` and the model's outputs on the untransformed ``check_crystals`` (the check's
    first prediction): with the same ``weights`` in both backends, the two outputs are the backend parity,
    at the cost of no further compilation."""
    config = config or model_config(model)
    predict = predictor(model, backend, config, weights=weights, dtype=dtype, seed=seed)
    first: list[np.ndarray] = []

    def recorded(structures: list) -> np.ndarray:
        out = predict(structures)
        if not first:
            first.append(np.asarray(out, dtype=np.float64))
        return out

    errors = equivariance_errors(recorded, check_crystals(n_crystals), _rank(config), n_trials=n_trials, seed=seed, checks=checks)
    return float(max(errors.values())), first[0]


def check_weights(model: str, config, seed: int = 0) -> dict[str, np.ndarray]:
    """Seeded random weights of ``config`` (the torch model's initialiser, torch names), for checks that
    need the same weights in both backends."""
    import torch

    from zoo.models import build

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return {k: v.detach().cpu().numpy().copy() for k, v in build(model, "torch", config).state_dict().items()}


def _rank(config) -> int:
    return int(getattr(config, "target_rank", 0) or 0)


def parity_error(model: str, dtype: str = "float64", config=None, n_crystals: int = 3, grads: bool = False,
                 seed: int = 0) -> dict[str, float]:
    """``zoo.testing.backend_parity_errors``: torch vs jax on the same weights and batch (output, and
    parameter gradients with ``grads``)."""
    config = config or model_config(model)
    return backend_parity_errors(model, config, check_crystals(n_crystals), dtype=dtype, grads=grads, seed=seed)


def symmetry_violation(model: str, backend: str, dtype: str = "float32", config=None, n_crystals: int = 8,
                       seed: int = 0, weights=None) -> float | None:
    """Mean ||T - Sym_G T||_F / ||T||_F of the model's tensor predictions over ``check_crystals``, G each
    crystal's point group (``zoo.symmetry``); None for a family whose bench target is not a tensor.
    ``weights``: as ``zoo.testing.predictor`` (None: random init seeded by ``seed``)."""
    config = config or model_config(model)
    if _rank(config) == 0:
        return None
    structures = check_crystals(n_crystals)
    predict = predictor(model, backend, config, weights=weights, dtype=dtype, seed=seed)
    out = predict(structures)
    ops = point_group_ops(structures, progress=False)
    values = [_violation(t, g) for t, g in zip(out, ops)]
    return float(np.mean(values)) if values else math.nan


__all__ = [
    "Steps", "bench_target", "calibration", "check_crystals", "check_weights", "compile_seconds", "equivariance_and_output",
    "equivariance_error", "model_config",
    "parity_error", "plant_slowdown", "short_training", "symmetry_violation", "timed_ratios",
]
