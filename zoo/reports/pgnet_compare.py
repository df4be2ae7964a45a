"""Models compared on the same test folds, on every test crystal and on subsets by point group: the
point-group network's evaluation table (results/pgnet/comparison.{json,md}).

Usage::

    zoo report pgnet_compare RUN [RUN ...] [--subset m-3m] [--out results/pgnet] [--name comparison]

RUN are finished run folders (``zoo train`` / ``zoo reproduce``) of any families on the same tasks and
folds. For each run it reads ``predictions_test.csv`` (every test crystal, its true and predicted tensor
or scalar), re-creates the run's task with its recorded options and data folder, and scores

- ``all``: every test crystal whose graph was built (the run's own ``metrics.json`` test scores);
- ``m-3m`` (``--subset``, repeatable): only the test crystals whose point group (spglib, symprec
  1e-3 Å, the project's default) is that Hermann-Mauguin symbol: the O_h-only comparison, where pgnet's
  features are exactly the irreps of the crystal's own group.

Tensor scores: Fnorm (mean Frobenius error), component MAE, EwT25 and the mean symmetry violation of the
prediction under the crystal's own point group (``zoo.tasks.metrics``); scalars: MAE. Rows are means
over the folds present, with the fold count, parameters and training time; the run folders, their
commits and machines are listed. Nothing here trains: predictions are those the runs wrote.
"""
from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from zoo.core import provenance
from zoo.core.io import write_json, write_text
from zoo.tasks import TargetSpec
from zoo.training.data import build_task
from zoo.training.runs import read_predictions
from zoo.training.targets import compute_metrics

TENSOR_KEYS = ("fnorm", "mae", "ewt25", "sym_violation_mean")
SCALAR_KEYS = ("mae", "rmse")


def _json(path: Path) -> dict:
    return json.loads(path.read_text())


def point_group_symbol(structure, symprec: float = 1e-3) -> str:
    import spglib

    from zoo.symmetry.crystal import _cell

    data = spglib.get_symmetry_dataset(_cell(structure), symprec=symprec)
    return "?" if data is None else data.pointgroup


def n_parameters(weights: Path) -> int | None:
    """Trainable parameters in a weights file (batch-norm running statistics are buffers, not counted).
    A crystal sees one pgnet branch: the count is both branches together (the docs give each branch's)."""
    if not weights.is_file():
        return None
    from safetensors import safe_open

    with safe_open(str(weights), framework="np") as f:
        return int(sum(np.prod(f.get_slice(k).get_shape()) for k in f.keys()
                       if not k.endswith(("running_mean", "running_var", "num_batches_tracked"))))


def read(run_dir: Path) -> dict[str, Any]:
    config, metrics = _json(run_dir / "config.json"), _json(run_dir / "metrics.json")
    if not metrics.get("finished", False):
        raise SystemExit(f"{run_dir}: the run has not finished; resume it (`zoo train --resume {run_dir}`) or leave it out")
    target = TargetSpec(**config["task"]["target"])
    train = config.get("train", {})
    shape = (3,) * target.rank if target.kind == "tensor" else ()
    pred = read_predictions(run_dir / "predictions_test.csv", shape)
    # a model with --set overrides (an ablation) is its own row: "pgnet[hidden_oh=64xA1g]"
    overrides = train.get("model_overrides") or {}
    label = metrics["model"] + (f"[{','.join(f'{k}={v}' for k, v in sorted(overrides.items()))}]" if overrides else "")
    floor = ((metrics.get("floor") or {}).get("test") or {})
    return {"dir": run_dir, "task": metrics["task"], "fold": int(metrics["fold"]), "model": label,
            "floor_test": floor.get("fnorm", floor.get("mae")),
            "backend": metrics["backend"], "target": target, "task_kwargs": train.get("task_kwargs", {}),
            "data_dir": train.get("data_dir"), "pred": pred, "n_parameters": n_parameters(run_dir / "best.safetensors"),
            "train_time_s": (metrics.get("time_s") or {}).get("train"), "epochs_run": metrics.get("epochs_run"),
            "best_epoch": metrics.get("best_epoch")}


def score(run: dict, structures: dict[str, Any], groups: dict[str, str], subsets: Sequence[str]) -> dict[str, dict]:
    pred, target = run["pred"], run["target"]
    failed = pred.get("graph_failed") or [False] * len(pred["id"])
    keep = [k for k, f in enumerate(failed) if not f]
    keys = TENSOR_KEYS if target.kind == "tensor" else SCALAR_KEYS
    out = {}
    for subset in ("all", *subsets):
        sel = [k for k in keep if subset == "all" or groups[pred["id"][k]] == subset]
        if not sel:
            out[subset] = {"n": 0}
            continue
        ids = [pred["id"][k] for k in sel]
        m = compute_metrics(target, pred["y_true"][sel], pred["y_pred"][sel], structures=[structures[i] for i in ids])
        out[subset] = {"n": len(sel), **{k: float(m[k]) for k in keys if k in m}}
    return out


