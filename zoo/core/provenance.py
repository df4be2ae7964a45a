"""Where a number came from: package versions, the git commit, the machine and its load.

One home for the provenance that run folders (``env.json``), benchmark records, floors and result
tables store next to every figure, so that two records of the same thing always have the same fields.
"""
from __future__ import annotations

import datetime as _dt
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

# The distributions whose versions can move a result (crystal-zoo's own version included).
PACKAGES = (
    "crystal-zoo", "numpy", "scipy", "pandas", "torch", "e3nn", "torch_geometric", "jax", "jaxlib", "flax", "optax",
    "e3nn-jax", "pymatgen", "spglib", "spgrep", "vesin", "matminer", "matbench", "safetensors", "scikit-learn",
)
# Environment variables that change speed (thread counts, OpenMP's barrier policy, XLA flags).
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "XLA_FLAGS", "MKL_NUM_THREADS")


def package_versions(names: tuple[str, ...] = PACKAGES) -> dict[str, str | None]:
    """Installed versions of ``names`` (None for a package that is not installed) and Python's."""
    from importlib import metadata

    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def git_info(path: str | os.PathLike | None = None) -> dict[str, Any]:
    """Commit hash and dirty flag of the checkout holding ``path`` (default: this package); None
    outside a git checkout (an installed wheel)."""
    path = Path(path) if path is not None else Path(__file__).resolve().parents[2]
    info: dict[str, Any] = {"commit": None, "dirty": None}
    try:
        commit = subprocess.run(["git", "-C", str(path), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
        if commit.returncode != 0:
            return info
        info["commit"] = commit.stdout.strip()
        status = subprocess.run(["git", "-C", str(path), "status", "--porcelain", "--untracked-files=no"],
                                capture_output=True, text=True, timeout=10)
        info["dirty"] = bool(status.stdout.strip()) if status.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        pass
    return info


def cpu_model() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or None


def machine() -> dict[str, Any]:
    """The machine a figure was measured on and how busy it was: a time is only comparable with
    another from the same machine at a similar load (2-core machines vary by up to 10x)."""
    return {
        "node": platform.node(),
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "load_average_1_5_15": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "threads": {k: os.environ.get(k) for k in THREAD_VARIABLES},
    }


def environment(device: str | None = None, seeds: dict[str, Any] | None = None) -> dict[str, Any]:
    """Everything a result record carries about how it was made (``env.json`` of a run folder)."""
    return {
        "created_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "command": list(sys.argv),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "threads": {k: os.environ.get(k) for k in THREAD_VARIABLES},
        "device": device,
        "seeds": seeds or {},
        "packages": package_versions(),
        "git": git_info(),
        "machine": machine(),
    }
