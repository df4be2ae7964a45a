"""Leaderboard: our entries on matbench_jdft2d and the tensor tasks next to published anchors and the floors.

Usage::

    zoo report leaderboard [--results results] [--anchors results/leaderboard/anchors.json]
                           [--floors results/floors/floors.json] [--out results/leaderboard]

Regenerates ``<out>/README.md``, ``<out>/leaderboard.json`` and ``<out>/leaderboard.png`` from the
result folders under ``--results`` alone (never edit them by hand):

- reproductions (``zoo reproduce``, ``zoo report chgcnn evaluate``): every folder with a
  ``progress.json``; fold scores from matbench's ``results.json.gz`` or, for folds of an unfinished
  reproduction, from the archived ``runs/fold_<k>/metrics.json``; provenance (commit, machine, date)
  from the archived ``runs/fold_<k>/env.json``;
- archived run folders: any folder with the ``config.json`` and ``metrics.json`` that ``zoo train``
  wrote (and ``env.json`` where it was kept), e.g. ``results/tfn/jdft2d_clip/runs/<run>/``;
- run tables: ``zoo report tensor_results`` files (``results/tfn/results.json``: one row per run folder
  with its commit and device) and ``zoo report pgnet_compare`` files (``results/pgnet/*.json``: no
  commit or seed recorded, and the page says so).

Each run is counted once, whichever files report it (``_identity``: task, fold, model, backend and the
test score to 12 digits): reproductions first, then run folders, then tables. Left out: runs on another
task version or with task options (``--task-arg``), runs on all the data (``--full-data``), fine-tunings
(``--init-weights``), unfinished runs, and ``results/pretrained/`` (the published checkpoints' own runs).

Anchors: the published figures of ``anchors.json`` (matbench's leaderboard, with the file and commit
each number was copied from) and, for the tensor tasks, the floors of ``results/floors/floors.json``
(training mean / element-linear model, symmetrised), both with their per-fold scores.

An entry is one recipe (task, model, backend, options, epochs) and the seeds that covered the same
folds. A run that recorded its recipe (``TrainConfig.recipe``, since stop 22) is labelled with the
recipe's name and the options it changed from the recipe as stored today (``tfn-torch
tfn.scalar[density_basis=unset] (40 ep)``: the recipe without its density input); runs of one recipe
archived in several folders (seeds run on different days) make one entry, unless two of them are the same
seed and fold (a re-run), which stay apart. Only entries with every fold of the task are ranked with the anchors; an entry on some folds
is listed apart, next to the anchors' means over the *same* folds. Scores: matbench tasks the test
MAE in the task's unit, tensor tasks the mean Frobenius norm of the error (Fnorm, target unit);
lower is better; a mean is over folds, then over seeds; fold std is the population std over folds
(matbench's convention), seed std the sample std over the seeds' means.
"""
from __future__ import annotations

import argparse
import gzip
import json
import statistics
import sys
from pathlib import Path
from typing import Any, Sequence

from zoo import tasks
from zoo.core.io import atomic_path, write_json, write_text
from zoo.training import recipes

from .common import RESULTS, ReportError

FORMAT = "crystal-zoo leaderboard v1"
ANCHORS_FORMAT = "crystal-zoo leaderboard anchors v1"
OUT = RESULTS / "leaderboard"
METRIC = {"scalar": "mae", "tensor": "fnorm"}  # the ranked score per target kind; both are errors
FLOORS = ("mean", "element_linear")  # the symmetrised floors of floors.json
RECIPE_KEYS = ("epochs", "patience", "batch_size", "lr", "optimizer", "schedule", "dtype")


# ----------------------------------------------------------------------------------------------- reading
def _load(path: Path) -> Any:
    raw = path.read_bytes()
    # matbench 0.6 writes plain JSON whatever the file name; ours and the leaderboard's are gzip
    return json.loads(gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw)


def _task(name: str):
    """(spec, metric) of a task, or None for a task whose target kind has no ranked score here."""
    spec = tasks.spec(name)
    metric = METRIC.get(spec.target.kind)
    return (spec, metric) if metric else None


