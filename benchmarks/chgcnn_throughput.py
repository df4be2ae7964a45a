"""CHGCNN training throughput on matbench_jdft2d next to CGCNN's, both backends, through the trainer's own adapters.

    .venv/bin/python benchmarks/chgcnn_throughput.py [--epochs 4] [--batch-size 64] [--limit N]
                                                     [--models cgcnn,b,bt,bm,btm] [--backends torch,jax]

Each row is one model trained by ``zoo.training``'s adapter of one backend (``TorchAdapter``: unpadded
batches, eager; ``JaxAdapter``: ``BucketPolicy`` padding, jitted step, its compilations counted), AdamW at
lr 1e-3, MSE on standardised exfoliation energies, batch 64 (the jdft2d recipe). Every epoch includes
batching (collate, padding, conversion), forward, backward and the optimiser step; all rows see the same
shuffled batches (``common.epoch_plan``). structures/s = training structures / median steady epoch (every
epoch after the first, and for jax after the last one that compiled a new shape).

Models: ``cgcnn`` (default CGCNNConfig) and CHGCNN with three layers of the given hyperedge orders
(``b`` = bonds only, ``bt`` + triplets, ``bm`` + motifs, ``btm`` both: the ablation of results/chgcnn),
default widths otherwise. Hypergraphs come from the featuriser's cache when it holds them
(``benchmarks/chgcnn_featurize.py --cache ~/.cache/crystal-zoo`` fills it); featurisation is timed by that
script, not here. Writes results/chgcnn/throughput_jdft2d.json and prints a table.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import (ROOT, data_missing, epoch_plan, epoch_timings, load_jdft2d, machine_info,  # noqa: E402
                               model_list, parser, standardised)
from zoo.core.io import write_json  # noqa: E402
from zoo.graphs import build_graphs  # noqa: E402
from zoo.models import config_to_dict, make_config  # noqa: E402
from zoo.training import TrainConfig  # noqa: E402
from zoo.training.adapter import get_adapter  # noqa: E402

OUT = ROOT / "results" / "chgcnn" / "throughput_jdft2d.json"
MODELS = ("cgcnn", "b", "bt", "bm", "btm")


def model_config(name: str):
    if name == "cgcnn":
        return "cgcnn", make_config("cgcnn")
    return "chgcnn", make_config("chgcnn", layers=(name,) * 3)


def run(model: str, config, backend: str, graphs, y, plan, args) -> dict:
    train = TrainConfig(model=model, backend=backend, batch_size=args.batch_size, lr=args.lr, progress=False)
    adapter = get_adapter(backend)(model, config, train, "mse")
    t0 = time.perf_counter()
    adapter.init([graphs[i] for i in plan[0][0]])
    build_s = time.perf_counter() - t0

    def epoch(k, batches):
        total = 0.0
        for idx in batches:
            total += adapter.train_step(adapter.make_batch([graphs[i] for i in idx], y[idx]), args.lr)
        return total / len(graphs)

    out = {"build_s": build_s, **epoch_timings(f"{model} {backend}", epoch, plan,
                                                compilations=(lambda: adapter.compilations) if backend == "jax" else None)}
    out["structures_per_s"] = len(graphs) / out["median_steady_epoch_s"]
    out["time_to_first_epoch_s"] = build_s + out["epoch_s"][0]
    out["n_parameters"] = int(sum(np.size(v) for k, v in adapter.state_dict().items() if not k.endswith(("running_mean", "running_var", "num_batches_tracked"))))
    return out


def main(argv=None) -> int:
    p = parser(__doc__, epochs=4, batch_size=64, models=MODELS, lr=1e-3, out=OUT)
    p.add_argument("--backends", default="torch,jax")
    args = p.parse_args(argv)
    models = model_list(p, args.models, MODELS)
    if data_missing():
        return 0
    structures, y_all, ids = load_jdft2d(args.limit)
    rows, graph_s = {}, {}
    for name in models:
        model, config = model_config(name)
        t0 = time.perf_counter()
        graphs, _ = build_graphs(structures, config.graph_spec(), ids=ids, cache=True, progress=False, on_error="skip")
        graph_s[name] = time.perf_counter() - t0
        keep = [k for k, g in enumerate(graphs) if g is not None]
        graphs, y = [graphs[k] for k in keep], standardised(y_all[keep])
        plan = epoch_plan(len(graphs), args.batch_size, args.epochs)
        sizes = {s: int(sum(len(g.arrays()[k]) for g in graphs)) for s, k in (("edges", "senders"),)}
        for backend in args.backends.split(","):
            key = f"{name}-{backend}"
            print(f"== {key}", flush=True)
            try:
                rows[key] = run(model, config, backend, graphs, y, plan, args)
            except Exception as exc:  # one failed row must not lose the others
                rows[key] = {"error": f"{type(exc).__name__}: {exc}"}
            rows[key].update(model=model, layers=list(getattr(config, "layers", ())), graphs_s=graph_s[name], **sizes,
                             config=config_to_dict(config))
    record = {"benchmark": "chgcnn_throughput", "dataset": "matbench_jdft2d", "n_structures": len(structures),
              "batch_size": args.batch_size, "epochs": args.epochs, "rows": rows, "machine": machine_info()}
    write_json(args.out, record)
    print(f"\n{'model':<14}{'params':>9}{'structures/s':>14}{'first epoch s':>15}{'compilations':>14}")
    for key, r in rows.items():
        if "error" in r:
            print(f"{key:<14}  failed: {r['error']}")
            continue
        print(f"{key:<14}{r['n_parameters']:>9}{r['structures_per_s']:>14.1f}{r['time_to_first_epoch_s']:>15.1f}"
              f"{r.get('compilations', ''):>14}")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
