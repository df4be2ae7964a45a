"""CHGCNN's evaluation: the trainings, the ablation, the parity / invariance figures and the result tables.

    zoo report chgcnn evaluate [--variants chgcnn,b,bt,bm,cgcnn] [--tasks matbench_jdft2d,embedded_dielectric_iso]
                               [--backends torch] [--seeds 0 1 2] [--folds 0 1 2 3 4] [--epochs 300] [--patience 50]
    zoo report chgcnn checks   [--n-crystals 3] [--n-trials 2]   torch <-> JAX parity and invariance figures
    zoo report chgcnn degenerate                       the fcc / hcp pair: same CGCNN graph, different hypergraph
    zoo report chgcnn tables [--epochs E --patience P] RESULTS.md of that budget from whatever has finished

``evaluate`` is ``zoo reproduce`` for every (variant, task, backend): the same recipe as the CGCNN jdft2d
reproduction in results/matbench_v0.1 (AdamW, lr 1e-3, cosine schedule, batch 64, up to 300 epochs, early
stopping after 50 epochs on a seeded 10 % validation split, float32), so the rows compare architectures,
not training. Variants: ``chgcnn`` (the default model, three layers of bonds + triplets + motifs: also the
"both" row of the ablation), ``b`` (bonds only), ``bt`` (+ triplets), ``bm`` (+ motifs) and ``cgcnn``
(for tasks without a CGCNN reproduction of that recipe). Each lands in
``<results>/<variant>/<matbench_v0.1 | crystal-zoo>/<task>/<model>-<backend>-seed<k>/`` (matbench's files,
every fold's config, environment and metrics); a killed call continues where it stopped, finished results
are reused, never overwritten. Another budget (``--epochs``/``--patience`` other than 300/50) lands under
``results/chgcnn/budget_e<E>_p<P>/`` and retrains CGCNN at that budget for its comparison row. ``tables`` reads them (and results/matbench_v0.1's CGCNN rows) into
``RESULTS.md`` and ``results.json``, with how many folds and seeds each mean is over.
"""
from __future__ import annotations

import argparse
import dataclasses
import gzip
import json
import statistics
import sys
from pathlib import Path
from typing import Any

import numpy as np

from zoo.core import provenance
from zoo.core.io import write_json, write_text
from zoo.models import config_to_dict, make_config

from .common import RESULTS, ReportError

OUT = RESULTS / "chgcnn"
VARIANTS = {  # name -> (model, overrides, label)
    "chgcnn": ("chgcnn", {}, "CHGCNN: bonds + triplets + motifs (default)"),
    "b": ("chgcnn", {"layers": ["b", "b", "b"]}, "CHGCNN ablation: bonds only"),
    "bt": ("chgcnn", {"layers": ["bt", "bt", "bt"]}, "CHGCNN ablation: bonds + triplets"),
    "bm": ("chgcnn", {"layers": ["bm", "bm", "bm"]}, "CHGCNN ablation: bonds + motifs"),
    "cgcnn": ("cgcnn", {}, "CGCNN (same recipe)"),
}
TASKS = ("matbench_jdft2d", "embedded_dielectric_iso")
# CGCNN's jdft2d reproduction with this recipe (results/matbench_v0.1/matbench_jdft2d/README.md).
CGCNN_JDFT2D = RESULTS / "matbench_v0.1" / "matbench_jdft2d"


FULL_BUDGET = (300, 50)  # (epochs, patience) of the CGCNN reproduction's recipe


def budget_root(epochs: int, patience: int) -> Path:
    """Where an evaluation with this training budget lands: ``results/chgcnn`` for the full recipe,
    ``results/chgcnn/budget_e<epochs>_p<patience>`` otherwise (a reproduction folder holds one recipe:
    ``zoo reproduce`` refuses to continue a folder with other settings)."""
    return OUT if (epochs, patience) == FULL_BUDGET else OUT / f"budget_e{epochs}_p{patience}"