def _machine(env: dict | None, device: str | None = None) -> str | None:
    if not env:
        return device
    m = env.get("machine") or {}
    cpu = f"{m.get('cpu', '?')} x{m.get('cpu_count', env.get('cpu_count', '?'))}" if m or env.get("cpu_count") else None
    return ", ".join(x for x in (cpu, env.get("device") or device) if x) or None


def read_reproduction(folder: Path, root: Path) -> list[dict[str, Any]]:
    """Fold records of one reproduction folder (``progress.json`` and what ``zoo reproduce`` archived)."""
    progress = _load(folder / "progress.json")
    cfg = progress["config"]
    known = _task(cfg["task"])
    if known is None or cfg.get("task_kwargs"):  # a task with changed options (fewer crystals ...) is another task
        return []
    spec, metric = known
    scores: dict[int, float] = {}
    runs: dict[int, str] = {int(k): Path(v).name for k, v in progress.get("runs", {}).items()}
    if (folder / "results.json.gz").exists():
        results = next(iter(_load(folder / "results.json.gz")["tasks"].values()))["results"]
        for key, fold in results.items():
            k = int(key.split("_")[1])
            scores[k] = float(fold["scores"][metric])
            runs[k] = (fold.get("parameters") or {}).get("run", runs.get(k))
    for m in sorted(folder.glob("runs/fold_*/metrics.json")):
        k = int(m.parent.name.split("_")[1])
        d = _load(m)
        if k not in scores and d.get("finished", True) and metric in d.get("test", {}):
            scores[k] = float(d["test"][metric])
    out = []
    for k, value in sorted(scores.items()):
        env_path, config_path = (folder / "runs" / f"fold_{k}" / f"{name}.json" for name in ("env", "config"))
        env = _load(env_path) if env_path.exists() else None
        git = (env or {}).get("git") or {}
        config = _load(config_path) if config_path.exists() else {}
        if config.get("task", {}).get("version", spec.version) != spec.version:
            continue  # scored on an older version of the task: not comparable with today's anchors
        metrics_path = folder / "runs" / f"fold_{k}" / "metrics.json"
        metrics = _load(metrics_path) if metrics_path.exists() else {}
        archived = metrics.get("test") or {}
        out.append({
            "test": archived if archived.get(metric) == value else {metric: value},
            "model_config": (config.get("model") or {}).get("config"), "run_stats": _run_stats(metrics),
            "task": cfg["task"], "task_version": spec.version, "metric": metric, "fold": k, "value": value,
            "family": cfg["model"], "backend": cfg["backend"], "seed": cfg.get("seed"),
            "overrides": cfg.get("model_overrides") or {}, "recipe": {x: cfg.get(x) for x in RECIPE_KEYS},
            "run": runs.get(k), "commit": git.get("commit"), "dirty": git.get("dirty"),
            "machine": _machine(env), "date": (env or {}).get("created_utc"),
            "group": str(folder.parent.relative_to(root)), "source": str(folder.relative_to(root)),
        })
    return out


