"""Results table of tensor (and scalar) runs of any family: run folders collected into results/ (results.json
and a README) next to the floors.

Usage::

    zoo report tensor_results runs/<run folder> [runs/<run folder> ...] \
        [--floors results/floors/floors.json] [--results-root results] [--out results/tfn]

(or ``python -m zoo.reports.tensor_results ...``).

For every run folder (written by ``zoo train``) it reads ``metrics.json`` (test metrics of the best
epoch), ``config.json`` (task, version, task options, model config) and ``env.json`` (git commit,
date), and puts next to them, for the same task and fold,

- the floors of ``results/floors/floors.json`` (``mean``: training mean symmetrised to each crystal's
  point group; ``element_linear``: per-element linear model, also symmetrised) — only when the floor
  was computed on the same task version and task options, otherwise the row says why it is left out;
- the run's own floor (always predict the training mean, unsymmetrised), from its ``metrics.json``;
- for matbench tasks, CGCNN's test scores of the same fold from
  ``<results-root>/matbench_v0.1/<task>/cgcnn-*/`` (``results.json.gz`` of a finished reproduction,
  or the fold's finished run folder named in ``progress.json`` while the reproduction is running).

Each run's PNG plots are copied to ``<out>/plots/<task>_<backend>_<plot>.png``. Every file is written
atomically (zoo.core.io). Nothing here trains or predicts: the numbers are those the runs wrote.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import gzip
import json
import shutil
import sys
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from zoo.core import provenance
from zoo.core.io import atomic_path, read_jsonl, write_json, write_text

from .common import RESULTS

FORMAT = 1
FLOOR_NAMES = ("mean", "element_linear")  # the symmetrised floors (the *_nosym ones are in floors.json)
TENSOR_KEYS = ("n", "fnorm", "mae", "rmse", "ewt25", "ewt10", "ewt5", "sym_violation_mean", "sym_violation_median",
               "true_sym_violation_mean")
SCALAR_KEYS = ("n", "mae", "rmse", "max_error", "r2")


class RunFolderError(ValueError):
    """A folder given on the command line is not a finished ``zoo train`` run folder."""


# How a family is written in a table heading (the registry name otherwise).
_MODEL_NAMES = {"tfn": "TFN", "cgcnn": "CGCNN", "pgnet": "pgnet", "chgcnn": "CHGCNN"}


def _read_json(path: Path) -> Any:
    if path.name.endswith(".gz"):
        with gzip.open(path, "rt") as fh:
            return json.load(fh)
    with open(path) as fh:
        return json.load(fh)


def _pick(d: dict, keys: Sequence[str]) -> dict:
    return {k: d[k] for k in keys if k in d}


# ------------------------------------------------------------------------------------------ runs
def read_run(run_dir: str | Path) -> dict[str, Any]:
    """One run folder → the fields of one results row (raises RunFolderError with the fix)."""
    run_dir = Path(run_dir)
    files = {name: run_dir / f"{name}.json" for name in ("metrics", "config", "env")}
    missing = [str(p) for p in files.values() if not p.is_file()]
    if missing:
        raise RunFolderError(f"{run_dir} is not a zoo run folder: missing {', '.join(missing)} "
                             "(pass the folders that `zoo train` printed as 'run folder')")
    metrics, config, env = (_read_json(p) for p in files.values())
    if not metrics.get("finished", False):
        raise RunFolderError(f"{run_dir}: the run has not finished (metrics.json has finished=false); "
                             f"finish it with `zoo train --resume {run_dir}` or leave it out")
    target = config["task"]["target"]
    kind = target["kind"]
    keys = TENSOR_KEYS if kind == "tensor" else SCALAR_KEYS
    train = config.get("train", {})
    return {
        "task": metrics["task"],
        "task_version": config["task"].get("version"),
        "task_kwargs": train.get("task_kwargs", {}),
        "target": target,
        "kind": kind,
        "model": metrics["model"],
        "backend": metrics["backend"],
        "dtype": metrics.get("dtype"),
        "fold": int(metrics["fold"]),
        "seed": metrics.get("seed"),
        "epochs_max": metrics.get("epochs"),
        "epochs_run": metrics.get("epochs_run"),
        "best_epoch": metrics.get("best_epoch"),
        "stopped_early": metrics.get("stopped_early"),
        "patience": train.get("patience"),
        "recipe": train.get("recipe"),
        # every training option the run was made with (the leaderboard names the departures from the recipe)
        "train": {k: v for k, v in train.items() if k not in ("out", "data_dir", "progress")},
        "train_time_s": _train_time(run_dir, metrics),
        "n": metrics.get("n"),
        "test": _pick(metrics.get("test", {}), keys),
        "val": _pick(metrics.get("val", {}), keys),
        "run_floor_test": _pick((metrics.get("floor") or {}).get("test", {}), keys),
        "model_config": (config.get("model") or {}).get("config", {}),
        "run_folder": run_dir.name,
        "git": env.get("git"),
        "date": env.get("created_utc"),
        "device": metrics.get("device") or env.get("device"),
        "plots": list(metrics.get("plots", [])),
    }


def _train_time(run_dir: Path, metrics: dict) -> float | None:
    """Seconds spent in training epochs: the sum over metrics.jsonl (metrics.json's time_s only counts
    the last session of a resumed run)."""
    log = run_dir / "metrics.jsonl"
    if log.is_file():
        times = [r["time_s"] for r in read_jsonl(log) if isinstance(r.get("time_s"), (int, float))]
        if times:
            return float(sum(times))
    return (metrics.get("time_s") or {}).get("train")


# ---------------------------------------------------------------------------------------- floors
def floor_values(floors: dict | None, run: dict) -> dict[str, Any]:
    """The symmetrised floors of the run's task and fold, or why there are none."""
    if floors is None:
        return {"note": "no floors file"}
    entry = (floors.get("tasks") or {}).get(run["task"])
    if entry is None:
        return {"note": f"floors.json has no entry for {run['task']}"}
    if str(entry.get("version")) != str(run["task_version"]):
        return {"note": f"floors computed on task version {entry.get('version')}, the run used {run['task_version']}: not comparable"}
    # Task options the run set (e.g. embedded n_crystals) must equal those the floors were computed with.
    fconf = entry.get("config", {})
    differing = {k: (fconf.get(k), v) for k, v in run["task_kwargs"].items() if k in fconf and fconf.get(k) != v}
    unknown = [k for k in run["task_kwargs"] if k not in fconf]
    if differing or unknown:
        return {"note": f"task options differ from the floors' (floor, run): {differing or unknown}: not comparable"}
    out: dict[str, Any] = {"version": entry.get("version"), "date": entry.get("date"), "git": entry.get("git")}
    for name in FLOOR_NAMES:
        per_fold = ((entry.get("floors") or {}).get(name) or {}).get("per_fold") or []
        if run["fold"] < len(per_fold):
            out[name] = _pick(per_fold[run["fold"]], TENSOR_KEYS if run["kind"] == "tensor" else SCALAR_KEYS)
    return out


