"""Accuracy next to throughput: our TFN and e3nn's reference network trained the same way on matbench_jdft2d.

    .venv/bin/python benchmarks/tfn_accuracy.py [--fold 0] [--seeds 0 1 2] [--epochs 150] [--ref-mul equal]

The throughput benchmark (``tfn_throughput.py``) says how fast each network trains; this says whether
the faster one is as good. Both networks (``tfn_throughput.reference_model``: e3nn's
``gate_points_2101.Network`` on our periodic edges, at the multiplicity whose parameter count is closest
to ours) see the same graphs (every neighbour within 5 Å) and the same recipe: the official matbench
fold's training set, 10 % of it held out for validation (split seed 0), MSE on the exfoliation energy
standardised with the training mean and standard deviation, Adam, batch 32, learning rate ``--lr``
with a cosine decay to 1 % over ``--epochs``, float32. The epoch with the lowest validation MAE is
evaluated on the fold's test set. Reported: test MAE (meV/atom) per seed, their mean, and the
training-mean floor. Each (model, seed) runs in its own subprocess. Writes
``results/benchmarks/tfn_accuracy.json`` atomically; skips cleanly when the data are absent.
"""
from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import math
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `python benchmarks/<script>.py`: the benchmarks package

from benchmarks.common import (JDFT2D, RESULTS, data_missing, load_graphs, machine_info, model_list, parser,  # noqa: E402
                               run_worker, save_graphs, worker_options)
from benchmarks.tfn_throughput import equal_size_multiplicity_subprocess, reference_model  # noqa: E402
from zoo import tasks  # noqa: E402
from zoo.core.io import write_json  # noqa: E402
from zoo.graphs import build_graphs, collate  # noqa: E402
from zoo.models import build, config_from_dict, config_to_dict, make_config  # noqa: E402
from zoo.models.tfn import estimate_avg_num_neighbors, n_parameters  # noqa: E402

OUT = RESULTS / "tfn_accuracy.json"
MODELS = ("ours", "e3nn")


def train_one(name: str, graphs, y, split: dict, args, config) -> dict:
    import torch

    from zoo.backend.torch import to_torch

    torch.manual_seed(args.seed)
    model = reference_model(config, args.ref_mul) if name == "e3nn" else build("tfn", "torch", config)
    n_params = sum(p.numel() for p in model.parameters())
    tr, va, te = (np.asarray(split[k]) for k in ("train", "val", "test"))
    mu, sd = float(y[tr].mean()), float(y[tr].std())
    z = ((y - mu) / sd).astype(np.float32)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    steps = args.epochs * math.ceil(len(tr) / args.batch_size)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda k: 0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * min(k / steps, 1.0))))
    rng = np.random.default_rng(args.seed)

    def predict(idx):
        model.eval()
        out = []
        with torch.no_grad():
            for k in range(0, len(idx), 64):
                part = idx[k : k + 64]
                out.append(model(to_torch(collate([graphs[i] for i in part]))).numpy())
        model.train()
        return np.concatenate(out) * sd + mu

    best = (math.inf, None, -1)
    curve = []
    t0 = time.perf_counter()
    for epoch in range(args.epochs):
        order = rng.permutation(tr)
        for k in range(0, len(order), args.batch_size):
            idx = order[k : k + args.batch_size]
            batch = to_torch(collate([graphs[i] for i in idx], y=z[idx]))
            opt.zero_grad(set_to_none=True)
            loss = torch.nn.functional.mse_loss(model(batch), batch["y"])
            loss.backward()
            opt.step()
            sched.step()
        val_mae = float(np.mean(np.abs(predict(va) - y[va])))
        curve.append(val_mae)
        if val_mae < best[0]:
            best = (val_mae, copy.deepcopy(model.state_dict()), epoch)
    train_s = time.perf_counter() - t0
    model.load_state_dict(best[1])
    test_pred = predict(te)
    return {
        "model": name, "seed": args.seed, "n_params": n_params, "best_epoch": best[2], "val_mae": best[0],
        "test_mae": float(np.mean(np.abs(test_pred - y[te]))), "test_rmse": float(np.sqrt(np.mean((test_pred - y[te]) ** 2))),
        "floor_test_mae": float(np.mean(np.abs(y[tr].mean() - y[te]))), "train_s": train_s, "val_curve": curve,
    }


