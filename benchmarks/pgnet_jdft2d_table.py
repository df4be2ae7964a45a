"""pgnet with its scalar recipe on matbench_jdft2d, 5 folds, next to TFN, CGCNN-L1 and the floors: results/pgnet/jdft2d/.

    .venv/bin/python benchmarks/pgnet_jdft2d_table.py --pgnet RUN_DIR ... [--out results/pgnet/jdft2d]

Reads each pgnet run folder (``config.json`` / ``metrics.json`` / ``metrics.jsonl``, copied to ``<out>/runs/`` as the
provenance, the way ``benchmarks/jdft2d_l1_table.py`` keeps the TFN's) and the committed TFN / CGCNN-with-L1 figures
of the same folds (``results/tfn/jdft2d_l1/results.json``), and writes ``results.json`` and ``table.md``: test MAE per
fold, the training-mean floor each run recorded, parameter counts (pgnet per branch: a crystal runs through the
branch of its holohedry only) and the wall time per epoch. Nothing here trains or chooses: the recipe was chosen on
fold 0's validation split (``results/pgnet/jdft2d/tune/``) before any of these test figures existed.
"""
from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from jdft2d_l1_table import mean, per_fold, read_run  # noqa: E402

from zoo.core.io import write_json, write_text  # noqa: E402

TFN_L1 = ROOT / "results" / "tfn" / "jdft2d_l1"


def epoch_seconds(run_dir: Path) -> list[float]:
    """Wall seconds of every epoch (training + validation) the run logged."""
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line)["time_s"] for line in lines if line.strip()]


def parameters(run_dirs: list[Path]) -> dict:
    """Trainable parameters of each family's model as the runs built it (torch), pgnet split by branch."""
    from zoo.models import build, config_from_dict

    out = {}
    for run_dir in run_dirs:
        config = json.loads((run_dir / "config.json").read_text())["model"]
        family = config["name"]
        if family in out:
            continue
        model = build(family, "torch", config_from_dict(family, config["config"]))
        counts: dict[str, int] = {}
        for name, p in model.named_parameters():
            if p.requires_grad:
                part = name.split(".", 1)[0] if family == "pgnet" and name.split(".", 1)[0] in ("oh", "d6h") else "shared"
                counts[part] = counts.get(part, 0) + p.numel()
        out[family] = {"total": sum(counts.values()), **({"by_part": counts} if family == "pgnet" else {})}
    return out


# The heading and note of results/pgnet/jdft2d (stop 23); later tables pass their own.
TITLE = "pgnet, scalar recipe (`pgnet.scalar`: L1, AdamW LR 5e-3, cosine, 40 epochs, batch 64)"
NOTE = "TFN fold 0: median of seeds 0/1/2, which is seed 0's 34.53"


