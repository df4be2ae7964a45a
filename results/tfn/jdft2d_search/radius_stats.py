"""Edges per atom of matbench_jdft2d's radius graphs at 5-8 Å (all 636 crystals), for the TFN radius search.

    OMP_NUM_THREADS=1 nice -n 15 .venv/bin/python results/tfn/jdft2d_search/radius_stats.py > results/tfn/jdft2d_search/radius_stats.json

Per radius: incoming edges per atom (quantiles over atoms), the mean per atom (what ``avg_num_neighbors``
normalises, TFNConfig), edges per crystal summed over the data set (the cost of a training epoch scales
with it), and the crystals that have an atom without any neighbour (dropped from training) or no graph.
No targets are read. Graphs go to the normal graph cache, so the training runs reuse them.
"""
from __future__ import annotations

import json
import os
import time

import numpy as np

from zoo.graphs import GraphSpec, build_graphs
from zoo.training.data import build_task

RADII = (5.0, 6.0, 7.0, 8.0)  # Å


def main() -> None:
    task = build_task("matbench_jdft2d", {}, "../shared/data/matbench_jdft2d")
    train_val, _ = task.get_train_and_val_data(0)
    test = task.get_test_data(0, include_target=False)
    test = test[0] if isinstance(test, tuple) else test
    structures = list(train_val) + list(test)  # fold 0's training and test sets: every crystal once
    ids = list(train_val.index) + list(test.index)
    out = {"task": "matbench_jdft2d", "n_crystals": len(structures), "load_average_1min_start": os.getloadavg()[0], "radii": {}}
    for r in RADII:
        t0 = time.perf_counter()
        graphs, failures = build_graphs(structures, GraphSpec(rule="radius", radius=r, max_neighbors=None), ids=ids,
                                        progress=False, on_error="skip")
        per_atom = np.concatenate([np.bincount(g.receivers, minlength=g.n_nodes) for g in graphs if g is not None])
        out["radii"][f"{r:g}"] = {
            "incoming_edges_per_atom_q0_5_50_95_100": [float(np.quantile(per_atom, q)) for q in (0, 0.05, 0.5, 0.95, 1)],
            "mean_edges_per_atom": float(per_atom.mean()),
            "total_edges": int(sum(g.n_edges for g in graphs if g is not None)),
            "crystals_with_an_isolated_atom": int(sum(g is not None and np.bincount(g.receivers, minlength=g.n_nodes).min() == 0
                                                      for g in graphs)),
            "crystals_without_graph": {k: v for k, v in failures.items()},
            "build_s": round(time.perf_counter() - t0, 1),
        }
    base = out["radii"]["5"]
    for r in out["radii"].values():
        r["edges_vs_5A"] = round(r["total_edges"] / base["total_edges"], 3)
        # avg_num_neighbors that keeps the "mean" message scale of the 5 Å recipe (20 at a real mean of base)
        r["avg_num_neighbors_same_scale"] = round(20.0 * r["mean_edges_per_atom"] / base["mean_edges_per_atom"], 1)
    out["load_average_1min_end"] = os.getloadavg()[0]
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
