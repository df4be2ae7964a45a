"""Run folders: one never-overwritten folder per training run, with everything needed to audit or resume it.

Layout of ``runs/<UTC time>_<model>_<backend>_<task>_f<fold>_<random>/``::

    config.json              resolved configuration (training + model + graph spec + target spec)
    env.json                 seeds, package versions, git hash (+ dirty flag), device, command line
    metrics.jsonl            one JSON line per finished epoch (appended as training goes)
    metrics.json             final summary: best epoch, validation / test / floor metrics, timings
    failures.json            structures whose graph could not be built (id -> message)
    predictions_val.csv      id, targets and predictions of the best model (tensors: one column per component)
    predictions_test.csv
    best.safetensors/.json   best weights (torch state_dict names) + metadata to rebuild the model alone
    checkpoint/LATEST        name of the newest complete checkpoint folder
    checkpoint/epoch_NNNN/   model.*, best.*, trainer.* of the last finished epoch
    plots/learning_curve.png, plots/parity_val.png, plots/parity_test.png

Every file is written atomically (``zoo.core.io``); a checkpoint is a whole folder made complete before the
``LATEST`` pointer names it, so a kill at any moment leaves the previous checkpoint usable.
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import re
import secrets
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

from zoo.core.io import write_json, write_text

CHECKPOINT_DIR = "checkpoint"
LATEST = "LATEST"
RUN_FILES = ("config.json", "env.json", "metrics.jsonl")

_PACKAGES = (
    "crystal-zoo", "numpy", "scipy", "torch", "e3nn", "torch_geometric", "jax", "jaxlib", "flax", "optax",
    "e3nn-jax", "pymatgen", "spglib", "vesin", "matminer", "matbench", "safetensors", "scikit-learn",
)


class RunError(RuntimeError):
    pass


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


def package_versions() -> dict[str, str | None]:
    from importlib import metadata

    out: dict[str, str | None] = {}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def git_info(path: str | os.PathLike | None = None) -> dict[str, Any]:
    """Commit hash and dirty flag of the checkout holding this package (None outside a git checkout)."""
    path = Path(path) if path is not None else Path(__file__).resolve().parents[2]
    info: dict[str, Any] = {"commit": None, "dirty": None}
    try:
        commit = subprocess.run(["git", "-C", str(path), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
        if commit.returncode != 0:
            return info
        info["commit"] = commit.stdout.strip()
        status = subprocess.run(
            ["git", "-C", str(path), "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True, timeout=10
        )
        info["dirty"] = bool(status.stdout.strip()) if status.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        pass
    return info


def environment(device: str, seeds: dict[str, Any]) -> dict[str, Any]:
    return {
        "created_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "command": sys.argv,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "threads": {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "XLA_FLAGS", "MKL_NUM_THREADS")},
        "device": device,
        "seeds": seeds,
        "packages": package_versions(),
        "git": git_info(),
    }


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


def commit_checkpoint(run_dir: str | os.PathLike, path: Path) -> None:
    """Point ``LATEST`` at the complete checkpoint ``path`` and delete the older ones."""
    root = checkpoint_root(run_dir)
    write_text(root / LATEST, path.name + "\n")
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


def read_config(run_dir: str | os.PathLike) -> dict[str, Any]:
    path = Path(run_dir) / "config.json"
    if not path.exists():
        raise RunError(f"{run_dir} is not a run folder (no config.json); pass the folder `zoo train` created")
    return json.loads(path.read_text())


def is_run_dir(path: str | os.PathLike) -> bool:
    return (Path(path) / "config.json").is_file()


# --------------------------------------------------------------------------------------------------
# predictions


def _columns(prefix: str, arr: np.ndarray) -> dict[str, np.ndarray]:
    arr = np.asarray(arr, dtype=np.float64)
    if arr.ndim == 1:
        return {prefix: arr}
    flat = arr.reshape(arr.shape[0], -1)
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
