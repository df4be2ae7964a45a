"""Plumbing shared by the benchmark scripts: the jdft2d data they time, and the machine record.

Not an asv module (no ``time_*`` / ``track_*`` names): asv imports it but finds nothing to run.
"""
from __future__ import annotations

import gzip
import json
import os
import platform
from pathlib import Path

import numpy as np

# Spinning OpenMP threads make 2-thread torch up to 30x slower when anything else holds a core; set
# before torch is imported (the scripts import this module first).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

ROOT = Path(__file__).resolve().parents[1]
# Read-only local copy of matbench_jdft2d (see ../shared/data/matbench_jdft2d/PROVENANCE.md).
JDFT2D = ROOT.parent / "shared" / "data" / "matbench_jdft2d" / "matbench_jdft2d.json.gz"


def load_jdft2d(limit: int | None = None, path: Path = JDFT2D):
    """(structures, exfoliation energies in meV/atom, matbench ids) in matbench's row order."""
    from pymatgen.core import Structure

    if not Path(path).exists():
        raise SystemExit(f"{path} not found: these benchmarks time the 636 matbench_jdft2d structures; "
                         "put matbench_jdft2d.json.gz there (see matbench's data files)")
    with gzip.open(path, "rt") as fh:
        d = json.load(fh)
    rows = d["data"][:limit] if limit else d["data"]
    structures = [Structure.from_dict(r[0]) for r in rows]
    y = np.array([r[1] for r in rows], dtype=np.float64)
    ids = [f"mb-jdft2d-{i + 1:03d}" for i in range(len(rows))]
    return structures, y, ids


def machine_info(device: str = "cpu") -> dict:
    """Where a figure was measured: the run-folder environment record plus CPU model and load."""
    from zoo.training.runs import environment

    info = environment(device=device, seeds={})
    info["processor"] = platform.processor() or platform.machine()
    try:
        info["cpu"] = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                           if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    info["load_average_1_5_15"] = os.getloadavg() if hasattr(os, "getloadavg") else None
    try:
        import torch

        info["torch_threads"] = torch.get_num_threads()
        if torch.cuda.is_available():
            info["cuda_device"] = torch.cuda.get_device_name(0)
    except ImportError:
        pass
    return info
