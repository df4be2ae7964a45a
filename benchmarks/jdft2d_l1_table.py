"""TFN with its L1 recipe on matbench_jdft2d, 5 folds, next to the floors and CGCNN: results/tfn/jdft2d_l1/.

    .venv/bin/python benchmarks/jdft2d_l1_table.py --tfn RUN_DIR ... [--cgcnn-l1 RUN_DIR ...] [--out results/tfn/jdft2d_l1]

Reads each run folder's ``config.json`` / ``metrics.json`` / ``metrics.jsonl`` (copied to ``<out>/runs/`` as the
provenance), CGCNN's committed reproduction (``results/matbench_v0.1/matbench_jdft2d/cgcnn-<backend>-seed<k>/
results.json.gz``: matbench's per-fold scores, old recipe: MSE, up to 300 epochs), and writes ``results.json``,
``table.md`` and the learning curve of one fold. Per fold the figure is the median over the seeds run there;
the 5-fold mean is the mean of those medians. The training-mean floor of a fold is the one its runs recorded.
Nothing here trains or chooses: the test figures are only reported. ``--tfn`` takes the runs of the model the
table is about; another family's runs (e.g. chgcnn) work the same, and the rows take that family's name.
"""
from __future__ import annotations

import argparse
import gzip
import json
import shutil
import statistics
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from zoo.core.io import write_json, write_text  # noqa: E402

TASK = "matbench_jdft2d"
CGCNN_DIR = ROOT / "results" / "matbench_v0.1" / TASK
# The labels of results/tfn/jdft2d_l1 (stop 22); later tables pass their own.
TITLE = "TFN, L1 recipe (`tfn.scalar`: L1, AdamW LR 5e-3, 40 epochs, batch 64)"
TFN_LABEL = "TFN, L1 recipe"
CG_LABEL = "CGCNN, same L1 loss (torch)"


def read_run(run_dir: Path) -> dict:
    config = json.loads((run_dir / "config.json").read_text())
    metrics = json.loads((run_dir / "metrics.json").read_text())
    train = config["train"]
    if train["task"] != TASK or "test" not in metrics:
        raise SystemExit(f"{run_dir}: not a finished {TASK} run with a test score")
    return {"run_dir": str(run_dir), "model": train["model"], "fold": train["fold"], "seed": train["seed"],
            "loss": train["loss"], "lr": train["lr"], "epochs": train["epochs"], "recipe": train.get("recipe"),
            "test_mae": metrics["test"]["mae"], "floor_test_mae": metrics["floor"]["test"]["mae"],
            "val_mae": metrics["val"]["mae"], "floor_val_mae": metrics["floor"]["val"]["mae"],
            "best_epoch": metrics["best_epoch"], "epochs_run": metrics["epochs_run"],
            "train_s": metrics.get("time_s", {}).get("train")}


def per_fold(runs: list[dict]) -> dict[int, dict]:
    by_fold = defaultdict(list)
    for r in runs:
        by_fold[r["fold"]].append(r)
    return {f: {"median_test_mae": statistics.median(r["test_mae"] for r in rs), "seeds": sorted(r["seed"] for r in rs),
                "test_mae": {r["seed"]: r["test_mae"] for r in rs}, "floor_test_mae": rs[0]["floor_test_mae"],
                "median_val_mae": statistics.median(r["val_mae"] for r in rs)} for f, rs in sorted(by_fold.items())}


def cgcnn_old() -> dict[str, dict[int, float]]:
    """``{backend: {fold: median test MAE over seeds}}`` of the committed CGCNN reproduction."""
    out = {}
    for backend in ("torch", "jax"):
        folds = defaultdict(list)
        for path in sorted(CGCNN_DIR.glob(f"cgcnn-{backend}-seed*/results.json.gz")):
            with gzip.open(path, "rt") as fh:
                results = json.load(fh)["tasks"][TASK]["results"]
            for name, fold in results.items():
                folds[int(name.split("_")[1])].append(fold["scores"]["mae"])
        out[backend] = {f: statistics.median(v) for f, v in sorted(folds.items())}
    return out


def mean(values) -> float:
    values = list(values)
    return sum(values) / len(values)


