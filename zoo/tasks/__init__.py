"""Task registry: ``zoo.tasks.get(name)`` returns a task with matbench's interface, ``zoo.tasks.list()`` the names.

Every task (matbench's own, the real tensor data sets, the embedded generated ones) offers:

- ``task.spec`` (a ``TaskSpec``), ``task.folds``, ``task.load()``
- ``task.get_train_and_val_data(fold, as_type="tuple") -> (inputs, outputs)``: pandas Series indexed by id
  (inputs: pymatgen ``Structure``; outputs: floats, or numpy arrays of shape ``spec.target.shape``)
- ``task.get_test_data(fold, include_target=False)``
- ``task.record(fold, predictions)``, ``task.scores``, ``task.results``, ``task.is_recorded``
- ``task.to_file(path)``: matbench's ``results.json.gz`` layout for matbench tasks
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from zoo.core.registry import Registry

from .spec import TargetSpec, TaskSpec


@dataclass(frozen=True)
class _Entry:
    spec: TaskSpec
    factory: Callable[..., Any]


# Importing a provider module registers its tasks.
TASKS: Registry[_Entry] = Registry("task", providers=("zoo.tasks.embedded", "zoo.tasks.matbench", "zoo.tasks.datasets"))


def register(spec: TaskSpec, factory: Callable[..., Any]) -> None:
    """Register a task: ``factory(**kwargs)`` builds it (lazily loading its data)."""
    old = TASKS.registered(spec.name)
    if old is not None and old.spec != spec:
        raise ValueError(f"task {spec.name!r} registered twice with different specs")
    TASKS.add(spec.name, _Entry(spec, factory), replace=True)


def list() -> list[str]:  # noqa: A001 - mirrors lm-eval / matbench vocabulary
    return TASKS.names()


def spec(name: str) -> TaskSpec:
    return TASKS.get(name).spec


def get(name: str, **kwargs: Any):
    """Build task ``name``; kwargs go to its factory (e.g. ``data_dir=...``, ``n_crystals=...``)."""
    return TASKS.get(name).factory(**kwargs)


__all__ = ["TASKS", "TargetSpec", "TaskSpec", "get", "list", "register", "spec"]
