"""Tensor field network training throughput on matbench_jdft2d: ours (torch eager, torch.compile, JAX jit)
side by side with e3nn's reference network ``e3nn.nn.models.gate_points_2101.Network``.

    .venv/bin/python benchmarks/tfn_throughput.py [--epochs 4] [--batch-size 32] [--limit N]
        [--models torch,compile,jax,e3nn] [--device auto|cpu|cuda] [--ref-mul equal|N] [--profile-steps 5]

Every model trains on the same periodic graphs (every neighbour within 5 Å, ``TFNConfig().graph_spec()``),
with an MSE loss on the standardised exfoliation energy and Adam, in float32. A step = batching (collate,
padding for JAX, host -> device copy), forward, backward, optimiser update. structures/s = training
structures / median wall time of the steady-state epochs (all but the first; for JAX every shape
bucket is compiled, and run once, ahead of time, and that time is reported on its own as compile_s).

Models:
- ``torch``: zoo.models.tfn.torch (default TFNConfig: 32x0e+32x0o+8x1e+8x1o+8x2e+8x2o, lmax 2, 3 gated
  layers + read-out, 8 Bessel functions, radial MLP 2x64), eager;
- ``compile``: the same module through ``torch.compile(dynamic=True)`` (first epoch includes compilation);
- ``jax``: zoo.models.tfn.jax, one jitted train step per padded shape bucket (``pad_batch``);
- ``e3nn``: ``gate_points_2101.Network`` with multiplicity ``--ref-mul`` for every irrep
  0e,0o,1e,1o,2e,2o, lmax 2, 3 gated layers, 8 Gaussians, radial MLP 2x64, fed OUR periodic edges:
  its forward builds a non-periodic radius graph itself (``radius_graph``, which would also need
  pyg-lib in its fast path), so a subclass replaces only that part and calls its layers with our
  ``senders``/``receivers``/edge vectors. Species enter through the same nn.Embedding(101, 32) as ours
  (as its ``irreps_in`` "32x0e"); node attributes are the constant "0e". Both pool with a mean.

The parameter counts of both networks are reported. ``--ref-mul equal`` (default) picks the
multiplicity whose parameter count is closest to ours (13 for the default config: 85.9k vs 85.1k);
``--ref-mul 32`` is the size the issue quotes. Each model runs in its own subprocess, so
its peak memory is its own: ``torch.cuda.max_memory_allocated`` / JAX ``peak_bytes_in_use`` on GPU,
peak resident set size (ru_maxrss) on CPU. After timing, ``--profile-steps`` steps of the torch models
run under ``torch.profiler`` and the top operators by self time are stored ("where the time goes").

Writes ``results/benchmarks/tfn_throughput.json`` atomically and prints a table. Skips cleanly (exit 0)
when ``../shared/data/matbench_jdft2d`` is absent.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from tqdm import tqdm

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.common import JDFT2D as DATA, load_jdft2d, machine_info  # noqa: E402

OUT = ROOT / "results" / "benchmarks" / "tfn_throughput.json"
MODELS = ("torch", "compile", "jax", "e3nn")
GRAPH_KEYS = ("numbers", "positions", "lattice", "senders", "receivers", "shifts", "edge_vectors", "distances")


# --------------------------------------------------------------------------------------------- data

def save_graphs(path: Path, graphs, y: np.ndarray) -> None:
    """All graphs in one npz (concatenated arrays + per-graph counts); no pickles."""
    arrays = {k: np.concatenate([getattr(g, k) for g in graphs]) for k in GRAPH_KEYS if k != "lattice"}
    arrays["lattice"] = np.stack([g.lattice for g in graphs])
    arrays["n_nodes"] = np.array([g.n_nodes for g in graphs])
    arrays["n_edges"] = np.array([g.n_edges for g in graphs])
    arrays["y"] = y
    np.savez(path, **arrays)


def load_graphs(path: Path):
    from zoo.graphs import CrystalGraph

    z = np.load(path, allow_pickle=False)
    no = np.concatenate([[0], np.cumsum(z["n_nodes"])])
    eo = np.concatenate([[0], np.cumsum(z["n_edges"])])
    graphs = []
    for k in range(len(z["n_nodes"])):
        n, e = slice(no[k], no[k + 1]), slice(eo[k], eo[k + 1])
        graphs.append(
            CrystalGraph(
                numbers=z["numbers"][n], positions=z["positions"][n], lattice=z["lattice"][k], senders=z["senders"][e],
                receivers=z["receivers"][e], shifts=z["shifts"][e], edge_vectors=z["edge_vectors"][e], distances=z["distances"][e],
            )
        )
    return graphs, z["y"].astype(np.float32)


def epoch_plan(n: int, batch_size: int, epochs: int, seed: int = 0) -> list[list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    plan = []
    for _ in range(epochs):
        order = rng.permutation(n)
        plan.append([order[k : k + batch_size] for k in range(0, n, batch_size)])
    return plan


# ----------------------------------------------------------------------------------------- helpers
def rss_mb() -> float:
    """Current resident set size (MB), from /proc (Linux); NaN elsewhere."""
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return float("nan")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def epoch_timings(name, epoch, plan):
    times, losses = [], []
    for k, batches in enumerate(tqdm(plan, desc=f"{name} epochs")):
        t0 = time.perf_counter()
        losses.append(epoch(batches))
        times.append(time.perf_counter() - t0)
    steady = times[1:] or times
    return {"epoch_s": times, "median_steady_epoch_s": statistics.median(steady), "n_steady_epochs": len(steady), "final_loss": losses[-1]}


def torch_profile(step, batches, device, top: int = 15) -> list[dict]:
    """Top operators by self time over a few training steps (device time on CUDA, CPU time otherwise)."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=acts) as prof:
        for idx in batches:
            step(idx)
        if device.type == "cuda":
            torch.cuda.synchronize()
    events = prof.key_averages()
    on_gpu = device.type == "cuda"

    def self_us(e):
        return getattr(e, "self_device_time_total", getattr(e, "self_cuda_time_total", 0.0)) if on_gpu else e.self_cpu_time_total

    total = sum(self_us(e) for e in events) or 1.0
    rows = sorted(events, key=self_us, reverse=True)[:top]
    return [{"op": e.key, "calls": e.count, "self_ms": self_us(e) / 1e3, "self_pct": 100.0 * self_us(e) / total} for e in rows]


