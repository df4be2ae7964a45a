"""Point-group network against the tensor field network: training and inference throughput on the same
graphs, both backends, through the trainer's own adapters (the issue's "pgnet vs TFN, same run").

    .venv/bin/python benchmarks/pgnet_throughput.py [--epochs 3] [--batch-size 32] [--limit N]
                                                    [--models tfn,pgnet,pgnet_a1] [--backends torch,jax]

Data: matbench_jdft2d (636 layered crystals; 4 of 5 are hexagonal or trigonal, so both pgnet branches
run). Every model sees the graphs its own config builds (``config.graph_spec()``: both use every
neighbour within 5 Å; pgnet's are in the idealised standard frame) and trains on the exfoliation energy,
standardised, MSE, AdamW at lr 1e-3, float32. Batches are the trainer's: a fresh seeded shuffle per
epoch, and for pgnet grouped by holohedry (``config.batch_key``, as ``zoo train`` does), so a step runs
one branch. A step = batching (collate; padding for jax) + forward + backward + update.

- training structures/s = structures / median steady epoch (every epoch after the first, and for jax
  after the last one that compiled);
- inference structures/s = structures / median of 3 passes of ``adapter.predict`` over all batches
  (after one warm pass that compiles);
- compile_s (jax) = the first epoch's time minus a steady epoch's; ``steady_state`` is false where every
  epoch after the first still compiled a new padded shape (the training figure then times compilation:
  run more epochs).

Models: ``tfn`` (default TFNConfig, 85k parameters), ``pgnet`` (default PGNetConfig: one branch ~ TFN's
size), ``pgnet_a1`` (the trivial-channel-only ablation: hidden features all A1g, same width budget).
Writes results/pgnet/throughput_jdft2d.json with the machine and its load, and prints a table.

A tensor task instead of jdft2d (``--task mp_dielectric_electronic --data-dir DIR``): fold 0's training
and validation crystals, the models built as ``zoo train --recipe <kind>`` builds them (each family's
stored recipe's model options, the task's target), the same timing; written to
results/pgnet/throughput_<task>.json unless ``--out`` says otherwise.
"""
from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import (ROOT, data_missing, epoch_timings, load_jdft2d, machine_info, model_list,  # noqa: E402
                               parser, standardised)
from zoo.core.io import write_json  # noqa: E402
from zoo.graphs import build_graphs  # noqa: E402
from zoo import tasks  # noqa: E402
from zoo.models import config_to_dict, make_config  # noqa: E402
from zoo.tasks import TargetSpec  # noqa: E402
from zoo.training import TrainConfig, recipes  # noqa: E402
from zoo.training.adapter import batch_groups, get_adapter, index_batches  # noqa: E402

OUT = ROOT / "results" / "pgnet" / "throughput_jdft2d.json"
MODELS = ("tfn", "pgnet", "pgnet_a1")
SCALAR = TargetSpec(kind="scalar", name="exfoliation_en", unit="meV/atom")


def model_config(name: str, target=SCALAR, recipe_kind: str | None = None):
    """(family, config) of a model name; with ``recipe_kind``, the family's stored recipe's model options."""
    family = "pgnet" if name == "pgnet_a1" else name
    options = dict(recipes.get_recipe(family, recipe_kind).fields.get("model_overrides") or {}) if recipe_kind else {}
    if name == "pgnet_a1":
        options.update(hidden_oh="64xA1g", hidden_d6h="64xA1g")
    return family, make_config(family, **options).with_target(target)


def load_task(name: str, data_dir: str | None):
    """(structures, targets, ids, target spec) of fold 0's training and validation crystals of a zoo task."""
    task = tasks.get(name, **({"data_dir": data_dir} if data_dir else {}))
    task.load()
    inputs, outputs = task.get_train_and_val_data(0)
    return list(inputs.values), np.stack([np.asarray(v, dtype=np.float64) for v in outputs.values]), \
        [str(i) for i in inputs.index], task.spec.target


def plan(adapter, graphs, batch_size: int, epochs: int) -> list[list[np.ndarray]]:
    """The loop's batches for each epoch (``zoo.training.loop._train_epoch``'s recipe, seed 0)."""
    out = []
    for epoch in range(1, epochs + 1):
        order = np.random.default_rng([0, epoch]).permutation(len(graphs))
        b = index_batches(adapter, graphs, batch_size, order)
        if batch_groups(adapter, graphs) is not None:
            b = [b[i] for i in np.random.default_rng([0, epoch, 1]).permutation(len(b))]
        out.append(b)
    return out


