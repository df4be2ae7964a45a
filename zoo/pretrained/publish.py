"""Turn a finished run folder into a registry entry: ``python -m zoo.pretrained.publish RUN_DIR --tag TAG ...``.

What it writes (and nothing by hand):

- ``zoo/models/<family>/weights/<tag>.safetensors`` + ``<tag>.json``: the run's best pair, byte for byte
  (its sealed sidecar stays valid), the copy that ships with the package;
- the entry in ``zoo/models/<family>/pretrained.json``, its fields read from the run (config, featurisation,
  normalisation, task and version, metrics with their split, recipe, commit) and counted from the built
  model (parameters). A tag that exists is refused: a tag never changes meaning, a retrained model gets a
  new one;
- ``results/pretrained/<family.tag>/``: the evidence the model card is made from (the run's metrics,
  config, environment and the predictions of the split the metrics were measured on; with ``--cv`` the
  out-of-fold predictions and per-fold scores of a ``zoo reproduce`` result folder; with ``--cv-runs`` the
  per-fold test scores of separate ``zoo train`` runs of the same recipe, one folder per fold and seed).

An entry measured on a fold's test set also records the task's stronger floors on that fold
(``metrics.reference_floors``, from ``results/floors/floors.json`` when it holds the task's version).
"""
from __future__ import annotations

import argparse
import datetime as _dt
import gzip
import json
import os
import shutil
from pathlib import Path
from typing import Any

from zoo.core import weights
from zoo.core.io import atomic_path, sha256_file, write_json
from zoo.models import build, config_from_dict, get_family
from zoo.training import runs

from .fetch import PretrainedError
from .registry import (
    REGISTRY_FILE,
    REGISTRY_FORMAT,
    WEIGHTS_FOLDER,
    family_folder,
    read_family,
    reload,
)

# Where the project publishes weight files; a mirror replaces it with ZOO_BASE_URL (same <family>/<file> layout).
DEFAULT_BASE_URL = "https://github.com/crystal-zoo/crystal-zoo/releases/download/weights-v1"
RESULTS = Path("results") / "pretrained"
# The tasks' floors on every fold (``zoo report floors``): fitted on a fold's training data, scored on its test set.
FLOORS = Path("results") / "floors" / "floors.json"
# The floors an entry's card shows next to its own (the run's unsymmetrised training mean): the point-group
# symmetrised training mean and the element-linear ridge, the strongest floors of the tensor tasks.
REFERENCE_FLOORS = ("mean", "element_linear")
# Training options that do not change the weights (where files go, progress bars, local paths).
_NOT_RECIPE = ("out", "progress", "graph_cache", "data_dir", "device", "init_weights")


def count_parameters(family: str, config: dict[str, Any]) -> int:
    """Trainable parameters of the family's torch model built from ``config`` (the jax model declares the
    same names and shapes)."""
    model = build(family, "torch", config_from_dict(family, config))
    return int(sum(p.numel() for p in model.parameters() if p.requires_grad))


def _command(train: dict[str, Any], family: str) -> str:
    """The ``zoo train`` line that replays a run: every option that differs from TrainConfig's defaults,
    spelled out, and ``--recipe none``. ``zoo train`` applies the family's recipe of the day unless told
    not to, and recipes change (a new validated one replaces the old under the same name), so a replay
    that named the recipe, or none, would train a different model; the recipe's resolved fields are all
    among the flags. The recipe's name stays in the entry's ``recipe.train``.
    """
    from zoo.training import TrainConfig

    default = TrainConfig().to_dict()
    parts = ["zoo train", family, "--task", train["task"]]
    for key, value in train.items():
        if key in ("model", "task", "recipe", *_NOT_RECIPE) or value == default.get(key):
            continue
        if isinstance(value, dict):
            flag = "--set" if key == "model_overrides" else "--task-arg"
            parts += [f"{flag} '{k}={v if isinstance(v, str) else json.dumps(v)}'" for k, v in value.items()]
        elif isinstance(value, bool):
            parts.append("--" + key.replace("_", "-"))
        else:
            parts.append(f"--{key.replace('_', '-')} {value}")
    parts.append("--recipe none")
    return " ".join(parts)


def _cross_validation(folder: Path, task_name: str, data_dir: str | None, task_kwargs: dict[str, Any]) -> tuple[dict, list]:
    """(per-fold scores and their mean, out-of-fold rows [id, fold, y_true, y_pred]) of a results folder."""
    from zoo.training.data import build_task

    with gzip.open(folder / "results.json.gz", "rt") as fh:
        doc = json.load(fh)
    folds = doc["tasks"][task_name]["results"]
    scores = {name: rec["scores"] for name, rec in folds.items()}
    keys = sorted(next(iter(scores.values())))
    mean = {k: sum(s[k] for s in scores.values()) / len(scores) for k in keys}
    task = build_task(task_name, task_kwargs, data_dir)
    task.load()
    rows = []
    for k, name in enumerate(sorted(folds)):
        _, truth = task.get_test_data(k, include_target=True)
        for i, pred in folds[name]["data"].items():
            rows.append((i, k, float(truth[i]), float(pred)))
    info = json.loads((folder / "info.json").read_text())
    return {"source": str(folder), "algorithm": info.get("algorithm_long", ""), "folds": scores, "mean": mean}, rows


