"""What each pgnet ablation costs on embedded_dielectric: parameters and seconds per training epoch, measured
side by side in one process (results/pgnet/embedded/ablation_cost.json).

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python benchmarks/pgnet_ablation_cost.py [--steps 3] [--rounds 2]
        [--variants lmax2,lmax4,lmax6,a1_78] [--fold 0] [--out results/pgnet/embedded/ablation_cost.json]

Variants (``--set`` overrides of the default PGNetConfig, all with the rank-2 dielectric read-out):
``lmax2`` (the default), ``lmax4``, ``lmax6`` (edge harmonics up to l = 4, 6: more paths, so more radial-MLP
outputs and parameters), ``a1_78`` (every hidden channel trivial, ``78xA1g`` in both branches: the
trivial-channel-only network at the default's parameter count, 161.8k against 160.2k; the read-out
convolution still forms Eg + T2g from the edge harmonics, so it predicts the full tensor).

A step is the trainer's (``zoo.training.adapter``): collate + forward + backward + AdamW update, float32, on
batches of 64 of fold 0's training crystals, in the loop's order (grouped by holohedry, as ``zoo train``
does). The variants take turns (``--rounds`` rounds of ``--steps`` steps each, after one warm-up step) so
that a change of the machine's load falls on all of them; s/epoch = median step x the epoch's number of
batches (training steps only: validation adds a pass of inference). The 1-minute load average is
recorded before and after: on a shared machine only the ratios between variants mean much.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from zoo import tasks
from zoo.core.io import write_json
from zoo.models import make_config
from zoo.training import TrainConfig
from zoo.training.adapter import batch_groups, get_adapter, index_batches
from zoo.training.data import load_fold

VARIANTS = {
    "lmax2": {},
    "lmax4": {"lmax": 4},
    "lmax6": {"lmax": 6},
    "a1_78": {"hidden_oh": "78xA1g", "hidden_d6h": "78xA1g"},
}
OUT = ROOT / "results" / "pgnet" / "embedded" / "ablation_cost.json"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--variants", default=",".join(VARIANTS))
    p.add_argument("--steps", type=int, default=3, help="timed steps per variant per round")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--fold", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--out", type=Path, default=OUT)
    args = p.parse_args(argv)
    names = args.variants.split(",")
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        p.error(f"--variants: unknown {unknown}; choose from {sorted(VARIANTS)}")

    task = tasks.get("embedded_dielectric")
    target = task.spec.target
    configs = {n: make_config("pgnet", **VARIANTS[n]).with_target(target) for n in names}
    train_cfg = TrainConfig(model="pgnet", task="embedded_dielectric", fold=args.fold, batch_size=args.batch_size,
                            lr=5e-3, tensor_center="isotropic", progress=False)
    # every variant builds the same graphs (the graph spec does not depend on lmax or the hidden irreps)
    data = load_fold(task, args.fold, train_cfg, configs[names[0]].graph_spec())
    graphs = data.train.graphs
    y = data.train.y.astype(np.float32)
    y = (y - y.mean(axis=0)) / y.std()  # standardised, like the loop's normaliser (the scale does not change a step's cost)

    adapters, batches = {}, None
    for n in names:
        a = get_adapter("torch")("pgnet", configs[n], train_cfg, "mse")
        order = np.random.default_rng([0, 1]).permutation(len(graphs))
        b = index_batches(a, graphs, args.batch_size, order)
        if batch_groups(a, graphs) is not None:
            b = [b[i] for i in np.random.default_rng([0, 1, 1]).permutation(len(b))]
        batches = b if batches is None else batches
        a.init([graphs[i] for i in b[0]])
        adapters[n] = a

    def step(a, idx):
        t0 = time.perf_counter()
        a.train_step(a.make_batch([graphs[i] for i in idx], y[idx]), train_cfg.lr)
        return time.perf_counter() - t0

    load_before = os.getloadavg()
    times: dict[str, list[float]] = {n: [] for n in names}
    for n in names:  # warm-up (allocator, first-call paths), not timed
        step(adapters[n], batches[0])
    k = 1
    for r in range(args.rounds):
        for n in names:
            for s in range(args.steps):
                times[n].append(step(adapters[n], batches[(k + s) % len(batches)]))
            print(f"round {r} {n}: {statistics.median(times[n][-args.steps:]):.2f} s/step", flush=True)
        k += args.steps
    load_after = os.getloadavg()

    rows = {}
    for n in names:
        params = {}
        for name, t in adapters[n].model.named_parameters():
            part = name.split(".", 1)[0]
            part = part if part in ("oh", "d6h") else "shared"
            params[part] = params.get(part, 0) + int(t.numel())
        med = statistics.median(times[n])
        rows[n] = {"overrides": VARIANTS[n], "n_parameters": sum(params.values()), "parameters_by_part": params,
                   "step_s": times[n], "median_step_s": med, "train_s_per_epoch": med * len(batches)}
    ref = rows[names[0]]["median_step_s"]
    for n in names:
        rows[n]["step_ratio_to_" + names[0]] = rows[n]["median_step_s"] / ref
    record = {"benchmark": "pgnet_ablation_cost", "task": "embedded_dielectric", "fold": args.fold,
              "batch_size": args.batch_size, "n_train": len(graphs), "batches_per_epoch": len(batches),
              "threads": int(os.environ.get("OMP_NUM_THREADS", "0") or 0),
              "load_average_before": load_before, "load_average_after": load_after, "rows": rows}
    write_json(args.out, record)
    print(f"\n{'variant':<8}{'params':>10}{'s/step':>9}{'s/epoch':>9}{'ratio':>7}")
    for n, r in rows.items():
        print(f"{n:<8}{r['n_parameters']:>10}{r['median_step_s']:>9.2f}{r['train_s_per_epoch']:>9.1f}"
              f"{r['step_ratio_to_' + names[0]]:>7.2f}")
    print(f"load average before {load_before[0]:.2f}, after {load_after[0]:.2f}; wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
