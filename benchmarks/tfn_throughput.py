"""Tensor field network training throughput on matbench_jdft2d: ours (torch eager, torch.compile, JAX jit)
side by side with e3nn's reference network ``e3nn.nn.models.gate_points_2101.Network``.

    .venv/bin/python benchmarks/tfn_throughput.py [--epochs 4] [--batch-size 32] [--limit N]
        [--models torch,compile,jax,e3nn] [--device auto|cpu|cuda] [--ref-mul equal|N] [--profile-steps 5]

Every model trains on the same periodic graphs (every neighbour within 5 Å, ``TFNConfig().graph_spec()``),
with an MSE loss on the standardised exfoliation energy and Adam, in float32, on the same shuffled
batches (``common.epoch_plan``). A step = batching (collate, padding for JAX, host -> device copy),
forward, backward, optimiser update. structures/s = training structures / median wall time of the
steady-state epochs (all but the first; for JAX every padded shape the trainer's
``zoo.graphs.BucketPolicy`` gives the planned batches is compiled, and run once, ahead of time, and that
time is reported on its own as compile_s).

Models:
- ``torch``: ``zoo.models.build("tfn", "torch")`` (default TFNConfig: 32x0e+32x0o+8x1e+8x1o+8x2e+8x2o,
  lmax 2, 3 gated layers + read-out, 8 Bessel functions, radial MLP 2x64), eager;
- ``compile``: the same module through ``torch.compile(dynamic=True)`` (first epoch includes compilation);
- ``jax``: ``zoo.models.build("tfn", "jax")``, one jitted train step per padded shape;
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

import dataclasses
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `python benchmarks/<script>.py`: the benchmarks package

from benchmarks.common import (  # noqa: E402
    RESULTS,
    ROOT,
    data_missing,
    epoch_plan,
    epoch_timings,
    featurise,
    load_graphs,
    load_jdft2d,
    machine_info,
    model_list,
    padded_sizes,
    parser,
    print_table,
    report_header,
    run_worker,
    save_graphs,
    shape_key,
    standardised,
    torch_device,
    worker_options,
)
from benchmarks.spread import interleaved, summarise  # noqa: E402
from zoo.core.io import write_json  # noqa: E402
from zoo.graphs import collate  # noqa: E402
from zoo.models import build, config_from_dict, config_to_dict, make_config  # noqa: E402
from zoo.models.tfn import estimate_avg_num_neighbors, n_parameters  # noqa: E402

OUT = RESULTS / "tfn_throughput.json"
MODELS = ("torch", "compile", "jax", "e3nn")


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
    code = ("import json, sys; sys.path.insert(0, sys.argv[1]); from benchmarks.tfn_throughput import equal_size_multiplicity; "
            "from zoo.models import config_from_dict; print(equal_size_multiplicity(config_from_dict('tfn', json.loads(sys.argv[2]))))")
    out = subprocess.run([sys.executable, "-c", code, str(ROOT), json.dumps(config_to_dict(config))], check=True, capture_output=True, text=True)
    return int(out.stdout.strip().splitlines()[-1])


def run_torch_family(name, graphs, y, plan, args, config, device):
    import torch

    from zoo.backend.torch import to_torch

    torch.manual_seed(0)
    base_rss = rss_mb()
    t0 = time.perf_counter()
    model = reference_model(config, int(args.ref_mul)) if name == "e3nn" else build("tfn", "torch", config)
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

    def epoch(k, batches):
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

    module = build("tfn", "jax", config)
    tx = optax.adam(args.lr)
    sizes = padded_sizes(graphs, y, plan, args.batch_size)

    def padded(idx, shape):
        return to_jax(collate([graphs[i] for i in idx], y=y[idx]).pad(shape))

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
    first = padded(plan[0][0], sizes[0][0])
    params = jax.jit(lambda key, b: module.init(key, b, train=False))(jax.random.PRNGKey(0), first)["params"]
    opt_state = tx.init(params)
    jax.block_until_ready(params)
    build_s = time.perf_counter() - t0

    # Ahead-of-time compilation of every padded shape the planned epochs use, timed on its own.
    examples = {}
    for batches, shapes in zip(plan, sizes):
        for idx, shape in zip(batches, shapes):
            examples.setdefault(shape_key(shape), (idx, shape))
    jitted = jax.jit(train_step, donate_argnums=(0, 1))
    compiled, compile_s = {}, []
    for key, (idx, shape) in tqdm(sorted(examples.items()), desc="jax compile"):
        t1 = time.perf_counter()
        batch = padded(idx, shape)
        compiled[key] = jitted.lower(params, opt_state, batch).compile()
        # The first run of an XLA executable is several times slower than the next ones (runtime set-up);
        # do it here, on copies (the step donates its inputs), so it counts as compilation, not training.
        copies = jax.tree_util.tree_map(jnp.copy, (params, opt_state))
        jax.block_until_ready(compiled[key](*copies, batch))
        compile_s.append(time.perf_counter() - t1)
    state = {"params": params, "opt_state": opt_state}

    def epoch(k, batches):
        loss = None
        for idx, shape in zip(batches, sizes[k]):
            state["params"], state["opt_state"], loss = compiled[shape_key(shape)](state["params"], state["opt_state"],
                                                                                   padded(idx, shape))
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
    graphs, y = load_graphs(args.graphs)
    config = config_from_dict("tfn", json.loads(args.config_json))
    device = torch_device(args.device)
    plan = epoch_plan(len(graphs), args.batch_size, args.epochs)
    if args.worker == "jax":
        res = run_jax(graphs, y, plan, args, config)
    else:
        res = run_torch_family(args.worker, graphs, y, plan, args, config, device)
    res["structures_per_s"] = len(graphs) / res["median_steady_epoch_s"]
    res["torch_device"] = str(device)
    write_json(args.result, res)
    return 0


# -------------------------------------------------------------------------------------------- main
def main(argv=None) -> int:
    p = parser(__doc__, epochs=4, batch_size=32, models=MODELS, lr=1e-3, out=OUT)
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"], help="torch device (jax uses its default backend)")
    p.add_argument("--ref-mul", default="equal",
                   help="multiplicity of every irrep in the e3nn reference, or 'equal' (default): the one whose "
                        "parameter count is closest to ours")
    p.add_argument("--hidden-irreps", default=None, help="override our hidden irreps (default: TFNConfig's)")
    p.add_argument("--profile-steps", type=int, default=5, help="training steps profiled per torch model (0: none)")
    p.add_argument("--repeats", type=int, default=3, help="runs of every model, interleaved (median and spread reported)")
    worker_options(p, MODELS)
    args = p.parse_args(argv)
    if args.worker:
        return worker(args)
    if args.epochs < 1:
        p.error("--epochs must be >= 1")
    models = model_list(p, args.models, MODELS)
    if data_missing():
        return 0

    config = make_config("tfn") if args.hidden_irreps is None else make_config("tfn", hidden_irreps=args.hidden_irreps)
    structures, y, ids = load_jdft2d(args.limit)
    graphs, keep, failures, featurise_s = featurise(structures, ids, config.graph_spec())
    y = standardised(y[keep])
    config = dataclasses.replace(config, avg_num_neighbors=estimate_avg_num_neighbors(graphs))
    if args.ref_mul == "equal":
        args.ref_mul = equal_size_multiplicity_subprocess(config)
    args.ref_mul = int(args.ref_mul)
    stats = {
        "atoms_per_structure_mean": float(np.mean([g.n_nodes for g in graphs])),
        "edges_per_structure_mean": float(np.mean([g.n_edges for g in graphs])),
        "avg_num_neighbors": config.avg_num_neighbors,
    }

    with tempfile.TemporaryDirectory(prefix="tfn_bench_") as tmp:
        gpath = Path(tmp) / "graphs.npz"
        save_graphs(gpath, graphs, y)

        def measured(name):
            return run_worker(__file__, [
                "--worker", name, "--graphs", str(gpath), "--config-json", json.dumps(config_to_dict(config)),
                "--epochs", str(args.epochs), "--batch-size", str(args.batch_size), "--device", args.device,
                "--ref-mul", str(args.ref_mul), "--profile-steps", str(args.profile_steps), "--lr", str(args.lr)],
                Path(tmp) / f"{name}.json")

        rounds, load = interleaved({name: (lambda name=name: measured(name)) for name in models}, args.repeats)
    results = {name: summarise(rs) for name, rs in rounds.items()}

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
        **report_header("tfn_throughput", args, len(graphs), failures, featurise_s),
        "graph_stats": stats,
        "config": config_to_dict(config),
        "n_params": {"ours": n_parameters(config), "e3nn_reference": results.get("e3nn", {}).get("n_params")},
        "reference": {"class": "e3nn.nn.models.gate_points_2101.Network", "mul": args.ref_mul, "lmax": config.lmax, "layers": config.n_layers},
        "ratios": ratios,  # of the medians over the repeats
        "repeats": args.repeats,
        "load_average": load,
        "targets": {"torch_over_e3nn_reference": 2.0, "jax_over_torch_eager": 1.3},
        # libgomp's barrier policy changes torch eager on 2 cores by ~1.5x (threads spin or sleep between
        # the many small kernels); every model of one report runs under the same one
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        "machine": machine_info(),
        "results": results,
    }
    write_json(args.out, report)

    shown = {name: r if "error" in r else {**r, "first_epoch_s": r["epoch_s"][0],
                                            "compile_s": r.get("compile_s", r.get("compile_s_estimate")),
                                            "peak_mb": r.get("peak_device_mb", r.get("peak_rss_mb"))}
             for name, r in results.items()}
    print_table(f"TFN training throughput, matbench_jdft2d ({len(graphs)} structures, batch {args.batch_size}, "
                f"{args.epochs} epochs, {stats['edges_per_structure_mean']:.0f} edges/structure)",
                [("params", "n_params", 9, "d"), ("structures/s", "structures_per_s", 14, ".1f"),
                 ("median epoch s", "median_steady_epoch_s", 16, ".3f"), ("first epoch s", "first_epoch_s", 15, ".2f"),
                 ("compile s", "compile_s", 11, ".1f"), ("peak MB", "peak_mb", 10, ".0f")], shown)
    print(f"medians of {args.repeats} interleaved repeats; load average {load['before'][0]:.1f} before, {load['after'][0]:.1f} after")
    for name, r in results.items():
        if "structures_per_s_spread" in r:
            sp = r["structures_per_s_spread"]
            print(f"{name}: structures/s median {sp['median']:.1f}, IQR {sp['q1']:.1f}-{sp['q3']:.1f}, min-max {sp['min']:.1f}-{sp['max']:.1f}")
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
