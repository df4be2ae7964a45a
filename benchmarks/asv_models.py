"""asv: speed, memory, equivariance and backend parity of every registered model, in both backends.

All on the same fixed-seed synthetic crystals (``benchmarks.bench_crystals``: the embedded
generator's symmetric crystals, <= 24 atoms, those every registered model can featurise).

- ``ModelSpeed`` (model x backend x device x batch size): ``time_forward`` (eval mode, output back on
  the host), ``time_train_step`` (forward + MSE loss + backward + AdamW step of ``zoo.training``'s
  backend adapter, float32, steady state: the model is built, jit-compiled and stepped in ``setup``),
  ``track_compile_train_step`` / ``track_compile_forward`` (seconds the first call takes beyond a
  steady-state call: jit compilation in jax, lazy initialisation and kernel selection in torch,
  measured once per process in ``setup``, so never mixed into the steady-state times) and
  ``peakmem_train_step`` (peak resident memory of the benchmark process, which includes the model,
  the batch and the compiled step, in bytes). Every timed call ends with ``synchronize``: CUDA's
  queue drained (``torch.cuda.synchronize``), jax's arrays ready (``block_until_ready``), so a clock
  read after it times the work, not its dispatch.
- ``Equivariance`` (model x backend): largest relative error of f(g·S) against g·f(S) for a
  Haar-random rotation and a random improper rotation (``track_equivariance_error``), and of the
  translation / permutation / supercell invariances (``track_cell_invariance_error``), in float64.
  Families with tensor outputs are checked on a rank-2 symmetric ("ij=ji") head, others on a scalar.
- ``Parity`` (model x dtype): torch vs jax on the same weights (``zoo.testing.backend_parity_errors``):
  outputs and parameter gradients.

Unavailable combinations (a backend not installed, a family without that backend, no CUDA device)
raise NotImplementedError in ``setup``, which asv records as skipped. asv starts one process per
parameter combination and re-runs ``setup`` before every timed call, so the expensive part (build,
compile, first step) is kept in a per-process cache and only done once.
"""
from __future__ import annotations

import statistics
import time
from typing import Any, Callable

import numpy as np

from benchmarks import bench_crystals
from zoo.core.backends import backend_available
from zoo.models import list_models

MODELS = list_models()
BACKENDS = ["torch", "jax"]
DEVICES = ["cpu", "cuda"]
BATCH_SIZES = [16, 64]
N_POOL = 200  # crystals drawn once for the whole suite (asv_graphs uses all of them)
N_CHECK = 8  # crystals for the equivariance and parity tracks (float64, several transformed copies)
TIMEOUT = 900  # s per benchmark process, including the first jit compilation on a slow CPU
N_STEADY = 3  # steady-state calls whose median the first call is compared with


def _targets():
    from zoo.tasks.spec import TargetSpec

    return TargetSpec("benchmark", "scalar"), TargetSpec("dielectric", "tensor", rank=2, formula="ij=ji")


def model_config(model: str, tensor: bool = False) -> tuple[Any, int]:
    """(config, output rank): the family's default config with a scalar head, or a rank-2 one if asked and supported."""
    from zoo.models import get_family, make_config

    scalar, rank2 = _targets()
    config = make_config(model)
    if tensor and "tensor" in get_family(model).outputs:
        return config.with_target(rank2), 2
    return config.with_target(scalar), 0


def pool() -> list:
    """The suite's crystals: the first N_POOL that every registered model's graph rule can featurise."""
    return bench_crystals(N_POOL, [model_config(m)[0].graph_spec() for m in MODELS])


def require(model: str, backend: str, device: str = "cpu") -> None:
    """Raise NotImplementedError (asv: skipped) where this combination cannot run here; pin jax's device."""
    from zoo.models import get_family

    if not backend_available(backend):
        raise NotImplementedError(f"{backend} is not installed (pip install 'crystal-zoo[{backend}]')")
    if backend not in get_family(model).backends:
        raise NotImplementedError(f"model {model!r} has no {backend} implementation")
    if backend == "torch":
        import torch

        if device == "cuda" and not torch.cuda.is_available():
            raise NotImplementedError("torch sees no CUDA device")
        return
    import jax

    try:
        devices = jax.devices("gpu" if device == "cuda" else "cpu")
    except RuntimeError:  # no such platform in this jax installation
        devices = []
    if not devices:
        raise NotImplementedError(f"jax sees no {device} device")
    # One process per parameter combination: a process-wide default device is safe here.
    jax.config.update("jax_default_device", devices[0])


_CACHE: dict[tuple, Any] = {}


def cached(key: tuple, make: Callable[[], Any]) -> Any:
    """``make()`` once per process and key (asv re-runs setup before every timed call)."""
    if key not in _CACHE:
        _CACHE.clear()  # one parameter combination at a time: do not hold on to the previous model
        _CACHE[key] = make()
    return _CACHE[key]


def synchronize(backend: str, device: str, value: Any = None) -> None:
    """Wait until the device has finished the work queued so far: GPU kernels run asynchronously, so a
    clock read without this times the launch, not the work. jax: ``value``'s arrays are ready."""
    if backend == "torch":
        if device == "cuda":
            import torch

            torch.cuda.synchronize()
        return
    import jax

    jax.block_until_ready(value)


