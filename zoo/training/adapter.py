"""What the training loop needs from a backend, and where each backend's adapter lives.

``zoo.training.torch.TorchAdapter`` and ``zoo.training.jax.JaxAdapter`` implement ``Adapter`` and mirror
each other. The loop names a backend only through ``ADAPTERS`` (module path strings, imported on first
use), so importing ``zoo.training`` imports neither framework and the adapters can import this module
without a cycle. All arrays crossing this interface are numpy; weights are torch ``state_dict``s.
"""
from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from typing import Any, Callable, Sequence

import numpy as np

from .data import batches

ADAPTERS = {"torch": "zoo.training.torch:TorchAdapter", "jax": "zoo.training.jax:JaxAdapter"}


class Adapter(ABC):
    """One model being trained in one backend: parameters, optimiser, RNG, steps.

    Constructed as ``Adapter(model_name, model_config, config: TrainConfig, loss)``, which only remembers
    what to build: nothing is allocated before ``init``."""

    backend = ""
    model_config: Any = None  # the family's config (set by __init__)
    compilations = 0  # jit traces so far (jax); 0 for torch, which does not compile

    @abstractmethod
    def init(self, example: Sequence, check: Callable[[dict[str, tuple[int, ...]]], None] | None = None) -> None:
        """Create the parameters (seeded by ``config.seed``) and the optimiser, given example graphs.
        ``check(shapes)`` is called with the parameter shapes (torch names) before anything is allocated,
        and may refuse (``zoo.training.budget.check_memory``)."""

    def memory_limit(self) -> int:
        """Bytes of memory of the device the model trains on (default: the host's, see ``budget``)."""
        from .budget import host_memory_bytes

        return host_memory_bytes()

    @abstractmethod
    def make_batch(self, graphs: Sequence, y: np.ndarray | None) -> Any:
        """Graphs (and standardised targets) as this backend's batch."""

    def batch_arrays(self, batch: Any) -> Any:
        """The backend arrays of a ``make_batch`` batch (the mapping a model takes), for code outside the
        adapter that runs the model math itself (a family's pre-fit)."""
        return batch

    def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """``fn(*args)`` in this backend's numeric settings (JAX: float64 enabled for a float64 run)."""
        return fn(*args)

    @abstractmethod
    def train_step(self, batch: Any, lr: float) -> float:
        """One optimiser step at learning rate ``lr``; returns the *sum* of the per-graph losses."""

    @abstractmethod
    def predict(self, batch: Any) -> np.ndarray:
        """Raw model output (standardised units; classes: the logit) for the real graphs, float64."""

    @abstractmethod
    def state_dict(self) -> dict[str, np.ndarray]:
        """The weights under their torch ``state_dict`` names, whichever the backend."""

    @abstractmethod
    def load_state_dict(self, state: dict[str, np.ndarray]) -> None: ...

    @abstractmethod
    def optimizer_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """(arrays, JSON metadata) of the optimiser, enough to continue bit for bit."""

    @abstractmethod
    def load_optimizer_state(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None: ...

    @abstractmethod
    def rng_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """(arrays, JSON metadata) of the random state that dropout draws from."""

    @abstractmethod
    def load_rng_state(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None: ...

    @abstractmethod
    def device(self) -> str:
        """The device in words, for env.json and the run summary."""


def get_adapter(backend: str) -> type[Adapter]:
    """The adapter class of ``backend`` (imports that backend's framework); a backend that is not
    installed raises ``ImportError`` with the ``pip install`` line."""
    if backend not in ADAPTERS:
        raise ValueError(f"unknown backend {backend!r}; choose one of {sorted(ADAPTERS)}")
    module, name = ADAPTERS[backend].split(":")
    try:
        return getattr(importlib.import_module(module), name)
    except ImportError as exc:
        raise ImportError(f"the {backend} backend is not installed ({exc}); install it with "
                          f"pip install 'crystal-zoo[{backend}]' (in a checkout: pip install -e '.[{backend}]')") from exc


def check_backend(backend: str, device: str | None) -> None:
    """Refuse, before any data is loaded, a backend that is not installed or a device it cannot use
    (``--device cuda`` without CUDA, a GPU index that does not exist, a misspelt device)."""
    from .config import UsageError

    try:
        get_adapter(backend)
    except ImportError as exc:
        raise UsageError(str(exc)) from None
    if device is None:
        return
    if backend == "torch":
        import torch

        try:
            dev = torch.device(device)
        except RuntimeError as exc:
            raise UsageError(f"--device {device!r} is not a torch device ({exc}); use cpu, cuda or cuda:N") from None
        if dev.type == "cuda":
            if not torch.cuda.is_available():
                why = "this torch is a CPU-only build" if torch.version.cuda is None else "no CUDA GPU is visible"
                raise UsageError(f"--device {device}: torch cannot use CUDA here ({why}); use --device cpu, or install "
                                 "a CUDA build of torch on a machine with a GPU")
            if dev.index is not None and dev.index >= torch.cuda.device_count():
                raise UsageError(f"--device {device}: there are only {torch.cuda.device_count()} CUDA device(s) (cuda:0 ...)")
        elif dev.type not in ("cpu", "cuda"):
            backend_mod = getattr(torch.backends, dev.type, None)
            if backend_mod is None or not getattr(backend_mod, "is_available", lambda: False)():
                raise UsageError(f"--device {device}: torch has no usable {dev.type} device here; use --device cpu")
    else:
        import jax

        platform = {"cuda": "gpu"}.get(device.split(":")[0], device.split(":")[0])
        try:
            jax.devices(platform)
        except RuntimeError as exc:
            raise UsageError(f"--device {device}: jax has no {platform} device here ({str(exc).splitlines()[0]}); "
                             f"jax runs on its default device, {jax.default_backend()}: drop --device") from None


def batch_groups(adapter: Adapter, graphs: Sequence) -> list | None:
    """One batching key per graph from the family's optional ``config.batch_key(graph)``, else None
    (any graphs may share a batch)."""
    key = getattr(adapter.model_config, "batch_key", None)
    return None if key is None else [key(g) for g in graphs]


def index_batches(adapter: Adapter, graphs: Sequence, batch_size: int, order: np.ndarray | None = None) -> list[np.ndarray]:
    """The index batches the loop and inference use for ``graphs``: ``data.batches`` with the family's groups."""
    return batches(len(graphs), batch_size, order, batch_groups(adapter, graphs))


def predict_graphs(adapter: Adapter, graphs: Sequence, batch_size: int, made: list | None = None) -> np.ndarray:
    """Raw (standardised) predictions for ``graphs`` in order; ``made`` holds the batches if already made
    (from ``index_batches(adapter, graphs, batch_size)``, whose order this undoes)."""
    if len(graphs) == 0:
        return np.zeros((0,))
    index = index_batches(adapter, graphs, batch_size)
    if made is None:
        made = [adapter.make_batch([graphs[i] for i in b], None) for b in index]
    pred = np.concatenate([adapter.predict(b) for b in made])
    out = np.empty_like(pred)
    out[np.concatenate(index)] = pred
    return out