# ------------------------------------------------------------------------------------------ models
def reference_model(config, mul: int):
    """e3nn's gate_points_2101.Network on our periodic edges (see the module docstring)."""
    import torch
    from e3nn import o3
    from e3nn.math import soft_one_hot_linspace
    from e3nn.nn.models.gate_points_2101 import Network, smooth_cutoff

    from zoo.backend.torch import segment_mean

    lmax = config.lmax
    hidden = "+".join(f"{mul}x{l}{p}" for l in range(lmax + 1) for p in "eo")

    class PeriodicGatePoints(Network):
        def __init__(self):
            super().__init__(
                irreps_in=f"{config.embed_dim}x0e",
                irreps_hidden=hidden,
                irreps_out="1x0e",
                irreps_node_attr=None,
                irreps_edge_attr=o3.Irreps.spherical_harmonics(lmax),
                layers=config.n_layers,
                max_radius=config.radius,
                number_of_basis=config.n_basis,
                radial_layers=config.radial_layers,
                radial_neurons=config.radial_hidden,
                num_neighbors=config.avg_num_neighbors,
                num_nodes=1.0,
                reduce_output=False,
            )
            self.embedding = torch.nn.Embedding(101, config.embed_dim)

        def forward(self, batch):  # replaces only the graph construction of the reference forward
            pos, lat = batch["positions"], batch["lattice"]
            src, dst = batch["senders"], batch["receivers"]  # j (neighbour) -> i (centre), as the reference
            vec = pos[src] - pos[dst] + (batch["shifts"][:, :, None] * lat[batch["edge_graph"]]).sum(1)
            length = vec.norm(dim=1)
            sh = o3.spherical_harmonics(self.irreps_edge_attr, vec, True, normalization="component")
            emb = soft_one_hot_linspace(length, 0.0, self.max_radius, self.number_of_basis, basis="gaussian", cutoff=False)
            emb = emb.mul(self.number_of_basis**0.5)
            edge_attr = smooth_cutoff(length / self.max_radius)[:, None] * sh
            x = self.embedding(batch["numbers"])
            z = pos.new_ones((pos.shape[0], 1))
            for lay in self.layers:
                x = lay(x, z, src, dst, edge_attr, emb)
            return segment_mean(x, batch["node_graph"], lat.shape[0])[:, 0]

    return PeriodicGatePoints()


def reference_n_params(config, mul: int) -> int:
    return sum(p.numel() for p in reference_model(config, mul).parameters())


def equal_size_multiplicity(config) -> int:
    """The reference multiplicity whose parameter count is closest to our model's (the count grows with mul)."""
    from zoo.models.tfn import n_parameters

    ours, best = n_parameters(config), None
    for mul in range(1, 129):
        n = reference_n_params(config, mul)
        if best is None or abs(n - ours) < abs(best[1] - ours):
            best = (mul, n)
        if n > ours:
            break
    return best[0]


