"""pgnet against TFN on embedded_dielectric (the offline rank-2 tensor task), per fold, with the floors on
the same crystals, and pgnet's ablations on fold 0: results/pgnet/embedded/.

    .venv/bin/python benchmarks/pgnet_embedded_table.py --pgnet RUN ... --tfn RUN ... [--ablation RUN ...]
        [--load-log FILE ...] [--out results/pgnet/embedded]

Scores come from ``zoo.reports.pgnet_compare.build`` (each run's ``predictions_test.csv``, re-scored on all
test crystals with a graph, on the m-3m subset, and on the crystals of each pgnet branch: "O_h frame" = cubic to
triclinic, "D_6h frame" = trigonal and hexagonal point groups; Fnorm, component MAE, EwT25, symmetry violation of
the prediction under the crystal's own point group). The floors are fitted on each fold's training data
(train + validation, as results/floors) and scored on exactly the crystals the runs were scored on (the
test crystals whose 5 Å graph exists, and the same subsets): the training mean as is (what each run's
``metrics.json`` calls ``floor``), the mean symmetrised to each crystal's point group, and the per-element
linear model, symmetrised (``zoo.tasks.baselines``; results/floors scores all test crystals, including
the ~2 % without a graph, so its figures differ slightly). Parameters: every trainable tensor of
``best.safetensors`` (both pgnet branches; a crystal runs through one). s/epoch: median over the run's
epochs (``metrics.jsonl``, training + validation), with the range of the 1-minute load average that
``--load-log`` files (lines ``<ISO time> <uptime output>``) recorded while the run was going.
Nothing here trains or chooses; writes ``comparison.json``, ``table.md`` and a copy of each run's small
files (``runs/<label>_f<fold>/``).
"""
from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from zoo.core.io import write_json, write_text
from zoo.reports import pgnet_compare
from zoo.symmetry.standard import standardize
from zoo.tasks import TargetSpec
from zoo.tasks.baselines import ElementLinearBaseline, MeanBaseline
from zoo.training.data import build_task, series_ids, series_values, stack_targets
from zoo.training.runs import read_predictions

SUBSETS = ("all", "m-3m", "O_h frame", "D_6h frame")
FLOORS = ("train_mean", "mean_symmetrised", "element_linear")
LOAD_LINE = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ).*load average: ([\d.]+)")


def read_loads(paths) -> list[tuple[datetime, float]]:
    out = []
    for path in paths:
        for line in Path(path).read_text().splitlines():
            m = LOAD_LINE.match(line)
            if m:
                out.append((datetime.strptime(m[1], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc), float(m[2])))
    return sorted(out)