def read_run_table(path: Path, root: Path) -> list[dict[str, Any]]:
    """Fold records of a ``tensor_results`` or ``pgnet_compare`` file; [] for any other JSON."""
    try:
        d = _load(path)
    except (ValueError, UnicodeDecodeError):
        return []
    if not isinstance(d, dict) or not isinstance(d.get("rows"), list):
        return []
    fmt = str(d.get("format", ""))
    out = []
    for r in d["rows"]:
        if not isinstance(r, dict) or "task" not in r or "fold" not in r:
            continue
        known = _task(r["task"])
        if known is None:
            continue
        spec, metric = known
        # grouped by folder: a run table split over several files (pgnet's comparison and ablation) is one source
        base = {"task": r["task"], "fold": int(r["fold"]), "metric": metric, "backend": r.get("backend"),
                "group": str(path.parent.relative_to(root)), "source": str(path.relative_to(root))}
        if r.get("task_kwargs"):  # a task with changed options is another task
            continue
        if fmt == "1" and "run_folder" in r:  # zoo report tensor_results
            if r.get("task_version") != spec.version or metric not in r.get("test", {}):
                continue
            git = r.get("git") or {}
            # rows written since they carry the run's training options name its departures from the recipe
            how = _how_trained(r["train"]) if isinstance(r.get("train"), dict) else {
                "overrides": {}, "recipe_name": r.get("recipe") if isinstance(r.get("recipe"), str) else None,
                "recipe": {"epochs": r.get("epochs_max"), "patience": r.get("patience"), "dtype": r.get("dtype")}}
            out.append({**base, "task_version": spec.version, "value": float(r["test"][metric]), "family": r["model"],
                        "seed": r.get("seed"), **how, "test": dict(r["test"]), "model_config": r.get("model_config"),
                        "run_stats": {"train_time_s": r.get("train_time_s"), "epochs_run": r.get("epochs_run"),
                                      "n_train": (r.get("n") or {}).get("train")},
                        "run": r["run_folder"], "commit": git.get("commit"), "dirty": git.get("dirty"),
                        "machine": r.get("device"), "date": r.get("date")})
        elif fmt.startswith("crystal-zoo pgnet comparison") and metric in (r.get("scores", {}).get("all") or {}):
            family, _, opts = r["model"].partition("[")
            overrides = dict(o.split("=", 1) for o in opts.rstrip("]").split(",") if "=" in o)
            out.append({**base, "task_version": None, "value": float(r["scores"]["all"][metric]), "family": family,
                        "seed": None, "overrides": overrides, "recipe": {},  # the file records no recipe
                        "test": dict(r["scores"]["all"]), "model_config": None,
                        "run_stats": {"train_time_s": r.get("train_time_s"), "epochs_run": r.get("epochs_run"), "n_train": None},
                        "run": Path(r.get("dir", "")).name or None, "commit": None, "dirty": None, "machine": None,
                        "date": None})
    return out


_UNSET = object()  # a recipe's model option that the run's overrides lack


def _recipe_label(family: str, name: str | None, fields: dict[str, Any], overrides: dict[str, Any]) -> tuple[str | None, dict]:
    """(the recipe's name, the run's departures from that recipe as stored today): what a label shows.

    A run records its recipe's name and every field that resulted (zoo.training.recipes), so the fields it
    ran with that are not the stored recipe's (a flag on top of it, or a recipe changed since) are named
    in the label; a recipe no longer stored gets a note instead.
    """
    if not name:
        return None, dict(overrides)
    try:
        stored = recipes.get_recipe(family, name).fields
    except recipes.UsageError:
        return f"{name} (no longer stored)", dict(overrides)
    departures = {k: fields.get(k) for k, v in stored.items() if k != "model_overrides" and k in fields and fields[k] != v}
    want = stored.get("model_overrides") or {}
    departures.update({k: v for k, v in overrides.items() if want.get(k, _UNSET) != v})
    departures.update({k: "unset" for k in want if k not in overrides})
    return name, departures



def _group(folder: Path, root: Path) -> str:
    """The result folder a run folder was archived in: the folder above its ``runs/`` (or its parent)."""
    rel = folder.relative_to(root).parts
    for k in range(len(rel) - 1, 0, -1):
        if rel[k - 1] in ("runs", "val_runs"):
            return str(Path(*rel[: k - 1])) or "."
    return str(Path(*rel[:-1])) or "."


def read_run_folder(folder: Path, root: Path) -> dict[str, Any] | None:
    """The fold record of one run folder archived under ``root`` (``config.json`` as ``zoo train`` writes it,
    ``metrics.json`` with the best epoch's test scores), or None for a run that is no benchmark fold:
    unfinished, on all the data (``--full-data``: no test fold), on a changed task (``--task-arg``) or
    another task version, or started from other weights (``--init-weights``: a fine-tuning, not a recipe)."""
    try:
        config, metrics = _load(folder / "config.json"), _load(folder / "metrics.json")
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    train, task_record = config.get("train"), config.get("task")
    if not isinstance(train, dict) or not isinstance(task_record, dict) or not isinstance(metrics, dict):
        return None
    known = _task(str(train.get("task")))
    if known is None or train.get("task_kwargs") or train.get("full_data") or train.get("init_weights"):
        return None
    spec, metric = known
    test = metrics.get("test") or {}
    if task_record.get("version") != spec.version or not metrics.get("finished", True) or metric not in test:
        return None
    env_path = folder / "env.json"
    env = _load(env_path) if env_path.exists() else None
    git = (env or {}).get("git") or {}
    name = Path((folder / "RUN_FOLDER").read_text().strip()).name if (folder / "RUN_FOLDER").exists() else None
    return {"task": train["task"], "task_version": spec.version, "metric": metric, "fold": int(train["fold"]),
            "value": float(test[metric]), "family": train["model"], "backend": train.get("backend"),
            "seed": train.get("seed"), **_how_trained(train), "test": dict(test),
            "model_config": (config.get("model") or {}).get("config"), "run_stats": _run_stats(metrics),
            "run": name, "commit": git.get("commit"),
            "dirty": git.get("dirty"), "machine": _machine(env), "date": (env or {}).get("created_utc"),
            "group": _group(folder, root), "source": str(folder.relative_to(root))}