def equal_size_multiplicity_subprocess(config) -> int:
    """``equal_size_multiplicity`` in a child process: building torch modules here would start this process's
    OpenMP threads, which with OMP_WAIT_POLICY=ACTIVE then spin on the cores the timed workers need."""
    from zoo.models import config_to_dict

    code = ("import json, sys; sys.path.insert(0, sys.argv[1]); from benchmarks.tfn_throughput import equal_size_multiplicity; "
            "from zoo.models.tfn import TFNConfig; print(equal_size_multiplicity(TFNConfig(**json.loads(sys.argv[2]))))")
    out = subprocess.run([sys.executable, "-c", code, str(ROOT), json.dumps(config_to_dict(config))], check=True, capture_output=True, text=True)
    return int(out.stdout.strip().splitlines()[-1])


def run_torch_family(name, graphs, y, plan, args, config, device):
    import torch

    from zoo.backend.torch import to_torch
    from zoo.graphs import collate

    torch.manual_seed(0)
    base_rss = rss_mb()
    t0 = time.perf_counter()
    if name == "e3nn":
        model = reference_model(config, int(args.ref_mul))
    else:
        from zoo.models.tfn.torch import Model

        model = Model(config)
    model = model.to(device).train()
    n_params = sum(p.numel() for p in model.parameters())
    fwd = torch.compile(model, dynamic=True) if name == "compile" else model
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    build_s = time.perf_counter() - t0
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)

    def step(idx):
        batch = to_torch(collate([graphs[i] for i in idx], y=y[idx]), device=device)
        opt.zero_grad(set_to_none=True)
        loss = torch.nn.functional.mse_loss(fwd(batch), batch["y"])
        loss.backward()
        opt.step()
        return loss

    def epoch(batches):
        for idx in batches:
            loss = step(idx)
        if device.type == "cuda":
            torch.cuda.synchronize()
        return float(loss.item())

    out = epoch_timings(name, epoch, plan)
    out.update(build_s=build_s, n_params=n_params, baseline_rss_mb=base_rss, peak_rss_mb=peak_rss_mb())
    if name == "compile":
        out["compile_s_estimate"] = out["epoch_s"][0] - out["median_steady_epoch_s"]  # first epoch also compiles
        try:
            from torch._dynamo.utils import counters

            out["dynamo_unique_graphs"] = int(counters["stats"]["unique_graphs"])
        except Exception:  # noqa: BLE001 - informational only
            pass
    if device.type == "cuda":
        out["peak_device_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
    if args.profile_steps > 0 and name != "compile":
        out["profile_top_ops"] = torch_profile(step, plan[0][: args.profile_steps], device)
    return out


def run_jax(graphs, y, plan, args, config):
    import jax
    import jax.numpy as jnp
    import optax

    from zoo.backend.jax import to_jax
    from zoo.graphs import bucket_size, collate, pad_batch
    from zoo.models.tfn import n_parameters
    from zoo.models.tfn.jax import Model

    module = Model(config)
    tx = optax.adam(args.lr)
    G = args.batch_size + 1  # the last graph slot is always padding

    def padded(idx):
        b = collate([graphs[i] for i in idx], y=y[idx])
        return pad_batch(b, n_graphs=G)

    def shape_of(idx):
        n = sum(graphs[i].n_nodes for i in idx)
        e = sum(graphs[i].n_edges for i in idx)
        return bucket_size(n + 1), bucket_size(e + 1)

    def loss_fn(params, batch):
        out = module.apply({"params": params}, batch, train=True)
        mask = batch["graph_mask"].astype(out.dtype)  # padding graphs do not count
        return jnp.sum(mask * (out - batch["y"]) ** 2) / jnp.sum(mask)

    def train_step(params, opt_state, batch):
        loss, grads = jax.value_and_grad(loss_fn)(params, batch)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    base_rss = rss_mb()
    t0 = time.perf_counter()
    first = to_jax(padded(plan[0][0]))
    params = jax.jit(module.init)(jax.random.PRNGKey(0), first)["params"]
    opt_state = tx.init(params)
    jax.block_until_ready(params)
    build_s = time.perf_counter() - t0

    # Ahead-of-time compilation of every shape bucket the planned epochs use, timed on its own.
    examples = {}
    for batches in plan:
        for idx in batches:
            examples.setdefault(shape_of(idx), idx)
    jitted = jax.jit(train_step, donate_argnums=(0, 1))
    compiled, compile_s = {}, []
    for shape, idx in tqdm(sorted(examples.items()), desc="jax compile"):
        t1 = time.perf_counter()
        batch = to_jax(padded(idx))
        compiled[shape] = jitted.lower(params, opt_state, batch).compile()
        # The first run of an XLA executable is several times slower than the next ones (runtime set-up);
        # do it here, on copies (the step donates its inputs), so it counts as compilation, not training.
        copies = jax.tree_util.tree_map(jnp.copy, (params, opt_state))
        jax.block_until_ready(compiled[shape](*copies, batch))
        compile_s.append(time.perf_counter() - t1)
    state = {"params": params, "opt_state": opt_state}

    def epoch(batches):
        loss = None
        for idx in batches:
            state["params"], state["opt_state"], loss = compiled[shape_of(idx)](state["params"], state["opt_state"], to_jax(padded(idx)))
        return float(jax.block_until_ready(loss))

    out = epoch_timings("jax", epoch, plan)
    out.update(build_s=build_s, n_params=n_parameters(config), compile_s=sum(compile_s), n_compilations=len(compiled),
               compile_s_each=compile_s, baseline_rss_mb=base_rss, peak_rss_mb=peak_rss_mb(), jax_backend=jax.default_backend())
    try:
        stats = jax.devices()[0].memory_stats() or {}
        if "peak_bytes_in_use" in stats:
            out["peak_device_mb"] = stats["peak_bytes_in_use"] / 2**20
    except Exception:  # noqa: BLE001 - CPU devices have no memory stats
        pass
    return out


# ------------------------------------------------------------------------------------------ worker
def worker(args) -> int:
    import torch

    from zoo.models.tfn import TFNConfig

    graphs, y = load_graphs(args.graphs)
    config = TFNConfig(**json.loads(args.config_json))
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else ("cpu" if args.device == "auto" else args.device))
    plan = epoch_plan(len(graphs), args.batch_size, args.epochs)
    if args.worker == "jax":
        res = run_jax(graphs, y, plan, args, config)
    else:
        res = run_torch_family(args.worker, graphs, y, plan, args, config, device)
    res["structures_per_s"] = len(graphs) / res["median_steady_epoch_s"]
    res["torch_device"] = str(device)
    from zoo.core.io import write_json

    write_json(args.result, res)
    return 0


