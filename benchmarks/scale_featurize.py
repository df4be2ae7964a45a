"""Featurisation at scale: N generated crystals -> sharded graph cache, with a kill -9 and a resume.

What it does (``zoo.graphs.shards``; structures from the embedded generator, ``zoo.tasks.embedded``):

1. starts the featurisation as a child process group (``--workers`` processes, chunks of ``--chunk``);
2. once ``--kill-after`` shards are complete, kills the whole group with SIGKILL (as a lost node would);
3. records which shards were complete and their modification times, restarts the same command, and
   checks that the restart skipped exactly those shards (counted) and left their files untouched;
4. reads every graph back through ``ShardedGraphs`` in a shard-local shuffled order (a training epoch's
   access pattern) in a fresh process, counting shard reads;
5. writes ``results/scale/featurize_<spec>.json`` and ``.md``: structures/s (end to end, and graph building
   alone, since generation dominates and a real task reads structures instead), peak memory of the
   parent and of the largest worker (``getrusage`` ru_maxrss), disk per structure, and the extrapolation to
   matbench_mp_gap (106,113) and matbench_mp_e_form (132,752).

Usage: ``nice -n 15 python benchmarks/scale_featurize.py --n 20000 --spec cgcnn`` (writes under
``--scratch``, default ``$TMPDIR/zoo-scale``; the shards are deleted afterwards unless ``--keep``).
``--spec both`` generates each structure once and builds CGCNN's and TFN's graphs from it in the same
worker pass (``featurize_specs_to_shards``): one record per spec; ``--tag 100k`` names the result files
``featurize_<spec>_100k.*``, whose .md also lists the other runs of the same spec by n. The 100k run:
``nice -n 10 python benchmarks/scale_featurize.py --n 100000 --spec both --kill-after 40 --tag 100k``.
"""
from __future__ import annotations

import argparse
import functools
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

OUT = ROOT / "results" / "scale"
MATBENCH = {"matbench_mp_gap": 106_113, "matbench_mp_e_form": 132_752}  # structures (matbench v0.1)
SPECS = {"cgcnn": "GraphSpec('cgcnn', radius=8.0, max_neighbors=12)", "tfn": "GraphSpec('radius', radius=5.0)"}


def generated_chunk(seed: int, start: int, stop: int):
    """Crystals start..stop-1 of the generator's list for ``seed`` (no labels: featurisation only)."""
    from zoo.tasks.embedded.generator import generate_crystals

    crystals = generate_crystals(stop - start, seed, progress=False, start=start)
    return [c.id for c in crystals], [c.structure for c in crystals], None


def spec_names(arg: str) -> list[str]:
    """``--spec``: one spec name or ``both`` (one generated structure stream, both graph kinds)."""
    return sorted(SPECS) if arg == "both" else [arg]


def spec_of(name: str):
    from zoo.graphs import GraphSpec

    return GraphSpec("cgcnn", radius=8.0, max_neighbors=12) if name == "cgcnn" else GraphSpec("radius", radius=5.0)


def child(args) -> None:
    """One featurisation run (killed or not); its report and rusage go to ``<scratch>/report-<pid>.json``."""
    from zoo.graphs.shards import featurize_specs_to_shards

    names = spec_names(args.spec)
    reports = featurize_specs_to_shards(functools.partial(generated_chunk, args.seed), args.n,
                                        {Path(args.shards, name): spec_of(name) for name in names},
                                        chunk_size=args.chunk, workers=args.workers, progress=False)
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    # One worker pass generates each chunk once and builds every spec's graphs from it: CPU and peak RSS
    # are those of the whole pass; graph_seconds_all_specs lets derive() split the CPU by wall shares.
    shared = {"specs": names, "maxrss_parent_mb": me.ru_maxrss / 1024, "maxrss_worker_mb": kids.ru_maxrss / 1024,
              "cpu_parent_s": me.ru_utime + me.ru_stime, "cpu_workers_s": kids.ru_utime + kids.ru_stime,
              "graph_seconds_all_specs": sum(r.graph_seconds for r in reports.values())}
    out = {name: {**reports[Path(args.shards, name)].as_dict(), "skipped_ids": reports[Path(args.shards, name)].skipped, **shared}
           for name in names}
    Path(args.shards, f"report-{os.getpid()}.json").write_text(json.dumps(out))


