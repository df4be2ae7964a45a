"""``zoo bench``: the main job. Every registered family in every backend, side by side, offline.

    zoo bench [--models cgcnn tfn ...] [--backends torch jax] [--out results/bench] [--epochs N]
              [--task-arg n_crystals=N] [--no-symmetry]

For each family (``zoo.models.list_models``) and backend: the short fixed-seed training of
``measure.short_training`` on the family's embedded task (``zoo.bench.plan``: tensor families on
``embedded_dielectric``, the others on ``embedded_dielectric_iso``; fold 0, seed 0), then the equivariance
error in float64 and float32 (rotation and improper rotation, random weights, 3 fixed crystals); once
per family the torch/JAX parity in both dtypes, from the same predictions. Prints one table and writes
``<out>/bench.json`` (rows + machine, load, commit, versions, and each row's phases: wall and CPU
seconds and XLA compilations, ``zoo.bench.phases``), ``bench.md`` and ``bench.png`` (accuracy against
throughput).

The data set is generated on first use (about a minute, in worker processes) and cached, like the
featurised graphs. A failing family is a row with its error (the others still run) and makes the
command exit with status 1.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from zoo.core import provenance
from zoo.core.backends import backend_available
from zoo.testing import predictor, relative_error

from . import measure, plan, table
from .phases import Phases, watch_jax

RESULTS = Path(__file__).resolve().parents[2] / "results" / "bench"
CHECKS = ("rotation", "improper")
N_CHECK = 3


def _pairs(items: Sequence[str]) -> dict[str, Any]:
    import json

    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise SystemExit(f"zoo bench: error: --task-arg expects KEY=VALUE, got {item!r} (e.g. --task-arg n_crystals=300)")
        k, v = item.split("=", 1)
        try:
            out[k.strip()] = json.loads(v)
        except json.JSONDecodeError:
            out[k.strip()] = v
    return out


def symmetry_figures(model: str, backend: str, config, phases: Phases, outputs: dict) -> dict[str, float | None]:
    """Equivariance error in both dtypes for one family and backend (random weights).

    Both backends use the same weights (the torch initialiser's, seeded), so each backend's first
    prediction in the equivariance check, kept in ``outputs`` ({(model, backend, dtype): outputs}), is
    its side of the parity (``parity_figures``): a JAX model compiles once per dtype for both figures."""
    weights = measure.check_weights(model, config) if backend_available("torch") else None
    out: dict[str, float | None] = {}
    for d in ("float64", "float32"):
        with phases(f"equivariance_f{d[-2:]}"):
            out[f"equivariance_f{d[-2:]}"], outputs[(model, backend, d)] = measure.equivariance_and_output(
                model, backend, d, config, n_crystals=N_CHECK, checks=CHECKS, weights=weights)
    return out


def parity_figures(model: str, config, phases: Phases, outputs: dict, pending: bool) -> dict[str, float]:
    """torch against JAX on the outputs ``symmetry_figures`` kept; a backend not checked yet is run here,
    unless ``pending`` (its row comes later). Empty when a backend is missing."""
    if not (backend_available("torch") and backend_available("jax")):
        return {}
    if pending or not any(key[0] == model for key in outputs):
        return {}
    with phases("parity"):
        weights = measure.check_weights(model, config)
        for b in ("torch", "jax"):
            for d in ("float64", "float32"):
                if (model, b, d) not in outputs:
                    outputs[(model, b, d)] = predictor(model, b, config, weights=weights, dtype=d)(measure.check_crystals(N_CHECK))
        return {f"parity_f{d[-2:]}": relative_error(outputs[(model, "jax", d)], outputs[(model, "torch", d)])
                for d in ("float64", "float32")}


def run_matrix(models=None, backends=("torch", "jax"), epochs: int | None = None, task_kwargs: dict | None = None,
               symmetry: bool = True, out_runs: str = "runs/bench", log=print, on_row=None,
               phases: Phases | None = None) -> list[dict[str, Any]]:
    """One row per (family, backend) of ``plan.matrix`` (see the module docstring); ``on_row(rows)`` is
    called with the rows so far after each one (the table is written as it grows). Each row's
    ``phases`` holds its phases' wall and CPU seconds and compilations (``zoo.bench.phases``);
    ``phases`` (optional) receives the data generation ("data")."""
    from zoo.training.data import build_task

    for b in backends:
        if not backend_available(b):
            log(f"skipping backend {b}: not installed (pip install 'crystal-zoo[{b}]')")
    backends = [b for b in backends if backend_available(b)]
    if "jax" in backends:
        watch_jax()
    phases = phases if phases is not None else Phases()
    cells = plan.matrix(models, backends)
    overrides: dict[str, Any] = {"task_kwargs": dict(task_kwargs or {})}
    if epochs is not None:
        overrides["epochs"] = epochs
    # One task object per task name: its data set is generated once and its graphs built once per spec.
    t0 = time.perf_counter()
    built = {}
    with phases("data"):
        for name in dict.fromkeys(task for _, _, task in cells):
            log(f"data: {name} (generated and labelled on this machine on first use, then cached)", flush=True)
            built[name] = build_task(name, dict(overrides["task_kwargs"]))
            built[name].load()
    log(f"data ready in {time.perf_counter() - t0:.0f} s", flush=True)

    rows: list[dict[str, Any]] = []
    parity: dict[str, dict[str, float]] = {}
    outputs: dict[tuple[str, str, str], Any] = {}  # (model, backend, dtype) -> outputs on the check crystals
    for k, (model, backend, task) in enumerate(cells, 1):
        t1 = time.perf_counter()
        log(f"[{k}/{len(cells)}] {model} ({backend}) on {task}: short training "
            f"({plan.train_config(model, backend, task, **overrides).epochs} epochs) ...", flush=True)
        row_phases = Phases()
        try:
            r = measure.short_training(model, backend, task, seed=0, task_object=built[task], out=out_runs, progress=True,
                                       phases=row_phases, **overrides)
            row = {key: r[key] for key in ("model", "backend", "task", "metric", "value", "floor", "symmetry_violation",
                                          "parameters", "train_structures_per_s", "infer_structures_per_s", "compile_s",
                                          "epochs", "n_train", "run_dir", "recipe")}
            if symmetry:
                config = measure.run_model_config(r["run_dir"], model)
                row.update(symmetry_figures(model, backend, config, row_phases, outputs))
                if model not in parity:
                    later = any(m == model for m, _, _ in cells[k:])
                    figures = parity_figures(model, config, row_phases, outputs, pending=later)
                    if figures:  # one figure per family: its rows measured before this one get it too
                        parity[model] = figures
                        for earlier in rows:
                            if earlier["model"] == model and "error" not in earlier:
                                earlier.update(figures)
                row.update(parity.get(model, {}))
        except Exception as exc:  # noqa: BLE001 - one broken family must not hide the others' rows
            row = {"model": model, "backend": backend, "task": task, "error": f"{type(exc).__name__}: {exc}"}
        row["wall_s"] = time.perf_counter() - t1
        row["phases"] = row_phases.table
        row["measured_utc"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        rows.append(row)
        if on_row is not None:
            on_row(rows)
        log(f"      {table.cell(row, 'metric', 's')} {table.cell(row, 'value', '.4g')} (floor {table.cell(row, 'floor', '.4g')}), "
            f"{table.cell(row, 'train_structures_per_s', '.0f')} structures/s training, {row['wall_s']:.0f} s"
            + (f"; error: {row['error']}" if row.get("error") else ""), flush=True)
    return rows


def merge_rows(path: Path, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows of an earlier ``bench.json`` with those of ``rows`` (same family and backend) replaced or
    added, in the matrix's order; each row keeps its own ``measured_utc``."""
    import json

    return merge_rows_into(json.loads(path.read_text())["rows"] if path.is_file() else [], rows)


def merge_rows_into(old: list[dict[str, Any]], rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    by_key = {(r["model"], r["backend"]): r for r in old}
    by_key.update({(r["model"], r["backend"]): r for r in rows})
    order = {(m, b): k for k, (m, b, _) in enumerate(plan.matrix())}
    return sorted(by_key.values(), key=lambda r: order.get((r["model"], r["backend"]), len(order)))


@contextlib.contextmanager
def _compilation_cache(jax_used: bool) -> Iterator[None]:
    """JAX's persistent compilation cache in a folder of this run only: a program compiled twice in one
    ``zoo bench`` (the throughput pass's step on the training's padded shape) is compiled once, and
    every run still starts cold, so the compile column measures a cold compile."""
    if not (jax_used and backend_available("jax")):
        yield
        return
    import jax

    with tempfile.TemporaryDirectory(prefix="zoo-bench-xla-") as folder:
        jax.config.update("jax_compilation_cache_dir", folder)
        yield


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="zoo bench", description=__doc__.split("\n\n")[0],
                                epilog="zoo bench gate --help: the performance gate of the test command")
    p.add_argument("--models", nargs="+", default=None, help="families (default: every registered one, zoo list)")
    p.add_argument("--backends", nargs="+", default=["torch", "jax"], choices=["torch", "jax"])
    p.add_argument("--out", type=Path, default=RESULTS, help=f"folder for bench.json/.md/.png (default {RESULTS})")
    p.add_argument("--epochs", type=int, default=None, help="epochs for every family (default: each family's recipe)")
    p.add_argument("--task-arg", action="append", default=[], metavar="KEY=VALUE",
                   help="embedded task option for every family, e.g. --task-arg n_crystals=300 (smoke tests)")
    p.add_argument("--no-symmetry", action="store_true", help="skip the equivariance and parity columns")
    p.add_argument("--runs", default="runs/bench", help="folder for the training run folders (default runs/bench)")
    p.add_argument("--merge", action="store_true",
                   help="replace only these families' rows in an existing <out>/bench.json (re-measure one family)")
    args = p.parse_args(argv)
    if args.models:
        from zoo.models import get_family

        for m in args.models:
            get_family(m)  # an unknown name fails here, with a did-you-mean
    if args.epochs is not None and args.epochs < 1:
        p.error("--epochs must be >= 1")

    t0 = time.perf_counter()
    # The load when the run starts (meta.machine has it when the file is written): figures from a
    # 2-core machine are only comparable at a similar load.
    load_at_start = list(os.getloadavg())
    print(f"crystal-zoo bench: every family x backend on the embedded tasks (offline); tables under {args.out}", flush=True)
    command = ("zoo bench " + " ".join(argv if argv is not None else sys.argv[2:])).strip()
    previous = merge_rows(args.out / "bench.json", []) if args.merge else []
    data_phases = Phases()

    def save(rows: list[dict[str, Any]], finished: bool = False) -> dict[str, Path]:
        merged = merge_rows_into(previous, rows)
        recipes = {m: plan.train_config(m, "torch", **({"epochs": args.epochs} if args.epochs else {})).to_dict()
                   for m in dict.fromkeys(r["model"] for r in merged)}
        recipes = {m: {k: c[k] for k in ("task", "epochs", "batch_size", "lr", "loss", "tensor_center", "jax_padding", "model_overrides")}
                   for m, c in recipes.items()}
        meta = {"wall_s": time.perf_counter() - t0, "finished": finished, "command": command, "recipes": recipes,
                "task_kwargs": _pairs(args.task_arg), "merged": bool(previous), "data_phases": data_phases.table,
                "load_average_1_5_15_at_start": load_at_start}
        return table.write(merged, args.out, meta)

    with _compilation_cache("jax" in args.backends):
        rows = run_matrix(args.models, args.backends, args.epochs, _pairs(args.task_arg), symmetry=not args.no_symmetry,
                          out_runs=args.runs, on_row=save, phases=data_phases)
    wall = time.perf_counter() - t0
    paths = save(rows, finished=True)
    rows = merge_rows_into(previous, rows)
    print()
    print(table.text_table(rows))
    load = ", ".join(f"{x:.2f}" for x in provenance.machine()["load_average_1_5_15"] or [])
    print(f"\nwritten {paths['json']}, {paths['markdown']}, {paths['plot']}")
    print(f"zoo bench finished in {wall:.0f} s (load average {load})")
    return 1 if any(r.get("error") for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