# -------------------------------------------------------------------------------------------- main

def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=int, default=4, help="epochs per model; the first is excluded from the median")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--limit", type=int, default=None, help="use only the first N structures (smoke test)")
    p.add_argument("--models", default=",".join(MODELS), help=f"comma-separated subset of {MODELS}")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"], help="torch device (jax uses its default backend)")
    p.add_argument("--ref-mul", default="equal",
                   help="multiplicity of every irrep in the e3nn reference, or 'equal' (default): the one whose "
                        "parameter count is closest to ours")
    p.add_argument("--hidden-irreps", default=None, help="override our hidden irreps (default: TFNConfig's)")
    p.add_argument("--profile-steps", type=int, default=5, help="training steps profiled per torch model (0: none)")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--out", type=Path, default=OUT)
    p.add_argument("--worker", choices=MODELS, help=argparse.SUPPRESS)
    p.add_argument("--graphs", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--config-json", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        return worker(args)
    if args.epochs < 1:
        p.error("--epochs must be >= 1")
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = set(models) - set(MODELS)
    if unknown:
        p.error(f"unknown models {sorted(unknown)}; choose from {MODELS}")
    if not DATA.exists():
        print(f"skipping: {DATA} not found (the benchmark reads matbench_jdft2d from ../shared/data)")
        return 0

    import dataclasses

    from zoo.graphs import build_graphs
    from zoo.core.io import write_json
    from zoo.models import config_to_dict
    from zoo.models.tfn import TFNConfig, estimate_avg_num_neighbors, n_parameters

    config = TFNConfig() if args.hidden_irreps is None else TFNConfig(hidden_irreps=args.hidden_irreps)
    structures, y, ids = load_jdft2d(args.limit)
    t0 = time.perf_counter()
    graphs, failures = build_graphs(structures, config.graph_spec(), ids=ids, cache=False, progress=True, on_error="skip")
    featurise_s = time.perf_counter() - t0
    keep = [k for k, g in enumerate(graphs) if g is not None]
    graphs = [graphs[k] for k in keep]
    y = y[keep]
    y = ((y - y.mean()) / y.std()).astype(np.float32)  # standardised: the loss scale does not matter here
    config = dataclasses.replace(config, avg_num_neighbors=estimate_avg_num_neighbors(graphs))
    if args.ref_mul == "equal":
        args.ref_mul = equal_size_multiplicity_subprocess(config)
    args.ref_mul = int(args.ref_mul)
    stats = {
        "atoms_per_structure_mean": float(np.mean([g.n_nodes for g in graphs])),
        "edges_per_structure_mean": float(np.mean([g.n_edges for g in graphs])),
        "avg_num_neighbors": config.avg_num_neighbors,
    }

    results = {}
    with tempfile.TemporaryDirectory(prefix="tfn_bench_") as tmp:
        gpath = Path(tmp) / "graphs.npz"
        save_graphs(gpath, graphs, y)
        for name in models:
            rpath = Path(tmp) / f"{name}.json"
            cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", name, "--graphs", str(gpath), "--result", str(rpath),
                   "--config-json", json.dumps(config_to_dict(config)), "--epochs", str(args.epochs), "--batch-size", str(args.batch_size),
                   "--device", args.device, "--ref-mul", str(args.ref_mul), "--profile-steps", str(args.profile_steps), "--lr", str(args.lr)]
            print(f"== {name}")
            proc = subprocess.run(cmd, stderr=subprocess.PIPE, text=True)
            if proc.returncode != 0 or not rpath.exists():
                results[name] = {"error": f"exit code {proc.returncode}", "stderr_tail": proc.stderr[-4000:]}
                print(f"   {name} failed (exit {proc.returncode}):\n{proc.stderr[-2000:]}")
            else:
                results[name] = json.loads(rpath.read_text())

    def sps(name):
        return results.get(name, {}).get("structures_per_s")

    ratios = {}
    if sps("torch") and sps("e3nn"):
        ratios["torch_over_e3nn_reference"] = sps("torch") / sps("e3nn")  # target >= 2
    if sps("compile") and sps("e3nn"):
        ratios["compile_over_e3nn_reference"] = sps("compile") / sps("e3nn")
    if sps("jax") and sps("torch"):
        ratios["jax_over_torch_eager"] = sps("jax") / sps("torch")  # target >= 1.3
    report = {
        "benchmark": "tfn_throughput",
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "dataset": "matbench_jdft2d",
        "n_structures": len(graphs),
        "n_failed": len(failures),
        "failures": failures,
        "batch_size": args.batch_size,
        "epochs": args.epochs,
        "featurise_s": featurise_s,
        "graph_stats": stats,
        "config": config_to_dict(config),
        "n_params": {"ours": n_parameters(config), "e3nn_reference": results.get("e3nn", {}).get("n_params")},
        "reference": {"class": "e3nn.nn.models.gate_points_2101.Network", "mul": args.ref_mul, "lmax": config.lmax, "layers": config.n_layers},
        "ratios": ratios,
        "targets": {"torch_over_e3nn_reference": 2.0, "jax_over_torch_eager": 1.3},
        # libgomp's barrier policy changes torch eager on 2 cores by ~1.5x (threads spin or sleep between
        # the many small kernels); every model of one report runs under the same one
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        "machine": machine_info(),
        "results": results,
    }
    write_json(args.out, report)

    print(f"\nTFN training throughput, matbench_jdft2d ({len(graphs)} structures, batch {args.batch_size}, {args.epochs} epochs, "
          f"{stats['edges_per_structure_mean']:.0f} edges/structure)")
    print(f"{'model':<9}{'params':>9}{'structures/s':>14}{'median epoch s':>16}{'first epoch s':>15}{'compile s':>11}{'peak MB':>10}")
    for name, r in results.items():
        if "error" in r:
            print(f"{name:<9}  failed: {r['error']}")
            continue
        comp = r.get("compile_s", r.get("compile_s_estimate"))
        peak = r.get("peak_device_mb", r.get("peak_rss_mb"))
        print(f"{name:<9}{r['n_params']:>9}{r['structures_per_s']:>14.1f}{r['median_steady_epoch_s']:>16.3f}{r['epoch_s'][0]:>15.2f}"
              f"{'' if comp is None else f'{comp:.1f}':>11}{peak:>10.0f}")
    for k, v in ratios.items():
        print(f"{k}: {v:.2f}")
    for name, r in results.items():
        if r.get("profile_top_ops"):
            print(f"\n{name}: top ops by self time")
            for row in r["profile_top_ops"][:8]:
                print(f"   {row['self_pct']:5.1f}%  {row['self_ms']:9.2f} ms  {row['calls']:6d}x  {row['op']}")
    print(f"written {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
