"""The model comparison table: on every task, each family's runs with its stored recipe, side by side.

Usage::

    zoo report model_table [--results results] [--floors results/floors/floors.json] [--out results/comparison]

Writes ``<out>/README.md`` and ``<out>/model_table.json`` from the same records as the leaderboard
(``zoo.reports.leaderboard.collect``: reproductions, archived run folders and run tables under
``results/``, each run once), so the two never disagree; nothing here trains or predicts.

Which entries: on a task of kind K (scalar, rank2 ...), every entry with all folds whose runs named the
family's recipe ``<family>.K``, with or without departures from it (the departures are the ablations:
``pgnet.scalar[lmax=4]``); a family and backend with no such entry get their best entry with all folds
instead (older runs that predate the recipes), marked so. Columns, each a mean over the entry's runs
(seeds x folds): the ranked score (test MAE or Fnorm) ± the std over seeds' means, its ratio to the best
floor, EwT25, the component MAE (tensor tasks), the median symmetry violation of the predictions under each
crystal's point group (a run's median; relative, so its mean is set by near-zero tensors), the number of weights (``n_parameters`` of the family's config module, or the
torch model's own count), and training structures per second: crystals x epochs / training seconds of
each run, median over the runs. That last figure is each run's own, on whatever machine and load it ran
(the commits and machines are in the leaderboard): a same-process throughput comparison is
``benchmarks/pgnet_throughput.py``'s, quoted from ``results/pgnet/`` where it exists.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
from functools import lru_cache
from pathlib import Path
from typing import Any, Sequence

from zoo import tasks
from zoo.core.io import write_json, write_text
from zoo.models import build, config_from_dict, get_family, list_models
from zoo.training import recipes

from . import leaderboard
from .common import RESULTS, ReportError

FORMAT = "crystal-zoo model table v1"
OUT = RESULTS / "comparison"
# test metrics carried next to the ranked score; the symmetry violation is relative (||T - Sym T|| / ||T||), so
# its mean is set by the few crystals whose predicted tensor is near zero: the median speaks for the model
COLUMNS = ("ewt25", "mae", "sym_violation_median")


@lru_cache(maxsize=None)
def _n_parameters(family: str, config_json: str) -> int | None:
    """Weights of a model config as a run recorded it (None when the config no longer loads)."""
    try:
        config = config_from_dict(family, json.loads(config_json))
    except (TypeError, ValueError, KeyError):
        return None
    module = sys.modules[get_family(family).config.__module__]
    if hasattr(module, "n_parameters"):  # the equivariant families count without building (the same count)
        return int(module.n_parameters(config))
    return int(sum(p.numel() for p in build(family, "torch", config).parameters()))


def _mean(values: Sequence[Any]) -> float | None:
    vals = [float(v) for v in values if v is not None]
    return statistics.mean(vals) if vals and len(vals) == len(values) else None


def _speed(records: Sequence[dict]) -> float | None:
    rates = [s["n_train"] * s["epochs_run"] / s["train_time_s"] for s in (r.get("run_stats") or {} for r in records)
             if s.get("n_train") and s.get("epochs_run") and s.get("train_time_s")]
    return statistics.median(rates) if rates else None


def row(entry: dict[str, Any], best_floor: float | None, stored: bool) -> dict[str, Any]:
    rs = entry["records"]
    config = next((r["model_config"] for r in rs if r.get("model_config")), None)
    params = _n_parameters(entry["family"], json.dumps(config, sort_keys=True)) if config else None
    return {
        "label": entry["label"], "family": entry["family"], "backend": entry["backend"],
        "recipe_name": entry["recipe_name"], "departures": entry["overrides"], "stored_recipe": stored,
        "seeds": entry["seeds"], "folds": entry["folds"], "n_runs": len(rs), "metric": entry["metric"],
        "score": entry["mean"], "seed_std": entry["seed_std"],
        "vs_best_floor": entry["mean"] / best_floor if best_floor else None,
        **{k: _mean([(r.get("test") or {}).get(k) for r in rs]) for k in COLUMNS},
        "n_parameters": params, "train_structures_per_s": _speed(rs), "source": entry["provenance"]["source"],
    }


def table(results: Path, floors: Path | None, anchors: Path | None = None) -> dict[str, Any]:
    """Per task: the selected entries as rows (best first) and the floors (tensor tasks: floors.json; matbench
    tasks: the published ``Dummy``, matbench's training-mean predictor, from the leaderboard's anchors)."""
    entries = [e for e in leaderboard.build_entries(leaderboard.collect(results), keep_records=True) if e["complete"]]
    floor_rows = leaderboard.read_floors(floors) if floors and Path(floors).exists() else {}
    for task, rows in (leaderboard.read_anchors(anchors) if anchors and Path(anchors).exists() else {}).items():
        floor_rows.setdefault(task, []).extend({"label": "matbench Dummy (training mean)", "mean": a["mean"]}
                                               for a in rows if a["label"] == "Dummy")
    out = {}
    for task in sorted({e["task"] for e in entries}):
        spec = tasks.spec(task)
        kind = recipes.task_kind(spec.target)
        mine = [e for e in entries if e["task"] == task]
        best_floor = min((f["mean"] for f in floor_rows.get(task, [])), default=None)
        rows = []
        for family, backend in sorted({(e["family"], e["backend"]) for e in mine}):
            pair = [e for e in mine if (e["family"], e["backend"]) == (family, backend)]
            named = [e for e in pair if (e["recipe_name"] or "") == f"{family}.{kind}"]
            chosen = named or [min(pair, key=lambda e: e["mean"])]
            rows += [row(e, best_floor, bool(named)) for e in chosen]
        rows.sort(key=lambda r: r["score"])
        # the families whose registry entry has no tensor output (the invariant ones)
        invariant = sorted(f for f in list_models() if spec.target.kind not in get_family(f).outputs)
        out[task] = {"kind": kind, "metric": leaderboard.METRIC[spec.target.kind], "unit": spec.target.unit or "dimensionless",
                     "n_folds": spec.n_folds, "rows": rows, "floors": [{"label": f["label"], "mean": f["mean"]} for f in floor_rows.get(task, [])],
                     "not_applicable": invariant}
    return {"format": FORMAT, "tasks": out}


def _f(x: Any, spec: str) -> str:
    return "—" if x is None else format(x, spec)


def render(t: dict[str, Any]) -> str:
    lines = ["# Model comparison", "",
             "Generated by `zoo report model_table` from the result folders under `results/` (the leaderboard's "
             "records; do not edit by hand). Per task, each family's entries with all folds that were trained with "
             "its stored recipe for the task kind, the ablations (departures from the recipe in brackets) included; "
             "a family and backend without such an entry show their best entry, marked *(no recipe run)*. Every "
             "figure is a mean over the entry's runs (seeds x folds); ± is the std over the seeds' means. "
             "*train str/s* is each run's own crystals x epochs / training seconds (median over runs), on "
             "whatever machine and load the run had: a same-process throughput comparison is in "
             "`results/pgnet/README.md` (`benchmarks/pgnet_throughput.py`). Lower is better for the score, MAE and "
             "symmetry violation; higher for EwT25.", ""]
    for task, x in t["tasks"].items():
        metric = x["metric"].upper()
        lines += [f"## {task} ({x['kind']}; {metric} in {x['unit']})", ""]
        if x["floors"]:
            lines += ["Floors: " + ", ".join(f"{f['label'].removeprefix('floor: ')} {f['mean']:.4g}" for f in x["floors"]) + ".", ""]
        lines += [f"| entry | seeds | {metric} ± seed std | × best floor | EwT25 | comp. MAE | sym. violation (median) | weights | train str/s | source |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for r in x["rows"]:
            name = r["label"] + ("" if r["stored_recipe"] else " *(no recipe run)*")
            seeds = ",".join(map(str, r["seeds"])) if None not in r["seeds"] else "?"
            comp = _f(r["mae"], ".4g") if x["metric"] == "fnorm" else "—"
            lines.append(f"| {name} | {seeds} | {_f(r['score'], '.4g')} ± {_f(r['seed_std'], '.2g')} | {_f(r['vs_best_floor'], '.3f')} "
                         f"| {_f(r['ewt25'], '.3f')} | {comp} | {_f(r['sym_violation_median'], '.1e')} | {_f(r['n_parameters'], ',')} "
                         f"| {_f(r['train_structures_per_s'], '.0f')} | `{r['source']}` |")
        if x["not_applicable"]:
            lines += ["", f"{' and '.join(x['not_applicable'])}: invariant networks, which cannot predict a tensor target "
                      "(`zoo train` refuses); they are compared on the scalar tasks."]
        lines.append("")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="zoo report model_table", description=__doc__.split("\n\n")[0])
    leaderboard.add_input_arguments(p, OUT, "where README.md and model_table.json go")
    args = p.parse_args(argv)
    try:
        leaderboard.check_results_folder(args.results)
        t = table(args.results, args.floors, args.anchors)
    except ReportError as exc:
        print(f"zoo report model_table: {exc}", file=sys.stderr)
        return 2
    write_json(args.out / "model_table.json", t)
    write_text(args.out / "README.md", render(t))
    print(f"wrote {args.out / 'README.md'} and model_table.json ({sum(len(x['rows']) for x in t['tasks'].values())} rows)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