def _run_stats(m: dict[str, Any]) -> dict[str, Any]:
    """Training seconds, epochs run and training crystals of a run's metrics.json (None where not recorded)."""
    return {"train_time_s": (m.get("time_s") or {}).get("train"), "epochs_run": m.get("epochs_run"),
            "n_train": (m.get("n") or {}).get("train")}


def _how_trained(train: dict[str, Any]) -> dict[str, Any]:
    """The recipe fields of a record from a run's training options (``TrainConfig`` as the run wrote it)."""
    overrides = dict(train.get("model_overrides") or {})
    recipe_name, departures = _recipe_label(train["model"], train.get("recipe"), train, overrides)
    return {"overrides": departures, "recipe": {x: train.get(x) for x in RECIPE_KEYS}, "recipe_name": recipe_name}


def _identity(r: dict[str, Any]) -> tuple:
    """One run's fold result, whatever file reports it: the test score is a float64 written in full, so two
    records of the same task, fold and model with the same score to 12 digits are the same run."""
    return r["task"], r["fold"], r["family"], r["backend"], f"{r['value']:.12g}"


def collect(results: Path) -> list[dict[str, Any]]:
    """Every fold record under ``results`` (the leaderboard's own folder and the published checkpoints'
    cards under ``pretrained/`` excluded), each run counted once: reproductions first, then archived run
    folders, then run tables; a later copy of a run fills in only what the first one lacks."""
    results = Path(results)
    skip = (OUT.name, "pretrained")
    found: list[dict[str, Any]] = []
    reproductions = set()
    for progress in sorted(results.rglob("progress.json")):
        if progress.relative_to(results).parts[0] not in skip:
            found += read_reproduction(progress.parent, results)
            reproductions.add(progress.parent)
    for metrics in sorted(results.rglob("metrics.json")):
        folder = metrics.parent
        if folder.relative_to(results).parts[0] in skip or folder.parent.parent in reproductions:
            continue  # a reproduction's own archive (runs/fold_k) is read with its progress.json
        r = read_run_folder(folder, results)
        if r is not None:
            found.append(r)
    tables = []
    for path in sorted(results.rglob("*.json")):
        rel = path.relative_to(results).parts
        if rel[0] in skip or "runs" in rel or path.name in ("progress.json", "info.json", "config.json", "metrics.json", "env.json"):
            continue
        tables += read_run_table(path, results)
    # tensor_results rows (recipe name, seed, commit) before pgnet_compare rows (none of them) of the same run
    found += sorted(tables, key=lambda r: r["recipe"] == {})
    records: list[dict[str, Any]] = []
    seen: dict[Any, dict[str, Any]] = {}
    for r in found:
        first = seen.get(_identity(r)) or (seen.get(("run", r["run"])) if r["run"] else None)
        if first is not None:  # the same run again: fill in what the first record lacks (older archives have no env.json)
            for key in ("commit", "dirty", "machine", "date", "run"):
                if first.get(key) is None:
                    first[key] = r.get(key)
            continue
        records.append(r)
        seen[_identity(r)] = r
        if r["run"]:
            seen[("run", r["run"])] = r
    return records


# ----------------------------------------------------------------------------------------------- entries
def _label(family: str, backend: str | None, overrides: dict, recipe: dict, recipe_name: str | None = None) -> str:
    """``family-backend recipe[departures] (N ep)``; without a recipe name, ``family-backend[overrides] (N ep)``."""
    opts = ",".join(f"{k}={'/'.join(map(str, v)) if isinstance(v, list) else v}" for k, v in sorted(overrides.items()))
    epochs = recipe.get("epochs")
    name = f" {recipe_name}" if recipe_name else ""
    return f"{family}-{backend}{name}" + (f"[{opts}]" if opts else "") + (f" ({epochs} ep)" if epochs else "")


