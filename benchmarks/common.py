"""Plumbing shared by the benchmark scripts: the jdft2d data they time, their command line, the epoch plan,
the timing of epochs, worker processes, the printed table and the machine record.

Not an asv module (no ``time_*`` / ``track_*`` names): asv imports it but finds nothing to run.
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
from tqdm import tqdm

# Spinning OpenMP threads make 2-thread torch up to 30x slower when anything else holds a core; set
# before torch is imported (the scripts import this module first).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from zoo.core import provenance  # noqa: E402 - after the thread policy above
from zoo.graphs import ARRAY_FIELDS, BucketPolicy, CrystalGraph, build_graphs, collate  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "results" / "benchmarks"
# Read-only local copy of matbench_jdft2d (see ../shared/data/matbench_jdft2d/PROVENANCE.md).
JDFT2D = ROOT.parent / "shared" / "data" / "matbench_jdft2d" / "matbench_jdft2d.json.gz"


# --------------------------------------------------------------------------------------------- data
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


def featurise(structures, ids, spec):
    """(graphs that built, their row numbers, failures, seconds): ``build_graphs`` without cache, timed."""
    t0 = time.perf_counter()
    graphs, failures = build_graphs(structures, spec, ids=ids, cache=False, progress=True, on_error="skip")
    seconds = time.perf_counter() - t0
    keep = [k for k, g in enumerate(graphs) if g is not None]
    return [graphs[k] for k in keep], keep, failures, seconds


def standardised(y: np.ndarray) -> np.ndarray:
    """Zero mean, unit variance, float32: the loss scale does not matter for a throughput figure."""
    return ((y - y.mean()) / y.std()).astype(np.float32)


def save_graphs(path: Path, graphs, y: np.ndarray) -> None:
    """All graphs in one npz (concatenated arrays + per-graph counts), for worker processes; no pickles."""
    arrays = {k: np.concatenate([getattr(g, k) for g in graphs]) for k in ARRAY_FIELDS if k != "lattice"}
    arrays["lattice"] = np.stack([g.lattice for g in graphs])
    arrays["n_nodes"] = np.array([g.n_nodes for g in graphs])
    arrays["n_edges"] = np.array([g.n_edges for g in graphs])
    arrays["y"] = y
    np.savez(path, **arrays)


def load_graphs(path: Path) -> tuple[list, np.ndarray]:
    """The graphs and targets written by ``save_graphs``."""
    z = np.load(path, allow_pickle=False)
    no = np.concatenate([[0], np.cumsum(z["n_nodes"])])
    eo = np.concatenate([[0], np.cumsum(z["n_edges"])])
    graphs = []
    for k in range(len(z["n_nodes"])):
        n, e = slice(no[k], no[k + 1]), slice(eo[k], eo[k + 1])
        graphs.append(CrystalGraph(
            numbers=z["numbers"][n], positions=z["positions"][n], lattice=z["lattice"][k], senders=z["senders"][e],
            receivers=z["receivers"][e], shifts=z["shifts"][e], edge_vectors=z["edge_vectors"][e],
            distances=z["distances"][e]))
    return graphs, z["y"].astype(np.float32)


# --------------------------------------------------------------------------------------------- batching
def epoch_plan(n: int, batch_size: int, epochs: int, seed: int = 0) -> list[list[np.ndarray]]:
    """The index batches of every epoch (a fresh shuffle each epoch), fixed before any model runs, so that
    every model of a benchmark sees the same batches in the same order."""
    rng = np.random.default_rng(seed)
    plan = []
    for _ in range(epochs):
        order = rng.permutation(n)
        plan.append([order[k : k + batch_size] for k in range(0, n, batch_size)])
    return plan


def padded_sizes(graphs, y, plan, batch_size: int) -> list[list[dict[str, int]]]:
    """The padded sizes a compiled backend gives each planned batch: ``zoo.graphs.BucketPolicy`` (the
    trainer's policy), run once over the whole plan in order. Knowing them up front lets a jax benchmark
    compile every shape before it starts the clock."""
    policy = BucketPolicy(n_graphs=batch_size + 1)  # the last graph slot is always padding
    return [[policy.sizes(collate([graphs[i] for i in idx], y=y[idx])) for idx in batches] for batches in plan]


def shape_key(sizes: dict[str, int]) -> tuple:
    return tuple(sorted(sizes.items()))


# --------------------------------------------------------------------------------------------- timing
def epoch_timings(name: str, epoch: Callable[[int, list], float], plan: list,
                  compilations: Callable[[], int] | None = None) -> dict[str, Any]:
    """Time ``epoch(k, batches)`` over the plan; steady state = every epoch after the first.

    ``compilations()`` (jax) counts traces so far: epochs that still compiled a new shape are left out of
    the steady state when at least one later epoch did not compile.
    """
    times, losses, compiled = [], [], []
    for k, batches in enumerate(tqdm(plan, desc=f"{name} epochs")):
        before = compilations() if compilations else 0
        t0 = time.perf_counter()
        losses.append(epoch(k, batches))
        times.append(time.perf_counter() - t0)
        compiled.append((compilations() if compilations else 0) - before)
    steady = [t for t, c in zip(times[1:], compiled[1:]) if c == 0] or times[1:] or times
    out = {"epoch_s": times, "median_steady_epoch_s": statistics.median(steady), "n_steady_epochs": len(steady),
           "final_loss": losses[-1]}
    if compilations:
        out["compilations"] = sum(compiled)
        out["compilations_per_epoch"] = compiled
    return out


def torch_device(name: str):
    """"auto": CUDA when torch sees it, else the CPU."""
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


# --------------------------------------------------------------------------------------------- command line
def parser(doc: str, *, epochs: int, batch_size: int, models: Sequence[str], lr: float, out: Path,
           limit: bool = True) -> argparse.ArgumentParser:
    """The options every training benchmark shares; the script's docstring is its help."""
    p = argparse.ArgumentParser(description=doc.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=int, default=epochs, help="epochs per model; the first is excluded from the median")
    p.add_argument("--batch-size", type=int, default=batch_size)
    if limit:
        p.add_argument("--limit", type=int, default=None, help="use only the first N structures (smoke test)")
    p.add_argument("--models", default=",".join(models), help=f"comma-separated subset of {','.join(models)}")
    p.add_argument("--lr", type=float, default=lr)
    p.add_argument("--out", type=Path, default=out)
    return p


def worker_options(p: argparse.ArgumentParser, models: Sequence[str]) -> None:
    """The hidden options a script passes to itself when it runs one model in a worker process."""
    p.add_argument("--worker", choices=models, help=argparse.SUPPRESS)
    p.add_argument("--graphs", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--config-json", help=argparse.SUPPRESS)


def model_list(p: argparse.ArgumentParser, text: str, known: Sequence[str]) -> list[str]:
    models = [m.strip() for m in text.split(",") if m.strip()]
    unknown = sorted(set(models) - set(known))
    if unknown:
        p.error(f"unknown models {unknown}; choose from {list(known)}")
    return models


def data_missing() -> bool:
    """True (and says so) when the jdft2d file is absent: the scripts then skip cleanly (exit 0)."""
    if JDFT2D.exists():
        return False
    print(f"skipping: {JDFT2D} not found (the benchmark reads matbench_jdft2d from ../shared/data)")
    return True


def run_worker(script: str, args: Sequence[str], result: Path) -> dict[str, Any]:
    """Run ``script --worker ...`` in a fresh process (its peak memory and thread pools are its own) and read
    the JSON it wrote to ``result``; on failure, ``{"error", "stderr_tail"}``."""
    proc = subprocess.run([sys.executable, script, *args, "--result", str(result)], stderr=subprocess.PIPE, text=True)
    if proc.returncode != 0 or not result.exists():
        print(f"   failed (exit {proc.returncode}):\n{proc.stderr[-2000:]}", flush=True)
        return {"error": f"exit code {proc.returncode}", "stderr_tail": proc.stderr[-4000:]}
    return json.loads(result.read_text())


def print_table(title: str, columns: Sequence[tuple[str, str, int, str]], rows: dict[str, dict[str, Any]]) -> None:
    """One row per model: ``columns`` = (header, result key, width, format spec); a missing value prints
    blank, a failed model (``"error"`` in its result) prints the error."""
    print(f"\n{title}")
    print(f"{'model':<9}" + "".join(f"{header:>{width}}" for header, _, width, _ in columns))
    for name, r in rows.items():
        if "error" in r:
            print(f"{name:<9}  failed: {r['error']}")
            continue
        cells = []
        for _, key, width, spec in columns:
            v = r.get(key)
            cells.append(f"{'' if v is None else format(v, spec):>{width}}")
        print(f"{name:<9}" + "".join(cells))


# --------------------------------------------------------------------------------------------- provenance
def report_header(benchmark: str, args: argparse.Namespace, n_structures: int, failures: dict,
                  featurise_s: float) -> dict[str, Any]:
    """The fields every throughput record starts with: what was timed, on which data, when."""
    return {
        "benchmark": benchmark,
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "dataset": "matbench_jdft2d",
        "n_structures": n_structures,
        "n_failed": len(failures),
        "failures": failures,
        "batch_size": args.batch_size,
        "epochs": args.epochs,
        "featurise_s": featurise_s,
    }


def machine_info(device: str = "cpu") -> dict:
    """Where a figure was measured (``zoo.core.provenance.environment``: versions, commit, CPU and load),
    plus torch's thread count and GPU when torch is installed."""
    info = provenance.environment(device=device)
    try:
        import torch
    except ImportError:
        return info
    info["torch_threads"] = torch.get_num_threads()
    if torch.cuda.is_available():
        info["cuda_device"] = torch.cuda.get_device_name(0)
    return info