def _reference_floors(floors_path: Path, task: dict[str, Any], task_kwargs: dict[str, Any], fold: int) -> dict | None:
    """The ``REFERENCE_FLOORS`` of ``floors_path`` on the test set of ``fold``, for an entry measured there; None
    when the file holds no floors of this task version, or the entry's task has options (the floors are of the
    task's default data)."""
    if not floors_path.is_file() or task_kwargs:
        return None
    doc = json.loads(floors_path.read_text())
    record = doc.get("tasks", {}).get(task["name"])
    if record is None or str(record.get("version")) != str(task["version"]):
        return None
    floors = {name: record["floors"][name]["per_fold"][fold] for name in REFERENCE_FLOORS if name in record["floors"]}
    if not floors:
        return None
    return {"source": str(floors_path), "fold": fold, "floors": floors,
            "descriptions": {name: doc["floors"][name]["description"] for name in floors}}


# Training options a fold run may differ in from the published run and still be "the same recipe".
_NOT_SAME_RECIPE = (*_NOT_RECIPE, "fold", "seed", "full_data", "recipe", "jax_devices", "jax_padding", "dist_timeout_s")


def _cross_validation_runs(run_dirs: list[str], train: dict[str, Any]) -> dict:
    """Per-fold test scores of ``zoo train`` run folders made with the recipe of ``train`` (the published run's
    training options): per fold, the median over its seeds of each score. The folds must be those of the
    task (0 .. k-1, each at least once); a run with other training options is refused."""
    import statistics

    from zoo.training import TrainConfig

    default = TrainConfig().to_dict()
    by_fold: dict[int, list[tuple[int, dict]]] = {}
    for d in map(Path, run_dirs):
        metrics_path = d / "metrics.json"
        if not metrics_path.is_file():
            raise PretrainedError(f"--cv-runs {d}: no metrics.json (not a finished `zoo train` run folder)")
        metrics, run = json.loads(metrics_path.read_text()), runs.read_config(d)["train"]
        if "test" not in metrics:
            raise PretrainedError(f"--cv-runs {d}: no test scores (a --full-data run?); give runs of single folds")
        differ = sorted(k for k in set(train) | set(run) if k not in _NOT_SAME_RECIPE
                        and run.get(k, default.get(k)) != train.get(k, default.get(k)))
        if differ:
            raise PretrainedError(f"--cv-runs {d}: not the published run's recipe ("
                                  + ", ".join(f"{k}: {run.get(k, default.get(k))!r} != {train.get(k, default.get(k))!r}"
                                              for k in differ) + "); give runs of the same recipe")
        by_fold.setdefault(run["fold"], []).append((run["seed"], metrics["test"]))
    if sorted(by_fold) != list(range(len(by_fold))) or len(by_fold) < 2:
        raise PretrainedError(f"--cv-runs: folds {sorted(by_fold)} are not 0 .. k-1 (k >= 2); give one run or more per fold")
    # the scalar scores, and for a tensor task its Frobenius error and EwT25 (the tensor tasks' headline scores)
    keys = [k for k in ("mae", "rmse", "fnorm", "ewt25", "mape", "max_error") if all(k in m for rs in by_fold.values() for _, m in rs)]
    folds = {f"fold_{f}": {k: statistics.median(m[k] for _, m in rs) for k in keys} for f, rs in sorted(by_fold.items())}
    seeds = {f"fold_{f}": sorted(s for s, _ in rs) for f, rs in sorted(by_fold.items())}
    mean = {k: sum(s[k] for s in folds.values()) / len(folds) for k in keys}
    source = Path(os.path.commonpath([str(Path(d)) for d in run_dirs]))
    algorithm = (f"separate `zoo train` runs of this recipe, one per fold and seed (test set of each fold); per fold the "
                 f"median over its seeds of each score (seeds {', '.join(f'{f}: {s}' for f, s in seeds.items())})")
    return {"source": str(source), "algorithm": algorithm, "folds": folds, "mean": mean, "seeds": seeds}


