"""Can the polarisable read-out be trained at all? One polarisability per element, no network, fitted through it.

The read-out (``zoo.nn.dipole``) with the tabulated free-atom polarisabilities reproduces embedded_dielectric's
labels exactly (tests/nn/test_dipole.py), so one α per element has an exact solution. Whether gradient descent
finds it says whether the loss landscape, not the network, limits a model with this read-out. Adam on the raw
parameter of α = α_max·sigmoid(raw + logit(α0/α_max)) (the TFN head's own map), gradient norm clipped at 1,
batches of 64, on embedded_dielectric fold 0's training ids; scored on its fixed validation ids. The loss is
the mean Frobenius error of ε (``--loss eps``) or of the Clausius-Mossotti map (ε - 1)(ε + 2)^-1 (``--loss
cm``). Written to ``--out``: ``element_fit_<loss>.json`` (per-epoch training loss, validation Fnorm of ε) and
a plot of the curves of every json there.

    .venv/bin/python benchmarks/dipole_element_fit.py --loss cm --lr 0.02 --epochs 30 --out results/tfn/dipole
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--loss", choices=("eps", "cm"), required=True)
    ap.add_argument("--lr", type=float, default=0.02)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--delta", type=float, default=0.0, help="regularised inverse (zoo.nn.dipole), 0: exact")
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args(argv)

    import torch

    from zoo.backend import torch as bt
    from zoo.graphs import GraphSpec, build_graphs, collate
    from zoo.graphs.dipole import DAMPING_RADIUS
    from zoo.nn.dipole import alpha_max, susceptibility
    from zoo.tasks import get as get_task

    torch.manual_seed(a.seed)
    rng = np.random.default_rng(a.seed)
    task = get_task("embedded_dielectric")
    task.load()
    val = set(task.get_validation_ids(0))
    X, y = task.get_train_and_val_data(0)
    ids = list(task.fold_ids[task._fold_key(0)]["train"])
    graphs, _ = build_graphs(list(X), GraphSpec(rule="radius", radius=5.0, featurizer="dipole"), ids=ids, cache=True,
                             progress=False, on_error="skip")
    Y = np.stack([np.asarray(v, dtype=np.float64) for v in y])
    train_k = [k for k, i in enumerate(ids) if i not in val and graphs[k] is not None]
    val_k = [k for k, i in enumerate(ids) if i in val and graphs[k] is not None]

    def batches(ks):
        return [(bt.to_torch(collate([graphs[k] for k in ks[c:c + 64]]), dtype=torch.float32),
                 torch.as_tensor(Y[ks[c:c + 64]], dtype=torch.float32)) for c in range(0, len(ks), 64)]

    top, alpha0 = alpha_max(DAMPING_RADIUS), 1.0
    raw = torch.nn.Parameter(torch.zeros(101))
    opt = torch.optim.Adam([raw], lr=a.lr)
    eye = torch.eye(3)

    def cm(e):  # (ε - 1)(ε + 2)^-1, the factors commute
        return torch.linalg.solve(e + 2 * eye, e - eye)

    def errors(b, yy):
        alpha = top * torch.sigmoid(raw[b["numbers"]] + math.log(alpha0 / (top - alpha0)))
        eps = susceptibility(alpha, b, bt, int(b["n_nodes"].max()), delta=a.delta) + eye
        fro = lambda d: torch.linalg.norm(d.reshape(len(yy), -1), dim=1)  # noqa: E731
        return fro(eps - yy), fro(cm(eps) - cm(yy))

    val_batches = batches(val_k)
    history = []
    t0 = time.perf_counter()
    for epoch in range(1, a.epochs + 1):
        order = [train_k[i] for i in rng.permutation(len(train_k))]
        losses = []
        for b, yy in batches(order):
            e_eps, e_cm = errors(b, yy)
            loss = (e_cm if a.loss == "cm" else e_eps).mean()
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_([raw], 1.0)
            opt.step()
            losses.append(float(loss))
        with torch.no_grad():
            fn = torch.cat([errors(b, yy)[0] for b, yy in val_batches])
        history.append({"epoch": epoch, "train_loss": float(np.mean(losses)), "val_fnorm": float(fn.mean()),
                        "seconds": time.perf_counter() - t0})
        print(f"epoch {epoch}: train loss {history[-1]['train_loss']:.4f}, validation Fnorm {history[-1]['val_fnorm']:.4f}",
              flush=True)

    a.out.mkdir(parents=True, exist_ok=True)
    record = {"loss": a.loss, "delta": a.delta, "lr": a.lr, "epochs": a.epochs, "seed": a.seed, "n_train": len(train_k), "n_val": len(val_k),
              "history": history, "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
              "load_1min": os.getloadavg()[0], "command": " ".join(sys.argv)}
    (a.out / f"element_fit_{a.loss}_d{a.delta:g}.json").write_text(json.dumps(record, indent=1))

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for path in sorted(a.out.glob("element_fit_*.json")):
        r = json.loads(path.read_text())
        ax.plot([h["epoch"] for h in r["history"]], [h["val_fnorm"] for h in r["history"]], marker="o", ms=3,
                label=f"loss on {chr(949) if r['loss'] == 'eps' else 'CM map'}, lr {r['lr']}, δ {r.get('delta', 0)}")
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation Fnorm of ε")
    ax.set_title("one α per element through the dipole read-out\nembedded_dielectric fold 0")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(a.out / "element_fit.png", dpi=120)
    return 0


if __name__ == "__main__":
    sys.exit(main())