def _mean_std(values: Sequence[float]) -> tuple[float, float]:
    return statistics.mean(values), statistics.pstdev(values)


def _recipe_groups(records: Sequence[dict[str, Any]]) -> dict[tuple, list[dict[str, Any]]]:
    """Records of one recipe together: ``{(task, family, backend, where, overrides, recipe, recipe name): [...]}``.

    A run that names its recipe (``TrainConfig.recipe``) is the same recipe as another run naming it with
    the same departures, epochs and precision, wherever the two were archived: seeds run at different
    stops make one entry. A record without a recipe name (older runs, reproductions) stays with its
    folder. Two runs of the same seed and fold never share an entry (a re-run, or the same recipe name
    over a code change), in one folder or across folders: the largest folder's runs are placed first,
    then each run joins the first entry where its seed and fold are free.
    """
    by_key: dict[tuple, dict[str, list[dict]]] = {}
    for r in records:
        name = r.get("recipe_name") or ""
        recipe = {k: r["recipe"].get(k) for k in ("epochs", "dtype")} if name else r["recipe"]
        key = (r["task"], r["family"], r["backend"], "" if name else r["group"],
               json.dumps(r["overrides"], sort_keys=True, default=str), json.dumps(recipe, sort_keys=True, default=str), name)
        by_key.setdefault(key, {}).setdefault(r["group"], []).append(r)
    out: dict[tuple, list[dict[str, Any]]] = {}
    for key, by_folder in by_key.items():
        merged: list[tuple[set, list]] = []
        # the largest folders first (the runs made together), then each run into the first entry where its
        # seed and fold are free: a re-run lands in an entry of its own
        for folder in sorted(by_folder, key=lambda f: (-len(by_folder[f]), f)):
            for r in by_folder[folder]:
                slot = (r["seed"], r["fold"])
                home = next((m for m in merged if slot not in m[0]), None)
                if home is None:
                    merged.append(({slot}, [r]))
                else:
                    home[0].add(slot)
                    home[1].append(r)
        for k, (_, rs) in enumerate(merged):
            out[key[:3] + (f"{key[3]}#{k}",) + key[4:]] = rs
    return out


def build_entries(records: Sequence[dict[str, Any]], keep_records: bool = False) -> list[dict[str, Any]]:
    """Records grouped into entries: one recipe, and the seeds that covered the same folds (each entry
    with its fold records under ``"records"`` when ``keep_records``: other reports read more than the score)."""
    groups: dict[tuple, dict[Any, list[dict]]] = {}
    for key, rs in _recipe_groups(records).items():
        for r in rs:
            groups.setdefault(key, {}).setdefault(r["seed"], []).append(r)
    entries = []
    for (task, family, backend, _, _, _, recipe_name), by_seed in sorted(groups.items(), key=lambda kv: str(kv[0])):
        by_folds: dict[tuple, list] = {}
        for seed, rs in by_seed.items():
            by_folds.setdefault(tuple(sorted({r["fold"] for r in rs})), []).append(seed)
        for folds, seeds in sorted(by_folds.items(), key=lambda kv: (-len(kv[0]), kv[0])):
            rs = [r for s in seeds for r in by_seed[s]]
            first = rs[0]
            per_seed = {s: {r["fold"]: r["value"] for r in by_seed[s]} for s in seeds}
            seed_means = [statistics.mean(v.values()) for v in per_seed.values()]
            spec = tasks.spec(task)
            entries.append({
                "label": _label(family, backend, first["overrides"], first["recipe"], recipe_name or None), "task": task,
                "metric": first["metric"], "family": family, "backend": backend, "overrides": first["overrides"],
                "recipe": first["recipe"], "recipe_name": recipe_name or None, "seeds": sorted(seeds, key=str), "folds": list(folds),
                "complete": len(folds) == spec.n_folds,
                "scores": {str(s): {str(k): v for k, v in sorted(f.items())} for s, f in per_seed.items()},
                "per_fold": {str(k): statistics.mean(per_seed[s][k] for s in seeds) for k in folds},
                "mean": statistics.mean(seed_means),
                "fold_std": statistics.mean(statistics.pstdev(v.values()) for v in per_seed.values()),
                "seed_std": statistics.stdev(seed_means) if len(seed_means) > 1 else None,
                "provenance": {
                    "commits": sorted({r["commit"][:10] for r in rs if r["commit"]}),
                    "dirty": any(bool(r["dirty"]) for r in rs) if any(r["dirty"] is not None for r in rs) else None,
                    "machines": sorted({r["machine"] for r in rs if r["machine"]}),
                    "dates": sorted({r["date"][:10] for r in rs if r["date"]}),
                    "runs": sorted({r["run"] for r in rs if r["run"]}),
                    "source": ", ".join(sorted({r["group"] for r in rs})),
                    "files": sorted({r["source"] for r in rs}),
                },
            } | ({"records": rs} if keep_records else {}))
    return entries


