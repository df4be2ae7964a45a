"""Start-up: seconds from process start to the end of the first epoch of ``zoo train``, per backend.

    .venv/bin/python benchmarks/time_to_first_epoch.py [--repeats 3] [--backends torch jax]
                                                        [--checkout DIR ...] [--out results/benchmarks/time_to_first_epoch.json]

Each run is ``python -m zoo.cli train cgcnn --task matbench_jdft2d --backend B --fold 0 --epochs 1
--data-dir ../shared/data/matbench_jdft2d`` in a fresh process (the graph cache warm, as on any second run);
the clock starts when the process is spawned and stops when the run folder's ``metrics.jsonl`` gets its
first line (written right after the first epoch's validation). Also recorded: the epoch's own time (from
that line) and the process's total wall time (plots, test predictions and the checkpoint included).

``--checkout DIR`` (repeatable) times another copy of the code in the same window, e.g. a ``git worktree``
of the previous commit: runs of every checkout and backend are interleaved in each repeat, so a change of
machine load hits them alike; with a shared, loaded machine compare the checkouts' ratio, not the seconds.
The JSON records the machine and its load average before and after.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.common import JDFT2D, RESULTS, machine_info  # noqa: E402
from zoo.core.io import write_json  # noqa: E402

OUT = RESULTS / "time_to_first_epoch.json"


def one_run(checkout: Path, backend: str, out: Path, poll_s: float = 0.01) -> dict:
    cmd = [sys.executable, "-m", "zoo.cli", "train", "cgcnn", "--task", "matbench_jdft2d", "--backend", backend, "--fold", "0",
           "--epochs", "1", "--data-dir", str(JDFT2D.parent), "--out", str(out), "--no-progress"]
    env = {**os.environ, "PYTHONPATH": str(checkout), "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "PASSIVE")}
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=checkout, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    first = None
    while proc.poll() is None:
        if first is None and any(p.stat().st_size > 0 for p in out.glob("*/metrics.jsonl")):
            first = time.perf_counter() - t0
        time.sleep(poll_s)
    total = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{checkout} {backend}: exit {proc.returncode}: {proc.stderr.read()[-2000:]}")
    record = json.loads(next(out.glob("*/metrics.jsonl")).read_text().splitlines()[0])
    return {"to_first_epoch_s": first, "epoch_s": record["time_s"], "jit_compilations": record.get("jit_compilations"),
            "total_s": total}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--backends", nargs="+", default=["torch", "jax"], choices=["torch", "jax"])
    p.add_argument("--checkout", type=Path, action="append", default=None,
                   help="another copy of the code to time in the same window (default: only this one)")
    p.add_argument("--out", type=Path, default=OUT)
    args = p.parse_args(argv)
    if not JDFT2D.exists():
        print(f"{JDFT2D} not found: skipped")
        return 0
    checkouts = [ROOT] + [c.resolve() for c in args.checkout or []]
    load_before = os.getloadavg()
    runs: dict[str, dict[str, list[dict]]] = {str(c): {b: [] for b in args.backends} for c in checkouts}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.repeats):
            for c in checkouts:
                for b in args.backends:
                    res = one_run(c, b, Path(tmp) / f"{r}-{b}-{checkouts.index(c)}")
                    res["load_average_1min"] = os.getloadavg()[0]
                    runs[str(c)][b].append(res)
                    print(f"{c} {b}: {res['to_first_epoch_s']:.2f} s to the first epoch (epoch {res['epoch_s']:.2f} s, "
                          f"load {res['load_average_1min']:.1f})", flush=True)
    summary = {}
    for c, by_backend in runs.items():
        for b, rs in by_backend.items():
            t = [x["to_first_epoch_s"] for x in rs]
            summary[f"{c}:{b}"] = {"median_s": statistics.median(t), "min_s": min(t), "max_s": max(t),
                                   "median_epoch_s": statistics.median(x["epoch_s"] for x in rs)}
    report = {"benchmark": "time_to_first_epoch", "command": "zoo train cgcnn --task matbench_jdft2d --fold 0 --epochs 1",
              "repeats": args.repeats, "load_average_before": list(load_before), "load_average_after": list(os.getloadavg()),
              "summary": summary, "runs": runs, "machine": machine_info()}
    write_json(args.out, report)
    for k, v in summary.items():
        print(f"{k}: median {v['median_s']:.2f} s (min {v['min_s']:.2f}, max {v['max_s']:.2f}), epoch {v['median_epoch_s']:.2f} s")
    print(f"written {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
