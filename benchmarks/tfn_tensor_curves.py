"""Validation learning curves of several runs in one plot and one JSON (issue #11, results/tfn/TENSOR.md).

    .venv/bin/python benchmarks/tfn_tensor_curves.py --floors results/tfn/tensor/val_floors.json \
        --out results/tfn/tensor/variants_val NAME=RUN_DIR ...

Reads each run folder's ``metrics.jsonl`` (one line per finished epoch; a run stopped early has fewer)
and its ``config.json``; writes ``OUT.json`` (per run: the recipe and every epoch's validation scores)
and ``OUT.png`` (validation Fnorm per epoch, the validation floors as lines).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from zoo.core.io import atomic_path, write_json

KEYS = ("train_loss", "val_loss", "val_fnorm", "val_mae", "val_ewt25", "lr", "time_s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", help="NAME=RUN_DIR")
    ap.add_argument("--floors", help="benchmarks/tfn_val_floors.py's JSON")
    ap.add_argument("--out", required=True, help="path stem of the .json and .png")
    a = ap.parse_args()
    out = {"runs": {}}
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for item in a.runs:
        name, run_dir = item.split("=", 1)
        lines = [json.loads(s) for s in (Path(run_dir) / "metrics.jsonl").read_text().splitlines() if s.strip()]
        cfg = json.loads((Path(run_dir) / "config.json").read_text())
        train = cfg.get("train", cfg)
        out["runs"][name] = {"run_dir": run_dir, "model_overrides": train.get("model_overrides"),
                             "recipe": {k: train.get(k) for k in ("loss", "lr", "epochs", "batch_size", "tensor_center", "grad_clip", "seed")},
                             "epochs": [{"epoch": d["epoch"], **{k: d.get(k) for k in KEYS}} for d in lines]}
        ax.plot([d["epoch"] for d in lines], [d["val_fnorm"] for d in lines], marker="o", ms=3, label=name)
    if a.floors:
        floors = json.loads(Path(a.floors).read_text())
        out["floors_val"] = {k: v["fnorm"] for k, v in floors["val"].items()}
        for k, v in out["floors_val"].items():
            ax.axhline(v, ls="--", lw=0.8, color="grey")
            ax.text(ax.get_xlim()[0], v, f" {k}", va="bottom", fontsize=7, color="grey")
        ax.axhline(floors["best_val_fnorm"] / 2, ls=":", color="k", lw=0.8, label="half the best floor (the bar)")
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation Fnorm (mean |ε_pred - ε|_F)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    write_json(a.out + ".json", out)
    with atomic_path(a.out + ".png") as tmp:
        fig.savefig(tmp, dpi=110, format="png")


if __name__ == "__main__":
    main()