def run_window(run_dir: Path) -> tuple[datetime, datetime]:
    """Start (the run folder's UTC time stamp) and end (``metrics.json`` written) of a run."""
    start = datetime.strptime(run_dir.name[:16], "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)
    end = datetime.fromtimestamp((run_dir / "metrics.json").stat().st_mtime, tz=timezone.utc)
    return start, end


def timing(run_dir: Path, loads) -> dict:
    epochs = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    start, end = run_window(run_dir)
    during = [v for t, v in loads if start - timedelta(seconds=30) <= t <= end + timedelta(seconds=30)]
    best = min(epochs, key=lambda e: e["val_mae"])  # the loop's selection metric for this task
    val_floor = json.loads((run_dir / "metrics.json").read_text())["floor"]["val"]["fnorm"]  # training mean, as is
    return {"epoch_s_median": statistics.median(e["time_s"] for e in epochs), "epochs": len(epochs),
            "best_epoch": best["epoch"], "best_val_fnorm": best["val_fnorm"], "best_val_mae": best["val_mae"],
            "val_floor_fnorm": val_floor, "first_train_loss": epochs[0]["train_loss"], "last_train_loss": epochs[-1]["train_loss"],
            "start": start.isoformat(), "end": end.isoformat(),
            "load_1min": [min(during), max(during)] if during else None}


def floors(task, fold: int, target: TargetSpec, pred: dict, structures: dict, groups: dict, frames: dict) -> dict:
    """Floors fitted on the fold's train + validation data, scored like a run on the run's crystals."""
    tv_in, tv_out = task.get_train_and_val_data(fold)
    ids = series_ids(tv_in, "train-")
    y = stack_targets(series_values(tv_out), target, ids, f"fold {fold} training targets")
    xs = series_values(tv_in)
    keep = [k for k, f in enumerate(pred.get("graph_failed") or [False] * len(pred["id"])) if not f]
    test_ids = [pred["id"][k] for k in keep]
    test_structs = [structures[i] for i in test_ids]
    models = {"train_mean": MeanBaseline("none").fit(xs, y),
              "mean_symmetrised": MeanBaseline("point_group", target.formula).fit(xs, y),
              "element_linear": ElementLinearBaseline(alpha=1e-4, features="fraction", symmetrize=True).fit(xs, y)}
    out = {}
    for name, model in models.items():
        fake = {"id": test_ids, "y_true": pred["y_true"][keep], "y_pred": model.predict(test_structs),
                "graph_failed": [False] * len(keep)}
        out[name] = frame_scores({"pred": fake, "target": target}, structures, groups, frames)
    return out


def pgnet_frames(structures: dict, symprec: float) -> dict:
    """The branch pgnet runs each crystal through: its holohedry's standard frame (zoo.symmetry.standard)."""
    return {i: {"m-3m": "O_h frame", "6/mmm": "D_6h frame"}[standardize(s, symprec).holohedry] for i, s in structures.items()}


def frame_scores(run: dict, structures: dict, groups: dict, frames: dict) -> dict:
    """Scores on all crystals, the m-3m ones, and those of each pgnet branch (O_h or D_6h frame)."""
    out = pgnet_compare.score(run, structures, groups, ["m-3m"])
    out.update({k: v for k, v in pgnet_compare.score(run, structures, frames, SUBSETS[2:]).items() if k != "all"})
    return out


def label(row: dict) -> str:
    return row["model"].replace("[message_norm=neighbors]", "")  # the TFN's recipe, not an ablation


def fmt(x, spec=".3f"):
    return "-" if x is None or (isinstance(x, float) and np.isnan(x)) else format(x, spec)


def load_txt(t: dict) -> str:
    return f"{t['epoch_s_median']:.1f} ({t['load_1min'][0]:.1f}-{t['load_1min'][1]:.1f})" if t["load_1min"] else \
        f"{t['epoch_s_median']:.1f} (load not logged)"


def render(doc: dict) -> str:
    rows, fl = doc["rows"], doc["floors"]
    folds = sorted({r["fold"] for r in rows if r["group"] == "compare"})
    by = {(r["label"], r["fold"]): r for r in rows if r["group"] == "compare"}
    models = ["pgnet", "tfn"]
    lines = ["# pgnet vs TFN on embedded_dielectric (rank-2 tensor), torch, seed 0", "",
             ("Written by `benchmarks/pgnet_embedded_table.py` from the run folders in `comparison.json`; nothing "
              "was chosen on these test figures. Fnorm and MAE in units of ε (dimensionless); EwT25 = share "
              "of test crystals within 25 % Frobenius error (higher is better); sym. viol. = mean "
              "||T - Sym_G T|| / ||T|| of the predictions (float32). Floors fitted on the fold's train + "
              "validation crystals, scored on the same test crystals as the models."), ""]
    for subset in SUBSETS:
        lines += [f"## Test crystals: {subset}", "",
                  ("| fold | n | pgnet Fnorm | TFN Fnorm | floor: train mean / mean sym. / element-linear | pgnet MAE | TFN MAE "
                   "| pgnet EwT25 | TFN EwT25 | floors EwT25 (mean sym. / el.-lin.) | pgnet sym. viol. | TFN sym. viol. |"),
                  "|---|---|---|---|---|---|---|---|---|---|---|---|"]
        acc: dict[str, list] = {}
        for f in folds:
            s = {m: by[(m, f)]["scores"][subset] if (m, f) in by else {} for m in models}
            flo = {k: fl[str(f)][k][subset] for k in FLOORS} if str(f) in fl else {}
            n = s["pgnet"].get("n") or s["tfn"].get("n")
            cells = [str(f), str(n),
                     fmt(s["pgnet"].get("fnorm")), fmt(s["tfn"].get("fnorm")),
                     " / ".join(fmt(flo.get(k, {}).get("fnorm")) for k in FLOORS),
                     fmt(s["pgnet"].get("mae")), fmt(s["tfn"].get("mae")),
                     fmt(s["pgnet"].get("ewt25")), fmt(s["tfn"].get("ewt25")),
                     " / ".join(fmt(flo.get(k, {}).get("ewt25")) for k in FLOORS[1:]),
                     fmt(s["pgnet"].get("sym_violation_mean"), ".1e"), fmt(s["tfn"].get("sym_violation_mean"), ".1e")]
            lines.append("| " + " | ".join(cells) + " |")
            for key, val in (("pf", s["pgnet"].get("fnorm")), ("tf", s["tfn"].get("fnorm")),
                             ("pm", s["pgnet"].get("mae")), ("tm", s["tfn"].get("mae")),
                             ("pe", s["pgnet"].get("ewt25")), ("te", s["tfn"].get("ewt25")),
                             *((k, flo.get(k, {}).get("fnorm")) for k in FLOORS),
                             *((k + "_e", flo.get(k, {}).get("ewt25")) for k in FLOORS[1:])):
                acc.setdefault(key, []).append(val)
        both = [i for i, f in enumerate(folds) if (("pgnet", f) in by and ("tfn", f) in by)]

        def m(key, acc=acc, both=both):
            vals = [acc[key][i] for i in both]
            return float(np.mean(vals)) if vals and None not in vals else None
        lines.append(f"| **mean of folds {', '.join(str(folds[i]) for i in both)}** | | **{fmt(m('pf'))}** | **{fmt(m('tf'))}** | "
                     + " / ".join(fmt(m(k)) for k in FLOORS) + f" | {fmt(m('pm'))} | {fmt(m('tm'))} | {fmt(m('pe'))} | "
                     f"{fmt(m('te'))} | " + " / ".join(fmt(m(k + '_e')) for k in FLOORS[1:]) + " | | |")
        lines.append("")
    lines += ["## Cost and selection per run", "",
              ("| run | fold | parameters | s/epoch (1-min load during the run) | best epoch (of run) | best val Fnorm "
               "| val floor (training mean) | train loss epoch 1 / last (centred, standardised) |"),
              "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        t = r["timing"]
        lines.append(f"| {r['label']} | {r['fold']} | {r['n_parameters']:,} | {load_txt(t)} | {t['best_epoch']} ({t['epochs']}) "
                     f"| {fmt(t['best_val_fnorm'])} | {fmt(t['val_floor_fnorm'])} | {fmt(t['first_train_loss'])} / "
                     f"{fmt(t['last_train_loss'])} |")
    abl = [r for r in rows if r["group"] == "ablation" or (r["label"] == "pgnet" and r["fold"] == 0)]
    if len(abl) > 1:
        lines += ["", "## Ablations, fold 0 (same recipe; test figures reported, nothing chosen on them)", "",
                  "| model | parameters | s/epoch (load) | test Fnorm all / m-3m | EwT25 all | best val Fnorm | best epoch |",
                  "|---|---|---|---|---|---|---|"]
        for r in abl:
            t, s = r["timing"], r["scores"]
            lines.append(f"| {r['label']} | {r['n_parameters']:,} | {load_txt(t)} | {fmt(s['all'].get('fnorm'))} / "
                         f"{fmt(s['m-3m'].get('fnorm'))} | {fmt(s['all'].get('ewt25'))} | {fmt(t['best_val_fnorm'])} | {t['best_epoch']} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pgnet", nargs="+", type=Path, required=True, help="pgnet run folders, one per fold (recipe as TFN's)")
    p.add_argument("--tfn", nargs="+", type=Path, required=True, help="TFN run folders (tfn.rank2), one per fold")
    p.add_argument("--ablation", nargs="*", type=Path, default=[], help="pgnet run folders with --set overrides or another backend")
    p.add_argument("--load-log", nargs="*", type=Path, default=[])
    p.add_argument("--out", type=Path, default=ROOT / "results" / "pgnet" / "embedded")
    args = p.parse_args(argv)
    groups = [("compare", d) for d in args.pgnet + args.tfn] + [("ablation", d) for d in args.ablation]
    built = pgnet_compare.build([d for _, d in groups], ["m-3m"])
    loads = read_loads(args.load_log)
    rows = []
    for (group, d), row in zip(groups, built["rows"]):
        row = dict(row, group=group, label=label(row) + ("" if row["backend"] == "torch" else f" ({row['backend']})"),
                   timing=timing(d, loads))
        rows.append(row)
        dest = args.out / "runs" / f"{re.sub(r'[^A-Za-z0-9_.=-]+', '_', row['label'])}_f{row['fold']}"
        dest.mkdir(parents=True, exist_ok=True)
        for name in ("config.json", "metrics.json", "metrics.jsonl"):
            shutil.copyfile(d / name, dest / name)
        write_text(dest / "RUN_FOLDER", str(d) + "\n")
    # the floors of each fold, on the crystals the fold's first comparison run was scored on
    first = {}
    for (group, d), row in zip(groups, rows):
        if group == "compare" and row["fold"] not in first:
            first[row["fold"]] = (d, row)
    fl = {}
    for fold, (d, row) in sorted(first.items()):
        config = json.loads((d / "config.json").read_text())
        target = TargetSpec(**config["task"]["target"])
        task = build_task(row["task"], row["task_kwargs"], row["data_dir"])
        task.load()
        inputs = task.get_test_data(fold)
        structures = {str(i): s for i, s in zip(inputs.index.astype(str), inputs.values)}
        groups_pg = {i: pgnet_compare.point_group_symbol(s) for i, s in structures.items()}
        pred = read_predictions(d / "predictions_test.csv", (3,) * target.rank)
        print(f"floors of fold {fold}", flush=True)
        frames = pgnet_frames(structures, config["graph_spec"]["symprec"])
        fl[str(fold)] = floors(task, fold, target, pred, structures, groups_pg, frames)
        for (_, rd), r in zip(groups, rows):  # every run of this fold, also on the two frames' subsets
            if r["fold"] == fold:
                r["scores"] = frame_scores({"pred": read_predictions(rd / "predictions_test.csv", (3,) * target.rank),
                                            "target": target}, structures, groups_pg, frames)
    doc = {"format": "crystal-zoo pgnet embedded comparison v1", "task": "embedded_dielectric",
           "rows": [{k: v for k, v in r.items()} for r in rows], "floors": fl, "environment": built["environment"]}
    write_json(args.out / "comparison.json", doc)
    write_text(args.out / "table.md", render(doc))
    print(render(doc))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
