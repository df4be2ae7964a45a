"""What the training loop needs from a backend, and where each backend's adapter lives.

``zoo.training.torch.TorchAdapter`` and ``zoo.training.jax.JaxAdapter`` implement ``Adapter`` and mirror
each other. The loop names a backend only through ``ADAPTERS`` (module path strings, imported on first
use), so importing ``zoo.training`` imports neither framework and the adapters can import this module
without a cycle. All arrays crossing this interface are numpy; weights are torch ``state_dict``s.
"""
from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from typing import Any, Sequence

import numpy as np

from .data import batches

ADAPTERS = {"torch": "zoo.training.torch:TorchAdapter", "jax": "zoo.training.jax:JaxAdapter"}


class Adapter(ABC):
    """One model being trained in one backend: parameters, optimiser, RNG, steps.

    Constructed as ``Adapter(model_name, model_config, config: TrainConfig, loss)``, which only remembers
    what to build: nothing is allocated before ``init``."""

    backend = ""
    compilations = 0  # jit traces so far (jax); 0 for torch, which does not compile

    @abstractmethod
    def init(self, example: Sequence) -> None:
        """Create the parameters (seeded by ``config.seed``) and the optimiser, given example graphs."""

    @abstractmethod
    def make_batch(self, graphs: Sequence, y: np.ndarray | None) -> Any:
        """Graphs (and standardised targets) as this backend's batch."""

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
    """The adapter class of ``backend`` (imports that backend's framework)."""
    if backend not in ADAPTERS:
        raise ValueError(f"unknown backend {backend!r}; choose one of {sorted(ADAPTERS)}")
    module, name = ADAPTERS[backend].split(":")
    return getattr(importlib.import_module(module), name)


def predict_graphs(adapter: Adapter, graphs: Sequence, batch_size: int, made: list | None = None) -> np.ndarray:
    """Raw (standardised) predictions for ``graphs`` in order; ``made`` holds the batches if already made."""
    if len(graphs) == 0:
        return np.zeros((0,))
    if made is None:
        made = [adapter.make_batch([graphs[i] for i in b], None) for b in batches(len(graphs), batch_size)]
    return np.concatenate([adapter.predict(b) for b in made])
