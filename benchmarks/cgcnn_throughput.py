"""CGCNN training throughput on matbench_jdft2d: our torch model, our jax model (jit), and plain PyG.

    .venv/bin/python benchmarks/cgcnn_throughput.py [--epochs 6] [--batch-size 128] [--limit N]
                                                    [--models torch,jax,pyg] [--device auto|cpu|cuda]

For each model: structures/s = training structures / median wall time of the steady-state epochs
(every epoch after the first), and time to first epoch = featurisation (structures -> graphs, done
once, no cache, shared by the three models) + the first epoch (model build, jit compilations, warm-up).
Every epoch includes batching (shuffle, collate, padding for jax, host -> device copy), forward,
backward and an Adam step, MSE loss on standardised targets (exfoliation energy, meV/atom).

The three models see the same graphs (CGCNN rule: 12 nearest neighbours within 8 Å) and the same
widths (92 -> 64 atom features, 41 Gaussians, 3 convolutions, 128 hidden, 1 output):

- ``torch``: zoo.models.cgcnn.torch (the original CGCNN, batch norm over edges and atoms);
- ``jax``: zoo.models.cgcnn.jax, batches padded to bucketed sizes (``pad_batch``), one jitted train
  step; the number of compilations is reported;
- ``pyg``: torch_geometric.nn.CGConv(64, dim=41, batch_norm=True) x 3 + global_mean_pool + the same
  head, fed through torch_geometric's own DataLoader. It computes the atom table lookup and the
  Gaussian expansion inside the model like ours, so all three do the same work per step. CGConv is
  not the original layer (no batch norm over edges, no softplus after the residual), so it is a
  speed reference, not a reproduction.

Writes ``results/benchmarks/cgcnn_throughput.json`` (atomically) with machine information, and
prints a table. Skips cleanly (exit 0) when ``../shared/data/matbench_jdft2d`` is absent.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from tqdm import tqdm

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.common import JDFT2D as DATA, load_jdft2d, machine_info  # noqa: E402

OUT = ROOT / "results" / "benchmarks" / "cgcnn_throughput.json"


# --------------------------------------------------------------------------- data

def featurise(structures, ids, config):
    from zoo.graphs import build_graphs

    t0 = time.perf_counter()
    graphs, failures = build_graphs(structures, config.graph_spec(), ids=ids, cache=False, progress=True, on_error="skip")
    seconds = time.perf_counter() - t0
    keep = [k for k, g in enumerate(graphs) if g is not None]
    return [graphs[k] for k in keep], keep, failures, seconds


def epoch_batches(n: int, batch_size: int, rng: np.random.Generator):
    order = rng.permutation(n)
    return [order[k : k + batch_size] for k in range(0, n, batch_size)]


# --------------------------------------------------------------------------- models
def run_torch(graphs, y, args, config, device):
    import torch

    from zoo.backend.torch import to_torch
    from zoo.graphs import collate
    from zoo.models.cgcnn.torch import CGCNN

    torch.manual_seed(0)
    t_build = time.perf_counter()
    model = CGCNN(config).to(device).train()
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    build_s = time.perf_counter() - t_build
    rng = np.random.default_rng(0)

    def epoch():
        for idx in epoch_batches(len(graphs), args.batch_size, rng):
            batch = to_torch(collate([graphs[i] for i in idx], y=y[idx]), device=device)
            opt.zero_grad(set_to_none=True)
            loss = torch.nn.functional.mse_loss(model(batch), batch["y"])
            loss.backward()
            opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        return loss.item()

    return epoch_timings("torch", epoch, args.epochs, build_s)


def run_jax(graphs, y, args, config):
    import jax
    import jax.numpy as jnp
    import optax

    from zoo.backend.jax import to_jax
    from zoo.graphs import bucket_size, collate, pad_batch
    from zoo.models.cgcnn.jax import CGCNN

    module = CGCNN(config)
    tx = optax.adam(args.lr)
    compilations = []

    def loss_fn(params, batch_stats, batch):
        out, updates = module.apply({"params": params, "batch_stats": batch_stats}, batch, train=True, mutable=["batch_stats"])
        mask = batch["graph_mask"].astype(out.dtype)  # padding graphs do not count
        loss = jnp.sum(mask * (out - batch["y"]) ** 2) / jnp.sum(mask)
        return loss, updates["batch_stats"]

    @jax.jit
    def train_step(params, batch_stats, opt_state, batch):
        compilations.append(1)  # runs once per trace, i.e. once per compiled shape bucket
        (loss, batch_stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, batch_stats, batch)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), batch_stats, opt_state, loss

    def padded(idx):
        # n_graphs fixed at batch size + 1 (the last slot is always padding), atoms rounded up to a bucket,
        # and edges tied to the atom bucket: the CGCNN rule gives every atom at most max_neighbors edges,
        # so max_neighbors * atoms always fits and only one size varies (fewer compilations).
        b = collate([graphs[i] for i in idx], y=y[idx])
        n_nodes = bucket_size(b["numbers"].shape[0] + 1)
        return to_jax(pad_batch(b, n_nodes=n_nodes, n_edges=config.max_neighbors * n_nodes, n_graphs=args.batch_size + 1))

    t_build = time.perf_counter()
    rng = np.random.default_rng(0)
    variables = jax.jit(module.init)(jax.random.PRNGKey(0), padded(np.arange(min(args.batch_size, len(graphs)))))
    params, batch_stats = variables["params"], variables["batch_stats"]
    opt_state = tx.init(params)
    jax.block_until_ready(params)
    build_s = time.perf_counter() - t_build
    state = {"params": params, "batch_stats": batch_stats, "opt_state": opt_state}

    def epoch():
        loss = None
        for idx in epoch_batches(len(graphs), args.batch_size, rng):
            state["params"], state["batch_stats"], state["opt_state"], loss = train_step(
                state["params"], state["batch_stats"], state["opt_state"], padded(idx)
            )
        return float(jax.block_until_ready(loss))

    result = epoch_timings("jax", epoch, args.epochs, build_s, compilations=lambda: len(compilations))
    result["jax_backend"] = jax.default_backend()
    return result


def run_pyg(graphs, y, args, config, device):
    import torch
    import torch.nn.functional as F
    from torch_geometric.data import Data
    from torch_geometric.loader import DataLoader
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
    loader = DataLoader(data, batch_size=args.batch_size, shuffle=True, generator=torch.Generator().manual_seed(0))
    build_s = time.perf_counter() - t_build

    def epoch():
        for batch in loader:
            batch = batch.to(device, non_blocking=True)
            opt.zero_grad(set_to_none=True)
            loss = F.mse_loss(model(batch), batch.y)
            loss.backward()
            opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        return loss.item()

    return epoch_timings("pyg", epoch, args.epochs, build_s)


def epoch_timings(name, epoch, n_epochs, build_s, compilations=None):
    """Time ``n_epochs`` calls of ``epoch``; steady state = every epoch after the first.

    For jax, ``compilations()`` counts traces so far; epochs that still compiled a new shape bucket
    are left out of the steady state when at least one epoch did not compile.
    """
    times, losses, compiled = [], [], []
    for _ in tqdm(range(n_epochs), desc=f"{name} epochs"):
        before = compilations() if compilations else 0
        t0 = time.perf_counter()
        losses.append(epoch())
        times.append(time.perf_counter() - t0)
        compiled.append((compilations() if compilations else 0) - before)
    steady = [t for t, c in zip(times[1:], compiled[1:]) if c == 0] or times[1:] or times
    out = {"build_s": build_s, "epoch_s": times, "median_steady_epoch_s": statistics.median(steady),
           "n_steady_epochs": len(steady), "final_loss": losses[-1]}
    if compilations:
        out["compilations"] = sum(compiled)
        out["compilations_per_epoch"] = compiled
    return out


# --------------------------------------------------------------------------- report

def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=int, default=6, help="epochs per model; the first is excluded from the median")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--limit", type=int, default=None, help="use only the first N structures (smoke test)")
    p.add_argument("--models", default="torch,jax,pyg")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"], help="torch device (jax uses its default backend)")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--out", type=Path, default=OUT)
    args = p.parse_args(argv)
    if args.epochs < 1:
        p.error("--epochs must be >= 1")
    if not DATA.exists():
        print(f"skipping: {DATA} not found (the benchmark reads matbench_jdft2d from ../shared/data)")
        return 0

    import torch

    from zoo.core.io import write_json
    from zoo.models.cgcnn import CGCNNConfig

    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else ("cpu" if args.device == "auto" else args.device))
    config = CGCNNConfig()
    structures, y, ids = load_jdft2d(args.limit)
    graphs, keep, failures, featurise_s = featurise(structures, ids, config)
    y = y[keep]
    y = ((y - y.mean()) / y.std()).astype(np.float32)  # standardised: the loss scale does not matter here

    runners = {
        "torch": lambda: run_torch(graphs, y, args, config, device),
        "jax": lambda: run_jax(graphs, y, args, config),
        "pyg": lambda: run_pyg(graphs, y, args, config, device),
    }
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = set(models) - set(runners)
    if unknown:
        p.error(f"unknown models {sorted(unknown)}; choose from {sorted(runners)}")
    results = {}
    for name in models:
        r = runners[name]()
        r["structures_per_s"] = len(graphs) / r["median_steady_epoch_s"]
        r["time_to_first_epoch_s"] = featurise_s + r["build_s"] + r["epoch_s"][0]
        results[name] = r

    report = {
        "benchmark": "cgcnn_throughput",
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "dataset": "matbench_jdft2d",
        "n_structures": len(graphs),
        "n_failed": len(failures),
        "failures": failures,
        "batch_size": args.batch_size,
        "epochs": args.epochs,
        "featurise_s": featurise_s,
        "config": {k: getattr(config, k) for k in config.__dataclass_fields__},
        "machine": machine_info(str(device)),
        "results": results,
    }
    write_json(args.out, report)

    print(f"\nCGCNN training throughput, matbench_jdft2d ({len(graphs)} structures, batch {args.batch_size}, "
          f"{args.epochs} epochs, featurisation {featurise_s:.1f} s)")
    print(f"{'model':<8}{'structures/s':>14}{'median epoch s':>16}{'first epoch s':>15}{'to 1st epoch s':>16}{'compiles':>10}")
    for name, r in results.items():
        print(f"{name:<8}{r['structures_per_s']:>14.1f}{r['median_steady_epoch_s']:>16.3f}{r['epoch_s'][0]:>15.2f}"
              f"{r['time_to_first_epoch_s']:>16.2f}{r.get('compilations', ''):>10}")
    print(f"written {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
