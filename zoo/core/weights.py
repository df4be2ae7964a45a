"""The one weight format: a torch-named ``state_dict`` in safetensors + a JSON sidecar.

``<stem>.safetensors`` holds the tensors (float32/float64 numpy arrays, names as torch's
``state_dict``); ``<stem>.json`` holds ``{"format": 2, "model": name, "config": {...},
"featurization": {...}, "target": {...}, ..., "sha256": <of the safetensors file>, "file_size": bytes,
"meta_sha256": <of the sidecar's other fields>}``. Nothing here unpickles: safetensors stores raw arrays
and JSON is JSON.

Nothing in the pair is trusted. Loading refuses (``WeightsError``, naming the file and the fix):

- a sidecar without ``sha256`` (unless the caller passes ``expected_sha256``), a safetensors file whose
  size or sha256 differs from the recorded one (truncated, corrupted or replaced);
- a sidecar whose fields were edited after saving: ``meta_sha256`` seals every other field (model
  config, featurisation, target, normalisation ...), so a changed radius or normalisation cannot give
  a silently different model. Format-1 sidecars (before the seal) load with a warning; the fields that
  can be derived from the model config are checked by ``zoo.training.load_trained`` in any case;
- tensor names or shapes that do not fit the model the config builds (``check_state_matches``).
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from zoo.core.io import atomic_path, json_default, sha256_file, write_json

log = logging.getLogger("zoo.core.weights")

WEIGHTS_FORMAT = 2  # 2: sidecars sealed by meta_sha256; 1: unsealed (read with a warning)
_SEAL_FIELDS = ("sha256", "file_size", "meta_sha256")  # what the seal does not cover (it covers the rest)


class WeightsError(ValueError):
    """Weights that cannot be used as they are; the message names the file and the fix."""


def meta_digest(meta: dict[str, Any]) -> str:
    """sha256 of a sidecar's fields other than ``_SEAL_FIELDS``, as canonical JSON (sorted keys), so the
    same content gives the same digest whichever process wrote or read it."""
    body = {k: v for k, v in meta.items() if k not in _SEAL_FIELDS}
    text = json.dumps(json.loads(json.dumps(body, default=json_default)), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


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
    meta["meta_sha256"] = meta_digest(meta)
    write_json(stem.with_suffix(".json"), meta)
    return st_path


def load(stem: str | os.PathLike, expected_sha256: str | None = None) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Read weights and metadata, after checking them (see the module docstring); ``expected_sha256``
    is a hash the caller knows (a registry entry), checked on top of the recorded one."""
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    stem = Path(stem)
    if stem.suffix in (".safetensors", ".json"):
        stem = stem.with_suffix("")
    st_path, js_path = stem.with_suffix(".safetensors"), stem.with_suffix(".json")
    for p in (st_path, js_path):
        if not p.exists():
            raise WeightsError(f"weights file {p} not found (a checkpoint is a .safetensors + .json pair)")
    try:
        meta = json.loads(js_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise WeightsError(f"{js_path}: not valid JSON ({exc}); the sidecar is truncated or corrupted. Re-create the "
                           "weights (or resume the run from an earlier checkpoint)") from None
    if not isinstance(meta, dict):
        raise WeightsError(f"{js_path}: expected a JSON object, got {type(meta).__name__}")
    version = meta.get("format")
    if not isinstance(version, int) or isinstance(version, bool) or not 1 <= version <= WEIGHTS_FORMAT:
        raise WeightsError(f"{js_path}: weights format {version!r} is not one this crystal-zoo reads (1..{WEIGHTS_FORMAT}); "
                           "upgrade crystal-zoo or re-create the weights")
    recorded = meta.get("sha256")
    if recorded is None and expected_sha256 is None:
        raise WeightsError(f"{js_path} records no sha256 of {st_path.name}, so the weights cannot be verified; "
                           "re-create the pair with zoo.core.weights.save (or pass expected_sha256 from a trusted source)")
    size = meta.get("file_size")
    if size is not None and size != st_path.stat().st_size:
        raise WeightsError(f"{st_path}: {st_path.stat().st_size} bytes, but {js_path.name} records {size}; the file is "
                           "truncated or was replaced. Delete the pair and re-create or download it")
    digest = sha256_file(st_path)
    for want in (recorded, expected_sha256):
        if want is not None and want != digest:
            raise WeightsError(
                f"{st_path}: sha256 {digest} does not match the expected {want}; the file is corrupted or was "
                "tampered with. Delete it and download or re-create it."
            )
    if version >= 2:
        if meta.get("meta_sha256") != meta_digest(meta):
            raise WeightsError(f"{js_path}: its fields were changed after the weights were saved (meta_sha256 "
                               f"{'missing' if 'meta_sha256' not in meta else 'does not match'}); a sidecar is not edited "
                               "by hand: re-create the weights, or save a new pair with zoo.core.weights.save")
    else:
        log.warning("%s is a format-1 sidecar (not sealed): edits to its fields cannot be detected; re-save it with "
                    "zoo.core.weights.save to seal it", js_path)
    try:
        return load_file(str(st_path)), meta
    except SafetensorError as exc:
        raise WeightsError(f"{st_path}: not a readable safetensors file ({exc}); re-create it") from None


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
