"""Task registry: ``tasks.get(name)`` returns a task with matbench's interface, ``tasks.list()`` the names.

Every task (matbench's own, the real tensor data sets, the embedded generated ones) offers:

- ``task.spec`` (a ``TaskSpec``), ``task.folds``, ``task.load()``
- ``task.get_train_and_val_data(fold, as_type="tuple") -> (inputs, outputs)``: pandas Series indexed by id
  (inputs: pymatgen ``Structure``; outputs: floats, or numpy arrays of shape ``spec.target.shape``)
- ``task.get_test_data(fold, include_target=False)``
- ``task.record(fold, predictions)``, ``task.scores``, ``task.results``, ``task.is_recorded``
- ``task.to_file(path)``: matbench's ``results.json.gz`` layout for matbench tasks
"""
from __future__ import annotations

import importlib
from typing import Any, Callable

from .spec import TargetSpec, TaskSpec

_REGISTRY: dict[str, Callable[..., Any]] = {}
_SPECS: dict[str, TaskSpec] = {}
_PROVIDERS = ("tasks.embedded", "tasks.matbench", "tasks.datasets")


def register(spec: TaskSpec, factory: Callable[..., Any]) -> None:
    """Register a task: ``factory(**kwargs)`` builds it (lazily loading its data)."""
    if spec.name in _SPECS and _SPECS[spec.name] != spec:
        raise ValueError(f"task {spec.name!r} registered twice with different specs")
    _SPECS[spec.name] = spec
    _REGISTRY[spec.name] = factory


def _load_providers() -> None:
    for mod in _PROVIDERS:
        try:
            importlib.import_module(mod)
        except ModuleNotFoundError as exc:
            if exc.name != mod:
                raise


def list() -> list[str]:  # noqa: A001 - mirrors lm-eval / matbench vocabulary
    _load_providers()
    return sorted(_SPECS)


def spec(name: str) -> TaskSpec:
    _load_providers()
    try:
        return _SPECS[name]
    except KeyError:
        raise KeyError(f"unknown task {name!r}; available: {sorted(_SPECS)}") from None


def get(name: str, **kwargs: Any):
    """Build task ``name``; kwargs go to its factory (e.g. ``data_dir=...``, ``n_crystals=...``)."""
    spec(name)
    return _REGISTRY[name](**kwargs)


__all__ = ["TargetSpec", "TaskSpec", "get", "list", "register", "spec"]