def timed(call: Callable[[], Any], sync: Callable[[Any], None], clock: Callable[[], float] = time.perf_counter) -> float:
    """Seconds ``call()`` takes, its device work included: ``sync(result)`` runs before the clock is read."""
    start = clock()
    sync(call())
    return clock() - start


class _Stepper:
    """A model, a fixed batch and zoo.training's backend adapter, compiled and warmed up; the first call of
    each operation is timed apart from the steady state (``compile_s``)."""

    def __init__(self, model: str, backend: str, device: str, batch_size: int):
        from zoo.graphs import build_graphs
        from zoo.training import TrainConfig, get_adapter

        config, _ = model_config(model)
        structures = pool()[:batch_size]
        graphs, _ = build_graphs(structures, config.graph_spec(), cache=True, progress=False)
        y = np.random.default_rng(0).standard_normal(batch_size)  # standardised targets, as the trainer sees them
        train = TrainConfig(model=model, backend=backend, batch_size=batch_size, device=device if backend == "torch" else None,
                            dtype="float32", seed=0, progress=False)
        self.backend, self.device = backend, device
        self.lr = train.lr
        self.adapter = get_adapter(backend)(model, config, train, "mse")
        self.adapter.init(graphs)
        self.batch = self.adapter.make_batch(graphs, y)
        # First calls: jit compilation (jax), lazy allocation and kernel selection (torch, CUDA) happen here.
        calls = {"train_step": self._train_step, "forward": self._forward}
        first = {name: timed(call, self._sync) for name, call in calls.items()}
        steady = {name: statistics.median(timed(call, self._sync) for _ in range(N_STEADY)) for name, call in calls.items()}
        self.compile_s = {name: max(first[name] - steady[name], 0.0) for name in calls}

    def _train_step(self) -> Any:
        self.adapter.train_step(self.batch, self.lr)
        # jax: the step is done when the new parameters are; torch: the returned loss is already on the host,
        # but the clock must not depend on that detail of the adapter.
        return self.adapter.params if self.backend == "jax" else None

    def _forward(self) -> Any:
        return self.adapter.predict(self.batch)  # eval mode

    def _sync(self, out: Any) -> None:
        synchronize(self.backend, self.device, out)

    def train_step(self) -> None:
        self._sync(self._train_step())

    def forward(self) -> None:
        self._sync(self._forward())


class ModelSpeed:
    params = [MODELS, BACKENDS, DEVICES, BATCH_SIZES]
    param_names = ["model", "backend", "device", "batch_size"]
    timeout = TIMEOUT

    def setup(self, model, backend, device, batch_size):
        require(model, backend, device)
        self.stepper = cached(("speed", model, backend, device, batch_size), lambda: _Stepper(model, backend, device, batch_size))

    def time_forward(self, model, backend, device, batch_size):
        self.stepper.forward()

    def time_train_step(self, model, backend, device, batch_size):
        self.stepper.train_step()

    def peakmem_train_step(self, model, backend, device, batch_size):
        self.stepper.train_step()

    def track_compile_train_step(self, model, backend, device, batch_size):
        return self.stepper.compile_s["train_step"]

    track_compile_train_step.unit = "seconds"

    def track_compile_forward(self, model, backend, device, batch_size):
        return self.stepper.compile_s["forward"]

    track_compile_forward.unit = "seconds"


class Equivariance:
    params = [MODELS, BACKENDS]
    param_names = ["model", "backend"]
    timeout = TIMEOUT

    def setup(self, model, backend):
        require(model, backend, "cpu")

        def make():
            from zoo.testing import predictor

            config, rank = model_config(model, tensor=True)
            return predictor(model, backend, config, dtype="float64", seed=0), rank

        self.predict, self.rank = cached(("equivariance", model, backend), make)
        self.structures = pool()[:N_CHECK]

    def _max_error(self, checks) -> float:
        from zoo.testing import equivariance_errors

        return max(equivariance_errors(self.predict, self.structures, self.rank, n_trials=1, seed=0, checks=checks).values())

    def track_equivariance_error(self, model, backend):
        return self._max_error(("rotation", "improper"))

    track_equivariance_error.unit = "relative error"

    def track_cell_invariance_error(self, model, backend):
        return self._max_error(("translation", "permutation", "supercell"))

    track_cell_invariance_error.unit = "relative error"


class Parity:
    params = [MODELS, ["float32", "float64"]]
    param_names = ["model", "dtype"]
    timeout = TIMEOUT

    def setup(self, model, dtype):
        for backend in BACKENDS:
            require(model, backend, "cpu")
        self.config, _ = model_config(model, tensor=True)
        self.structures = pool()[:N_CHECK]

    def _errors(self, model, dtype) -> dict[str, float]:
        from zoo.testing import backend_parity_errors

        return cached(("parity", model, dtype),
                      lambda: backend_parity_errors(model, self.config, self.structures, dtype=dtype, grads=True, seed=0))

    def track_parity_error(self, model, dtype):
        return self._errors(model, dtype)["output"]

    track_parity_error.unit = "relative error"

    def track_grad_parity_error(self, model, dtype):
        return self._errors(model, dtype)["grad"]

    track_grad_parity_error.unit = "relative error"