def table(tfn: dict, cg: dict, cg_l1: dict, title: str = TITLE, tfn_label: str = TFN_LABEL, cg_label: str = CG_LABEL,
          name: str = "TFN") -> str:
    folds = sorted(tfn)
    complete = folds == [0, 1, 2, 3, 4]
    head = "| | " + " | ".join(f"fold {f}" for f in folds) + " | 5-fold mean |" if complete else ""
    lines = [f"# {title}, matbench_jdft2d",
             "", "Test MAE, meV/atom. Per fold: the median over the seeds run there (see the lines under the table). "
             "Written by `benchmarks/jdft2d_l1_table.py`; nothing was chosen on these figures.", "",
             head or "| | " + " | ".join(f"fold {f}" for f in folds) + " | mean |", "|---" * (len(folds) + 2) + "|"]

    def row(name, values: dict, bold=False):
        cells = [f"{values[f]:.2f}" if f in values else "-" for f in folds]
        m = f"{mean(values[f] for f in folds):.2f}" if all(f in values for f in folds) else "-"
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {'**' + m + '**' if bold else m} |")

    row(f"**{tfn_label}**", {f: tfn[f]["median_test_mae"] for f in folds}, bold=True)
    row("training-mean floor", {f: tfn[f]["floor_test_mae"] for f in folds})
    row(f"{name} below the floor by", {f: tfn[f]["floor_test_mae"] - tfn[f]["median_test_mae"] for f in folds})
    if cg_l1:
        row(cg_label, {f: v["median_test_mae"] for f, v in cg_l1.items()})
    for backend, values in cg.items():
        row(f"CGCNN old recipe (MSE, 300 epochs; {backend}, median of 3 seeds)", values)
    lines += ["", f"{name} fold 0 by seed: " + ", ".join(f"seed {s} {v:.2f}" for s, v in tfn[0]["test_mae"].items())
              if 0 in tfn else ""]
    if 0 in cg_l1 and len(cg_l1[0]["test_mae"]) > 1:
        lines += ["", "CGCNN fold 0 by seed: " + ", ".join(f"seed {s} {v:.2f}" for s, v in cg_l1[0]["test_mae"].items())]
    if complete:
        t = mean(tfn[f]["median_test_mae"] for f in folds)
        below = [f for f in folds if tfn[f]["median_test_mae"] < tfn[f]["floor_test_mae"]]
        others = {f"CGCNN old recipe ({b})": mean(v.values()) for b, v in cg.items()}
        if sorted(cg_l1) == folds:
            others[cg_label] = mean(v["median_test_mae"] for v in cg_l1.values())
        lines += ["", f"Bars: {name} below the training-mean floor on {len(below)} of {len(folds)} folds; {name} 5-fold mean "
                  f"{t:.2f} against " + ", ".join(f"{k} {v:.2f} ({t - v:+.2f})" for k, v in others.items()) + "."]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tfn", nargs="+", required=True, type=Path, help="run folders of the model the table is about (TFN, or another family; any folds and seeds)")
    p.add_argument("--cgcnn-l1", nargs="*", default=[], type=Path, help="CGCNN run folders with the L1 loss")
    p.add_argument("--out", type=Path, default=ROOT / "results" / "tfn" / "jdft2d_l1")
    p.add_argument("--curve-fold", type=int, default=1, help="fold whose learning curve is copied (seed 0)")
    p.add_argument("--title", default=TITLE, help="the table's heading (which recipes)")
    p.add_argument("--tfn-label", default=TFN_LABEL)
    p.add_argument("--cgcnn-label", default=CG_LABEL)
    args = p.parse_args(argv)
    tfn_runs = [read_run(d) for d in args.tfn]
    cg_runs = [read_run(d) for d in args.cgcnn_l1]
    for r, d in zip(tfn_runs + cg_runs, list(args.tfn) + list(args.cgcnn_l1)):
        dest = args.out / "runs" / f"{r['model']}_{r['loss']}_f{r['fold']}_s{r['seed']}"
        dest.mkdir(parents=True, exist_ok=True)
        for name in ("config.json", "metrics.json", "metrics.jsonl"):
            shutil.copyfile(d / name, dest / name)
        r["copied_to"] = str(dest.relative_to(ROOT)) if dest.is_relative_to(ROOT) else str(dest)
        if r in tfn_runs and r["fold"] == args.curve_fold and r["seed"] == 0:
            shutil.copyfile(d / "plots" / "learning_curve.png", args.out / f"learning_curve_f{r['fold']}_s0.png")
    tfn, cg_l1, cg = per_fold(tfn_runs), per_fold(cg_runs), cgcnn_old()
    name = tfn_runs[0]["model"].upper()
    summary = {"task": TASK, "unit": "meV/atom", "model": tfn_runs[0]["model"], "tfn": tfn, "cgcnn_l1": cg_l1, "cgcnn_old_recipe": cg, "runs": tfn_runs + cg_runs}
    if sorted(tfn) == [0, 1, 2, 3, 4]:
        summary["tfn_5fold_mean"] = mean(v["median_test_mae"] for v in tfn.values())
        summary["floor_5fold_mean"] = mean(v["floor_test_mae"] for v in tfn.values())
        summary["below_floor_every_fold"] = all(v["median_test_mae"] < v["floor_test_mae"] for v in tfn.values())
        summary["cgcnn_old_5fold_mean"] = {b: mean(v.values()) for b, v in cg.items()}
        if sorted(cg_l1) == [0, 1, 2, 3, 4]:
            summary["cgcnn_l1_5fold_mean"] = mean(v["median_test_mae"] for v in cg_l1.values())
    write_json(args.out / "results.json", summary)
    text = table(tfn, cg, cg_l1, args.title, args.tfn_label, args.cgcnn_label, name)
    write_text(args.out / "table.md", text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
