"""Linear probes of a dielectric task on a fold's *validation* split (issue #11): which target transform and
which composition features a per-element linear model can use, before any network is trained.

    .venv/bin/python benchmarks/tensor_linear_probes.py --task embedded_dielectric --fold 0 --out results/tfn/log_target/probes_embedded_f0.json

A ridge model (zoo.tasks.baselines' element-linear floor without the symmetrisation) is fitted on the fold's
training part less its validation ids, one linear model per Cartesian component, on
- features: element fractions (the floor's) or element counts per volume (atoms/Å^3 of each element);
- targets: ε itself, log ε (matrix logarithm, undone by the matrix exponential), or the Clausius-Mossotti
  variable X = (ε - 1)(ε + 2)^-1 (undone by ε = (1 + 2X)(1 - X)^-1, eigenvalues of X clipped below 1);
and scored on the validation ids in ε (Fnorm, MAE, EwT25). No test id is read.
"""
from __future__ import annotations

import argparse
import json
import os

import numpy as np

from zoo import tasks
from zoo.core.io import write_json
from zoo.models import get_family
from zoo.tensors import spd_log, sym_exp
from zoo.training import TrainConfig
from zoo.training.data import load_fold
from zoo.training.targets import compute_metrics

MAX_Z = 119
RIDGE = 1e-6  # relative to nothing: the features are O(0.01-1), a tiny ridge only makes absent elements harmless


def features(structures, kind: str) -> np.ndarray:
    X = np.zeros((len(structures), MAX_Z))
    for i, s in enumerate(structures):
        for site in s:
            X[i, site.specie.Z] += 1
        X[i] /= s.volume if kind == "density" else len(s)
    return np.c_[X, np.ones(len(X))]


def _spectral(T, f):
    w, V = np.linalg.eigh(0.5 * (T + np.swapaxes(T, -1, -2)))
    return np.einsum("nij,nj,nkj->nik", V, f(w), V)


TRANSFORMS = {
    "none": (lambda e: e, lambda e: e),
    "log": (spd_log, sym_exp),
    "clausius_mossotti": (lambda e: _spectral(e, lambda w: (w - 1) / (w + 2)),
                          lambda x: _spectral(x, lambda w: (1 + 2 * np.minimum(w, 0.98)) / (1 - np.minimum(w, 0.98)))),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--task", default="embedded_dielectric")
    ap.add_argument("--fold", type=int, default=0)
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    task = tasks.get(a.task) if a.data_dir is None else tasks.get(a.task, data_dir=a.data_dir, progress=False)
    config = TrainConfig(model="tfn", task=a.task, fold=a.fold, progress=False, data_dir=a.data_dir)
    data = load_fold(task, a.fold, config, get_family("tfn").config().with_target(task.spec.target).graph_spec())
    tr, va = data.train, data.val
    out = {"task": a.task, "fold": a.fold, "n_train": len(tr), "n_val": len(va), "split": "validation ids only",
           "load_average_1min": os.getloadavg()[0], "val": {}}
    for feat in ("fraction", "density"):
        Xtr, Xva = features(tr.structures, feat), features(va.structures, feat)
        for name, (fwd, inv) in TRANSFORMS.items():
            Y = fwd(tr.y).reshape(len(tr.y), 9)
            W = np.linalg.solve(Xtr.T @ Xtr + RIDGE * np.eye(Xtr.shape[1]), Xtr.T @ Y)
            pred = inv((Xva @ W).reshape(-1, 3, 3))
            m = compute_metrics(task.spec.target, va.y, pred)
            out["val"][f"{feat}/{name}"] = {k: m[k] for k in ("fnorm", "mae", "ewt25")}
    write_json(a.out, out)
    print(json.dumps({k: {m: round(v[m], 3) for m in v} for k, v in out["val"].items()}, indent=0))


if __name__ == "__main__":
    main()