# ------------------------------------------------------------------------------ CGCNN references
def cgcnn_reference(results_root: Path, task: str, fold: int) -> list[dict[str, Any]]:
    """CGCNN test scores of ``fold`` from every ``cgcnn-*`` reproduction of a matbench task."""
    base = Path(results_root) / "matbench_v0.1" / task
    refs: list[dict[str, Any]] = []
    if not base.is_dir():
        return refs
    for d in sorted(base.glob("cgcnn-*")):
        ref: dict[str, Any] | None = None
        res = d / "results.json.gz"
        if res.is_file():
            try:
                data = _read_json(res)
                scores = data["tasks"][task]["results"][f"fold_{fold}"]["scores"]
                ref = {"mae": scores.get("mae"), "rmse": scores.get("rmse"), "source": str(res.relative_to(results_root.parent) if results_root.is_absolute() else res)}
            except (KeyError, TypeError, OSError, json.JSONDecodeError):
                ref = None
        if ref is None and (d / "progress.json").is_file():  # reproduction still running: its finished fold
            try:
                run = Path(_read_json(d / "progress.json")["runs"][str(fold)])
                run = run if run.is_absolute() else Path(results_root).resolve().parent / run
                m = _read_json(run / "metrics.json")
                if m.get("finished"):
                    ref = {"mae": m["test"]["mae"], "rmse": m["test"].get("rmse"), "source": f"runs/{run.name} (reproduction in progress)"}
            except (KeyError, TypeError, OSError, json.JSONDecodeError):
                ref = None
        if ref is not None:
            ref["name"] = d.name
            refs.append(ref)
    return refs


