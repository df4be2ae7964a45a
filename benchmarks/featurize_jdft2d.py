"""Featurisation speed on matbench_jdft2d (636 structures): our graph builder vs the original CGCNN recipe.

Compared in the same process, on the same parsed pymatgen Structures, each timed ``--repeats`` times
(median reported):

- ``zoo build_graphs``: ``build_graphs(structures, GraphSpec("cgcnn"), cache=False)``: validation
  (cell, species, 0.5 Å overlap check), content hash, 8 Å neighbour list, 12 nearest per atom;
- ``zoo neighbours only``: the same graphs without validation and hashing (what the cache saves);
- ``zoo cache hit``: ``build_graphs`` a second time with a warm on-disk cache (temporary folder);
- ``original CGCNN``: ``Structure.get_all_neighbors(8)``, sort each list by distance, keep 12, make
  the index/distance arrays (``cgcnn/data.py`` ``CIFData.__getitem__`` without the Gaussian filter,
  which both sides apply later in the model).

Parsing the structures from the JSON (``Structure.from_dict``) is timed separately, since both
sides need it. The script also checks that both give the same 12 distances per atom.

Usage: ``python benchmarks/featurize_jdft2d.py [--repeats 5] [--out results/benchmarks/featurize_jdft2d.json]``
Run on an idle machine with ``OMP_NUM_THREADS=1`` for figures worth quoting.
"""
from __future__ import annotations

import argparse
import gzip
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.common import JDFT2D as DEFAULT_DATA, RESULTS, machine_info  # noqa: E402

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



def timed(fn, repeats: int) -> tuple[list[float], object]:
    times, result = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return times, result


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)

    from pymatgen.core import Structure

    from zoo.graphs import GraphSpec, build_graphs
    from zoo.graphs.builder import _graph_from_structure
    from zoo.core.io import write_json

    if not args.data.exists():
        raise SystemExit(f"{args.data} not found: point --data at matbench_jdft2d.json.gz (see ../shared/data)")
    with gzip.open(args.data, "rt") as fh:
        dicts = [row[0] for row in json.load(fh)["data"]]
    spec = GraphSpec("cgcnn", radius=RADIUS, max_neighbors=MAX_NEIGHBORS)

    parse_times, structures = timed(lambda: [Structure.from_dict(d) for d in dicts], args.repeats)
    cases = {}
    cases["zoo build_graphs"], (ours, failures) = timed(
        lambda: build_graphs(structures, spec, cache=False, progress=False), args.repeats
    )
    if failures:
        raise SystemExit(f"build_graphs failed on {len(failures)} structures: {next(iter(failures.values()))}")
    cases["zoo neighbours only"], _ = timed(lambda: [_graph_from_structure(s, spec) for s in structures], args.repeats)
    with tempfile.TemporaryDirectory() as tmp:
        build_graphs(structures, spec, cache=tmp, progress=False)  # fill the cache (not timed)
        cases["zoo cache hit"], _ = timed(lambda: build_graphs(structures, spec, cache=tmp, progress=False), args.repeats)
    cases["original CGCNN"], reference = timed(lambda: original_cgcnn(structures), args.repeats)

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

    base = statistics.median(cases["original CGCNN"])
    rows = []
    for name, times in cases.items():
        med = statistics.median(times)
        rows.append(
            {
                "case": name,
                "median_s": med,
                "min_s": min(times),
                "times_s": times,
                "per_structure_ms": 1e3 * med / len(structures),
                "speedup_vs_original": base / med if med > 0 else None,
            }
        )
    n_edges = sum(g.n_edges for g in ours)
    print(f"\nmatbench_jdft2d: {len(structures)} structures, {sum(g.n_nodes for g in ours)} atoms, {n_edges} edges "
          f"(cgcnn, {RADIUS} Å, {MAX_NEIGHBORS} nearest); repeats={args.repeats}; parse {statistics.median(parse_times):.3f} s")
    print(f"{'case':22s} {'median s':>10s} {'min s':>10s} {'ms/struct':>10s} {'vs orig':>8s}")
    for r in rows:
        print(f"{r['case']:22s} {r['median_s']:10.4f} {r['min_s']:10.4f} {r['per_structure_ms']:10.3f} {r['speedup_vs_original']:7.1f}x")
    print(f"max |distance difference| vs original CGCNN: {max_diff:.2e} Å")

    result = {
        "benchmark": "featurize_jdft2d",
        "description": "cgcnn graphs (8 Å, 12 nearest) for all matbench_jdft2d structures; times exclude parsing",
        "n_structures": len(structures),
        "n_edges": n_edges,
        "repeats": args.repeats,
        "parse_from_dict_s": {"median_s": statistics.median(parse_times), "times_s": parse_times},
        "results": rows,
        "max_distance_difference_A": max_diff,
        "machine": machine_info(),
    }
    write_json(args.out, result)
    print(f"wrote {args.out}")
    return result


if __name__ == "__main__":
    main()
