"""Featurisation speed on matbench_jdft2d (636 structures): our graph builder vs the original CGCNN recipe.

Compared in the same process, on the same parsed pymatgen Structures, the cases interleaved in every
repeat (so a change of machine load hits all of them alike), each timed ``--repeats`` times in wall-clock
and in CPU time of the process (median reported; on a loaded machine the CPU times are the steadier):

- ``zoo build_graphs``: ``build_graphs(structures, GraphSpec("cgcnn"), cache=False)``: every check of
  ``to_structure`` (cell, coordinates, species, 0.5 Å overlaps), content hash, 8 Å neighbour list, 12
  nearest per atom -- all structures at once (``zoo.graphs.builder._graphs_at_once``);
- ``zoo one by one``: the same graphs one structure at a time (``to_structure`` + ``build_graph`` +
  ``structure_hash``: the builder's path before it checked many structures at once, still the path of
  ``build_graph``);
- ``zoo per-structure part``: what is still done per structure in ``build_graphs``: reading the arrays
  (``structures.screen``) and the library's neighbour search with its wrapper (``neighbors.candidate_pairs``);
- ``neighbour library alone``: pymatgen's ``find_points_in_spheres`` on every structure (the floor of a
  per-structure search: what a search over many structures in one call would replace);
- ``zoo cache hit``: ``build_graphs`` a second time with a warm on-disk cache (temporary folder);
- ``original CGCNN``: ``Structure.get_all_neighbors(8)``, sort each list by distance, keep 12, make
  the index/distance arrays (``cgcnn/data.py`` ``CIFData.__getitem__`` without the Gaussian filter,
  which both sides apply later in the model).

Parsing the structures from the JSON (``Structure.from_dict``) is timed separately, since both
sides need it. The script also checks that both give the same 12 distances per atom, and that the two
zoo paths give identical graphs.

Usage: ``python benchmarks/featurize_jdft2d.py [--repeats 5] [--out results/benchmarks/featurize_jdft2d.json]``
Run with ``OMP_NUM_THREADS=1``; the JSON records the machine and its load average.
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.common import JDFT2D as DEFAULT_DATA  # noqa: E402
from benchmarks.common import RESULTS, machine_info

DEFAULT_OUT = RESULTS / "featurize_jdft2d.json"
RADIUS, MAX_NEIGHBORS = 8.0, 12  # Å, CGCNN defaults


def original_cgcnn(structures):
    """The neighbour part of CGCNN's CIFData.__getitem__ (txie-93/cgcnn, data.py)."""
    out = []
    for s in structures:
        all_nbrs = s.get_all_neighbors(RADIUS)
        all_nbrs = [sorted(nbrs, key=lambda x: x[1]) for nbrs in all_nbrs]
        idx, dist = [], []
        for nbrs in all_nbrs:
            idx.append([nb[2] for nb in nbrs[:MAX_NEIGHBORS]])
            dist.append([nb[1] for nb in nbrs[:MAX_NEIGHBORS]])
        out.append((idx, dist))  # ragged only if an atom has < 12 neighbours (CGCNN pads those)
    return out