def reader(args) -> None:
    """Read every graph through ShardedGraphs in a shard-local shuffled order (one epoch's access)."""
    import numpy as np

    from zoo.graphs.shards import ShardedGraphs

    t0 = time.perf_counter()
    data = ShardedGraphs(args.shards, max_cached_shards=2)
    t_open = time.perf_counter() - t0
    order = data.permutation(np.random.default_rng(0))
    edges = 0
    t0 = time.perf_counter()
    for i in order:
        edges += data[i].n_edges
    t_read = time.perf_counter() - t0
    me = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({"n_graphs": len(data), "edges": int(edges), "open_s": t_open, "read_s": t_read, "shard_reads": data.shard_reads,
                      "n_shards": int(data.plan["n_shards"]), "maxrss_mb": me.ru_maxrss / 1024, "failures": len(data.failures),
                      "mean_nodes": float(data.n_nodes.mean()), "mean_edges": float(data.n_edges.mean())}))


def calibrate(n: int, seed: int) -> None:
    """CPU time (``time.process_time``, which a loaded machine does not inflate) of graph building alone,
    per structure, for both specs on the same ``n`` generated crystals: results/scale/featurize_calibration.json."""
    from zoo.core.io import write_json
    from zoo.graphs import build_graphs

    ids, structures, _ = generated_chunk(seed, 0, n)
    out = {"n": n, "seed": seed, "load_average": load_average(), "mean_atoms": sum(len(s) for s in structures) / n}
    for name, text in SPECS.items():
        t0 = time.process_time()
        graphs, failures = build_graphs(structures, spec_of(name), ids=ids, cache=False, progress=False, on_error="skip")
        cpu = time.process_time() - t0
        edges = [g.n_edges for g in graphs if g is not None]
        out[name] = {"spec": text, "graph_cpu_ms_per_structure": 1e3 * cpu / n, "structures_per_cpu_s": n / cpu,
                     "mean_edges": sum(edges) / len(edges), "failures": len(failures)}
    OUT.mkdir(parents=True, exist_ok=True)
    write_json(OUT / "featurize_calibration.json", out)
    print(json.dumps(out, indent=1))


def complete_shards(shards: Path) -> dict[str, int]:
    """Finished shards (their .json marker) of every spec folder under ``shards``, with modification times."""
    return {f"{p.parent.name}/{p.name}": p.stat().st_mtime_ns for p in sorted(shards.glob("*/shard-*.json"))}