# ---------------------------------------------------------------------------------------- table
def build_results(run_dirs: Sequence[str | Path], floors_path: Path | None, results_root: Path) -> dict[str, Any]:
    floors = _read_json(floors_path) if floors_path is not None and Path(floors_path).is_file() else None
    rows = []
    for rd in run_dirs:
        run = read_run(rd)
        row = dict(run)
        row["floors"] = floor_values(floors, run) if run["kind"] == "tensor" else {"note": "scalar task: no tensor floors"}
        if run["task"].startswith("matbench_"):
            row["cgcnn_reference"] = cgcnn_reference(results_root, run["task"], run["fold"])
        rows.append(row)
    return {
        "format": FORMAT,
        "description": "Test metrics of run folders next to the floors (results/floors/floors.json) and, on "
                       "matbench tasks, CGCNN on the same fold. Short-budget single-fold runs, not converged numbers.",
        "generated_utc": _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat(),
        "git": provenance.git_info(),
        "floors_file": str(floors_path) if floors_path is not None else None,
        "rows": rows,
        "fold_summary": fold_summary(rows),
    }


def _n_test(r: dict[str, Any]) -> str:
    """Scored test crystals; those whose graph failed (predicted with the training mean, not scored in
    the run's metrics) are named, because the floors were scored on every test crystal."""
    n = _f(r["test"].get("n"))
    failed = (r.get("n") or {}).get("test_graph_failed") or 0
    return f"{n} (+{failed} no graph)" if failed else n


def verdicts(rows: Sequence[dict[str, Any]]) -> list[str]:
    """One sentence per tensor row: the model's Fnorm against the best floor's (computed, not written by hand)."""
    out = []
    for r in rows:
        fl = r["floors"]
        cands = [(fl[k]["fnorm"], k) for k in FLOOR_NAMES if k in fl and fl[k].get("fnorm") is not None]
        model = r["test"].get("fnorm")
        if not cands or model is None:
            out.append(f"{r['task']} ({r['backend']}): no comparable floor ({fl.get('note', 'none')})")
            continue
        best, name = min(cands)
        rel = (model - best) / best
        word = "below (better than)" if model < best else "above (worse than)"
        out.append(f"{r['task']} ({r['backend']}): Fnorm {_f(model)} is {abs(rel):.0%} {word} the {name} floor's {_f(best)}"
                   f"{' (best epoch = last epoch: still improving when the budget ran out)' if r['best_epoch'] == r['epochs_run'] else ''}.")
    return out


