"""One weight format for both backends: torch ``state_dict`` names <-> flax variable paths.

The flax module of a family declares its parameters under the torch names, with the torch shapes
(a ``Linear`` weight is ``(out, in)`` in both), so converting weights is renaming and nothing else:

- a dot separates modules: ``readout.radial.w0`` <-> ``("readout", "radial", "w0")``;
- a ``ModuleList`` item ``convs.0`` is flax's name for the i-th submodule of a list, ``convs_0``;
- trainable parameters live in flax's ``"params"`` collection, running statistics (torch buffers that
  are saved, e.g. batch-norm means) in ``"batch_stats"``; the torch name is the same either way.

A torch name whose module part ends in ``_<digits>`` would read back as a list item, so it is refused
(``check_name``). Pure Python + numpy: usable without either framework installed.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Iterator

import numpy as np

from zoo.core.weights import WeightsError, check_state_matches

_LIST_ITEM = re.compile(r"^(.*)_(\d+)$")


def torch_name_to_flax_path(name: str) -> tuple[str, ...]:
    """``"convs.0.fc_full.weight"`` -> ``("convs_0", "fc_full", "weight")``."""
    out: list[str] = []
    for part in name.split("."):
        if part.isdigit() and out:
            out[-1] = f"{out[-1]}_{part}"
        else:
            out.append(part)
    return tuple(out)


def flax_path_to_torch_name(path: tuple[str, ...]) -> str:
    """``("convs_0", "fc_full", "weight")`` -> ``"convs.0.fc_full.weight"`` (the last part is a leaf name)."""
    parts = []
    for i, p in enumerate(path):
        m = _LIST_ITEM.match(p) if i < len(path) - 1 else None
        parts.append(f"{m.group(1)}.{m.group(2)}" if m else p)
    return ".".join(parts)


def check_name(name: str) -> None:
    if flax_path_to_torch_name(torch_name_to_flax_path(name)) != name:
        raise ValueError(f"parameter name {name!r} does not survive the torch <-> flax renaming: a module name ending "
                         "in _<digits> reads as a list item; rename it")


def _leaves(tree: Mapping[str, Any], prefix: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    for k, v in tree.items():
        if isinstance(v, Mapping):
            yield from _leaves(v, prefix + (str(k),))
        else:
            yield prefix + (str(k),), v


def torch_from_flax(variables: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Flax variables ``{"params": ..., "batch_stats": ...}`` -> torch ``state_dict`` (numpy arrays).

    Integer leaves (counters) come out as int64, torch's type for them, so the weight file does not
    depend on the backend that wrote it."""
    out: dict[str, np.ndarray] = {}
    for collection, tree in variables.items():
        for path, leaf in _leaves(tree):
            name = flax_path_to_torch_name(path)
            if name in out:
                raise WeightsError(f"{name!r} appears in two flax collections")
            arr = np.asarray(leaf)
            out[name] = np.array(arr.astype(np.int64) if arr.dtype.kind in "iu" else arr, order="C", copy=True)
    return out


def flax_from_torch(state: Mapping[str, Any], like: Mapping[str, Any], what: str = "weights") -> dict[str, Any]:
    """Torch-named ``state`` (numpy or torch arrays) -> flax variables with the structure, collections
    and dtypes of ``like`` (the flax model's own initialised variables). Names and shapes must match
    exactly; the error lists what is missing, unexpected or of the wrong shape."""
    state = {k: np.asarray(v.detach().cpu().numpy() if hasattr(v, "detach") else v) for k, v in state.items()}
    wanted: dict[str, tuple[str, tuple[str, ...], Any]] = {}
    for collection, tree in like.items():
        for path, leaf in _leaves(tree):
            wanted[flax_path_to_torch_name(path)] = (collection, path, leaf)
    check_state_matches({k: leaf for k, (_, _, leaf) in wanted.items()}, state, what=what)
    out: dict[str, Any] = {c: {} for c in like}
    for name, (collection, path, leaf) in wanted.items():
        node = out[collection]
        for p in path[:-1]:
            node = node.setdefault(p, {})
        node[path[-1]] = state[name].astype(np.asarray(leaf).dtype, copy=False)
    return out
