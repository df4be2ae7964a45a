"""Trained weights as a model: ``load_trained(path)`` -> ``TrainedModel``, which predicts in task units.

Everything that changes a prediction comes from one place and is checked against the others:

- the featurisation is the model config's own ``graph_spec()``; the sidecar's ``featurization`` copy
  must agree with it (a sidecar edited to another radius or neighbour count is refused, not obeyed);
- the model config must already be fitted to the recorded target (``config.with_target(target)`` gives
  it back unchanged), and the normalisation must be of the target's kind and shape, finite, with a
  positive scale;
- the weights file itself is verified by ``zoo.core.weights.load`` (sha256, size, the sidecar's seal).

``predict`` takes one structure (a pymatgen ``Structure``, ASE ``Atoms``, dict, CIF path or CIF text)
or a list of them. It refuses a bad one naming it (a path is named by its path); with
``on_error="skip"`` it keeps the good ones and reports the bad ones, as ``zoo.graphs.build_graphs`` does.
"""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from zoo.core import weights
from zoo.core.weights import WeightsError
from zoo.graphs import GraphSpec, build_graphs
from zoo.models import config_from_dict
from zoo.tasks.spec import TargetSpec

from .adapter import get_adapter, predict_graphs
from .config import TrainConfig, TrainingError
from .targets import TargetNormalizer, resolve_loss

REQUIRED = ("model", "config", "featurization", "target", "normalizer")


def _check_meta(meta: dict[str, Any], source: str):
    """(target, model config, graph spec, normaliser) of a sidecar, checked against each other."""
    missing = [k for k in REQUIRED if k not in meta]
    if missing:
        raise TrainingError(f"{source}: weights metadata lacks {missing}; these weights were not written by zoo.training")
    try:
        target = TargetSpec(**meta["target"])
        config = config_from_dict(meta["model"], meta["config"])
    except (TypeError, ValueError, KeyError) as exc:
        raise WeightsError(f"{source}: the model config or target in the sidecar is not valid ({exc})") from None
    spec = config.graph_spec()
    try:
        recorded = GraphSpec(**meta["featurization"])
    except (TypeError, ValueError) as exc:
        raise WeightsError(f"{source}: featurization {meta['featurization']} is not a graph spec ({exc})") from None
    if recorded != spec:
        a, b = dataclasses.asdict(recorded), dataclasses.asdict(spec)
        diff = {k: (a.get(k), b.get(k)) for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)}
        raise WeightsError(f"{source}: the sidecar's featurization disagrees with its model config "
                           f"({', '.join(f'{k}: {x!r} vs {y!r}' for k, (x, y) in diff.items())}); the model was trained on "
                           "the config's graphs. The sidecar was edited: re-create the weights")
    try:
        fitted = config.with_target(target)
    except (TypeError, ValueError) as exc:
        raise WeightsError(f"{source}: the model config cannot predict the recorded target ({exc})") from None
    if fitted != config:
        raise WeightsError(f"{source}: the model config's output head does not match the recorded target "
                           f"{target.name} ({target.kind}); the sidecar was edited: re-create the weights")
    try:
        normalizer = TargetNormalizer.from_dict(meta["normalizer"])
    except (TypeError, ValueError, KeyError) as exc:
        raise WeightsError(f"{source}: normalizer {meta['normalizer']} is not valid ({exc})") from None
    mean_shape = np.shape(normalizer.mean)
    if (normalizer.kind != target.kind or mean_shape not in ((), tuple(target.shape))
            or not np.all(np.isfinite(normalizer.mean)) or not (np.isfinite(normalizer.scale) and normalizer.scale > 0)):
        raise WeightsError(f"{source}: normalizer {meta['normalizer']} does not fit a {target.kind} target of shape "
                           f"{tuple(target.shape)} (a finite mean and a positive scale); re-create the weights")
    return target, config, spec, normalizer