def main(argv=None) -> int:
    p = parser(__doc__, epochs=150, batch_size=32, models=MODELS, lr=2e-3, out=OUT, limit=False)
    p.add_argument("--fold", type=int, default=0)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--ref-mul", default="equal")
    worker_options(p, MODELS)
    p.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--split", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    if args.worker:
        args.ref_mul = int(args.ref_mul)
        graphs, y = load_graphs(args.graphs)
        res = train_one(args.worker, graphs, y.astype(np.float64), json.loads(args.split.read_text()), args,
                        config_from_dict("tfn", json.loads(args.config_json)))
        write_json(args.result, res)
        return 0
    models = model_list(p, args.models, MODELS)
    if data_missing():
        return 0

    task = tasks.get("matbench_jdft2d", data_dir=str(JDFT2D.parent))
    task.load()
    (train_s, train_y), test_s = task.get_train_and_val_data(args.fold), task.get_test_data(args.fold, include_target=True)
    structures = list(train_s) + list(test_s[0])
    y = np.concatenate([np.asarray(train_y, float), np.asarray(test_s[1], float)])
    config = make_config("tfn")
    graphs, failures = build_graphs(structures, config.graph_spec(), cache=False, progress=True, on_error="raise")
    config = dataclasses.replace(config, avg_num_neighbors=estimate_avg_num_neighbors(graphs[: len(train_s)]))
    if args.ref_mul == "equal":
        args.ref_mul = equal_size_multiplicity_subprocess(config)
    n_tr = len(train_s)
    perm = np.random.default_rng(0).permutation(n_tr)
    n_val = max(1, round(0.1 * n_tr))
    split = {"train": sorted(perm[n_val:].tolist()), "val": sorted(perm[:n_val].tolist()), "test": list(range(n_tr, len(structures)))}

    runs = []
    with tempfile.TemporaryDirectory(prefix="tfn_acc_") as tmp:
        gpath, spath = Path(tmp) / "graphs.npz", Path(tmp) / "split.json"
        save_graphs(gpath, graphs, y)
        spath.write_text(json.dumps(split))
        for name in models:
            for seed in args.seeds:
                print(f"== {name} seed {seed}", flush=True)
                r = run_worker(__file__, [
                    "--worker", name, "--seed", str(seed), "--graphs", str(gpath), "--split", str(spath),
                    "--config-json", json.dumps(config_to_dict(config)), "--epochs", str(args.epochs),
                    "--batch-size", str(args.batch_size), "--lr", str(args.lr), "--ref-mul", str(args.ref_mul)],
                    Path(tmp) / f"{name}_{seed}.json")
                if "error" in r:
                    raise SystemExit(f"{name} seed {seed} failed ({r['error']}):\n{r['stderr_tail'][-3000:]}")
                print(f"   test MAE {r['test_mae']:.2f} meV/atom (best epoch {r['best_epoch']}, {r['train_s']:.0f} s)", flush=True)
                runs.append(r)
    summary = {}
    for name in {r["model"] for r in runs}:
        maes = [r["test_mae"] for r in runs if r["model"] == name]
        summary[name] = {"n_params": next(r["n_params"] for r in runs if r["model"] == name), "test_mae_mean": statistics.mean(maes),
                         "test_mae_std": statistics.stdev(maes) if len(maes) > 1 else None, "test_mae": maes,
                         "train_s_median": statistics.median(r["train_s"] for r in runs if r["model"] == name)}
    report = {
        "benchmark": "tfn_accuracy", "date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "dataset": "matbench_jdft2d",
        "fold": args.fold, "n": {k: len(v) for k, v in split.items()}, "epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr,
        "config": config_to_dict(config), "n_params_ours": n_parameters(config),
        "reference": {"class": "e3nn.nn.models.gate_points_2101.Network", "mul": args.ref_mul},
        "floor_test_mae": runs[0]["floor_test_mae"] if runs else None, "summary": summary, "runs": runs, "machine": machine_info(),
    }
    write_json(args.out, report)
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
