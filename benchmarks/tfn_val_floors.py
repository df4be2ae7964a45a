"""Floors of a tensor task on a fold's *validation* split (issue #11): the numbers the TFN variants of
results/tfn/TENSOR.md are compared with, so that no choice reads the test fold.

    .venv/bin/python benchmarks/tfn_val_floors.py --task embedded_dielectric --fold 0 --out results/tfn/tensor/val_floors.json

Floors as in results/floors (zoo.tasks.baselines): the training mean as is (what a run's metrics.json
calls `floor`), the mean symmetrised to each crystal's point group, the per-element linear model
(symmetrised); fitted on the fold's training part less its validation ids, scored on those ids.
"""
from __future__ import annotations

import argparse
import json
import os

import numpy as np

from zoo import tasks
from zoo.core.io import write_json
from zoo.models import get_family
from zoo.tasks.baselines import ElementLinearBaseline, MeanBaseline
from zoo.training import TrainConfig
from zoo.training.data import load_fold
from zoo.training.targets import compute_metrics


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--task", default="embedded_dielectric")
    ap.add_argument("--fold", type=int, default=0)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    task = tasks.get(a.task)
    config = TrainConfig(model="tfn", task=a.task, fold=a.fold, progress=False)
    spec = get_family("tfn").config().with_target(task.spec.target).graph_spec()
    data = load_fold(task, a.fold, config, spec)
    target = task.spec.target
    tr, va = data.train, data.val
    floors = {
        "train_mean": np.broadcast_to(np.mean(tr.y, axis=0), va.y.shape),
        "mean_symmetrised": MeanBaseline("point_group", target.formula).fit(tr.structures, tr.y).predict(va.structures),
        "element_linear": ElementLinearBaseline().fit(tr.structures, tr.y).predict(va.structures),
    }
    out = {"task": a.task, "fold": a.fold, "n_train": len(tr), "n_val": len(va),
           "val": {k: compute_metrics(target, va.y, p, structures=va.structures) for k, p in floors.items()},
           "load_average_1min": os.getloadavg()[0]}
    out["best_val_fnorm"] = min(v["fnorm"] for v in out["val"].values())
    write_json(a.out, out)
    print(json.dumps({k: {m: round(v[m], 4) for m in ("fnorm", "mae", "ewt25")} for k, v in out["val"].items()}))


if __name__ == "__main__":
    main()
