"""Hypergraph featurisation rate on matbench_jdft2d (636 structures), per hyperedge type.

    .venv/bin/python benchmarks/chgcnn_featurize.py [--jobs 2] [--limit N] [--cache DIR | --no-cache]
                                                    [--dataset matbench_jdft2d | embedded_dielectric_iso]
                                                    [--out results/chgcnn/featurize_<dataset>.json]

``--dataset embedded_dielectric_iso`` times the embedded task's generated crystals instead (all 1499, or
with ``--limit N`` a seeded random sample of N), to decide whether their motifs are affordable before
featurising them for training.

Timed on the same parsed pymatgen Structures:

- ``bonds``: ``build_graphs`` with CGCNN's rule (12 nearest within 8 Å), no cache: validation, hashing,
  neighbour list (the graph every CHGCNN variant starts from);
- ``triplets (k=6)`` / ``(k=12)``: ``zoo.graphs.hyper.triplet_bonds`` on those graphs, including the
  full neighbour list it takes where the graph's 12-neighbour cut may split a shell;
- ``motif shells`` (CrystalNN, MinimumDistanceNN fallback), ``order parameters`` (LocalStructOrderParams)
  and ``ChemEnv measures``: the per-structure seconds each part took inside ``zoo.graphs.motifs`` (one
  process), summed: structures/s = 636 / that sum;
- ``motifs, all (N processes)``: wall time of ``build_graphs`` with the full default hypergraph
  featuriser in ``--jobs`` worker processes (``ZOO_FEATURIZE_JOBS``), writing the motif cache; then the
  same call again, a cache hit.

With ``--cache DIR`` (default: a fresh temporary folder) the motif cache lands there; pass the user
cache folder (``$ZOO_CACHE`` or ~/.cache/crystal-zoo) to pre-fill it for training. Writes the JSON record
(machine, load, versions) atomically and prints a table.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import ROOT, data_missing, load_jdft2d, machine_info  # noqa: E402
from zoo.core.io import write_json  # noqa: E402
from zoo.graphs import GraphSpec, HyperSpec, build_graphs  # noqa: E402
from zoo.graphs.hyper import JOBS_VARIABLE, status_summary, triplet_bonds  # noqa: E402

OUT = ROOT / "results" / "chgcnn" / "featurize_jdft2d.json"
DATASETS = ("matbench_jdft2d", "embedded_dielectric_iso")


def load_embedded(limit: int | None):
    """(structures, ids) of the embedded task (its default data set), all or a seeded sample of ``limit``."""
    from zoo import tasks

    task = tasks.get("embedded_dielectric_iso", progress=False)
    task.load()
    df = task.df
    rows = np.arange(len(df)) if limit is None else np.sort(np.random.default_rng(0).choice(len(df), size=limit, replace=False))
    return [df["structure"].iloc[k] for k in rows], [str(df.index[k]) for k in rows]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--jobs", type=int, default=2, help="worker processes for the motifs")
    p.add_argument("--limit", type=int, default=None, help="only the first N structures (embedded: a seeded random sample of N)")
    p.add_argument("--cache", default=None, help="cache root for the motifs (default: a temporary folder)")
    p.add_argument("--dataset", choices=DATASETS, default=DATASETS[0])
    p.add_argument("--out", type=Path, default=None, help="default: results/chgcnn/featurize_<jdft2d | embedded_dielectric_iso>.json")
    args = p.parse_args(argv)
    out = args.out or (OUT if args.dataset == "matbench_jdft2d" else OUT.with_name(f"featurize_{args.dataset}.json"))
    if args.dataset == "matbench_jdft2d" and data_missing():
        return 0
    os.environ[JOBS_VARIABLE] = str(args.jobs)
    t0 = time.perf_counter()
    if args.dataset == "matbench_jdft2d":
        structures, _, ids = load_jdft2d(args.limit)
    else:
        structures, ids = load_embedded(args.limit)
    parse_s = time.perf_counter() - t0
    n = len(structures)
    rows: dict[str, dict] = {}

    base = GraphSpec(rule="cgcnn", radius=8.0, max_neighbors=12)
    t0 = time.perf_counter()
    graphs, failures = build_graphs(structures, base, ids=ids, cache=False, progress=False, on_error="skip")
    rows["bonds"] = {"seconds": time.perf_counter() - t0, "processes": 1}
    graphs_ok = [g for g in graphs if g is not None]
    rows["bonds"]["hyperedges"] = int(sum(g.n_edges for g in graphs_ok))
    for k in (6, 12):
        t0 = time.perf_counter()
        n_trip = sum(len(triplet_bonds(g, base, k)[0]) for g in graphs_ok)
        rows[f"triplets (k={k})"] = {"seconds": time.perf_counter() - t0, "processes": 1, "hyperedges": int(n_trip)}

    spec = GraphSpec(rule="cgcnn", radius=8.0, max_neighbors=12,
                     featurizer=HyperSpec(triplets=6, motifs="crystalnn", motif_features="lsop+csm").to_string())
    with tempfile.TemporaryDirectory() as tmp:
        root = args.cache or tmp
        t0 = time.perf_counter()
        hyper, _ = build_graphs(structures, spec, ids=ids, cache=root, progress=True, on_error="skip")
        wall = time.perf_counter() - t0
        t0 = time.perf_counter()
        build_graphs(structures, spec, ids=ids, cache=root, progress=False, on_error="skip")
        hit = time.perf_counter() - t0
    real = [g for g in hyper if g is not None]
    per = {part: [g.meta["motif_seconds"][part] for g in real] for part in ("nn", "lsop", "csm")}
    total = [sum(per[part][i] for part in per) for i in range(len(real))]
    motifs = int(sum(g.hyper["motif_center"].shape[0] for g in real))
    for part, label in (("nn", "motif shells (CrystalNN)"), ("lsop", "order parameters (LSOP)"), ("csm", "ChemEnv measures (CSM)")):
        rows[label] = {"seconds": float(sum(per[part])), "processes": 1, "hyperedges": motifs,
                       "median_s_per_structure": statistics.median(per[part]), "max_s_per_structure": max(per[part])}
    rows["motifs, all parts"] = {"seconds": float(sum(total)), "processes": 1, "hyperedges": motifs,
                                 "median_s_per_structure": statistics.median(total), "p90_s_per_structure": float(np.percentile(total, 90)),
                                 "max_s_per_structure": max(total)}
    rows[f"hypergraph, wall ({args.jobs} processes)"] = {"seconds": wall, "processes": args.jobs}
    rows["hypergraph, cache hit"] = {"seconds": hit, "processes": 1}
    for r in rows.values():
        r["structures_per_s"] = n / r["seconds"] if r["seconds"] > 0 else None
    slowest = sorted(zip(total, [g.id for g in real], [g.n_nodes for g in real]), reverse=True)[:5]
    record = {
        "benchmark": "chgcnn_featurize", "dataset": args.dataset, "n_structures": n,
        "command": "python benchmarks/chgcnn_featurize.py " + " ".join(argv if argv is not None else sys.argv[1:]), "graph_failures": failures,
        "parse_s": parse_s, "featurizer": spec.featurizer, "rows": rows,
        "atoms_per_structure": {"median": float(np.median([g.n_nodes for g in real])), "max": int(max(g.n_nodes for g in real))},
        "slowest_structures": [{"id": i, "atoms": a, "seconds": s} for s, i, a in slowest],
        "motif_fallbacks": status_summary(real), "machine": machine_info(),
    }
    write_json(out, record)
    print(f"\n{n} {args.dataset} structures ({parse_s:.1f} s to parse), {args.jobs} worker processes for the motifs")
    print(f"{'hyperedges':<36}{'count':>9}{'seconds':>10}{'structures/s':>14}")
    for name, r in rows.items():
        print(f"{name:<36}{r.get('hyperedges', ''):>9}{r['seconds']:>10.2f}{r['structures_per_s']:>14.1f}")
    print(f"motif fallbacks: {record['motif_fallbacks']}; slowest: {record['slowest_structures'][:3]}")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