def read_anchors(path: Path) -> dict[str, list[dict[str, Any]]]:
    """Published anchors per task: label, mean, std, per-fold scores (or None) and the source."""
    d = _load(path)
    if d.get("format") != ANCHORS_FORMAT:
        raise ReportError(f"{path}: format {d.get('format')!r} is not {ANCHORS_FORMAT!r}; pass --anchors FILE written "
                          "in that format (see results/leaderboard/anchors.json)")
    out = {}
    for task, t in d["tasks"].items():
        out[task] = [{"label": e["algorithm"], "kind": "published", "mean": e["mean"], "std": e["std"],
                      "per_fold": None if e["folds"] is None else {str(k): v for k, v in enumerate(e["folds"])},
                      "source": e["source"], "benchmark": t["benchmark"]} for e in t["entries"]]
    return out


def read_floors(path: Path) -> dict[str, list[dict[str, Any]]]:
    """The symmetrised floors of each tensor task as anchors, only where the task version still matches."""
    d = _load(path)
    out = {}
    git = ""
    for task, t in d.get("tasks", {}).items():
        known = _task(task)
        if known is None or known[0].version != t.get("version"):
            continue
        for name in FLOORS:
            per_fold = [f[known[1]] for f in t["floors"][name]["per_fold"]]
            mean, std = _mean_std(per_fold)
            git = (t.get("git") or d.get("git") or {}).get("commit", "")[:10]
            out.setdefault(task, []).append({
                "label": f"floor: {name}", "kind": "floor", "mean": mean, "std": std,
                "per_fold": {str(k): v for k, v in enumerate(per_fold)}, "benchmark": f"task version {t['version']}",
                "source": f"{path.name}" + (f" (commit {git})" if git else "")})
    return out


def _rank_key(x: dict) -> float:
    return x["mean"]


def leaderboard(results: Path, anchors: Path | None, floors: Path | None) -> dict[str, Any]:
    """The whole page as data: per task, the ranked table and the entries on some folds only."""
    entries = build_entries(collect(results))
    published = read_anchors(anchors) if anchors and Path(anchors).exists() else {}
    floor_anchors = read_floors(floors) if floors and Path(floors).exists() else {}
    out_tasks = {}
    for task in sorted({e["task"] for e in entries} | set(published)):
        spec = tasks.spec(task)
        ours = [e for e in entries if e["task"] == task]
        anchors_t = published.get(task, []) + floor_anchors.get(task, [])
        ranked = sorted([{**e, "kind": "ours"} for e in ours if e["complete"]] + anchors_t, key=_rank_key)
        for k, row in enumerate(ranked, 1):
            row["rank"] = k
        partial = []
        for e in ours:
            if e["complete"]:
                continue
            folds = [str(k) for k in e["folds"]]
            same = sorted(({"label": a["label"], "kind": a["kind"], "mean": statistics.mean(a["per_fold"][k] for k in folds)}
                           for a in anchors_t if a["per_fold"]), key=_rank_key)
            partial.append({**e, "kind": "ours (some folds)", "anchors_same_folds": same,
                            "rank_among_anchors": 1 + sum(a["mean"] < e["mean"] for a in same)})
        metric = METRIC[spec.target.kind]
        out_tasks[task] = {"task_version": spec.version, "metric": metric, "unit": spec.target.unit or "dimensionless",
                           "n_folds": spec.n_folds, "ranked": ranked, "partial": partial}
    # No date or HEAD commit in the page: it changes only when a result or an anchor does.
    return {"format": FORMAT, "tasks": out_tasks}