def timed(cases: dict, repeats: int) -> tuple[dict[str, dict[str, list[float]]], dict]:
    """Wall and CPU seconds of every case, the cases interleaved in each repeat; and each case's last result."""
    times = {name: {"wall": [], "cpu": []} for name in cases}
    results = {}
    for _ in range(repeats):
        for name, fn in cases.items():
            w, c = time.perf_counter(), time.process_time()
            results[name] = fn()
            times[name]["cpu"].append(time.process_time() - c)
            times[name]["wall"].append(time.perf_counter() - w)
    return times, results


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--repeats", type=int, default=5, help="timings of each case (interleaved); medians reported")
    args = parser.parse_args(argv)

    from pymatgen.core import Structure

    from zoo.core.io import write_json
    from zoo.graphs import (
        ARRAY_FIELDS,
        GraphSpec,
        build_graph,
        build_graphs,
        structure_hash,
    )
    from zoo.graphs.neighbors import _candidate_pairs, candidate_pairs
    from zoo.graphs.structures import screen

    if not args.data.exists():
        raise SystemExit(f"{args.data} not found: point --data at matbench_jdft2d.json.gz (see ../shared/data)")
    with gzip.open(args.data, "rt") as fh:
        dicts = [row[0] for row in json.load(fh)["data"]]
    spec = GraphSpec("cgcnn", radius=RADIUS, max_neighbors=MAX_NEIGHBORS)

    t0 = time.perf_counter()
    structures = [Structure.from_dict(d) for d in dicts]
    parse_s = time.perf_counter() - t0

    def one_by_one():
        out = []
        for s in structures:
            g = build_graph(s, spec)  # to_structure's checks, then the graph
            g.meta["sha256"] = structure_hash(s)
            out.append(g)
        return out

    arrays = [screen(s) for s in structures]
    with tempfile.TemporaryDirectory() as tmp:
        build_graphs(structures, spec, cache=tmp, progress=False)  # fill the cache (not timed)
        times, results = timed({
            "zoo build_graphs": lambda: build_graphs(structures, spec, cache=False, progress=False),
            "zoo one by one": one_by_one,
            "zoo per-structure part": lambda: [candidate_pairs(a[0], a[1], RADIUS) for a in (screen(s) for s in structures)],
            "neighbour library alone": lambda: [_candidate_pairs(a[0], a[1], RADIUS, "pymatgen") for a in arrays],
            "zoo cache hit": lambda: build_graphs(structures, spec, cache=tmp, progress=False),
            "original CGCNN": lambda: original_cgcnn(structures),
        }, args.repeats)
    ours, failures = results["zoo build_graphs"]
    reference = results["original CGCNN"]
    if failures:
        raise SystemExit(f"build_graphs failed on {len(failures)} structures: {next(iter(failures.values()))}")
    for g, h in zip(ours, results["zoo one by one"]):
        if not all(np.array_equal(getattr(g, f), getattr(h, f)) for f in ARRAY_FIELDS) or g.meta != h.meta:
            raise SystemExit(f"structure {g.id}: build_graphs and the one-by-one path give different graphs")

    # same neighbours: the 12 distances of every atom agree. Our builder treats distances within 1e-8 Å as
    # ties (then ordered by j), CGCNN takes the exact float order, so at the 12th place they may differ by <1e-8 Å.
    max_diff = 0.0
    for g, (_, dist) in zip(ours, reference):
        for a, ref in enumerate(dist):
            got = np.sort(g.distances[g.receivers == a])
            if len(got) != len(ref):
                raise SystemExit(f"structure {g.id}: atom {a} has {len(got)} neighbours here, {len(ref)} in CGCNN")
            max_diff = max(max_diff, float(np.max(np.abs(got - np.sort(ref)), initial=0.0)))
    if max_diff > 1e-8:
        raise SystemExit(f"distances differ from the original CGCNN recipe by {max_diff:.3g} Å")

    base = {k: statistics.median(times["original CGCNN"][k]) for k in ("wall", "cpu")}
    rows = []
    for name, t in times.items():
        med = {k: statistics.median(t[k]) for k in ("wall", "cpu")}
        rows.append(
            {
                "case": name,
                "median_s": med["wall"],
                "min_s": min(t["wall"]),
                "max_s": max(t["wall"]),
                "times_s": t["wall"],
                "median_cpu_s": med["cpu"],
                "cpu_times_s": t["cpu"],
                "per_structure_ms": 1e3 * med["wall"] / len(structures),
                "speedup_vs_original": base["wall"] / med["wall"] if med["wall"] > 0 else None,
                "cpu_speedup_vs_original": base["cpu"] / med["cpu"] if med["cpu"] > 0 else None,
            }
        )
    n_edges = sum(g.n_edges for g in ours)
    print(f"\nmatbench_jdft2d: {len(structures)} structures, {sum(g.n_nodes for g in ours)} atoms, {n_edges} edges "
          f"(cgcnn, {RADIUS} Å, {MAX_NEIGHBORS} nearest); repeats={args.repeats}; parse {parse_s:.3f} s; "
          f"load average {os.getloadavg()[0]:.2f}")
    print(f"{'case':24s} {'median s':>9s} {'min-max s':>15s} {'vs orig':>8s} {'CPU s':>8s} {'vs orig':>8s}")
    for r in rows:
        print(f"{r['case']:24s} {r['median_s']:9.4f} {r['min_s']:7.3f}-{r['max_s']:<7.3f} {r['speedup_vs_original']:7.1f}x "
              f"{r['median_cpu_s']:8.4f} {r['cpu_speedup_vs_original']:7.1f}x")
    print(f"max |distance difference| vs original CGCNN: {max_diff:.2e} Å")

    result = {
        "benchmark": "featurize_jdft2d",
        "description": "cgcnn graphs (8 Å, 12 nearest) for all matbench_jdft2d structures; times exclude parsing",
        "n_structures": len(structures),
        "n_edges": n_edges,
        "repeats": args.repeats,
        "parse_from_dict_s": parse_s,
        "results": rows,
        "max_distance_difference_A": max_diff,
        "machine": machine_info(),
    }
    write_json(args.out, result)
    print(f"wrote {args.out}")
    return result


if __name__ == "__main__":
    main()