# ----------------------------------------------------------------------------------------------- evaluate
def evaluate(args) -> int:
    from zoo import tasks as zoo_tasks
    from zoo.training import TrainConfig
    from zoo.training.reproduce import reproduce, results_dir

    from .common import resolve_data_dir

    unknown = sorted(set(args.variants) - set(VARIANTS))
    if unknown:
        raise ReportError(f"unknown variants {unknown}; choose from {sorted(VARIANTS)}")
    data_dir = None
    if any(t.startswith("matbench_") for t in args.tasks):
        root = resolve_data_dir(args.data_dir, [])
        if root is not None:
            data_dir = str(root / "matbench_jdft2d") if (root / "matbench_jdft2d").is_dir() else str(root)
    folds = None if sorted(args.folds) == [0, 1, 2, 3, 4] else list(args.folds)
    root = budget_root(args.epochs, args.patience)
    # CGCNN's jdft2d reproduction was trained with the full budget; at any other budget the comparison
    # needs CGCNN trained at that budget too.
    rerun_cgcnn = args.rerun_cgcnn or root != OUT
    # Seed by seed (all folds of one seed before the next), so an interrupted evaluation leaves complete
    # 5-fold means rather than five partial ones; each seed is its own reproduction (folder
    # <model>-<backend> for seed 0, <model>-<backend>-seed<k> otherwise, as `zoo reproduce --seeds k`).
    for seed in args.seeds:
        for task in args.tasks:
            for variant in args.variants:
                if variant == "cgcnn" and task == "matbench_jdft2d" and not rerun_cgcnn:
                    print(f"== {task}: cgcnn's reproduction with this recipe is in {CGCNN_JDFT2D}; not retrained")
                    continue
                model, overrides, _ = VARIANTS[variant]
                for backend in args.backends:
                    # patience_lr_fraction=1: early stopping counts from the first epoch, as in the CGCNN
                    # reproduction (and every run here) trained before that option existed.
                    base = TrainConfig(model=model, task=task, backend=backend, epochs=args.epochs, patience=args.patience,
                                       patience_lr_fraction=1.0,
                                       batch_size=64, lr=1e-3, optimizer="adamw", schedule="cosine", dtype="float32",
                                       progress=False, model_overrides=dict(overrides),
                                       data_dir=data_dir if task.startswith("matbench_") else None)
                    task_obj = zoo_tasks.get(task, **({"data_dir": base.data_dir} if base.data_dir else {}))
                    if (results_dir(root / variant, task_obj, model, backend, seed, [seed]) / "results.json.gz").exists():
                        print(f"== {task} {variant} {backend} seed {seed}: finished earlier")
                        continue
                    reproduce(base, seeds=[seed], folds=folds, results=root / variant)
    return tables(args, root=root)


# ----------------------------------------------------------------------------------------------- tables
def _fold_scores(folder: Path) -> dict[int, dict[str, float]]:
    """Per fold: the test metrics from the archived runs (runs/fold_k/metrics.json), finished or not."""
    out = {}
    for m in sorted(folder.glob("runs/fold_*/metrics.json")):
        d = json.loads(m.read_text())
        if "test" in d:
            out[int(m.parent.name.split("_")[1])] = d["test"]
    progress = folder / "progress.json"
    if progress.exists():  # folds not yet archived (a submission is written at the end): read their run folders
        for fold, run in json.loads(progress.read_text()).get("runs", {}).items():
            m = Path(run) / "metrics.json"
            if int(fold) not in out and m.exists():
                d = json.loads(m.read_text())
                if "test" in d and d.get("finished", True):
                    out[int(fold)] = d["test"]
    return out


def _submission_maes(folder: Path) -> dict[int, float]:
    """Per fold MAE of a finished matbench submission (results.json.gz), for CGCNN's reproduction."""
    path = folder / "results.json.gz"
    if not path.exists():
        return {}
    raw = path.read_bytes()
    d = json.loads(gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw)
    task = next(iter(d["tasks"].values()))
    return {int(k.split("_")[1]): float(v["scores"]["mae"]) for k, v in task["results"].items()}


