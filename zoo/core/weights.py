"""The one weight format: a torch-named ``state_dict`` in safetensors + a JSON sidecar.

``<stem>.safetensors`` holds the tensors (float32/float64 numpy arrays, names as torch's
``state_dict``); ``<stem>.json`` holds ``{"format": 1, "model": name, "config": {...},
"featurization": {...}, "target": {...}, "sha256": <of the safetensors file>, ...}``. Nothing here
unpickles: safetensors stores raw arrays and JSON is JSON. Loading checks the sha256 and that the
tensor names and shapes match the model the config builds, so wrong weights fail with a clear error.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from zoo.core.io import atomic_path, sha256_file, write_json

WEIGHTS_FORMAT = 1


class WeightsError(ValueError):
    pass


def save(stem: str | os.PathLike, state: dict[str, np.ndarray], meta: dict[str, Any]) -> Path:
    """Write ``stem.safetensors`` and ``stem.json`` atomically; returns the safetensors path."""
    from safetensors.numpy import save_file

    stem = Path(stem)
    st_path = stem.with_suffix(".safetensors")
    # np.array(order="C") keeps 0-d arrays 0-d (ascontiguousarray makes them (1,)): batch-norm
    # counters must round-trip with their shape.
    arrays = {k: np.array(v, order="C") for k, v in state.items()}
    with atomic_path(st_path) as tmp:
        save_file(arrays, str(tmp), metadata={"format": str(WEIGHTS_FORMAT), "model": str(meta.get("model", ""))})
    meta = dict(meta, format=WEIGHTS_FORMAT, sha256=sha256_file(st_path), file_size=st_path.stat().st_size)
    write_json(stem.with_suffix(".json"), meta)
    return st_path


def load(stem: str | os.PathLike, expected_sha256: str | None = None) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Read weights and metadata; verify the sha256 recorded in the sidecar (and ``expected_sha256``)."""
    from safetensors.numpy import load_file

    stem = Path(stem)
    if stem.suffix in (".safetensors", ".json"):
        stem = stem.with_suffix("")
    st_path, js_path = stem.with_suffix(".safetensors"), stem.with_suffix(".json")
    for p in (st_path, js_path):
        if not p.exists():
            raise WeightsError(f"weights file {p} not found (a checkpoint is a .safetensors + .json pair)")
    meta = json.loads(js_path.read_text())
    digest = sha256_file(st_path)
    for want in (meta.get("sha256"), expected_sha256):
        if want is not None and want != digest:
            raise WeightsError(
                f"{st_path}: sha256 {digest} does not match the expected {want}; the file is corrupted or was "
                "tampered with. Delete it and download or re-create it."
            )
    return load_file(str(st_path)), meta


def check_state_matches(reference: dict[str, Any], state: dict[str, Any], what: str = "weights") -> None:
    """Raise a clear error when names or shapes differ (e.g. weights of another model or width)."""
    missing = sorted(set(reference) - set(state))
    unexpected = sorted(set(state) - set(reference))
    wrong = sorted(k for k in set(reference) & set(state) if tuple(np.shape(reference[k])) != tuple(np.shape(state[k])))
    if missing or unexpected or wrong:
        lines = [f"{what} do not fit this model:"]
        if missing:
            lines.append(f"  missing: {missing[:8]}{' ...' if len(missing) > 8 else ''}")
        if unexpected:
            lines.append(f"  unexpected: {unexpected[:8]}{' ...' if len(unexpected) > 8 else ''}")
        for k in wrong[:8]:
            lines.append(f"  {k}: shape {tuple(np.shape(state[k]))} but the model has {tuple(np.shape(reference[k]))}")
        lines.append("  Build the model from the config stored next to the weights (zoo.core.weights / zoo.load).")
        raise WeightsError("\n".join(lines))
