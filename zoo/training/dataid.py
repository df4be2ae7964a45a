"""What data a run saw, so that its weights are never scored on other data by accident.

A run's data are decided by the task (name and version), the options that built it (``--task-arg``),
the data files (and their sha256), the fold, and the validation split (the task's own, or
``split_seed`` + ``val_fraction``). All of these travel with the run, in ``config.json`` and in the
weights sidecar (``"data"``), together with a *fingerprint* of each part of the fold: the sha256 of its
ids, targets and structures (``zoo.graphs.structure_hash``, the exact lattice, species and
coordinates), in the task's order. The fingerprint is what decides: the same options on another
version of a data file, or other options that happen to give the same data, are recognised for what
they are.

``zoo.training.evaluate`` re-creates the task from the recorded options and refuses to score weights
on a fold whose fingerprint differs (or on another task), unless the caller says so explicitly; a
resumed run refuses data that differ from the ones it started with.
"""
from __future__ import annotations

import hashlib
import json
import os
from typing import Any, Sequence

import numpy as np

from zoo.graphs import structure_hash

RECORD_VERSION = 1


def _structure_digest(s: Any) -> str:
    """The content hash of one structure, whatever form the task gives it in."""
    if hasattr(s, "lattice") and hasattr(s, "frac_coords"):
        return structure_hash(s)
    if isinstance(s, dict):
        return hashlib.sha256(json.dumps(s, sort_keys=True, default=str).encode()).hexdigest()
    if isinstance(s, (str, os.PathLike)) and os.path.isfile(s):
        with open(s, "rb") as fh:
            return hashlib.sha256(fh.read()).hexdigest()
    return hashlib.sha256(repr(s).encode()).hexdigest()


def fingerprint(ids: Sequence[str], y: np.ndarray | None, structures: Sequence) -> dict[str, Any]:
    """``{"n", "sha256"}`` of a part of a fold: its ids, targets (float64 bytes) and structures, in order."""
    h = hashlib.sha256(f"crystal-zoo data v{RECORD_VERSION}\0".encode())
    for k in ids:
        h.update(str(k).encode() + b"\0")
    if y is not None:
        h.update(np.ascontiguousarray(np.asarray(y, dtype=np.float64)).astype("<f8").tobytes())
    for s in structures:
        h.update(_structure_digest(s).encode())
    return {"n": len(ids), "sha256": h.hexdigest()}


def data_files(task) -> dict[str, str]:
    """``{path: sha256}`` of the files the task read its data from, where the task knows them."""
    files = getattr(task, "data_files", None) or {}
    return {str(k): str(v) for k, v in dict(files).items()}


def record(task, config, fold_prints: dict[str, Any], validation: str) -> dict[str, Any]:
    """The ``"data"`` block of ``config.json`` and of the weights sidecar (see the module docstring)."""
    return {
        "record": RECORD_VERSION,
        "task": task.spec.name,
        "version": task.spec.version,
        "task_kwargs": dict(config.task_kwargs),
        "data_dir": config.data_dir,  # where the files were then; a location, not part of the identity
        "files": data_files(task),
        "fold": config.fold,
        "validation": validation,  # "task": the task's own fixed ids; "seeded": split_seed + val_fraction
        "split_seed": config.split_seed,
        "val_fraction": config.val_fraction,
        "fingerprint": fold_prints,
    }


def differences(recorded: dict[str, Any], now: dict[str, Any], parts: Sequence[str]) -> list[str]:
    """What differs between two data records, for the parts of the fold that matter (e.g. ``["test"]``)."""
    out = []
    for key in ("task", "version"):
        if recorded.get(key) != now.get(key):
            out.append(f"{key} {recorded.get(key)!r} then, {now.get(key)!r} now")
    for part in parts:
        a, b = recorded.get("fingerprint", {}).get(part), now.get("fingerprint", {}).get(part)
        if a != b:
            na, nb = (x.get("n") if isinstance(x, dict) else None for x in (a, b))
            out.append(f"{part} data differ ({na} structures then, {nb} now" +
                       (", same count but other ids, targets or structures)" if na == nb else ")"))
    if out and recorded.get("task_kwargs") != now.get("task_kwargs"):
        out.append(f"task options {recorded.get('task_kwargs')} then, {now.get('task_kwargs')} now")
    if out and recorded.get("files") != now.get("files") and (recorded.get("files") or now.get("files")):
        out.append(f"data files {recorded.get('files')} then, {now.get('files')} now")
    return out
