"""CGCNN training throughput on matbench_jdft2d: our torch model, our jax model (jit), and plain PyG.

    .venv/bin/python benchmarks/cgcnn_throughput.py [--epochs 6] [--batch-size 128] [--limit N]
                                                    [--models torch,jax,pyg] [--device auto|cpu|cuda]

For each model: structures/s = training structures / median wall time of the steady-state epochs
(every epoch after the first), and time to first epoch = featurisation (structures -> graphs, done
once, no cache, shared by the three models) + the first epoch (model build, jit compilations, warm-up).
Every model runs ``--repeats`` times (default 3), the models interleaved in each repeat; the published
structures/s is the median over the repeats, with its quartiles and min-max (``structures_per_s_spread``)
and the machine's load average before and after (``benchmarks.spread``): a figure without its machine and
its spread does not reproduce elsewhere, so the README points at this file instead of quoting numbers.
Every epoch includes batching (collate, padding for jax, host -> device copy), forward, backward and an
Adam step, MSE loss on standardised targets (exfoliation energy, meV/atom); every model sees the same
shuffled batches (``common.epoch_plan``).

The three models see the same graphs (CGCNN rule: 12 nearest neighbours within 8 Å) and the same
widths (92 -> 64 atom features, 41 Gaussians, 3 convolutions, 128 hidden, 1 output):

- ``torch``: ``zoo.models.build("cgcnn", "torch")`` (the original CGCNN, batch norm over edges and atoms);
- ``jax``: ``zoo.models.build("cgcnn", "jax")``, batches padded by the trainer's ``zoo.graphs.BucketPolicy``,
  one jitted train step; the number of compilations is reported;
- ``pyg``: torch_geometric.nn.CGConv(64, dim=41, batch_norm=True) x 3 + global_mean_pool + the same
  head, batched by torch_geometric's own ``Batch.from_data_list`` (what its DataLoader calls). It
  computes the atom table lookup and the Gaussian expansion inside the model like ours, so all three
  do the same work per step. CGConv is not the original layer (no batch norm over edges, no softplus
  after the residual), so it is a speed reference, not a reproduction.

Writes ``results/benchmarks/cgcnn_throughput.json`` (atomically) with machine information, and
prints a table. Skips cleanly (exit 0) when ``../shared/data/matbench_jdft2d`` is absent.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `python benchmarks/<script>.py`: the benchmarks package

from benchmarks.common import (  # noqa: E402
    RESULTS,
    data_missing,
    epoch_plan,
    epoch_timings,
    featurise,
    load_jdft2d,
    machine_info,
    model_list,
    padded_sizes,
    parser,
    print_table,
    report_header,
    standardised,
    torch_device,
)
from benchmarks.spread import interleaved, spread, summarise  # noqa: E402
from zoo.core.io import write_json  # noqa: E402
from zoo.graphs import collate  # noqa: E402
from zoo.models import build, config_to_dict, make_config  # noqa: E402

OUT = RESULTS / "cgcnn_throughput.json"
MODELS = ("torch", "jax", "pyg")


def run_torch(graphs, y, plan, args, config, device):
    import torch

    from zoo.backend.torch import to_torch

    torch.manual_seed(0)
    t_build = time.perf_counter()
    model = build("cgcnn", "torch", config).to(device).train()
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    build_s = time.perf_counter() - t_build

    def epoch(k, batches):
        for idx in batches:
            batch = to_torch(collate([graphs[i] for i in idx], y=y[idx]), device=device)
            opt.zero_grad(set_to_none=True)
            loss = torch.nn.functional.mse_loss(model(batch), batch["y"])
            loss.backward()
            opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        return loss.item()

    return {"build_s": build_s, **epoch_timings("torch", epoch, plan)}


def run_jax(graphs, y, plan, args, config):
    import jax
    import jax.numpy as jnp
    import optax

    from zoo.backend.jax import to_jax

    module = build("cgcnn", "jax", config)
    tx = optax.adam(args.lr)
    compilations = []
    sizes = padded_sizes(graphs, y, plan, args.batch_size)

    def loss_fn(params, batch_stats, batch):
        out, updates = module.apply({"params": params, "batch_stats": batch_stats}, batch, train=True, mutable=["batch_stats"])
        mask = batch["graph_mask"].astype(out.dtype)  # padding graphs do not count
        loss = jnp.sum(mask * (out - batch["y"]) ** 2) / jnp.sum(mask)
        return loss, updates["batch_stats"]

    @jax.jit
    def train_step(params, batch_stats, opt_state, batch):
        compilations.append(1)  # runs once per trace, i.e. once per padded shape
        (loss, batch_stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, batch_stats, batch)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), batch_stats, opt_state, loss

    def padded(idx, shape):
        return to_jax(collate([graphs[i] for i in idx], y=y[idx]).pad(shape))

    t_build = time.perf_counter()
    first = padded(plan[0][0], sizes[0][0])
    variables = jax.jit(lambda key, b: module.init(key, b, train=False))(jax.random.PRNGKey(0), first)
    state = {"params": variables["params"], "batch_stats": variables["batch_stats"]}
    state["opt_state"] = tx.init(state["params"])
    jax.block_until_ready(state["params"])
    build_s = time.perf_counter() - t_build

    def epoch(k, batches):
        loss = None
        for idx, shape in zip(batches, sizes[k]):
            state["params"], state["batch_stats"], state["opt_state"], loss = train_step(
                state["params"], state["batch_stats"], state["opt_state"], padded(idx, shape))
        return float(jax.block_until_ready(loss))

    result = {"build_s": build_s, **epoch_timings("jax", epoch, plan, compilations=lambda: len(compilations))}
    result["jax_backend"] = jax.default_backend()
    return result


def run_pyg(graphs, y, plan, args, config, device):
    import torch
    import torch.nn.functional as F
    from torch_geometric.data import Batch, Data
    from torch_geometric.nn import CGConv, global_mean_pool

    from zoo.nn import gaussian_expansion

    class PygCGCNN(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("atom_table", torch.from_numpy(config.atom_table().astype(np.float32)), persistent=False)
            self.embedding = torch.nn.Linear(config.orig_atom_fea_len, config.atom_fea_len)
            self.convs = torch.nn.ModuleList(
                [CGConv(config.atom_fea_len, dim=config.nbr_fea_len, batch_norm=True) for _ in range(config.n_conv)]
            )
            self.conv_to_fc = torch.nn.Linear(config.atom_fea_len, config.h_fea_len)
            self.fc_out = torch.nn.Linear(config.h_fea_len, 1)

        def forward(self, data):
            x = self.embedding(self.atom_table[data.z])
            edge_attr = gaussian_expansion(data.distances, dmin=config.dmin, dmax=config.dmax, step=config.step, var=config.var, xp=torch)
            for conv in self.convs:
                x = conv(x, data.edge_index, edge_attr)
            h = F.softplus(self.conv_to_fc(F.softplus(global_mean_pool(x, data.batch))))
            return self.fc_out(h).squeeze(-1)

    data = [
        Data(
            z=torch.from_numpy(g.numbers.astype(np.int64)),
            edge_index=torch.from_numpy(np.stack([g.senders, g.receivers]).astype(np.int64)),  # j -> i
            distances=torch.from_numpy(g.distances.astype(np.float32)),
            y=torch.tensor([y[k]], dtype=torch.float32),
            num_nodes=g.n_nodes,
        )
        for k, g in enumerate(graphs)
    ]
    torch.manual_seed(0)
    t_build = time.perf_counter()
    model = PygCGCNN().to(device).train()
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    build_s = time.perf_counter() - t_build

    def epoch(k, batches):
        # PyG's own batching (Batch.from_data_list, what its DataLoader calls) of the same planned batches.
        for idx in batches:
            batch = Batch.from_data_list([data[i] for i in idx]).to(device, non_blocking=True)
            opt.zero_grad(set_to_none=True)
            loss = F.mse_loss(model(batch), batch.y)
            loss.backward()
            opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        return loss.item()

    return {"build_s": build_s, **epoch_timings("pyg", epoch, plan)}


def main(argv=None) -> int:
    p = parser(__doc__, epochs=6, batch_size=128, models=MODELS, lr=1e-3, out=OUT)
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"], help="torch device (jax uses its default backend)")
    p.add_argument("--repeats", type=int, default=3, help="runs of every model, interleaved (median and spread reported)")
    args = p.parse_args(argv)
    if args.epochs < 1 or args.repeats < 1:
        p.error("--epochs and --repeats must be >= 1")
    models = model_list(p, args.models, MODELS)
    if data_missing():
        return 0

    device = torch_device(args.device)
    config = make_config("cgcnn")
    structures, y, ids = load_jdft2d(args.limit)
    graphs, keep, failures, featurise_s = featurise(structures, ids, config.graph_spec())
    y = standardised(y[keep])
    plan = epoch_plan(len(graphs), args.batch_size, args.epochs)

    runners = {
        "torch": lambda: run_torch(graphs, y, plan, args, config, device),
        "jax": lambda: run_jax(graphs, y, plan, args, config),
        "pyg": lambda: run_pyg(graphs, y, plan, args, config, device),
    }
    def measured(name):
        r = runners[name]()
        r["structures_per_s"] = len(graphs) / r["median_steady_epoch_s"]
        r["time_to_first_epoch_s"] = featurise_s + r["build_s"] + r["epoch_s"][0]
        return r

    rounds, load = interleaved({name: (lambda name=name: measured(name)) for name in models}, args.repeats)
    results = {name: summarise(rs) for name, rs in rounds.items()}
    ratios = {f"{a}_over_{b}": spread([x["structures_per_s"] / y["structures_per_s"] for x, y in zip(rounds[a], rounds[b])])
              for a, b in (("torch", "pyg"), ("jax", "pyg"), ("jax", "torch")) if a in rounds and b in rounds}

    report = {
        **report_header("cgcnn_throughput", args, len(graphs), failures, featurise_s),
        "config": config_to_dict(config),
        "repeats": args.repeats,
        "load_average": load,
        "ratios_per_repeat": ratios,
        "machine": machine_info(str(device)),
        "results": results,
    }
    write_json(args.out, report)
    print_table(f"CGCNN training throughput, matbench_jdft2d ({len(graphs)} structures, batch {args.batch_size}, "
                f"{args.epochs} epochs, featurisation {featurise_s:.1f} s)",
                [("structures/s", "structures_per_s", 14, ".1f"), ("min", "sps_min", 8, ".0f"), ("max", "sps_max", 8, ".0f"),
                 ("median epoch s", "median_steady_epoch_s", 16, ".3f"),
                 ("first epoch s", "first_epoch_s", 15, ".2f"), ("to 1st epoch s", "time_to_first_epoch_s", 16, ".2f"),
                 ("compiles", "compilations", 10, "d")],
                {name: {**r, "first_epoch_s": r["epoch_s"][0], "sps_min": r["structures_per_s_spread"]["min"],
                        "sps_max": r["structures_per_s_spread"]["max"]} for name, r in results.items()})
    print(f"medians of {args.repeats} interleaved repeats; load average {load['before'][0]:.1f} before, {load['after'][0]:.1f} after")
    for k, v in ratios.items():
        print(f"{k}: median {v['median']:.2f} (min {v['min']:.2f}, max {v['max']:.2f})")
    print(f"written {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
