"""``load(name, backend)``: a registry entry as a ready model bound to its featurisation.

The weights pair is fetched and verified (``fetch``), read by ``zoo.core.weights.load`` with the entry's
sha256 on top of the sidecar's own, and then the sidecar must agree with the entry on everything that
changes a prediction: the family, its config, the featurisation, the target and the normalisation.
``zoo.training.trained.TrainedModel`` then checks the sidecar against itself (its featurisation against
the config's ``graph_spec()``, the head against the target) and builds the model in either backend.
"""
from __future__ import annotations

from typing import Any

from zoo.core import weights
from zoo.core.weights import WeightsError
from zoo.training.trained import TrainedModel

from .fetch import PretrainedError, fetch
from .registry import Entry, get_entry

# sidecar field -> entry field it must equal
_BOUND = (("config", ("config",)), ("featurization", ("featurization",)), ("normalizer", ("normalizer",)),
          ("target", ("task", "target")))


class PretrainedModel(TrainedModel):
    """A ``TrainedModel`` from the registry: ``predict`` takes pymatgen Structures, ASE Atoms or CIF paths
    and returns task units (tensors: Cartesian arrays in the input's frame); ``entry`` is its record."""

    def __init__(self, entry: Entry, state, meta, backend: str, dtype: str | None, batch_size: int, source: str):
        super().__init__(state, meta, backend=backend, dtype=dtype, batch_size=batch_size, source=source)
        self.entry = entry
        self.name = entry.name
        self.backend = backend

    def __repr__(self) -> str:
        return f"PretrainedModel({self.name!r}, backend={self.backend!r}, task={self.entry['task']['name']!r})"


def _differences(a: Any, b: Any, prefix: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b)):
            out += _differences(a.get(k), b.get(k), f"{prefix}{k}.")
        return out
    return [] if a == b else [f"{prefix.rstrip('.')}: {b!r} in the weights, {a!r} in the registry"]


def check_bound(entry: Entry, meta: dict[str, Any], source: str) -> None:
    """Refuse weights whose sidecar does not describe the entry's model (another family, other settings)."""
    if meta.get("model") != entry.family:
        raise PretrainedError(f"{source}: these are weights of family {meta.get('model')!r}, but the registry entry "
                              f"{entry.name} is a {entry.family!r} model; they cannot be loaded into it. The registry or "
                              "the weights file was swapped: restore it, or load the right entry")
    for field, path in _BOUND:
        want = entry.data
        for key in path:
            want = want[key]
        diff = _differences(want, meta.get(field))
        if diff:
            raise PretrainedError(f"{source}: the weights were trained with other {field} settings than registry entry "
                                  f"{entry.name} records ({'; '.join(diff[:6])}); a model with settings that differ from "
                                  "its training ones would predict wrongly. Restore the registry entry or the weights")


def load(name: str, backend: str = "torch", dtype: str | None = None, batch_size: int = 64, retries: int = 2) -> PretrainedModel:
    """The pretrained model ``name`` (``family.tag``, or a family for its default) in ``backend``.

    ``dtype`` defaults to the one it was trained in; ``"float64"`` runs it in double precision (the
    float32 weights widened). Raises ``KeyError`` (unknown name, with a did-you-mean), ``PretrainedError``
    (files that cannot be fetched, or weights that do not fit the entry) or ``WeightsError``.
    """
    entry = get_entry(name)
    stem = fetch(entry, retries=retries)
    source = str(stem.with_suffix(".json"))
    try:
        state, meta = weights.load(stem, expected_sha256=entry.weights.sha256)
    except WeightsError as exc:
        raise PretrainedError(f"{entry.name}: {exc}") from None
    check_bound(entry, meta, source)
    return PretrainedModel(entry, state, meta, backend=backend, dtype=dtype, batch_size=batch_size, source=source)


def describe(entry: Entry) -> dict[str, Any]:
    """A short, JSON-able summary of an entry (for ``zoo list --pretrained``)."""
    task, metrics = entry["task"], entry["metrics"]
    return {"name": entry.name, "default": entry.default, "task": task["name"], "task_version": task["version"],
            "target": task["target"]["name"], "unit": task["target"].get("unit", ""), "split": metrics["split"],
            "metrics": metrics["values"], "n_params": entry["n_params"], "size": entry.weights.size,
            "description": entry["description"]}


__all__ = ["PretrainedModel", "check_bound", "describe", "load"]