def chunks_complete(shards: Path, names: list[str]) -> int:
    """Chunks whose shard is complete in every spec folder."""
    return min(len(list((shards / name).glob("shard-*.json"))) for name in names)


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def derive(record: dict) -> None:
    """Figures and extrapolation from the measured record (also ``--derive RECORD.json`` to redo them)."""
    report, n, workers = record["run"], record["n"], record["workers"]
    n_done = report["n_graphs"] + report["n_failures"]  # structures handled by the resumed run
    per_structure_graph_s = report["graph_seconds"] / max(n_done, 1)
    per_structure_source_s = report["source_seconds"] / max(n_done, 1)
    # On a loaded machine a worker's wall time is mostly waiting for a core: CPU time (getrusage of the
    # workers) is the figure that transfers; it is split into generation and graphs by their wall shares.
    cpu_per_structure = report["cpu_workers_s"] / max(n_done, 1)
    all_graphs = report.get("graph_seconds_all_specs", report["graph_seconds"])  # one spec per pass before 100k
    graph_share = report["graph_seconds"] / max(all_graphs + report["source_seconds"], 1e-12)
    graph_cpu_s = cpu_per_structure * graph_share
    disk = record.get("disk_bytes") or record["figures"]["disk_bytes"]  # records written before this field
    record["disk_bytes"] = disk
    record["figures"] = {
        "wall_s_total": (record.get("kill", {}).get("after_s") or 0.0) + record["resume"]["seconds"],
        "structures_per_s_end_to_end_resumed_run": n_done / record["resume"]["seconds"],
        "graph_ms_per_structure_worker_wall": 1e3 * per_structure_graph_s,
        "generation_ms_per_structure_worker_wall": 1e3 * per_structure_source_s,
        "cpu_ms_per_structure_end_to_end": 1e3 * cpu_per_structure,
        "graph_cpu_ms_per_structure": 1e3 * graph_cpu_s,
        "graph_structures_per_cpu_s": 1.0 / max(graph_cpu_s, 1e-12),
        "disk_bytes": disk, "disk_bytes_per_structure": disk / n,
        "peak_rss_parent_mb": report["maxrss_parent_mb"], "peak_rss_largest_worker_mb": report["maxrss_worker_mb"],
        "peak_rss_bound_mb": report["maxrss_parent_mb"] + workers * report["maxrss_worker_mb"],
        "reader_peak_rss_mb": record["read"]["maxrss_mb"],
    }
    # Extrapolation: per-structure costs are constant in n (chunks are independent; memory is set by
    # workers x chunk, not n). Graph cost grows ~linearly with atoms per structure (CGCNN: 12 edges per
    # atom; radius graphs: edges per atom set by density), so scale by (mean atoms of the task / mean
    # atoms here) when the task's structures are larger than the generator's.
    record["extrapolation"] = {
        name: {"n": size, "graph_cpu_hours": size * graph_cpu_s / 3600, "graph_wall_hours_on_8_free_cores": size * graph_cpu_s / 3600 / 8,
               "disk_gb": size * disk / n / 1e9, "peak_rss_mb_per_worker": report["maxrss_worker_mb"],
               "mean_atoms_measured": record["read"]["mean_nodes"]}
        for name, size in MATBENCH.items()}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--spec", choices=[*sorted(SPECS), "both"], default="cgcnn",
                    help="graph kind; both: one generated stream, both graph kinds built in the same worker pass")
    ap.add_argument("--tag", default="", help="suffix of the result files (featurize_<spec>_<tag>.json)")
    ap.add_argument("--chunk", type=int, default=500)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--kill-after", type=int, default=8, help="complete chunks (all specs) before the kill -9 (0: no kill)")
    ap.add_argument("--scratch", default=os.path.join(tempfile.gettempdir(), "zoo-scale"))
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--derive", help="redo the figures and the .md of an existing record (json)")
    ap.add_argument("--calibrate", type=int, default=0, help="only time graph building (CPU) on this many crystals")
    ap.add_argument("--role", choices=["driver", "child", "reader"], default="driver", help=argparse.SUPPRESS)
    ap.add_argument("--shards", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.role == "child":
        return child(args)
    if args.role == "reader":
        return reader(args)
    if args.calibrate:
        return calibrate(args.calibrate, args.seed)
    if args.derive:
        record = json.loads(Path(args.derive).read_text())
        derive(record)
        return write(record)

    names = spec_names(args.spec)
    shards = Path(args.scratch) / f"{args.spec}-n{args.n}-seed{args.seed}"
    if shards.exists():
        shutil.rmtree(shards)
    shards.mkdir(parents=True)
    cmd = [sys.executable, __file__, "--role", "child", "--shards", str(shards), "--n", str(args.n), "--spec", args.spec,
           "--chunk", str(args.chunk), "--workers", str(args.workers), "--seed", str(args.seed)]
    record = {"n": args.n, "chunk": args.chunk, "workers": args.workers, "seed": args.seed, "specs_in_one_pass": names,
              "tag": args.tag, "load_average_start": load_average()}

    t0 = time.perf_counter()
    killed_at = None
    if args.kill_after:
        proc = subprocess.Popen(cmd, start_new_session=True)  # its own process group: the kill takes the workers too
        while proc.poll() is None and chunks_complete(shards, names) < args.kill_after:
            time.sleep(0.5)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            killed_at = time.perf_counter() - t0
        time.sleep(1.0)  # let orphaned workers (if any) notice the closed pipe and exit
        before = complete_shards(shards)
        leftovers = sorted(p.name for p in shards.glob("*/*") if ".tmp" in p.name)
        record["kill"] = {"after_s": killed_at, "complete_shards_at_kill": len(before) // len(names),
                          "complete_shards_at_kill_per_spec": {name: sum(key.startswith(name + "/") for key in before) for name in names},
                          "temporary_files_left": len(leftovers), "load_average": load_average()}
    else:
        before = {}
    t1 = time.perf_counter()
    subprocess.run(cmd, check=True)
    t_resume = time.perf_counter() - t1
    reports = json.loads(max(shards.glob("report-*.json"), key=lambda p: p.stat().st_mtime).read_text())
    after = complete_shards(shards)
    load_resumed = load_average()
    for name in names:
        report = reports[name]
        mine = {key: mtime for key, mtime in before.items() if key.startswith(name + "/")}
        untouched = sum(after.get(key) == mtime for key, mtime in mine.items())
        one = {**record, "spec": SPECS[name]}
        one["resume"] = {"seconds": t_resume, "skipped": report["skipped"], "built": report["built"],
                         "previously_complete_untouched": untouched, "previously_complete": len(mine),
                         "skipped_equals_complete_at_kill": report["skipped"] == len(mine), "load_average": load_resumed}
        one["run"] = report
        read = subprocess.run([sys.executable, __file__, "--role", "reader", "--shards", str(shards / name)], check=True,
                              capture_output=True, text=True)
        one["read"] = json.loads(read.stdout.strip().splitlines()[-1])
        one["disk_bytes"] = sum(p.stat().st_size for p in (shards / name).iterdir() if p.is_file())
        derive(one)
        one["load_average_end"] = load_average()
        write(one)
    if not args.keep:
        shutil.rmtree(shards)


def write(record: dict) -> None:
    from zoo.core.io import write_json, write_text

    name = "cgcnn" if record["spec"].startswith("GraphSpec('cgcnn'") else "tfn"
    stem = f"featurize_{name}_{record['tag']}" if record.get("tag") else f"featurize_{name}"
    OUT.mkdir(parents=True, exist_ok=True)
    write_json(OUT / f"{stem}.json", record)
    write_text(OUT / f"{stem}.md", markdown(record))
    print(markdown(record))


def markdown(r: dict) -> str:
    f, k, res, rd = r["figures"], r.get("kill", {}), r["resume"], r["read"]
    lines = [f"# Featurisation at scale: {r['n']} generated crystals, {r['spec']}", "",
             (f"chunk {r['chunk']} structures, {r['workers']} worker processes, seed {r['seed']}; load average "
              f"{r['load_average_start']} at start, {r['load_average_end']} at end (2-core machine shared with other jobs)."), "",
             "| figure | value |", "|---|---|"]
    rows = [
        ("kill -9 after (s) / shards complete then", f"{k.get('after_s', 0):.0f} / {k.get('complete_shards_at_kill', 0)}"),
        ("resumed run: shards skipped / built", f"{res['skipped']} / {res['built']} (skipped = complete at kill: {res['skipped_equals_complete_at_kill']})"),
        ("previously complete shards untouched by the resume", f"{res['previously_complete_untouched']} of {res['previously_complete']}"),
        ("temporary files left by the kill", str(k.get("temporary_files_left", 0))),
        ("end to end, resumed run (generation + graphs + write)", f"{f['structures_per_s_end_to_end_resumed_run']:.1f} structures/s"),
        ("CPU per structure, end to end (workers' getrusage)", f"{f['cpu_ms_per_structure_end_to_end']:.1f} ms"),
        ("graphs + write: CPU per structure (share of the workers' wall time)", f"{f['graph_cpu_ms_per_structure']:.2f} ms = {f['graph_structures_per_cpu_s']:.0f} structures per CPU-second"),
        ("wall time in a worker per structure: generation / graphs + write (loaded machine)", f"{f['generation_ms_per_structure_worker_wall']:.1f} / {f['graph_ms_per_structure_worker_wall']:.1f} ms"),
        ("peak RSS parent / largest worker / bound (parent + workers x worker)",
         f"{f['peak_rss_parent_mb']:.0f} / {f['peak_rss_largest_worker_mb']:.0f} / {f['peak_rss_bound_mb']:.0f} MB"),
        ("disk", f"{f['disk_bytes'] / 1e6:.1f} MB ({f['disk_bytes_per_structure'] / 1e3:.2f} kB/structure)"),
        ("read back, shard-local shuffled order", f"{rd['n_graphs']} graphs in {rd['read_s']:.1f} s, {rd['shard_reads']} shard reads for {rd['n_shards']} shards, peak RSS {rd['maxrss_mb']:.0f} MB"),
        ("mean nodes / edges per graph", f"{rd['mean_nodes']:.1f} / {rd['mean_edges']:.1f}"),
    ]
    lines += [f"| {a} | {b} |" for a, b in rows]
    lines += ["", ("Extrapolation (graph building and writing from parsed structures, at this set's "
                   f"{rd['mean_nodes']:.1f} atoms per structure; multiply time and disk by the task's mean atoms / "
                   f"{rd['mean_nodes']:.1f}; memory is set by workers x chunk, not by n):"), "",
              "| task | structures | graph CPU h | wall h on 8 free cores | disk GB | peak RSS per worker MB |", "|---|---|---|---|---|---|"]
    for name, e in r["extrapolation"].items():
        lines.append(f"| {name} | {e['n']} | {e['graph_cpu_hours']:.3f} | {e['graph_wall_hours_on_8_free_cores']:.3f} | {e['disk_gb']:.2f} | {e['peak_rss_mb_per_worker']:.0f} |")
    return "\n".join(lines + against_other_n(r)) + "\n"


def against_other_n(r: dict) -> list[str]:
    """For a tagged record (the 100k run): its per-structure figures next to the other records of the same
    spec with another n (the untagged 20k / 4k run, one spec per pass; a small run made like this one),
    which show whether rate and memory depend on n."""
    name = "cgcnn" if r["spec"].startswith("GraphSpec('cgcnn'") else "tfn"
    if not r.get("tag"):
        return []
    others = [json.loads(p.read_text()) for p in sorted(OUT.glob(f"featurize_{name}*.json"))]
    runs = sorted([o for o in others if o["n"] != r["n"]], key=lambda o: o["n"]) + [r]
    if len(runs) == 1:
        return []

    def how(o):
        return f"{'+'.join(o.get('specs_in_one_pass') or [name])} per pass"

    def row(label, get):
        return f"| {label} | " + " | ".join(get(o) for o in runs) + " |"

    head = "| per structure | " + " | ".join(f"n = {o['n']} ({how(o)})" for o in runs) + " |"
    rule = "|---" * (len(runs) + 1) + "|"

    def f(key, fmt):
        return lambda o: fmt(o["figures"][key])

    return ["", ("Against the other runs of this spec (`featurize_" + name + "*.json`). A run with both specs per pass "
                 "generates each structure once and builds both graph kinds from it in the same worker, so its end-to-end "
                 "CPU and its worker memory include the other spec's graphs; compare like with like for the n-dependence:"), "",
            head, rule,
            row("CPU end to end, ms (workers' getrusage)", f("cpu_ms_per_structure_end_to_end", lambda v: f"{v:.2f}")),
            row("graphs + write, CPU ms", f("graph_cpu_ms_per_structure", lambda v: f"{v:.2f}")),
            row("disk, kB", f("disk_bytes_per_structure", lambda v: f"{v / 1e3:.2f}")),
            row("read back, ms per graph", lambda o: f"{1e3 * o['read']['read_s'] / o['read']['n_graphs']:.3f}"),
            row("load average at start / end", lambda o: f"{o['load_average_start'][0]:.1f} / {o['load_average_end'][0]:.1f}"),
            "", "| peak RSS, MB | " + " | ".join(f"n = {o['n']} ({how(o)})" for o in runs) + " |", rule,
            row("parent", f("peak_rss_parent_mb", lambda v: f"{v:.0f}")),
            row("largest worker", f("peak_rss_largest_worker_mb", lambda v: f"{v:.0f}")),
            row("reader (ids, hashes and counts of every graph: O(n))", f("reader_peak_rss_mb", lambda v: f"{v:.0f}"))]

if __name__ == "__main__":
    main()