def fold_summary(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per (task, backend, model): means over the folds present of the model's test metrics and of the
    floors on the same folds, and on how many folds the model's Fnorm beat the best floor's."""
    groups: dict[tuple, list] = {}
    for r in rows:
        if r["kind"] == "tensor":
            groups.setdefault((r["task"], r["backend"], r["model"]), []).append(r)
    out = []
    for (task, backend, model), rs in groups.items():
        rs = list({r["fold"]: r for r in rs}.values())  # the last run of a fold counts once
        mean = lambda vals: float(np.mean(vals)) if vals else None  # noqa: E731
        entry = {"task": task, "backend": backend, "model": model, "folds": sorted(r["fold"] for r in rs)}
        for key in ("fnorm", "ewt25", "sym_violation_mean", "sym_violation_median"):
            entry[key] = mean([r["test"][key] for r in rs if r["test"].get(key) is not None])
        for name in FLOOR_NAMES:
            vals = [r["floors"][name]["fnorm"] for r in rs if name in r["floors"]]
            entry[f"floor_{name}_fnorm"] = mean(vals) if len(vals) == len(rs) else None
            ewt = [r["floors"][name]["ewt25"] for r in rs if name in r["floors"]]
            entry[f"floor_{name}_ewt25"] = mean(ewt) if len(ewt) == len(rs) else None
        wins = 0
        for r in rs:
            best = min((r["floors"][k]["fnorm"] for k in FLOOR_NAMES if k in r["floors"]), default=None)
            wins += int(best is not None and r["test"]["fnorm"] < best)
        entry["folds_better_than_best_floor"] = wins
        out.append(entry)
    return out


def _f(x: Any, digits: int = 4) -> str:
    if x is None:
        return "–"
    if isinstance(x, float):
        if x != 0 and (abs(x) < 1e-3 or abs(x) >= 1e5):
            return f"{x:.2e}"
        return f"{x:.{digits}g}"
    return str(x)


def render_readme(results: dict[str, Any]) -> str:
    rows = results["rows"]
    tensor = [r for r in rows if r["kind"] == "tensor"]
    scalar = [r for r in rows if r["kind"] != "tensor"]
    epochs = sorted({f"{r['epochs_max']} (patience {r['patience']})" for r in rows})
    folds = sorted({r["fold"] for r in rows})
    recipes = sorted({r.get("recipe") or "none" for r in rows})
    # Runs of a family recipe say so (its provenance says how it was searched); runs without one were not tuned.
    tuning = (f"with the recipe(s) {', '.join(f'`{x}`' for x in recipes)} (how each was chosen: its provenance in "
              "zoo/models/<family>/recipes.json)" if "none" not in recipes else
              "with no hyper-parameter search: read them as a reference point for this architecture at this budget, "
              "not as tuned leaderboard numbers")
    names = ", ".join(sorted({_MODEL_NAMES.get(r["model"], r["model"]) for r in rows})) or "no runs"
    lines = [
        f"# {names}: test results next to the floors",
        "",
        "Generated by `zoo report tensor_results` from the run folders listed below "
        f"({results['generated_utc']}; repository commit {(results.get('git') or {}).get('commit') or '?'}).",
        "",
        f"Folds present: {', '.join(map(str, folds))}. Every run is one seed of one model (its configuration: the run's config.json), trained "
        f"for at most {', '.join(epochs)} epochs on a 2-core CPU, {tuning}.",
        "",
        "Floors (results/floors/floors.json, same task version and fold): `mean` = the training mean tensor "
        "symmetrised to each test crystal's point group; `element-linear` = a per-element linear model, also "
        "symmetrised; `train mean (run)` = the run's own unsymmetrised training mean. Tensor metrics: Fnorm = mean "
        "Frobenius norm of the error; MAE = mean absolute error over all Cartesian components; EwT25/10/5 = "
        "fraction of test crystals whose Frobenius error is within 25/10/5 % of the true tensor's norm (higher is "
        "better); sym. viol. = mean over test crystals of ||T - Sym_G T||_F / ||T||_F for the predicted tensor T "
        "(Sym_G: Neumann average over the crystal's own point group; zoo.symmetry.symmetry_violation): float32 "
        "rounding level for an equivariant model, exactly 0 up to float64 rounding for the symmetrised floors; "
        "the true tensors' own violation (the data's noise floor) is in results.json as true_sym_violation_mean.",
        "",
    ]
    summary = fold_summary(tensor)
    if summary:
        lines += ["## Tensor tasks: means over folds", "",
                  "| task | model | folds | Fnorm | best floor Fnorm (mean / element-linear) | folds better than best floor | "
                  "EwT25 (floor mean / el.-lin.) | sym. viol. mean (median) |",
                  "|---|---|---|---|---|---|---|---|"]
        for e in summary:
            lines.append(f"| {e['task']} | {e['model']} ({e['backend']}) | {len(e['folds'])} | **{_f(e['fnorm'])}** | "
                         f"{_f(e['floor_mean_fnorm'])} / {_f(e['floor_element_linear_fnorm'])} | {e['folds_better_than_best_floor']}/{len(e['folds'])} | "
                         f"{_f(e['ewt25'], 3)} ({_f(e['floor_mean_ewt25'], 3)} / {_f(e['floor_element_linear_ewt25'], 3)}) | "
                         f"{_f(e['sym_violation_mean'], 3)} ({_f(e['sym_violation_median'], 3)}) |")
        lines.append("")
    if tensor:
        lines += ["## Tensor tasks, per run", "",
                  "| task | predictor | epochs run (best) | n test | Fnorm | comp. MAE | EwT25 | EwT10 | EwT5 | sym. viol. |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for r in tensor:
            t = r["test"]
            pred = f"{r['model']} ({r['backend']}, {r['dtype']}, fold {r['fold']})"
            lines.append(f"| {r['task']} | **{pred}** | {r['epochs_run']} ({r['best_epoch']}) | {_n_test(r)} | "
                         f"**{_f(t.get('fnorm'))}** | **{_f(t.get('mae'))}** | {_f(t.get('ewt25'), 3)} | {_f(t.get('ewt10'), 3)} | "
                         f"{_f(t.get('ewt5'), 3)} | {_f(t.get('sym_violation_mean'), 3)} |")
            fl = r["floors"]
            for name, label in (("mean", "floor: mean (symmetrised)"), ("element_linear", "floor: element-linear")):
                if name in fl:
                    v = fl[name]
                    lines.append(f"| {r['task']} | {label} | – | {_f(v.get('n'))} | {_f(v.get('fnorm'))} | {_f(v.get('mae'))} | "
                                 f"{_f(v.get('ewt25'), 3)} | {_f(v.get('ewt10'), 3)} | {_f(v.get('ewt5'), 3)} | {_f(v.get('sym_violation_mean'), 3)} |")
            if "note" in fl:
                lines.append(f"| {r['task']} | floors: {fl['note']} | | | | | | | | |")
            v = r["run_floor_test"]
            if v:
                lines.append(f"| {r['task']} | train mean (run) | – | {_f(v.get('n'))} | {_f(v.get('fnorm'))} | {_f(v.get('mae'))} | "
                             f"{_f(v.get('ewt25'), 3)} | {_f(v.get('ewt10'), 3)} | {_f(v.get('ewt5'), 3)} | {_f(v.get('sym_violation_mean'), 3)} |")
        lines.append("")
        lines += ["Against the best symmetrised floor of the same fold (Fnorm, lower is better):", ""]
        lines += [f"- {line}" for line in verdicts(tensor)]
        lines.append("")
    if scalar:
        lines += ["## Scalar tasks", "",
                  "| task | predictor | epochs run (best) | n test | MAE | RMSE | R² |", "|---|---|---|---|---|---|---|"]
        for r in scalar:
            t = r["test"]
            unit = r["target"].get("unit") or ""
            lines.append(f"| {r['task']} | **{r['model']} ({r['backend']}, {r['dtype']}, fold {r['fold']})** | {r['epochs_run']} ({r['best_epoch']}) | "
                         f"{_n_test(r)} | **{_f(t.get('mae'))}** {unit} | {_f(t.get('rmse'))} | {_f(t.get('r2'), 3)} |")
            for ref in r.get("cgcnn_reference", []):
                lines.append(f"| {r['task']} | {ref['name']} (same fold; {ref['source']}) | – | – | {_f(ref.get('mae'))} {unit} | {_f(ref.get('rmse'))} | – |")
            if r["task"].startswith("matbench_") and not r.get("cgcnn_reference"):
                lines.append(f"| {r['task']} | CGCNN: no finished fold-{r['fold']} result found | | | | | |")
            v = r["run_floor_test"]
            if v:
                lines.append(f"| {r['task']} | train mean (run) | – | {_f(v.get('n'))} | {_f(v.get('mae'))} {unit} | {_f(v.get('rmse'))} | {_f(v.get('r2'), 3)} |")
        lines.append("")
    lines += ["## Provenance", "", "| task | backend | run folder | git commit (dirty) | date (UTC) | train time | device |",
              "|---|---|---|---|---|---|---|"]
    for r in rows:
        g = r.get("git") or {}
        commit = (g.get("commit") or "?")[:10] + (" (dirty)" if g.get("dirty") else "")
        tt = f"{r['train_time_s']:.0f} s" if isinstance(r.get("train_time_s"), (int, float)) else "–"
        lines.append(f"| {r['task']} | {r['backend']} | `{r['run_folder']}` | {commit} | {r.get('date') or '–'} | {tt} | {r.get('device') or '–'} |")
    lines += ["", "Plots (learning curve, parity) of each run are in `plots/<task>_<backend>_<plot>.png` (a second run of "
              "the same task and backend: `plots/<task>_<backend>_<run tag>_<plot>.png`); each row's files are listed "
              "in results.json (plots_copied).", ""]
    return "\n".join(lines)


def copy_plots(run_dir: Path, row: dict[str, Any], out: Path, tag: str = "") -> list[str]:
    """Copy the run's PNG plots to ``out/plots/<task>_<backend><tag>_<name>.png`` (atomically)."""
    copied = []
    for src in sorted((Path(run_dir) / "plots").glob("*.png")):
        dst = out / "plots" / f"{row['task']}_{row['backend']}{tag}_{src.name}"
        with atomic_path(dst) as tmp:
            shutil.copyfile(src, tmp)
        copied.append(str(dst.relative_to(out)))
    return copied


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("runs", nargs="+", help="run folders written by `zoo train`")
    p.add_argument("--floors", default=str(RESULTS / "floors" / "floors.json"))
    p.add_argument("--results-root", default=str(RESULTS), help="root holding matbench_v0.1/<task>/cgcnn-*")
    p.add_argument("--out", default=str(RESULTS / "tfn"))
    p.add_argument("--plots", choices=("all", "first", "none"), default="all",
                   help="copy every run's plots, only the first run's of each task and backend (many seeds or "
                        "folds: the plots are ~45 kB each), or none")
    args = p.parse_args(argv)
    out = Path(args.out)
    try:
        results = build_results(args.runs, Path(args.floors), Path(args.results_root))
    except RunFolderError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    seen: set[tuple[str, str]] = set()
    for rd, row in zip(args.runs, results["rows"]):
        key = (row["task"], row["backend"])
        # a second run of the same task and backend keeps its plots apart: suffix = the run folder's tag
        tag = "" if key not in seen else "_" + row["run_folder"].rsplit("_", 1)[-1]
        copy = args.plots == "all" or (args.plots == "first" and key not in seen)
        seen.add(key)
        row["plots_copied"] = copy_plots(Path(rd), row, out, tag) if copy else []
    write_json(out / "results.json", results)
    write_text(out / "README.md", render_readme(results))
    print(f"wrote {out / 'results.json'} and {out / 'README.md'} ({len(results['rows'])} runs)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