def table(pg: dict, tfn: dict, cg_l1: dict, params: dict, epochs: dict, title: str = TITLE, note: str = NOTE,
          reference: str = "results/tfn/jdft2d_l1", backend: str = "torch") -> str:
    folds = sorted(pg)
    lines = [f"# {title}, matbench_jdft2d",
             "", f"Test MAE, meV/atom, pgnet in {backend}, float32, seed 0 ({note}). "
             "Written by `benchmarks/pgnet_jdft2d_table.py`; nothing was chosen on these figures.", "",
             "| | " + " | ".join(f"fold {f}" for f in folds) + " | mean |", "|---" * (len(folds) + 2) + "|"]

    def row(name, values: dict, bold=False):
        cells = [f"{values[f]:.2f}" if f in values else "-" for f in folds]
        m = f"{mean(values[f] for f in folds):.2f}" if all(f in values for f in folds) else "-"
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {'**' + m + '**' if bold else m} |")

    row("**pgnet, `pgnet.scalar`**", {f: pg[f]["median_test_mae"] for f in folds}, bold=True)
    row("TFN, `tfn.scalar`", {f: tfn[f]["median_test_mae"] for f in folds if f in tfn})
    row("CGCNN, `cgcnn.scalar`" if "jdft2d_l1" not in reference else "CGCNN, its recipe with the L1 loss", {f: cg_l1[f]["median_test_mae"] for f in folds if f in cg_l1})
    row("training-mean floor", {f: pg[f]["floor_test_mae"] for f in folds})
    row("pgnet below the floor by", {f: pg[f]["floor_test_mae"] - pg[f]["median_test_mae"] for f in folds})
    row("pgnet validation MAE (chose the epoch)", {f: pg[f]["median_val_mae"] for f in folds})
    pgp = params["pgnet"]
    lines += ["", "| model | trainable parameters | wall s per epoch (median over the run's epochs, per fold) |",
              "|---|---|---|",
              f"| pgnet | {pgp['total']:,} (shared embedding {pgp['by_part'].get('shared', 0):,}; O_h branch "
              f"{pgp['by_part'].get('oh', 0):,}; D_6h branch {pgp['by_part'].get('d6h', 0):,}) | "
              + ", ".join(f"f{f} {statistics.median(epochs[f]):.1f}" for f in folds) + " |"]
    for family in ("tfn", "cgcnn"):
        if family in params:
            lines.append(f"| {family} | {params[family]['total']:,} | ({reference}) |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pgnet", nargs="+", required=True, type=Path, help="pgnet run folders (any folds and seeds)")
    p.add_argument("--out", type=Path, default=ROOT / "results" / "pgnet" / "jdft2d")
    p.add_argument("--reference", type=Path, default=TFN_L1,
                   help="the TFN / CGCNN table to compare with (a benchmarks/jdft2d_l1_table.py output folder)")
    p.add_argument("--title", default=TITLE, help="the table's heading (which pgnet recipe)")
    p.add_argument("--note", default=NOTE, help="what the reference rows are (seeds)")
    args = p.parse_args(argv)
    runs = [read_run(d) for d in args.pgnet]
    if any(r["model"] != "pgnet" for r in runs):
        raise SystemExit("--pgnet: give pgnet run folders")
    epochs = {}
    for r, d in zip(runs, args.pgnet):
        dest = args.out / "runs" / f"pgnet_{r['loss']}_f{r['fold']}_s{r['seed']}"
        dest.mkdir(parents=True, exist_ok=True)
        for name in ("config.json", "metrics.json", "metrics.jsonl"):
            shutil.copyfile(d / name, dest / name)
        r["epoch_s"] = epoch_seconds(d)
        epochs.setdefault(r["fold"], []).extend(r["epoch_s"])
    committed = json.loads((args.reference / "results.json").read_text())
    tfn = {int(f): v for f, v in committed["tfn"].items()}
    cg_l1 = {int(f): v for f, v in committed.get("cgcnn_l1", {}).items()}
    reference = sorted((args.reference / "runs").glob("tfn_l1_f0_s0")) + sorted((args.reference / "runs").glob("cgcnn_l1_f0_s0"))
    params = parameters(list(args.pgnet[:1]) + reference)
    pg = per_fold(runs)
    doc = {"task": "matbench_jdft2d", "unit": "meV/atom", "pgnet": pg, "runs": runs, "tfn": tfn, "cgcnn_l1": cg_l1,
           "parameters": params, "epoch_s_median": {f: statistics.median(v) for f, v in epochs.items()}}
    if sorted(pg) == [0, 1, 2, 3, 4]:
        doc["pgnet_5fold_mean"] = mean(v["median_test_mae"] for v in pg.values())
        doc["tfn_5fold_mean"] = committed.get("tfn_5fold_mean")
        doc["cgcnn_l1_5fold_mean"] = mean(v["median_test_mae"] for v in cg_l1.values()) if sorted(cg_l1) == sorted(pg) else None
        doc["floor_5fold_mean"] = mean(v["floor_test_mae"] for v in pg.values())
    write_json(args.out / "results.json", doc)
    ref = args.reference.relative_to(ROOT) if args.reference.is_relative_to(ROOT) else args.reference
    backends = sorted({json.loads((d / "config.json").read_text())["train"]["backend"] for d in args.pgnet})
    write_text(args.out / "table.md", table(pg, tfn, cg_l1, params, epochs, args.title, args.note, str(ref), " + ".join(backends)))
    print((args.out / "table.md").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
