"""Run folders: one never-overwritten folder per training run, with everything needed to audit or resume it.

Layout of ``runs/<UTC time>_<model>_<backend>_<task>_f<fold>_<random>/``::

    config.json              resolved configuration (training + model + graph spec + target spec)
    env.json                 seeds, package versions, git hash (+ dirty flag), device, command line, machine
                             (``zoo.core.provenance.environment``)
    metrics.jsonl            one JSON line per finished epoch (appended as training goes)
    metrics.json             final summary: best epoch, validation / test / floor metrics, timings
    failures.json            structures whose graph could not be built (id -> message)
    prefit.json              what the family fitted on the training split before the first step (only where
                             it does: ``zoo.models.prefit``, e.g. the TFN's polarisable read-out)
    predictions_val.csv      id, targets and predictions of the best model (tensors: one column per component)
    predictions_test.csv
    best.safetensors/.json   best weights (torch state_dict names) + metadata to rebuild the model alone
    checkpoint/LATEST        name of the newest complete checkpoint folder
    checkpoint/epoch_NNNN/   model.*, best.*, trainer.* of the last finished epoch (``zoo.training.checkpoint``)
    checkpoint_previous/epoch_MMMM/   the checkpoint before it, kept as a fallback
    plots/learning_curve.png, plots/parity_val.png, plots/parity_test.png
    .lock                    held by the process that trains the run (``zoo.core.lock``)

Every file is written atomically (``zoo.core.io``); a checkpoint is a whole folder made complete before the
``LATEST`` pointer names it, so a kill at any moment leaves the previous checkpoint usable. The two newest
checkpoints are kept: when the newest is missing or damaged (a disk error, a hand edit), a resume falls
back to the one before, with a warning, instead of starting again from epoch 0 (``checkpoint.resume``).
One process at a time trains a run folder: ``lock_run`` refuses a second one.
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import re
import secrets
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from zoo.core.io import write_json, write_text
from zoo.core.lock import hold

CHECKPOINT_DIR = "checkpoint"
PREVIOUS_DIR = "checkpoint_previous"
LATEST = "LATEST"


class RunError(RuntimeError):
    """A run folder that cannot be made, is not one, or was edited by hand."""


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._+-]+", "-", str(text)).strip("-") or "x"


def run_name(model: str, backend: str, task: str, fold: int | str, when: _dt.datetime | None = None) -> str:
    when = when or _dt.datetime.now(_dt.timezone.utc)
    stamp = when.strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}_{_slug(model)}_{backend}_{_slug(task)}_f{fold}_{secrets.token_hex(3)}"


def create_run_dir(root: str | os.PathLike, model: str, backend: str, task: str, fold: int | str) -> Path:
    """Make a fresh run folder under ``root``; an existing folder is never reused or overwritten."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    for _ in range(16):
        path = root / run_name(model, backend, task, fold)
        try:
            path.mkdir(parents=False, exist_ok=False)
        except FileExistsError:  # same second and same 24-bit suffix: draw again
            continue
        return path
    raise RunError(f"could not create a new run folder under {root}")


# --------------------------------------------------------------------------------------------------
# checkpoints


def checkpoint_root(run_dir: str | os.PathLike) -> Path:
    return Path(run_dir) / CHECKPOINT_DIR


def new_checkpoint_dir(run_dir: str | os.PathLike, epoch: int) -> Path:
    """A fresh, empty folder to write the checkpoint of ``epoch`` (1-based) into."""
    root = checkpoint_root(run_dir)
    path = root / f"epoch_{epoch:04d}"
    if path.exists():  # left over by a kill before LATEST was updated: it is not referenced, redo it
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


def _epoch_of(path: Path) -> int:
    try:
        return int(path.name.split("_", 1)[1])
    except (IndexError, ValueError):
        return -1


def commit_checkpoint(run_dir: str | os.PathLike, path: Path) -> None:
    """Point ``LATEST`` at the complete checkpoint ``path``, move the one it named before to
    ``checkpoint_previous/`` (the fallback), and delete older ones."""
    root = checkpoint_root(run_dir)
    pointer = root / LATEST
    before = pointer.read_text().strip() if pointer.exists() else None
    write_text(pointer, path.name + "\n")
    previous = Path(run_dir) / PREVIOUS_DIR
    if before and before != path.name and (root / before).is_dir():
        previous.mkdir(exist_ok=True)
        for old in previous.iterdir():
            if old.name != before:
                shutil.rmtree(old, ignore_errors=True)
        if (previous / before).exists():  # pragma: no cover - a kill between the two steps of an earlier commit
            shutil.rmtree(previous / before, ignore_errors=True)
        os.replace(root / before, previous / before)  # one rename: the fallback is never half there
    for old in root.iterdir():
        if old.is_dir() and old.name != path.name and old.name.startswith("epoch_"):
            shutil.rmtree(old, ignore_errors=True)