def _is_one(obj: Any) -> bool:
    """One structure (rather than a list of them): a Structure/Atoms/dict, or a path or CIF text."""
    return isinstance(obj, (str, os.PathLike, dict)) or hasattr(obj, "lattice") or hasattr(obj, "get_cell")


class TrainedModel:
    """Best weights + metadata: builds the model alone and predicts in task units."""

    def __init__(self, state: dict[str, np.ndarray], meta: dict[str, Any], backend: str = "torch", dtype: str | None = None,
                 batch_size: int = 64, source: str = "weights"):
        self.meta = meta
        self.target, self.model_config, self.graph_spec, self.normalizer = _check_meta(meta, source)
        self.batch_size = batch_size
        cfg = TrainConfig(model=meta["model"], backend=backend, dtype=dtype or meta.get("dtype", "float32"), progress=False,
                          batch_size=batch_size)
        self.adapter = get_adapter(backend)(meta["model"], self.model_config, cfg, resolve_loss(cfg, self.target))
        self._initialised = False
        self._state = state

    def _ensure_init(self, graphs) -> None:
        # The jax model's parameter shapes come from an example batch, so building waits for the first graphs.
        if not self._initialised:
            self.adapter.init(list(graphs[: self.batch_size]))
            self.adapter.load_state_dict(self._state)
            self._initialised = True

    def predict_graphs(self, graphs: Sequence) -> np.ndarray:
        if len(graphs) == 0:
            return np.zeros((0,) + self.target.shape)
        self._ensure_init(graphs)
        return self.normalizer.inverse(predict_graphs(self.adapter, graphs, self.batch_size))

    def predict(self, structures, ids: Sequence[str] | None = None, cache: bool = True, progress: bool = False,
                on_error: str = "raise"):
        """Predictions in task units for one structure (-> one prediction, of the target's shape) or a list
        (-> an array (n, *shape)).

        ``on_error="raise"`` (default): a structure whose graph cannot be built raises ``StructureError``
        naming it (its id, its path, or its position). ``on_error="skip"``: returns ``(predictions,
        failures)``, the predictions of the failed ones NaN, ``failures`` ``{id: message}``.
        """
        if on_error not in ("raise", "skip"):
            raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
        one = _is_one(structures)
        items = [structures] if one else list(structures)
        if ids is None:  # a path names itself; anything else its position
            ids = [str(x) if isinstance(x, (str, os.PathLike)) and Path(str(x)).is_file() else str(k)
                   for k, x in enumerate(items)]
        elif isinstance(ids, (str, os.PathLike)):
            ids = [str(ids)]
        graphs, failures = build_graphs(items, self.graph_spec, ids=ids, cache=cache, progress=progress, on_error=on_error)
        keep = [k for k, g in enumerate(graphs) if g is not None]
        pred = np.full((len(items),) + tuple(self.target.shape), np.nan)
        if keep:
            pred[keep] = self.predict_graphs([graphs[k] for k in keep])
        out = pred[0] if one else pred
        return out if on_error == "raise" else (out, dict(failures))


def resolve_weights(path: str | os.PathLike) -> Path:
    """A run folder -> its ``best`` stem; a ``.safetensors``/``.json``/stem path -> that stem."""
    path = Path(path)
    if path.is_dir():
        if not (path / "best.json").exists():
            raise FileNotFoundError(f"{path} has no best.json/best.safetensors: not a finished run folder (resume it with `zoo train --resume {path}`)")
        return path / "best"
    return path.with_suffix("") if path.suffix in (".safetensors", ".json") else path


def load_trained(path: str | os.PathLike, backend: str = "torch", dtype: str | None = None, batch_size: int = 64) -> TrainedModel:
    """The model of a run folder's best weights, or of a weights file, checked (module docstring)."""
    stem = resolve_weights(path)
    state, meta = weights.load(stem)
    return TrainedModel(state, meta, backend=backend, dtype=dtype, batch_size=batch_size, source=str(stem.with_suffix(".json")))