def collect(root: Path = OUT) -> list[dict[str, Any]]:
    rows = []
    for variant in VARIANTS:
        for folder in sorted((root / variant).glob("*/*/*")):
            if not folder.is_dir():
                continue
            maes = {k: float(v["mae"]) for k, v in _fold_scores(folder).items() if "mae" in v}
            if maes:
                rows.append({"variant": variant, "task": folder.parent.name, "entry": folder.name, "fold_mae": maes,
                             "finished": (folder / "results.json.gz").exists(), "source": str(folder.relative_to(root.parent))})
    full = CGCNN_JDFT2D.glob("cgcnn-*") if root == OUT else ()  # a reduced budget retrains CGCNN (evaluate)
    for folder in sorted(full):  # the CGCNN reproduction, same recipe
        maes = _submission_maes(folder)
        if maes:
            rows.append({"variant": "cgcnn", "task": "matbench_jdft2d", "entry": folder.name, "fold_mae": maes, "finished": True,
                         "source": str(folder.relative_to(RESULTS.parent))})
    return rows


def _summary(rows: list[dict]) -> list[dict]:
    """One line per (task, variant, backend): mean over folds per seed, then over seeds."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        backend = "jax" if "-jax" in r["entry"] else "torch"
        groups.setdefault((r["task"], r["variant"], backend), []).append(r)
    out = []
    for (task, variant, backend), rs in sorted(groups.items()):
        complete = [r for r in rs if len(r["fold_mae"]) == 5]
        per_seed = [statistics.mean(r["fold_mae"].values()) for r in complete]
        folds = sorted({f for r in rs for f in r["fold_mae"]})
        fold0 = [r["fold_mae"][0] for r in rs if 0 in r["fold_mae"]]
        out.append({"task": task, "variant": variant, "backend": backend, "label": VARIANTS[variant][2],
                    "seeds_complete": len(complete), "mean_mae_5fold": statistics.mean(per_seed) if per_seed else None,
                    "seed_std": statistics.stdev(per_seed) if len(per_seed) > 1 else None,
                    "fold_std": (statistics.mean(statistics.pstdev(r["fold_mae"].values()) for r in complete) if complete else None),
                    "fold0_mean": statistics.mean(fold0) if fold0 else None, "fold0_n": len(fold0),
                    "fold0_seed_std": statistics.stdev(fold0) if len(fold0) > 1 else None,
                    "entries": {r["entry"]: r["fold_mae"] for r in rs}, "folds_seen": folds})
    return out


def _fmt(x, spec=".2f"):
    return "—" if x is None else format(x, spec)


def _seed(entry: str) -> int:
    """The seed of a reproduction folder: ``<model>-<backend>`` is seed 0, ``...-seed<k>`` seed k."""
    return int(entry.rsplit("-seed", 1)[1]) if "-seed" in entry else 0


def _per_fold(s: dict) -> dict[int, list[float]]:
    """fold -> the test MAE of every seed that finished it."""
    out: dict[int, list[float]] = {}
    for maes in s["entries"].values():
        for fold, mae in maes.items():
            out.setdefault(int(fold), []).append(mae)
    return out


def paired(summary: list[dict]) -> list[dict]:
    """Each CHGCNN variant against CGCNN of the same task and backend on the (fold, seed) pairs both finished:
    a pair shares the test set, the validation split and the seed, so the difference is the architecture's
    (plus training noise). The Wilcoxon signed-rank p-value is a guide only: the pairs of one fold share
    their test set across seeds, so they are not independent."""
    from scipy.stats import wilcoxon

    by_key = {(s["task"], s["backend"], s["variant"]): s for s in summary}
    out = []
    for (task, backend, variant), s in sorted(by_key.items()):
        ref = by_key.get((task, backend, "cgcnn"))
        if variant == "cgcnn" or ref is None:
            continue
        mine = {(f, _seed(e)): m for e, maes in s["entries"].items() for f, m in maes.items()}
        theirs = {(f, _seed(e)): m for e, maes in ref["entries"].items() for f, m in maes.items()}
        keys = sorted(set(mine) & set(theirs))
        if not keys:
            continue
        d = np.array([mine[k] - theirs[k] for k in keys])
        p = float(wilcoxon(d).pvalue) if len(d) >= 6 and np.any(d != 0) else None
        out.append({"task": task, "backend": backend, "variant": variant, "label": s["label"], "n_pairs": len(keys),
                    "folds": sorted({f for f, _ in keys}), "seeds": sorted({k for _, k in keys}),
                    "mean_diff": float(d.mean()), "std_diff": float(d.std(ddof=1)) if len(d) > 1 else None,
                    "se_diff": float(d.std(ddof=1) / np.sqrt(len(d))) if len(d) > 1 else None,
                    "n_better": int(np.sum(d < 0)), "wilcoxon_p": p})
    return out


def archive_partial(root: Path) -> None:
    """Copy each finished fold's provenance (config, env, metrics) into its result folder, as ``zoo reproduce``
    does when it writes a submission: an evaluation of some folds only writes none, and its run folders live
    in runs/, outside git."""
    from zoo.training.reproduce import archive_runs

    for progress in sorted(root.glob("*/*/*/*/progress.json")):
        runs = json.loads(progress.read_text()).get("runs", {})
        done = {f: r for f, r in runs.items() if (Path(r) / "metrics.json").exists()
                and json.loads((Path(r) / "metrics.json").read_text()).get("finished")}
        if done:
            archive_runs(progress.parent, {"runs": done})


def tables(args=None, root: Path | None = None) -> int:
    if root is None:
        root = budget_root(args.epochs, args.patience) if args is not None and hasattr(args, "epochs") else OUT
    archive_partial(root)
    rows = collect(root)
    summary = _summary(rows)
    comparison = paired(summary)
    lines = ["# CHGCNN results (generated by `zoo report chgcnn tables`; do not edit by hand)", "",
             "Test MAE (matbench_jdft2d: meV/atom; embedded_dielectric_iso: dimensionless). A 5-fold mean is given only",
             "for seeds whose five folds all finished; fold 0 is listed for every seed that reached it.",
             f"Training budget: {'the full recipe (300 epochs, patience 50)' if root == OUT else root.name} (see zoo.reports.chgcnn).", ""]
    for task in sorted({s["task"] for s in summary}):
        lines += [f"## {task}", "", "| model | backend | seeds with 5 folds | 5-fold mean MAE | seed std | mean fold std | fold-0 MAE (n seeds) | fold-0 seed std |",
                  "|---|---|---|---|---|---|---|---|"]
        for s in [s for s in summary if s["task"] == task]:
            lines.append(f"| {s['label']} | {s['backend']} | {s['seeds_complete']} | {_fmt(s['mean_mae_5fold'])} | {_fmt(s['seed_std'])} | "
                         f"{_fmt(s['fold_std'])} | {_fmt(s['fold0_mean'])} ({s['fold0_n']}) | {_fmt(s['fold0_seed_std'])} |")
        folds = sorted({f for s in summary if s["task"] == task for f in _per_fold(s)})
        lines += ["", "Per fold: mean test MAE over the seeds that finished it ± their std (n seeds).", "",
                  "| model | backend | " + " | ".join(f"fold {f}" for f in folds) + " |", "|---|---|" + "---|" * len(folds)]
        for s in [s for s in summary if s["task"] == task]:
            pf = _per_fold(s)
            cells = [("—" if f not in pf else f"{statistics.mean(pf[f]):.2f}" + (f" ± {statistics.stdev(pf[f]):.2f}" if len(pf[f]) > 1 else "")
                      + f" ({len(pf[f])})") for f in folds]
            lines.append(f"| {s['label']} | {s['backend']} | " + " | ".join(cells) + " |")
        pairs = [c for c in comparison if c["task"] == task]
        if pairs:
            lines += ["", "Against CGCNN, paired per (fold, seed): mean of (variant − CGCNN) test MAE ± its standard error; "
                      "negative = better than CGCNN. Wilcoxon p: signed-rank test on the pairs (a guide only: the seeds "
                      "of one fold share its test set).", "",
                      "| model | backend | pairs (from folds, seeds) | mean difference | std of differences | better than CGCNN | Wilcoxon p |",
                      "|---|---|---|---|---|---|---|"]
            for c in pairs:
                lines.append(f"| {c['label']} | {c['backend']} | {c['n_pairs']} ({len(c['folds'])} folds, {len(c['seeds'])} seeds) | "
                             f"{c['mean_diff']:+.2f} ± {_fmt(c['se_diff'])} | {_fmt(c['std_diff'])} | {c['n_better']} of {c['n_pairs']} | "
                             f"{_fmt(c['wilcoxon_p'], '.3f')} |")
        lines += ["", "Per entry (fold: MAE):", ""]
        for s in [s for s in summary if s["task"] == task]:
            for entry, maes in s["entries"].items():
                lines.append(f"- {s['variant']} `{entry}`: " + ", ".join(f"{k}: {v:.2f}" for k, v in sorted(maes.items())))
        lines.append("")
    write_text(root / "RESULTS.md", "\n".join(lines) + "\n")
    write_json(root / "results.json", {"summary": summary, "paired_with_cgcnn": comparison, "rows": rows})
    print("\n".join(lines))
    return 0


# ----------------------------------------------------------------------------------------------- checks
def checks(args) -> int:
    """Parity and invariance of the default CHGCNN (random weights), on random symmetric crystals, with the
    default bond rule (12 nearest) and the radius rule (every neighbour within 8 Å; exact permutation invariance)."""
    from zoo.testing import backend_parity_errors, equivariance_errors, predictor, random_crystals

    structures = random_crystals(args.n_crystals, seed=0, max_atoms=6)
    out = []
    for rule, overrides in (("12 nearest (default)", {}), ("all within 8 Å", {"max_neighbors": None})):
        config = make_config("chgcnn", layers=("btmc", "btm", "BTM"), motif_features=args.motif_features, **overrides)
        for dtype in ("float64", "float32"):
            row: dict[str, Any] = {"bond_rule": rule, "dtype": dtype, "layers": list(config.layers)}
            for backend in ("torch", "jax"):
                row[f"{backend}_invariance"] = equivariance_errors(predictor("chgcnn", backend, config, dtype=dtype), structures, rank=0,
                                                                   n_trials=args.n_trials)
            row["parity"] = backend_parity_errors("chgcnn", config, structures, dtype=dtype, train=True, grads=True)
            out.append(row)
            print(f"{rule:<22}{dtype:<9} invariance torch {max(row['torch_invariance'].values()):.1e} "
                  f"jax {max(row['jax_invariance'].values()):.1e}  parity {row['parity']}", flush=True)
    write_json(args.out or OUT / "checks.json", {"n_crystals": args.n_crystals, "n_trials": args.n_trials,
                                                 "motif_features": args.motif_features, "rows": out,
                                                 "machine": provenance.environment(device="cpu")})
    return 0


# The bond rules of the degenerate pair: CGCNN's default, and a cutoff between the first shell (d) and the
# second (sqrt(2) d in both crystals), so that every pair distance within it is d in both.
DEGENERATE_RULES = {"12 nearest within 8 A (default)": {"radius": 8.0, "max_neighbors": 12},
                    "all within 3 A": {"radius": 3.0, "max_neighbors": None}}


def degenerate(args) -> int:
    """The fcc / ideal-hcp pair (tests/models/chgcnn: same CGCNN graph, different hypergraph), as figures,
    for both bond rules of ``DEGENERATE_RULES``."""
    from pymatgen.core import Lattice, Structure

    from zoo.graphs import build_graphs
    from zoo.graphs.motifs import feature_names
    from zoo.testing import predictor

    d = 2.55  # Å, nearest-neighbour distance of both
    fcc = Structure(Lattice.cubic(d * np.sqrt(2)), ["Cu"] * 4, [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]]).get_primitive_structure()
    hcp = Structure(Lattice.hexagonal(d, d * np.sqrt(8 / 3)), ["Cu", "Cu"], [[1 / 3, 2 / 3, 0.25], [2 / 3, 1 / 3, 0.75]])
    record: dict[str, Any] = {"nearest_neighbour_distance_A": d, "rules": {}}
    for rule, bonds in DEGENERATE_RULES.items():
        config = make_config("chgcnn", **bonds)
        graphs, _ = build_graphs([fcc, hcp], config.graph_spec(), cache=False, progress=False)
        names = feature_names(config.motif_features)
        entry: dict[str, Any] = {"bonds": bonds, "structures": {}}
        for name, g in zip(("fcc", "hcp"), graphs):
            v, dist = g.edge_vectors, g.distances
            a, b = g.hyper["triplet_bond_a"], g.hyper["triplet_bond_b"]
            angles = np.degrees(np.arccos(np.clip((v[a] * v[b]).sum(1) / (dist[a] * dist[b]), -1, 1)))
            vals, counts = np.unique(np.round(angles[g.receivers[a] == 0], 2), return_counts=True)
            f = g.hyper["motif_features"][0]
            entry["structures"][name] = {
                "bond_lengths_by_atom_A": [sorted(set(np.round(dist[g.receivers == i], 6).tolist())) for i in range(g.n_nodes)],
                "bonds_by_atom": [int(np.sum(g.receivers == i)) for i in range(g.n_nodes)],
                "triplet_angles_atom0_deg": dict(zip(map(float, vals), map(int, counts))),
                "motif_features_above_0.5": {names[k]: round(float(f[k]), 4) for k in np.flatnonzero(f > 0.5)},
            }
        cg_cfg = make_config("cgcnn", radius=bonds["radius"], max_neighbors=bonds["max_neighbors"] or 12)
        preds = {}
        for label, model, cfg in (("cgcnn", "cgcnn", cg_cfg),
                                  *((f"chgcnn {ls}", "chgcnn", dataclasses.replace(config, layers=(ls,) * 3)) for ls in ("b", "bt", "bm", "btm"))):
            out = predictor(model, "torch", cfg, dtype="float64", seed=3)([fcc, hcp])
            preds[label] = {"fcc": float(out[0]), "hcp": float(out[1]), "relative_gap": float(abs(out[0] - out[1]) / abs(out[0]))}
            print(f"{rule:<34}{label:<12} fcc {out[0]: .12f}  hcp {out[1]: .12f}  relative gap {preds[label]['relative_gap']:.2e}", flush=True)
        entry["predictions_random_weights_seed3_float64"] = preds
        record["rules"][rule] = entry
    write_json(args.out or OUT / "degenerate_pair.json", record)
    print(json.dumps({r: e["structures"] for r, e in record["rules"].items()}, indent=1)[:4000])
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="zoo report chgcnn", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="what", required=True)
    e = sub.add_parser("evaluate", help="train the variants (zoo reproduce), then write the tables")
    e.add_argument("--variants", type=lambda s: s.split(","), default=["chgcnn", "b", "bt", "bm"])
    e.add_argument("--tasks", type=lambda s: s.split(","), default=list(TASKS))
    e.add_argument("--backends", type=lambda s: s.split(","), default=["torch"])
    e.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    e.add_argument("--folds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    e.add_argument("--epochs", type=int, default=300)
    e.add_argument("--patience", type=int, default=50)
    e.add_argument("--data-dir", default=None, help="folder with matbench_jdft2d/ (default: $MATMINER_DATA or ../shared/data)")
    e.add_argument("--rerun-cgcnn", action="store_true", help="train CGCNN on jdft2d too instead of using its reproduction")
    c = sub.add_parser("checks", help="torch <-> JAX parity and invariance figures")
    c.add_argument("--n-crystals", type=int, default=3)
    c.add_argument("--n-trials", type=int, default=2, help="random draws of each transformation")
    c.add_argument("--motif-features", default="lsop+csm", help="lsop+csm (default model), lsop or csm")
    c.add_argument("--out", type=Path, default=None)
    d = sub.add_parser("degenerate", help="the fcc / hcp pair")
    d.add_argument("--out", type=Path, default=None)
    t = sub.add_parser("tables", help="RESULTS.md and results.json from the finished runs")
    t.add_argument("--epochs", type=int, default=FULL_BUDGET[0], help="the budget whose results to tabulate (as evaluate's)")
    t.add_argument("--patience", type=int, default=FULL_BUDGET[1])
    args = p.parse_args(argv)
    try:
        return {"evaluate": evaluate, "checks": checks, "degenerate": degenerate, "tables": tables}[args.what](args)
    except ReportError as exc:
        print(f"zoo report chgcnn: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