def publish(run_dir: str | Path, tag: str, *, description: str, weights_license: str, data_license: str, data_citation: str,
            default: bool = False, cv: str | None = None, cv_runs: list[str] | None = None, data_dir: str | None = None,
            base_url: str = DEFAULT_BASE_URL, results: Path = RESULTS, floors: Path = FLOORS) -> str:
    """Publish the run's best weights as ``<family>.<tag>`` (module docstring); returns the entry name."""
    run_dir = Path(run_dir)
    if cv is not None and cv_runs:
        raise PretrainedError("give --cv (a `zoo reproduce` folder) or --cv-runs (`zoo train` run folders), not both")
    _, meta = weights.load(run_dir / "best")  # verified: sha256, size, seal
    config, metrics = runs.read_config(run_dir), json.loads((run_dir / "metrics.json").read_text())
    env = json.loads((run_dir / "env.json").read_text())
    family = meta["model"]
    folder = family_folder(family)
    registry_path = folder / REGISTRY_FILE
    # Checked before anything is written: a refused --cv-runs leaves no half-published entry.
    cv_fold_runs = _cross_validation_runs(cv_runs, config["train"]) if cv_runs else None
    existing = {e.tag: e for e in read_family(family)}
    if tag in existing:
        raise PretrainedError(f"{family}.{tag} is already published ({registry_path}); a tag never changes meaning: "
                              "publish the new weights under a new tag")
    files = {}
    for part, suffix in (("weights", ".safetensors"), ("sidecar", ".json")):
        src, dst = run_dir / f"best{suffix}", folder / WEIGHTS_FOLDER / f"{tag}{suffix}"
        with atomic_path(dst) as tmp:
            shutil.copyfile(src, tmp)
        files[part] = {"name": dst.name, "url": f"{base_url.rstrip('/')}/{family}/{dst.name}", "sha256": sha256_file(dst),
                       "size": dst.stat().st_size}
    split = "test" if "test" in metrics else "val"
    fold = config["task"].get("fold")
    full = config["train"].get("full_data", False)
    where = (f"test set of fold {fold}" if split == "test" else
             f"validation set ({'held out of all the data' if full else f'fold {fold}'}; it chose the best epoch)")
    name = f"{family}.{tag}"
    out = results / name
    # A full-data model's out-of-fold evidence is the cross-validation below; its own split is validation.
    measured = {"split": where, "n": metrics[split]["n"], "values": metrics[split], "floor": metrics["floor"][split],
                "best_epoch": metrics["best_epoch"], "epochs_run": metrics["epochs_run"]}
    reference = _reference_floors(Path(floors), config["task"], config["train"]["task_kwargs"], fold) if split == "test" else None
    if reference:
        measured["reference_floors"] = reference
    if cv is not None:
        measured["cross_validation"], rows = _cross_validation(Path(cv), config["task"]["name"], data_dir,
                                                               config["train"]["task_kwargs"])
        import pandas as pd

        with atomic_path(out / "predictions_cv.csv") as tmp:
            pd.DataFrame(rows, columns=["id", "fold", "y_true", "y_pred"]).to_csv(tmp, index=False, float_format="%.17g")
    if cv_runs:
        measured["cross_validation"] = cv_fold_runs
    fam = get_family(family)
    train = {k: v for k, v in config["train"].items() if k not in _NOT_RECIPE}
    entry = {
        "description": description,
        "files": files,
        "config": meta["config"],
        "featurization": meta["featurization"],
        "normalizer": meta["normalizer"],
        "task": {"name": config["task"]["name"], "version": config["task"]["version"], "kwargs": config["train"]["task_kwargs"],
                 "target": meta["target"], "fold": fold, "full_data": full},
        "metrics": measured,
        "recipe": {"command": _command(config["train"], family), "train": train, "loss": config["loss"]},
        "n_params": count_parameters(family, meta["config"]),
        "license": {"code": fam.license, "weights": weights_license, "data": data_license},
        "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d"),
        "citation": {"model": fam.citation, "data": data_citation},
        "run": {"id": run_dir.name, "git": env.get("git", {}), "device": env.get("device", ""),
                "time_s": metrics.get("time_s", {})},
    }
    for fname in ("metrics.json", "config.json", "env.json", f"predictions_{split}.csv"):
        with atomic_path(out / fname) as tmp:
            shutil.copyfile(run_dir / fname, tmp)
    doc = json.loads(registry_path.read_text()) if registry_path.exists() else {
        "format": REGISTRY_FORMAT, "family": family, "default": tag, "entries": {}}
    doc["entries"][tag] = entry
    if default:
        doc["default"] = tag
    write_json(registry_path, doc)
    reload()
    read_family(family)  # the file just written follows the schema
    return name


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m zoo.pretrained.publish", description=__doc__.splitlines()[0])
    p.add_argument("run_dir")
    p.add_argument("--tag", required=True, help="new tag (lowercase, digits, _), e.g. matbench_jdft2d_v1")
    p.add_argument("--description", required=True)
    p.add_argument("--weights-license", default="CC-BY-4.0")
    p.add_argument("--data-license", required=True, help="the training data's licence (its PROVENANCE.md)")
    p.add_argument("--data-citation", required=True)
    p.add_argument("--default", action="store_true", help="make it the family's default")
    p.add_argument("--cv", help="a `zoo reproduce` result folder with the 5-fold evaluation of this recipe")
    p.add_argument("--cv-runs", nargs="+", metavar="RUN_DIR",
                   help="instead of --cv: `zoo train` run folders of this recipe, one per fold (and seed), with test scores")
    p.add_argument("--data-dir", help="the task's data (for --cv's targets)")
    p.add_argument("--floors", default=str(FLOORS), help=f"the tasks' per-fold floors (default {FLOORS})")
    a = p.parse_args(argv)
    name = publish(a.run_dir, a.tag, description=a.description, weights_license=a.weights_license,
                   data_license=a.data_license, data_citation=a.data_citation, default=a.default, cv=a.cv,
                   cv_runs=a.cv_runs, data_dir=a.data_dir, floors=Path(a.floors))
    print(name)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