# ----------------------------------------------------------------------------------------------- page
def _f(x: Any, spec: str = ".2f") -> str:
    return "—" if x is None else format(x, spec)


def _provenance(row: dict) -> tuple[str, str, str]:
    """(commit, machine, source) cells; a field no input recorded says so."""
    if row["kind"] in ("published", "floor"):
        return "—", "—", row["source"]
    p = row["provenance"]
    commits = ", ".join(p["commits"]) + (" (uncommitted changes)" if p["dirty"] else "") if p["commits"] else "not recorded"
    return commits, "; ".join(p["machines"]) or "not recorded", f"`{p['source']}`"


def _recipe(row: dict) -> str:
    if row["kind"] in ("published", "floor"):
        return row["benchmark"]
    r = {k: v for k, v in row["recipe"].items() if v is not None}
    seeds = ",".join("?" if s is None else str(s) for s in row["seeds"])
    return ", ".join(f"{k} {v}" for k, v in r.items()) + f"; seeds {seeds}"


def render(board: dict[str, Any]) -> str:
    lines = ["# Leaderboard", "",
             "Generated by `zoo report leaderboard` from the result folders under `results/` and the anchors in "
             "`results/leaderboard/anchors.json` (do not edit by hand; the data is in `leaderboard.json`, the plot in "
             "`leaderboard.png`).", "",
             "An entry is labelled `family-backend recipe[departures] (epochs)`: the recipe it was trained with "
             "(`zoo/models/<family>/recipes.json`) and the options in which it differs from that recipe as stored "
             "today (`unset`: an option of the recipe the run did not have). Entries without a recipe name predate "
             "the recipes.", "",
             "Ranked: entries with every fold of the task, next to the published matbench figures (each with the file "
             "it was copied from) and, on the tensor tasks, the floors (`results/floors`). Lower is better. "
             "Mean over folds, then over seeds; ± the population std over folds; seed std over the seeds' means. "
             "Entries on some folds only are listed apart, each next to the anchors' means over the same folds: they "
             "are not comparable with 5-fold means.", ""]
    for task, t in board["tasks"].items():
        unit = t["unit"]
        lines += [f"## {task}", "", f"Score: test {t['metric'].upper()} ({unit}), task version {t['task_version']}, "
                  f"{t['n_folds']} folds.", "",
                  f"| rank | entry | kind | {t['metric'].upper()} ± fold std | seed std | folds | recipe / benchmark | commit | machine | source |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for row in t["ranked"]:
            commit, machine, source = _provenance(row)
            folds = "all" if row["kind"] != "ours" else f"{len(row['folds'])}/{t['n_folds']}"
            name = f"**{row['label']}**" if row["kind"] == "ours" else row["label"]
            lines.append(f"| {row['rank']} | {name} | {row['kind']} | {_f(row['mean'])} ± {_f(row['std'] if 'std' in row else row['fold_std'])} "
                         f"| {_f(row.get('seed_std'))} | {folds} | {_recipe(row)} | {commit} | {machine} | {source} |")
        if t["partial"]:
            lines += ["", f"Entries on some folds of {task} (not ranked above):", "",
                      "| entry | folds | seeds | mean on these folds | best anchor on the same folds | would rank among anchors | commit | machine | source |",
                      "|---|---|---|---|---|---|---|---|---|"]
            for row in t["partial"]:
                commit, machine, source = _provenance(row)
                best = row["anchors_same_folds"][0] if row["anchors_same_folds"] else None
                best_cell = f"{best['label']}: {_f(best['mean'])}" if best else "no anchor with per-fold scores"
                seeds = ",".join("?" if s is None else str(s) for s in row["seeds"])
                lines.append(f"| **{row['label']}** | {','.join(map(str, row['folds']))} of {t['n_folds']} | {seeds} "
                             f"| {_f(row['mean'])} | {best_cell} | {row['rank_among_anchors']} of "
                             f"{len(row['anchors_same_folds']) + 1} | {commit} | {machine} | {source} |")
        lines.append("")
    lines += ["Provenance: `commit` is the checkout each fold's run recorded (several when the folds ran over several "
              "commits); \"not recorded\" means the result folder holds no archived `env.json` (older reproductions, "
              "and `zoo report pgnet_compare` tables, whose run folders were not kept). A `?` seed was not recorded.", ""]
    return "\n".join(lines)


def plot(board: dict[str, Any], path: Path) -> None:
    """One panel per task: every ranked row as a point with its fold std; ours filled, anchors hollow."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    items = [(task, t) for task, t in board["tasks"].items() if t["ranked"]]
    if not items:
        return
    heights = [max(2.0, 0.28 * len(t["ranked"]) + 1.0) for _, t in items]
    fig, axes = plt.subplots(len(items), 1, figsize=(8, sum(heights)), gridspec_kw={"height_ratios": heights}, squeeze=False)
    style = {"ours": ("C0", "o", True), "published": ("0.35", "s", False), "floor": ("C3", "D", False)}
    for ax, (task, t) in zip(axes[:, 0], items):
        rows = t["ranked"]
        for y, row in enumerate(rows):
            color, marker, filled = style[row["kind"]]
            err = row["std"] if "std" in row else row["fold_std"]
            ax.errorbar(row["mean"], y, xerr=err, fmt=marker, color=color, mfc=color if filled else "none", capsize=2)
        ax.set_yticks(range(len(rows)), [r["label"] for r in rows], fontsize=7)
        ax.invert_yaxis()
        ax.set_xlabel(f"test {t['metric'].upper()} ({t['unit']}), mean ± fold std; lower is better", fontsize=8)
        ax.set_title(task, fontsize=9)
        ax.grid(axis="x", alpha=0.3)
    handles = [plt.Line2D([], [], color=c, marker=m, mfc=c if f else "none", ls="") for c, m, f in style.values()]
    fig.legend(handles, ["crystal-zoo (all folds)", "published (matbench)", "floor"], loc="upper right", fontsize=7)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)


def _rel(p: Path | None) -> str | None:
    if p is None:
        return None
    p = Path(p).resolve()
    try:
        return str(p.relative_to(RESULTS.parent))
    except ValueError:
        return str(p)


def add_input_arguments(p: argparse.ArgumentParser, out: Path, out_help: str) -> None:
    """The options of the reports built on ``collect``: the result folders, the anchors, the floors, --out."""
    p.add_argument("--results", type=Path, default=RESULTS, help="the result folders to read (default: results/)")
    p.add_argument("--anchors", type=Path, default=OUT / "anchors.json", help="published figures with their sources")
    p.add_argument("--floors", type=Path, default=RESULTS / "floors" / "floors.json", help="floors of the tensor tasks")
    p.add_argument("--out", type=Path, default=out, help=out_help)


def check_results_folder(path: Path) -> None:
    if not Path(path).is_dir():
        raise ReportError(f"--results {path} is not a folder; pass the folder that holds the result "
                          "folders (results/ of the checkout)")


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="zoo report leaderboard", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_input_arguments(p, OUT, "where README.md, leaderboard.json and leaderboard.png go")
    args = p.parse_args(argv)
    try:
        check_results_folder(args.results)
        board = leaderboard(args.results, args.anchors, args.floors)
    except ReportError as exc:
        print(f"zoo report leaderboard: {exc}", file=sys.stderr)
        return 2
    board = {"format": board["format"], "inputs": {"results": _rel(args.results), "anchors": _rel(args.anchors),
                                                   "floors": _rel(args.floors)}, "tasks": board["tasks"]}
    write_json(args.out / "leaderboard.json", board)
    write_text(args.out / "README.md", render(board))
    plot(board, args.out / "leaderboard.png")
    for task, t in board["tasks"].items():
        ours = sum(r["kind"] == "ours" for r in t["ranked"])
        print(f"{task}: {ours} ranked entries, {len(t['partial'])} on some folds, "
              f"{len(t['ranked']) - ours} anchors")
    print(f"wrote {args.out / 'README.md'}, leaderboard.json, leaderboard.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