def run(model: str, config, backend: str, graphs, y, args) -> dict:
    train = TrainConfig(model=model, backend=backend, batch_size=args.batch_size, lr=args.lr, progress=False,
                        jax_padding=args.jax_padding)
    adapter = get_adapter(backend)(model, config, train, "mse")
    batches = plan(adapter, graphs, args.batch_size, args.epochs)
    adapter.init([graphs[i] for i in batches[0][0]])

    def epoch(k, bs):
        total = 0.0
        for idx in bs:
            total += adapter.train_step(adapter.make_batch([graphs[i] for i in idx], y[idx]), args.lr)
        return total / len(graphs)

    out = epoch_timings(f"{model} {backend}", epoch,
                        batches, compilations=(lambda: adapter.compilations) if backend == "jax" else None)
    out["training_structures_per_s"] = len(graphs) / out["median_steady_epoch_s"]
    # jax: a figure only where some epoch after the first compiled nothing (else it times compilation)
    out["steady_state"] = backend != "jax" or 0 in out["compilations_per_epoch"][1:]
    out["compile_s"] = max(out["epoch_s"][0] - out["median_steady_epoch_s"], 0.0) if backend == "jax" else 0.0

    made = [adapter.make_batch([graphs[i] for i in idx], None) for idx in index_batches(adapter, graphs, args.batch_size)]
    passes = []
    for _ in range(4):  # the first pass compiles (jax) and warms caches
        t0 = time.perf_counter()
        for b in made:
            adapter.predict(b)
        passes.append(time.perf_counter() - t0)
    out["inference_pass_s"] = passes
    out["inference_structures_per_s"] = len(graphs) / statistics.median(passes[1:])
    out["n_parameters"] = int(sum(np.size(v) for v in adapter.state_dict().values()))
    return out


def main(argv=None) -> int:
    p = parser(__doc__, epochs=3, batch_size=32, models=MODELS, lr=1e-3, out=OUT)
    p.add_argument("--backends", default="torch,jax")
    p.add_argument("--task", help="a zoo task instead of matbench_jdft2d (fold 0's training crystals; the "
                                  "families' stored recipes' model options)")
    p.add_argument("--data-dir", help="the task's data folder (real-data tasks)")
    p.add_argument("--jax-padding", choices=("buckets", "fixed"), default="buckets",
                   help="jax batch shapes (TrainConfig.jax_padding): fixed compiles fewer shapes, so a few epochs "
                        "reach the steady state")
    args = p.parse_args(argv)
    models = model_list(p, args.models, MODELS)
    target, kind, dataset = SCALAR, None, "matbench_jdft2d"
    if args.task:
        structures, y_all, ids, target = load_task(args.task, args.data_dir)
        structures, y_all, ids = structures[: args.limit], y_all[: args.limit], ids[: args.limit]
        kind, dataset = recipes.task_kind(target), args.task
        if args.out == OUT:
            args.out = OUT.with_name(f"throughput_{args.task}.json")
    elif data_missing():
        return 0
    else:
        structures, y_all, ids = load_jdft2d(args.limit)
    rows = {}
    load_before = machine_info()
    for name in models:
        model, config = model_config(name, target, kind)
        graphs, _ = build_graphs(structures, config.graph_spec(), ids=ids, cache=True, progress=False, on_error="skip")
        keep = [k for k, g in enumerate(graphs) if g is not None]
        graphs, y = [graphs[k] for k in keep], standardised(y_all[keep])
        for backend in args.backends.split(","):
            key = f"{name}-{backend}"
            print(f"== {key}", flush=True)
            try:
                rows[key] = run(model, config, backend, graphs, y, args)
            except Exception as exc:  # one failed row must not lose the others
                rows[key] = {"error": f"{type(exc).__name__}: {exc}"}
            rows[key].update(model=model, n_structures=len(graphs), config=config_to_dict(config))
    record = {"benchmark": "pgnet_throughput", "dataset": dataset, "recipe_kind": kind, "jax_padding": args.jax_padding,
              "batch_size": args.batch_size,
              "epochs": args.epochs, "rows": rows, "machine_before": load_before, "machine_after": machine_info()}
    write_json(args.out, record)
    print(f"\n{'model':<16}{'params':>9}{'train str/s':>13}{'infer str/s':>13}{'compile s':>11}{'vs tfn (train)':>16}")
    for key, r in rows.items():
        if "error" in r:
            print(f"{key:<16}  failed: {r['error']}")
            continue
        ref = rows.get("tfn-" + key.rsplit("-", 1)[1], {}).get("training_structures_per_s")
        ratio = f"{r['training_structures_per_s'] / ref:.2f}x" if ref else ""
        train = f"{r['training_structures_per_s']:.1f}" if r["steady_state"] else "compiling"
        print(f"{key:<16}{r['n_parameters']:>9}{train:>13}{r['inference_structures_per_s']:>13.1f}"
              f"{r['compile_s']:>11.1f}{ratio:>16}")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
