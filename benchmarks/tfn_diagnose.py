"""Why the tensor field network does not beat the floors: measurements, not tuning (issue #11).

    .venv/bin/python benchmarks/tfn_diagnose.py [--quick] [--parts data init overfit variants]
        [--tasks matbench_jdft2d embedded_dielectric] [--seed 0] [--epochs 100] [--variants NAME ...]

Parts (each writes ``results/tfn/diagnosis/<part>_<task>.json``, plots next to them):

- ``data``: the target's distribution (quantiles, skewness, the share of the training-mean floor's MSE
  that the top 5 % of crystals carry); neighbours per atom within the TFN's 5 Å and atoms with none;
  for each crystal the dimensionality of the graph (Larsen et al., pymatgen's
  ``get_dimensionality_larsen`` on the graph's own edges: 3 = the layers are connected, 2 = the graph
  never crosses the van der Waals gap) at 5, 6 and 8 Å and with CGCNN's 12 neighbours within 8 Å;
  how many validation crystals hold an element seen in fewer than 5 training crystals.
- ``init``: one training batch through the untrained model: the features' second moment after every
  layer (per irrep degree l), the gate pre-activations (scalars and sigmoid gates, with the share
  beyond |z| > 4 where the gate saturates), the read-out's output scale against the standardised
  target's (1), and the gradient norm of every layer's parameters.
- ``overfit``: 32 training crystals, full batch, Adam: does the loss go to ~0 (it must, for a network
  of 85k parameters)? The same statistics as ``init`` after training.
- ``variants``: short trainings on fold 0's training set scored on its validation set only (never the
  test set), one change at a time against the default recipe: loss, message normalisation, radius,
  CGCNN's element features as the embedding, longer schedule, and for the dielectric tensor the
  matrix logarithm as the target. Learning curves (train loss, validation MAE per epoch) for each.

The loop here is a small one of its own because the diagnosis needs what the training loop does not
expose (per-layer gradient norms, the activations inside the gates, a reparametrised embedding), but
it trains the way ``zoo train`` does: the same fold and validation split (``zoo.training.data``), target
normaliser, loss (``zoo.nn.losses``), AdamW and LR schedule (``zoo.training.LRSchedule``). Everything
runs in float32 on the CPU, one process; ``--quick`` shrinks every part to a smoke test (~2 min).
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import math
import os
import sys
import time
import warnings
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch: spinning threads on a shared machine

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import machine_info
from zoo.core.io import write_json

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "results" / "tfn" / "diagnosis"
DATA_DIRS = {"matbench_jdft2d": str(ROOT.parent / "shared" / "data" / "matbench_jdft2d")}

# One change at a time against the default recipe (name: model overrides, loss, target, embedding, epochs x).
VARIANTS: dict[str, dict[str, Any]] = {
    "default": {},
    "l1_loss": {"loss": "l1"},
    "lr_5e-3": {"lr": 5e-3},
    "l1_lr_5e-3": {"loss": "l1", "lr": 5e-3},
    "msg_sqrt": {"set": {"message_norm": "sqrt"}},
    "msg_neighbors": {"set": {"message_norm": "neighbors"}},
    "radius_8": {"set": {"radius": 8.0}},
    "cgcnn_embedding": {"embedding": "cgcnn"},
    "epochs_x3": {"epochs_factor": 3},
    "logm_target": {"target": "logm", "tensor_only": True},
    "logm_l1": {"target": "logm", "loss": "l1", "tensor_only": True},
}


# ------------------------------------------------------------------------------------------- data
@functools.lru_cache(maxsize=4)
def _load(task_name: str, radius: float):
    from zoo.models import make_config
    from zoo.training import TrainConfig
    from zoo.training.data import load_fold, resolve_task

    config = TrainConfig(model="tfn", task=task_name, data_dir=DATA_DIRS.get(task_name), progress=False)
    task = resolve_task(config)
    spec = make_config("tfn", radius=radius).with_target(task.spec.target).graph_spec()
    with contextlib.redirect_stderr(open(os.devnull, "w")):  # the graph builder's per-structure warnings
        return task, load_fold(task, 0, config, spec)


def load(task_name: str, radius: float | None = None, overrides: dict | None = None):
    """(task, fold-0 data, model config) exactly as ``zoo train tfn --task TASK`` builds them."""
    from zoo.models import make_config

    kw = dict(overrides or {})
    if radius is not None:
        kw["radius"] = radius
    mc = make_config("tfn", **kw)
    task, data = _load(task_name, mc.radius)
    return task, data, mc.with_target(task.spec.target)


def vacuum_gaps(structures) -> np.ndarray:
    """Å: the widest empty slab along the normal of each cell's a-b plane (a layered bulk crystal: the van
    der Waals gap, ~3 Å; a monolayer in a slab cell: its vacuum)."""
    out = []
    for s in structures:
        lat = s.lattice.matrix
        normal = np.cross(lat[0], lat[1])
        normal /= np.linalg.norm(normal)
        height = abs(lat[2] @ normal)
        z = np.sort((s.cart_coords @ normal) % height)
        out.append(float(np.max(np.diff(np.concatenate([z, [z[0] + height]])))))
    return np.array(out)


def part_data(task_name: str, args) -> dict[str, Any]:
    from pymatgen.analysis.dimensionality import get_dimensionality_larsen
    from pymatgen.analysis.graphs import StructureGraph

    from zoo.graphs import GraphSpec, build_graphs

    _, data, _ = load(task_name)
    y = data.train.y.reshape(len(data.train.y), -1)
    size = np.linalg.norm(y, axis=1) if y.shape[1] > 1 else y[:, 0]
    dev = (y - y.mean(0)) ** 2
    per = dev.sum(1)
    top = per >= np.quantile(per, 0.95)
    out: dict[str, Any] = {
        "task": task_name,
        "n": data.sizes(),
        "target": {
            "quantity": "|T|_F" if y.shape[1] > 1 else "value",
            "quantiles_0_5_25_50_75_95_100": np.quantile(size, [0, 0.05, 0.25, 0.5, 0.75, 0.95, 1.0]).tolist(),
            "skewness": float(((size - size.mean()) ** 3).mean() / size.std() ** 3),
            "share_of_floor_mse_from_top5pct": float(per[top].sum() / per.sum()),
        },
    }
    if y.shape[1] > 1:  # how far from isotropic: the share of |T|^2 outside the trace part
        iso = np.einsum("nii->n", data.train.y)[:, None, None] * np.eye(3) / 3
        out["target"]["anisotropic_share_of_norm2"] = float(((data.train.y - iso) ** 2).sum() / (data.train.y ** 2).sum())
        ev = np.linalg.eigvalsh(data.train.y)
        out["target"]["min_eigenvalue"] = float(ev.min())
        out["target"]["log_eigenvalue_quantiles"] = np.quantile(np.log(ev), [0, 0.05, 0.5, 0.95, 1.0]).tolist()
    graphs = data.train.graphs + data.val.graphs + data.test.graphs
    deg = np.concatenate([np.bincount(g.receivers, minlength=g.n_nodes) for g in graphs])
    out["neighbours_within_5A"] = {
        "per_atom_quantiles_0_5_50_95_100": np.quantile(deg, [0, 0.05, 0.5, 0.95, 1.0]).tolist(),
        "atoms_with_fewer_than_3": float((deg < 3).mean()),
        "crystals_dropped_no_neighbour": len(data.failures),
        "crystals_total": len(graphs) + len(data.failures),
    }
    # Element coverage: validation crystals holding an element seen in fewer than 5 training crystals.
    seen = Counter(z for g in data.train.graphs for z in set(g.numbers.tolist()))
    rare = [any(seen[z] < 5 for z in set(g.numbers.tolist())) for g in data.val.graphs]
    out["elements"] = {"in_training": len(seen), "seen_in_fewer_than_5_training_crystals": sum(v < 5 for v in seen.values()),
                       "val_crystals_with_such_an_element": float(np.mean(rare))}
    # Dimensionality of the graph each rule builds: 3 means every layer is linked to the next.
    structures = data.train.structures + data.val.structures
    gaps = vacuum_gaps(structures)
    out["widest_empty_slab_A"] = {"quantiles_0_5_50_95_100": np.quantile(gaps, [0, 0.05, 0.5, 0.95, 1.0]).tolist(),
                                  "share_above_8A": float((gaps > 8).mean())}
    if args.quick:
        structures = structures[:40]
    ids = [f"s{k}" for k in range(len(structures))]
    dims = {}
    for label, spec in (("radius_5", GraphSpec(rule="radius", radius=5.0)), ("radius_6", GraphSpec(rule="radius", radius=6.0)),
                        ("radius_8", GraphSpec(rule="radius", radius=8.0)),
                        ("cgcnn_12nn_8A", GraphSpec(rule="cgcnn", radius=8.0, max_neighbors=12))):
        with contextlib.redirect_stderr(open(os.devnull, "w")):
            gs, _ = build_graphs(structures, spec, ids=ids, cache=False, progress=False, on_error="skip")
        counts = Counter()
        for s, g in zip(structures, gs):
            if g is None:
                counts["no_graph"] += 1
                continue
            edges = {(int(j), int(i), (0, 0, 0), tuple(int(v) for v in sh)): None
                     for i, j, sh in zip(g.receivers, g.senders, g.shifts) if (int(j), int(i)) != (0, 0) or any(sh)}
            with warnings.catch_warnings():  # pymatgen warns for each edge it holds already (j -> i as i -> j)
                warnings.simplefilter("ignore")
                counts[str(get_dimensionality_larsen(StructureGraph.from_edges(s, edges)))] += 1
        n = sum(counts.values())
        dims[label] = {k: v / n for k, v in sorted(counts.items())}
        print(f"  {task_name} {label}: dimensionality shares {dims[label]}", flush=True)
    out["graph_dimensionality_share"] = dims
    out["graph_dimensionality_n_crystals"] = len(structures)
    return out


# ------------------------------------------------------------------------------------------ model
class Recorder:
    """Records, during a forward pass, every gate's pre-activations (the model calls
    ``zoo.nn.equivariant.gate`` through its module: wrapping it there records without changing it)."""

    def __init__(self):
        import zoo.nn.equivariant as eq

        self.eq, self.original, self.calls = eq, eq.gate, []

    def __enter__(self):
        def wrapped(y, plan, xp):
            self.calls.append((y.detach(), plan))
            return self.original(y, plan, xp)

        self.eq.gate = wrapped
        return self

    def __exit__(self, *exc):
        self.eq.gate = self.original

    def summary(self) -> list[dict[str, float]]:
        out = []
        for y, plan in self.calls:
            n_s = sum(mul for mul, _, _ in plan.scalars)
            n_g = plan.n_gates if plan.gated else 0
            s, g = y[:, :n_s], y[:, n_s:n_s + n_g]
            out.append({"scalar_preact_rms": float(s.pow(2).mean().sqrt()),
                        "gate_preact_rms": float(g.pow(2).mean().sqrt()) if n_g else 0.0,
                        "gate_saturated_share": float((g.abs() > 4).float().mean()) if n_g else 0.0})
        return out


def build_model(mc, embedding: str, seed: int):
    """The torch TFN; ``embedding="cgcnn"``: the embedding table becomes CGCNN's fixed element features
    times a learnt matrix (torch's ``parametrize``: the model's code is unchanged)."""
    import torch
    from torch.nn.utils import parametrize

    from zoo.graphs.features import original_cgcnn_atom_features
    from zoo.models import build

    torch.manual_seed(seed)
    model = build("tfn", "torch", mc)
    if embedding == "cgcnn":
        table = torch.tensor(original_cgcnn_atom_features(), dtype=torch.float32)
        # each row has ~9 ones (one per property block): scale so that a row of the product has unit variance
        norm = table.sum(1, keepdim=True).clamp(min=1.0).sqrt()

        class FromFeatures(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.w = torch.nn.Parameter(torch.randn(table.shape[1], mc.embed_dim))

            def forward(self, _weight):
                return (table / norm) @ self.w

        parametrize.register_parametrization(model.embedding, "weight", FromFeatures(), unsafe=True)
    return model


def layer_stats(model, batch, z, loss_name: str) -> dict[str, Any]:
    """Feature second moments per layer and degree l, gate pre-activations, output scale, gradient norms."""

    from zoo.backend import torch as xp
    from zoo.models.tfn import core
    from zoo.models.tfn import irreps as I
    from zoo.nn.losses import per_graph_loss

    net = model.net
    x, edge_attr, basis, s, r = core.inputs(batch, model.embedding.weight, net, xp, model.spherical_harmonics)
    feats = []
    with Recorder() as rec:
        for k, layer in enumerate([*model.layers, model.readout]):
            x = layer(x, edge_attr, basis, s, r)
            irreps = layer.plan.conv.irreps_out
            per_l: dict[str, list[float]] = defaultdict(list)
            for (mul, l, p), sl in zip(I.parse_irreps(irreps), I.irreps_slices(irreps)):
                per_l[f"l{l}"].append(float(x[:, sl].detach().pow(2).mean()))
            feats.append({key: float(np.mean(v)) for key, v in per_l.items()})
        out = core.head(core.pool(x, batch, net, xp), net, xp)
    loss = per_graph_loss(loss_name, out, z, xp=xp).mean()
    model.zero_grad()
    loss.backward()
    grads: dict[str, float] = defaultdict(float)
    for name, p in model.named_parameters():
        if p.grad is not None:
            grads[".".join(name.split(".")[:2]) if name.startswith("layers") else name.split(".")[0]] += float(p.grad.pow(2).sum())
    return {
        "feature_second_moment_per_layer": feats,
        "gates": rec.summary(),
        "output_rms": float(out.detach().pow(2).mean().sqrt()),
        "target_rms": float(z.pow(2).mean().sqrt()),
        "loss": float(loss.detach()),
        "grad_norm": {k: math.sqrt(v) for k, v in grads.items()},
    }


def logm_spd(y: np.ndarray) -> np.ndarray:
    """Matrix logarithm of symmetric positive-definite (N, 3, 3) tensors (an equivariant map: log(R ε Rᵀ) = R log(ε) Rᵀ)."""
    w, v = np.linalg.eigh(y)
    return np.einsum("nij,nj,nkj->nik", v, np.log(w), v)


def expm_sym(y: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh((y + np.swapaxes(y, 1, 2)) / 2)
    return np.einsum("nij,nj,nkj->nik", v, np.exp(w), v)


def train_variant(task, data, mc, variant: dict, epochs: int, seed: int, batch_size: int = 64, lr: float = 1e-3,
                  subset: int | None = None, log_every: int = 0) -> dict[str, Any]:
    """Train on fold 0's training set (``subset``: its first N crystals, full batch) and score the
    validation set every epoch. Returns the learning curve and the best validation scores."""
    import torch

    from zoo.backend.torch import to_torch
    from zoo.graphs import collate
    from zoo.nn.losses import per_graph_loss
    from zoo.training import LRSchedule, TrainConfig
    from zoo.training.targets import TargetNormalizer, compute_metrics

    spec = task.spec.target
    loss_name = variant.get("loss", "mse")
    logm = variant.get("target") == "logm"
    tr_g, tr_y = data.train.graphs, data.train.y
    if subset:
        tr_g, tr_y, batch_size = tr_g[:subset], tr_y[:subset], subset
    fit_y = logm_spd(tr_y) if logm else tr_y
    norm = TargetNormalizer.fit(fit_y, spec)
    z = norm.forward(fit_y).astype(np.float32)
    model = build_model(mc, variant.get("embedding", "table"), seed)
    cfg = TrainConfig(model="tfn", epochs=epochs, lr=lr, batch_size=batch_size)
    sched = LRSchedule(cfg, math.ceil(len(tr_g) / batch_size))
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0, eps=1e-8)
    val_batches = [to_torch(collate(data.val.graphs[k:k + 128])) for k in range(0, len(data.val.graphs), 128)]
    first = to_torch(collate(tr_g[:batch_size], z[:batch_size]))
    init = layer_stats(model, first, first["y"], loss_name)

    def predict(batches):
        model.eval()
        with torch.no_grad():
            out = np.concatenate([model(b).numpy().astype(np.float64) for b in batches])
        model.train()
        y = norm.inverse(out)
        return expm_sym(y) if logm else y

    curve, step, best = [], 0, None
    t0 = time.perf_counter()
    for epoch in range(1, epochs + 1):
        order = np.random.default_rng([seed, epoch]).permutation(len(tr_g))
        total = 0.0
        for k in range(0, len(order), batch_size):
            idx = order[k:k + batch_size]
            batch = to_torch(collate([tr_g[i] for i in idx], z[idx]))
            for g in opt.param_groups:
                g["lr"] = sched.lr(step)
            opt.zero_grad(set_to_none=True)
            per = per_graph_loss(loss_name, model(batch), batch["y"], xp=xp_torch())
            per.mean().backward()
            opt.step()
            step += 1
            total += float(per.detach().sum())
        row = {"epoch": epoch, "lr": sched.lr(step - 1), "train_loss": total / len(tr_g)}
        if not subset or epoch % max(log_every, 1) == 0 or epoch == epochs:
            scores = compute_metrics(spec, data.val.y, predict(val_batches))
            row.update({f"val_{k}": float(v) for k, v in scores.items() if k in ("mae", "fnorm", "rmse")})
            if best is None or row["val_mae"] < best["val_mae"]:
                best = dict(row)
        curve.append(row)
        if log_every and epoch % log_every == 0:
            print(f"    epoch {epoch}: {row}", flush=True)
    after = layer_stats(model, first, first["y"], loss_name)
    fitted = {}
    if subset:  # the crystals the network could not fit, by their standardised error
        err = np.abs(predict([to_torch(collate(tr_g))]) - tr_y).reshape(len(tr_y), -1).max(1) / norm.scale
        fitted = {"worst": [{"id": data.train.ids[i], "y": np.asarray(tr_y[i]).tolist(), "abs_err_std_units": float(err[i])}
                            for i in np.argsort(err)[::-1][:5]],
                  "median_abs_err_std_units": float(np.median(err))}
    floor = compute_metrics(spec, data.val.y, np.broadcast_to(data.train.y.mean(0), data.val.y.shape))
    return {"curve": curve, "best": best, "final": curve[-1], "init": init, "after": after, "fitted": fitted,
            "val_floor_train_mean": {k: float(v) for k, v in floor.items() if k in ("mae", "fnorm", "rmse")},
            "train_s": time.perf_counter() - t0, "n_parameters": sum(p.numel() for p in model.parameters())}


def xp_torch():
    from zoo.backend import torch as xp

    return xp


# ------------------------------------------------------------------------------------------ parts
def part_init(task_name: str, args) -> dict[str, Any]:
    task, data, mc = load(task_name)
    res = train_variant(task, data, mc, {}, epochs=1, seed=args.seed, subset=64)
    return {"task": task_name, "config": dataclasses.asdict(mc), "n_parameters": res["n_parameters"], "init": res["init"]}


def part_overfit(task_name: str, args) -> dict[str, Any]:
    task, data, mc = load(task_name)
    steps = 60 if args.quick else args.overfit_steps
    out = {"task": task_name, "n_crystals": 32, "steps": steps, "runs": {}}
    for lr in args.overfit_lrs:
        print(f"  overfit {task_name} lr={lr}", flush=True)
        res = train_variant(task, data, mc, {}, epochs=steps, seed=args.seed, lr=lr, subset=32, log_every=max(steps // 6, 1))
        out["runs"][f"lr_{lr:g}"] = {k: res[k] for k in ("curve", "init", "after", "fitted", "train_s")}
    return out


def part_variants(task_name: str, args) -> dict[str, Any]:
    tensor = task_name != "matbench_jdft2d"
    names = args.variants or [n for n, v in VARIANTS.items() if tensor or not v.get("tensor_only")]
    out: dict[str, Any] = {"task": task_name, "seed": args.seed, "epochs": args.epochs, "batch_size": 64, "lr": 1e-3,
                           "selection": "validation only (fold 0's seeded/own validation split); test never read",
                           "runs": {}}
    for name in names:
        v = VARIANTS[name]
        if v.get("tensor_only") and not tensor:
            continue
        task, data, mc = load(task_name, overrides=v.get("set"))
        epochs = args.epochs * v.get("epochs_factor", 1)
        print(f"  variant {name} on {task_name}: {epochs} epochs (load {os.getloadavg()[0]:.2f})", flush=True)
        res = train_variant(task, data, mc, v, epochs=epochs, seed=args.seed, lr=v.get("lr", 1e-3))
        res["load_average_1min"] = os.getloadavg()[0]
        out["runs"][name] = res
        print(f"    best {res['best']}  final val_mae {res['final'].get('val_mae')}  floor {res['val_floor_train_mean']}"
              f"  {res['train_s']:.0f} s", flush=True)
        write_json(OUT / f"variants_{task_name}{'_quick' if args.quick else ''}.json", out)  # after each, so a stopped run keeps what it has
    return out


def plot(part: str, task_name: str, res: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if part == "variants":
        fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
        for name, r in res["runs"].items():
            ep = [c["epoch"] for c in r["curve"]]
            a.plot(ep, [c["train_loss"] for c in r["curve"]], label=name)
            b.plot(ep, [c["val_mae"] for c in r["curve"]], label=name)
        floor = next(iter(res["runs"].values()))["val_floor_train_mean"]["mae"] if res["runs"] else None
        if floor:
            b.axhline(floor, color="k", ls="--", label="train-mean floor")
        a.set(yscale="log", xlabel="epoch", ylabel="train loss (standardised)", title=f"{task_name}: training loss")
        # log scale: a diverging variant (exp of an unconverged log target) must not flatten the others
        b.set(yscale="log", xlabel="epoch", ylabel="validation MAE", title=f"{task_name}: validation MAE (fold 0)")
        b.legend(fontsize=7)
    elif part == "overfit":
        fig, a = plt.subplots(figsize=(6, 4))
        for name, r in res["runs"].items():
            a.plot([c["epoch"] for c in r["curve"]], [c["train_loss"] for c in r["curve"]], label=name)
        a.set(yscale="log", xlabel="full-batch step", ylabel="train loss (standardised)", title=f"{task_name}: 32 crystals")
        a.legend()
    else:
        return
    fig.tight_layout()
    fig.savefig(OUT / f"{part}_{task_name}.png", dpi=110)
    plt.close(fig)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="smoke-test sizes (a few epochs/steps)")
    p.add_argument("--parts", nargs="+", default=["data", "init", "overfit", "variants"], choices=["data", "init", "overfit", "variants"])
    p.add_argument("--tasks", nargs="+", default=["matbench_jdft2d", "embedded_dielectric"])
    p.add_argument("--variants", nargs="+", choices=sorted(VARIANTS), help="variants to train (default: all that apply)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--overfit-steps", type=int, default=600, help="full-batch steps on 32 crystals in 'overfit'")
    p.add_argument("--overfit-lrs", type=float, nargs="+", default=[1e-3, 5e-3], help="peak LRs tried in 'overfit'")
    p.add_argument("--epochs", type=int, default=100, help="epochs of the default recipe in 'variants'")
    args = p.parse_args(argv)
    if args.quick:
        args.epochs = 2
    import torch

    torch.set_num_threads(min(2, os.cpu_count() or 1))
    OUT.mkdir(parents=True, exist_ok=True)
    parts = {"data": part_data, "init": part_init, "overfit": part_overfit, "variants": part_variants}
    for task_name in args.tasks:
        if task_name in DATA_DIRS and not Path(DATA_DIRS[task_name]).exists():
            print(f"skipping {task_name}: {DATA_DIRS[task_name]} not found (see README, 'Using real data offline')")
            continue
        for part in args.parts:
            print(f"{part} {task_name} (load {os.getloadavg()[0]:.2f})", flush=True)
            t0 = time.perf_counter()
            res = parts[part](task_name, args)
            res["machine"] = machine_info()
            res["load_average_1min_end"] = os.getloadavg()[0]
            res["seconds"] = time.perf_counter() - t0
            res["command"] = " ".join(["benchmarks/tfn_diagnose.py", *(argv if argv is not None else sys.argv[1:])])
            name = f"{part}_{task_name}" + ("_quick" if args.quick else "")
            write_json(OUT / f"{name}.json", res)
            if not args.quick:
                plot(part, task_name, res)


if __name__ == "__main__":
    main()
