"""Model registry: one config dataclass per model family, one module per backend.

Each family lives in ``zoo/models/<family>/`` with ``config.py`` (a dataclass, backend-free),
``torch.py`` and ``jax.py`` (thin adapters that mirror each other), and registers itself here.
Backends are imported only when a model of that backend is built.

Model call contract (both backends), on a batch from ``zoo.graphs.collate`` / ``pad_batch``:
- torch: ``model(batch) -> Tensor (G, *out_shape)`` where ``batch`` holds torch tensors
  (``zoo.backend.torch.to_torch``); ``model.train()`` / ``model.eval()`` as usual.
- jax (Flax linen): ``module.apply(variables, batch, train=bool, mutable=[...])`` with
  ``variables = {"params": ..., "batch_stats": ...}``; same output. Parameter paths mirror the torch
  ``state_dict`` names (``conv_layers.0.fc_full.weight`` ↔ ``params/conv_layers_0/fc_full/kernel``)
  and ``zoo.models.<family>.jax`` provides ``from_torch_state_dict`` / ``to_torch_state_dict``.
- The weight format is the torch ``state_dict`` in safetensors + the config as JSON
  (``zoo.weights``), whichever backend trained it.
"""
from __future__ import annotations

import dataclasses
import importlib
from dataclasses import dataclass
from typing import Any, Callable

from zoo import BACKENDS


@dataclass(frozen=True)
class ModelEntry:
    name: str
    config_cls: type
    modules: dict[str, str]  # backend -> "module.path:ClassName"
    description: str = ""
    # Output kinds the family can produce: "scalar", "class", "tensor".
    outputs: tuple[str, ...] = ("scalar",)


_REGISTRY: dict[str, ModelEntry] = {}


def register(entry: ModelEntry) -> ModelEntry:
    if entry.name in _REGISTRY and _REGISTRY[entry.name] != entry:
        raise ValueError(f"model {entry.name!r} registered twice")
    _REGISTRY[entry.name] = entry
    return entry


def _load_families() -> None:
    # Config modules are backend-free; importing them registers the families.
    for fam in ("cgcnn", "tfn"):
        try:
            importlib.import_module(f"zoo.models.{fam}.config")
        except ModuleNotFoundError as exc:  # a family not written yet
            if exc.name != f"zoo.models.{fam}.config":
                raise


def list_models() -> list[str]:
    _load_families()
    return sorted(_REGISTRY)


def get_entry(name: str) -> ModelEntry:
    _load_families()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown model {name!r}; available: {sorted(_REGISTRY)}") from None


def model_class(name: str, backend: str) -> Callable[..., Any]:
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose one of {BACKENDS}")
    entry = get_entry(name)
    if backend not in entry.modules:
        raise NotImplementedError(f"model {name!r} has no {backend} implementation")
    mod, cls = entry.modules[backend].split(":")
    try:
        module = importlib.import_module(mod)
    except ImportError as exc:
        raise ImportError(f"model {name!r} needs the {backend} backend: pip install 'crystal-zoo[{backend}]' ({exc})") from exc
    return getattr(module, cls)


def make_config(name: str, **overrides: Any):
    entry = get_entry(name)
    return entry.config_cls(**overrides)


def config_to_dict(config: Any) -> dict[str, Any]:
    d = dataclasses.asdict(config)
    return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}


def config_from_dict(name: str, d: dict[str, Any]):
    entry = get_entry(name)
    fields = {f.name: f for f in dataclasses.fields(entry.config_cls)}
    unknown = set(d) - set(fields)
    if unknown:
        raise ValueError(f"config for {name!r} has unknown fields {sorted(unknown)}: written by another version?")
    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}
    return entry.config_cls(**kwargs)


def build(name: str, backend: str, config: Any | None = None, **overrides: Any):
    """Build an (uninitialised for jax) model of family ``name`` in ``backend``."""
    config = config if config is not None else make_config(name, **overrides)
    return model_class(name, backend)(config)
