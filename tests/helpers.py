"""Shared test helpers: the repository's paths and a tiny in-memory task that trains in seconds.

The toy task: 40 rock-salt-like two-atom cubic cells (a = 3..5 Å, four cations) whose target is the
volume per atom a^3/2 (Å^3/atom). CGCNN sees a only through the bond lengths, so the target is
learnable but not trivial; ``TINY`` shrinks the model (8 features, 1 convolution).
"""
from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np
import pandas as pd

from zoo.tasks.base import ArrayTask
from zoo.tasks.spec import TargetSpec, TaskSpec

ROOT = Path(__file__).resolve().parents[1]  # the repository
SHARED_DATA = ROOT.parent / "shared" / "data"  # read-only real data sets, absent on a user's machine

TINY = {"atom_fea_len": 8, "n_conv": 1, "h_fea_len": 8}
CATIONS = ("Na", "K", "Mg", "Ca")


def toy_frame(n: int = 40, seed: int = 0, bad: int | None = None) -> pd.DataFrame:
    from pymatgen.core import Lattice, Structure

    rng = np.random.default_rng(seed)
    rows, ids = [], []
    for i in range(n):
        a = float(rng.uniform(3.0, 5.0))
        s = Structure(Lattice.cubic(a), [CATIONS[int(rng.integers(4))], "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
        if bad is not None and i == bad:
            # Two atoms 0.05 Å apart: the graph builder refuses it (overlapping atoms).
            s = Structure(Lattice.cubic(a), ["Na", "Cl"], [[0, 0, 0], [0.05 / a, 0, 0]], validate_proximity=False)
        rows.append({"structure": s, "volume_per_atom": a**3 / 2})
        ids.append(f"toy-{i:03d}")
    return pd.DataFrame(rows, index=ids)


def toy_task(n: int = 40, seed: int = 0, bad: int | None = None, name: str = "toy_volume") -> ArrayTask:
    spec = TaskSpec(name=name, version="test-1", target=TargetSpec("volume_per_atom", kind="scalar", unit="Å^3/atom"), n_folds=5)
    return ArrayTask.from_dataframe(spec, toy_frame(n, seed, bad), seed=0)


@contextlib.contextmanager
def torch_default_dtype(dtype):
    """torch's default dtype set for the block: e3nn builds its Wigner symbols and change-of-basis
    constants in the default dtype, so a float64 model or table must be made under float64."""
    import torch

    old = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(old)
