"""TFN with the 6 Å recipe on matbench_jdft2d's 5 test folds, next to the old 5 Å recipe, CGCNN and the floor.

    .venv/bin/python results/tfn/jdft2d_r6/table.py runs/issue11_search/r6/*_f[0-4]_*

Reads each run folder's ``config.json`` / ``metrics.json`` / ``metrics.jsonl`` (copied to ``runs/`` here as the
provenance, with fold 1's learning curve), and the committed figures of the old recipe and of CGCNN with
the same L1 loss (``results/tfn/jdft2d_l1/results.json``). Per fold: the median over the seeds run there.
Writes ``results.json`` and ``table.md`` next to this file. Nothing here trains or chooses.
"""
from __future__ import annotations

import json
import shutil
import statistics
import sys
from collections import defaultdict
from pathlib import Path

from zoo.core.io import write_json, write_text

HERE = Path(__file__).resolve().parent
OLD = HERE.parent / "jdft2d_l1" / "results.json"
FOLDS = [0, 1, 2, 3, 4]


def read_run(run_dir: Path) -> dict:
    config = json.loads((run_dir / "config.json").read_text())
    metrics = json.loads((run_dir / "metrics.json").read_text())
    train = config["train"]
    if train["task"] != "matbench_jdft2d" or train["model"] != "tfn" or "test" not in metrics:
        raise SystemExit(f"{run_dir}: not a finished TFN matbench_jdft2d run with a test score")
    return {"run_dir": str(run_dir), "fold": train["fold"], "seed": train["seed"], "recipe": train.get("recipe"),
            "model_overrides": train["model_overrides"], "test_mae": metrics["test"]["mae"],
            "floor_test_mae": metrics["floor"]["test"]["mae"], "val_mae": metrics["val"]["mae"],
            "best_epoch": metrics["best_epoch"], "epochs_run": metrics["epochs_run"],
            "train_s": metrics.get("time_s", {}).get("train")}


def main(run_dirs: list[Path]) -> None:
    runs = [read_run(d) for d in run_dirs]
    for r, d in zip(runs, run_dirs):
        dest = HERE / "runs" / f"tfn_r6_f{r['fold']}_s{r['seed']}"
        dest.mkdir(parents=True, exist_ok=True)
        for name in ("config.json", "metrics.json", "metrics.jsonl"):
            shutil.copyfile(d / name, dest / name)
        if r["seed"] == 0:
            shutil.copyfile(d / "plots" / "learning_curve.png", HERE / f"learning_curve_f{r['fold']}_s0.png")
    by_fold = defaultdict(list)
    for r in runs:
        by_fold[r["fold"]].append(r)
    new = {f: statistics.median(r["test_mae"] for r in rs) for f, rs in sorted(by_fold.items())}
    floor = {f: rs[0]["floor_test_mae"] for f, rs in by_fold.items()}
    old = json.loads(OLD.read_text())
    old_tfn = {int(f): v["median_test_mae"] for f, v in old["tfn"].items()}
    cg_l1 = {int(f): v["median_test_mae"] for f, v in old["cgcnn_l1"].items()}
    mean = lambda d: sum(d[f] for f in FOLDS) / len(FOLDS) if all(f in d for f in FOLDS) else None  # noqa: E731
    rows = [("**TFN, 6 Å recipe** (this)", new), ("TFN, old 5 Å recipe (results/tfn/jdft2d_l1)", old_tfn),
            ("CGCNN, same L1 loss (torch, seed 0)", cg_l1), ("training-mean floor", floor)]
    lines = ["# TFN `tfn.scalar` with a 6 Å radius, matbench_jdft2d test folds (MAE, meV/atom)", "",
             "Per fold: the median over the seeds run there (fold 0: " + ", ".join(f"seed {r['seed']} {r['test_mae']:.2f}"
             for r in sorted(by_fold.get(0, []), key=lambda r: r["seed"])) + "). Written by `table.py`; the candidate was "
             "chosen on validation folds 0 and 1 (`../jdft2d_search/`) before any of these test figures was read.", "",
             "| | " + " | ".join(f"fold {f}" for f in FOLDS) + " | 5-fold mean |", "|---" * (len(FOLDS) + 2) + "|"]
    for name, vals in rows:
        m = mean(vals)
        lines.append(f"| {name} | " + " | ".join(f"{vals[f]:.2f}" if f in vals else "-" for f in FOLDS) + " | "
                     + (f"{m:.2f}" if m is not None else "-") + " |")
    summary = {"task": "matbench_jdft2d", "unit": "meV/atom", "tfn_r6": new, "tfn_r6_5fold_mean": mean(new),
               "tfn_old_5fold_mean": mean(old_tfn), "cgcnn_l1_5fold_mean": mean(cg_l1), "floor_5fold_mean": mean(floor),
               "below_floor_every_fold": all(new[f] < floor[f] for f in new), "runs": runs}
    if mean(new) is not None:
        lines += ["", f"Bars: below the training-mean floor on {sum(new[f] < floor[f] for f in FOLDS)} of 5 folds; "
                  f"5-fold mean {mean(new):.2f} against CGCNN with the same L1 loss {mean(cg_l1):.2f} ({mean(new) - mean(cg_l1):+.2f}); "
                  f"the old 5 Å recipe {mean(old_tfn):.2f}."]
    write_json(HERE / "results.json", summary)
    write_text(HERE / "table.md", "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main([Path(p) for p in sys.argv[1:]])