def build(run_dirs: Sequence[Path], subsets: Sequence[str]) -> dict[str, Any]:
    runs = [read(Path(d)) for d in run_dirs]
    tasks: dict[tuple, Any] = {}
    rows = []
    for run in runs:
        key = (run["task"], json.dumps(run["task_kwargs"], sort_keys=True), run["data_dir"])
        if key not in tasks:
            task = build_task(run["task"], run["task_kwargs"], run["data_dir"])
            task.load()
            tasks[key] = {"task": task, "structures": {}, "groups": {}}
        t = tasks[key]
        inputs = t["task"].get_test_data(run["fold"])
        for sid, s in zip(inputs.index.astype(str), inputs.values):
            if sid not in t["structures"]:
                t["structures"][sid] = s
                t["groups"][sid] = point_group_symbol(s)
        print(f"scoring {run['dir'].name}", flush=True)
        rows.append({k: (str(v) if k == "dir" else v) for k, v in run.items() if k not in ("pred", "target")}
                    | {"scores": score(run, t["structures"], t["groups"], subsets), "kind": run["target"].kind})
    return {"format": "crystal-zoo pgnet comparison v1", "subsets": ["all", *subsets], "rows": rows,
            "summary": summarise(rows, ["all", *subsets]), "environment": provenance.environment()}


def summarise(rows: list[dict], subsets: Sequence[str]) -> list[dict]:
    groups: dict[tuple, list] = defaultdict(list)
    for r in rows:
        groups[(r["task"], r["model"], r["backend"])].append(r)
    out = []
    for (task, model, backend), rs in sorted(groups.items()):
        for subset in subsets:
            scores = [r["scores"][subset] for r in rs if r["scores"][subset].get("n")]
            if not scores:
                continue
            keys = [k for k in scores[0] if k != "n"]
            out.append({"task": task, "model": model, "backend": backend, "subset": subset,
                        "folds": sorted(r["fold"] for r in rs), "n_test": int(sum(s["n"] for s in scores)),
                        **{k: float(np.mean([s[k] for s in scores])) for k in keys},
                        "n_parameters": rs[0]["n_parameters"],
                        "train_time_s": float(np.mean([r["train_time_s"] for r in rs if r["train_time_s"]] or [np.nan]))})
    return out


def render(result: dict) -> str:
    lines = ["# pgnet against TFN and CGCNN on the same folds", "",
             "Generated by `zoo report pgnet_compare` from the run folders listed at the end. Means over the folds "
             "present; `subset` = all test crystals or only those whose point group is that symbol (spglib, "
             "symprec 1e-3 Å). Fnorm: mean Frobenius error; MAE: per component; EwT25: share of crystals with "
             "Frobenius error within 25 % of the true norm; sym. viol.: mean ||T - Sym_G T|| / ||T|| of the "
             "prediction under the crystal's own group.", "",
             "| task | subset | model | backend | folds | n test | Fnorm / MAE | comp. MAE | EwT25 | sym. viol. | params | train s / fold |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for s in result["summary"]:
        first = s.get("fnorm", s.get("mae"))
        lines.append(f"| {s['task']} | {s['subset']} | {s['model']} | {s['backend']} | {len(s['folds'])} | {s['n_test']} | "
                     f"{first:.4g} | {s.get('mae', float('nan')):.4g} | {s.get('ewt25', float('nan')):.3g} | "
                     f"{s.get('sym_violation_mean', float('nan')):.2e} | {s['n_parameters'] or '?'} | {s['train_time_s']:.0f} |")
    lines += ["", "## Runs", ""]
    for r in result["rows"]:
        test = r["scores"]["all"].get("fnorm", r["scores"]["all"].get("mae"))
        floor = "" if r.get("floor_test") is None else f", training-mean floor {r['floor_test']:.4g}"
        lines.append(f"- `{Path(r['dir']).name}`: {r['model']} ({r['backend']}), {r['task']} fold {r['fold']}, "
                     f"{r['epochs_run']} epochs (best {r['best_epoch']}); test {test:.4g}{floor}")
    env = result["environment"]
    lines += ["", f"Report made at commit {(env.get('git') or {}).get('commit', '?')} on {env['machine'].get('cpu', '?')} "
              f"({env['machine'].get('cpu_count')} cores). Training times are each run's own (its env.json has "
              "its machine and load): compare them only between runs made side by side."]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("runs", nargs="+", type=Path)
    p.add_argument("--subset", action="append", default=None, help="point-group symbol of a subset (default m-3m)")
    p.add_argument("--out", type=Path, default=Path("results/pgnet"))
    p.add_argument("--name", default="comparison")
    args = p.parse_args(argv)
    result = build(args.runs, args.subset or ["m-3m"])
    write_json(args.out / f"{args.name}.json", result)
    write_text(args.out / f"{args.name}.md", render(result))
    print(render(result))
    print(f"wrote {args.out / (args.name + '.json')} and .md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
