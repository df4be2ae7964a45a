"""The polarisable read-out with the free-atom polarisabilities (no learning) against embedded_dielectric's labels.

The task labels every crystal with the Thole-damped point-dipole model (``zoo.tasks.embedded.dielectric``); the
read-out (``zoo.nn.dipole``) computes the same model from a batch (the featuriser's Ewald sums and 8 Å damping
pairs), batched per crystal. Given the table's α it must reproduce every label: this measures by how much, on
fold ``--fold``'s validation ids (or its test ids with ``--split test``: no choice is made here), and writes
``oracle_<split>_f<fold>.json`` to ``--out``. A network with this read-out only has to learn α.

    .venv/bin/python benchmarks/dipole_oracle.py --fold 0 --out results/tfn/dipole
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fold", type=int, default=0)
    ap.add_argument("--split", choices=("validation", "test"), default="validation")
    ap.add_argument("--radius", type=float, default=5.0, help="the network graph's radius in Å (the damping does not use it)")
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args(argv)

    import torch

    from zoo.backend import torch as bt
    from zoo.graphs import GraphSpec, build_graphs, collate
    from zoo.nn.dipole import susceptibility
    from zoo.tasks import get as get_task
    from zoo.tasks.embedded.dielectric import polarizabilities

    task = get_task("embedded_dielectric")
    task.load()
    if a.split == "validation":
        X, y = task.get_train_and_val_data(a.fold)
        all_ids = list(task.fold_ids[task._fold_key(a.fold)]["train"])
        pos = {i: k for k, i in enumerate(all_ids)}
        ids = task.get_validation_ids(a.fold)
        structures, targets = [X[pos[i]] for i in ids], [y[pos[i]] for i in ids]
    else:
        ids = task.get_test_ids(a.fold)
        structures, targets = task.get_test_data(a.fold, include_target=True)
    Y = np.stack([np.asarray(t, dtype=np.float64) for t in targets])
    graphs, failures = build_graphs(structures, GraphSpec(rule="radius", radius=a.radius, featurizer="dipole"), ids=ids,
                                    cache=False, progress=False, on_error="skip")
    keep = [k for k, g in enumerate(graphs) if g is not None]
    errors = np.empty(len(keep))
    for c in range(0, len(keep), 32):
        ks = keep[c:c + 32]
        b = bt.to_torch(collate([graphs[k] for k in ks]), dtype=torch.float64)
        alpha = torch.as_tensor(np.concatenate([polarizabilities(structures[k]) for k in ks]))
        eps = susceptibility(alpha, b, bt, int(b["n_nodes"].max())).numpy() + np.eye(3)
        errors[c:c + len(ks)] = np.linalg.norm((eps - Y[ks]).reshape(len(ks), -1), axis=1)
    record = {"fold": a.fold, "split": a.split, "radius": a.radius, "n": len(keep), "no_graph": len(ids) - len(keep),
              "fnorm_mean": float(errors.mean()), "fnorm_median": float(np.median(errors)), "fnorm_max": float(errors.max()),
              "relative_max": float(np.max(errors / np.linalg.norm(Y[keep].reshape(len(keep), -1), axis=1))),
              "command": " ".join(sys.argv)}
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / f"oracle_{a.split}_f{a.fold}.json").write_text(json.dumps(record, indent=1))
    print(json.dumps(record, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