def latest_checkpoint(run_dir: str | os.PathLike) -> Path | None:
    root = checkpoint_root(run_dir)
    pointer = root / LATEST
    if not pointer.exists():
        return None
    path = root / pointer.read_text().strip()
    if not path.is_dir():
        raise RunError(f"{pointer} names {path.name}, which is missing: the run folder was edited by hand")
    return path


def checkpoint_candidates(run_dir: str | os.PathLike) -> list[Path]:
    """Checkpoint folders a resume may start from, newest first: the one ``LATEST`` names (when it
    exists), then the kept previous one(s)."""
    out = []
    root = checkpoint_root(run_dir)
    pointer = root / LATEST
    if pointer.is_file():
        try:
            name = pointer.read_text().strip()
        except (OSError, UnicodeDecodeError):
            name = ""
        if name and (root / name).is_dir():
            out.append(root / name)
    previous = Path(run_dir) / PREVIOUS_DIR
    if previous.is_dir():
        out += sorted((p for p in previous.iterdir() if p.is_dir() and p.name.startswith("epoch_")), key=_epoch_of,
                      reverse=True)
    return out


def logged_epochs(run_dir: str | os.PathLike) -> int:
    """The last epoch the run's ``metrics.jsonl`` records (its history; 0: none)."""
    from zoo.core.io import read_jsonl

    path = Path(run_dir) / "metrics.jsonl"
    return max((int(r.get("epoch", 0)) for r in read_jsonl(path)), default=0) if path.exists() else 0


def lock_run(run_dir: str | os.PathLike):
    """Hold the run folder's lock (a context manager) or refuse: one process trains a run at a time."""
    return hold(run_dir, f"run folder {run_dir}",
                "it is being trained (or resumed) right now; wait for that process to end, then resume it")


def read_config(run_dir: str | os.PathLike) -> dict[str, Any]:
    path = Path(run_dir) / "config.json"
    if not path.exists():
        raise RunError(f"{run_dir} is not a run folder (no config.json); pass the folder `zoo train` created")
    return json.loads(path.read_text())


# --------------------------------------------------------------------------------------------------
# predictions


def _columns(prefix: str, arr: np.ndarray) -> dict[str, np.ndarray]:
    arr = np.asarray(arr, dtype=np.float64)
    if arr.ndim == 1:
        return {prefix: arr}
    flat = arr.reshape(arr.shape[0], int(np.prod(arr.shape[1:])))  # not -1: an empty (0, 3, 3, 3) set has no size to infer
    idx = np.stack(np.unravel_index(np.arange(flat.shape[1]), arr.shape[1:]), axis=1)
    # Cartesian component names (xx, xy, ...), so a column reads like the tensor index it holds.
    names = ["".join("xyz"[i] for i in ij) for ij in idx]
    return {f"{prefix}_{n}": flat[:, k] for k, n in enumerate(names)}


def write_predictions(path: str | os.PathLike, ids, y_true: np.ndarray | None, y_pred: np.ndarray, extra: dict[str, Any] | None = None) -> None:
    """CSV with one row per structure: id, (y_true...), y_pred... (+ extra columns, e.g. graph_failed)."""
    import pandas as pd

    cols: dict[str, Any] = {"id": list(ids)}
    if y_true is not None:
        cols.update(_columns("y_true", y_true))
    cols.update(_columns("y_pred", y_pred))
    for k, v in (extra or {}).items():
        cols[k] = list(v)
    # %.17g: every float64 reads back bit for bit (results files are made from these columns).
    write_text(path, pd.DataFrame(cols).to_csv(index=False, float_format="%.17g"))


def read_predictions(path: str | os.PathLike, shape: tuple[int, ...] = ()) -> dict[str, Any]:
    """Inverse of ``write_predictions``: ``{"id": [...], "y_true": array|None, "y_pred": array, <extra>: ...}``."""
    import pandas as pd

    df = pd.read_csv(path, dtype={"id": str}, float_precision="round_trip")  # exact float64 back
    out: dict[str, Any] = {"id": df["id"].tolist()}
    for prefix in ("y_true", "y_pred"):
        cols = [c for c in df.columns if c == prefix or c.startswith(prefix + "_")]
        if not cols:
            out[prefix] = None
            continue
        arr = df[cols].to_numpy(dtype=np.float64)
        out[prefix] = arr[:, 0] if shape == () else arr.reshape((len(df),) + tuple(shape))
    for c in df.columns:
        if c != "id" and not c.startswith(("y_true", "y_pred")):
            out[c] = df[c].tolist()
    return out


def write_failures(run_dir: str | os.PathLike, failures: dict[str, str]) -> None:
    write_json(Path(run_dir) / "failures.json", dict(sorted(failures.items())))
