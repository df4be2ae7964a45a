"""``zoo``: the command line of crystal-zoo.

    zoo list                                   models and tasks
    zoo train MODEL --task TASK --backend torch|jax [--fold K] [--epochs N] ...
    zoo train --resume RUN_DIR                 continue a killed run from its last checkpoint
    zoo evaluate RUN_DIR|WEIGHTS [--task TASK] [--fold K] [--backend B]
    zoo reproduce TASK --model MODEL --backend B [--seeds 0 1 2]   every fold -> results.json.gz + info.json
    zoo demo                                   the main job: CGCNN on the embedded dielectric task, both backends
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any, Sequence

log = logging.getLogger("zoo")

DEMO_TASK = "embedded_dielectric_iso"
DEMO_MODEL = "cgcnn"
# Sized so that `make demo` (data generation + 2 trainings + plots) ends well inside 10 minutes on 2
# CPU cores; see README "Results" for the measured times.
DEMO_EPOCHS = 40
# Peak learning rate of the demo, picked on fold 0's VALIDATION MAE (torch, 40 epochs) among 3e-4, 1e-3
# and 3e-3 (also tried at 1e-3: weight decay 0.01, batch 32); the test set played no part.
DEMO_LR = 3e-3
DEMO_MODEL_OVERRIDES: dict[str, Any] = {}


class CLIError(Exception):
    """A user error: printed without a traceback, exit status 2."""


# ------------------------------------------------------------------------------------------ parsing
def _value(text: str) -> Any:
    """'3' -> 3, '0.5' -> 0.5, 'true' -> True, 'none' -> None, '[1,2]' -> [1, 2], else the string."""
    low = text.strip().lower()
    if low in ("none", "null"):
        return None
    if low in ("true", "false"):
        return low == "true"
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _pairs(items: Sequence[str] | None, what: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items or ():
        if "=" not in item:
            raise CLIError(f"{what} expects KEY=VALUE, got {item!r} (e.g. {what} n_conv=4)")
        k, v = item.split("=", 1)
        out[k.strip().replace("-", "_")] = _value(v)
    return out


def _add_training_options(p: argparse.ArgumentParser, defaults) -> None:
    p.add_argument("--epochs", type=int, default=None, help=f"training epochs (default {defaults.epochs})")
    p.add_argument("--batch-size", type=int, default=None, help=f"graphs per batch (default {defaults.batch_size})")
    p.add_argument("--lr", type=float, default=None, help=f"peak learning rate (default {defaults.lr})")
    p.add_argument("--weight-decay", type=float, default=None, help="AdamW decoupled weight decay (default 0)")
    p.add_argument("--optimizer", choices=("adam", "adamw"), default=None)
    p.add_argument("--schedule", choices=("cosine", "plateau", "constant"), default=None,
                   help="LR schedule (default cosine with 1 warm-up epoch)")
    p.add_argument("--patience", type=int, default=None, help=f"early stopping patience in epochs, 0 = off (default {defaults.patience})")
    p.add_argument("--dtype", choices=("float32", "float64"), default=None)
    p.add_argument("--device", default=None, help="torch device (cpu, cuda); jax uses its default device")
    p.add_argument("--out", default=None, help="folder that receives the run folders (default runs/)")
    p.add_argument("--data-dir", default=None, help="folder with local data files (matbench: <task>.json.gz; also MATMINER_DATA)")
    p.add_argument("--set", dest="model_set", action="append", metavar="KEY=VALUE", help="model hyper-parameter, e.g. --set n_conv=4")
    p.add_argument("--task-arg", action="append", metavar="KEY=VALUE", help="task option, e.g. --task-arg n_crystals=300")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def _config_from_args(args, **fixed):
    from zoo.training import TrainConfig

    kw: dict[str, Any] = dict(fixed)
    for name in ("epochs", "batch_size", "lr", "weight_decay", "optimizer", "schedule", "patience", "dtype", "device", "out", "data_dir"):
        v = getattr(args, name, None)
        if v is not None:
            kw[name] = v
    kw["model_overrides"] = _pairs(getattr(args, "model_set", None), "--set")
    kw["task_kwargs"] = _pairs(getattr(args, "task_arg", None), "--task-arg")
    kw["progress"] = not getattr(args, "no_progress", False)
    try:
        return TrainConfig(**kw)
    except (TypeError, ValueError) as exc:
        raise CLIError(str(exc)) from None


def build_parser() -> argparse.ArgumentParser:
    from zoo.training import TrainConfig

    d = TrainConfig()
    parser = argparse.ArgumentParser(prog="zoo", description="crystal-zoo: train, evaluate and benchmark crystal property models (PyTorch + JAX)")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("list", help="list the models and tasks")
    p.add_argument("--json", action="store_true", help="machine-readable output")

    p = sub.add_parser("train", help="train a model on one fold of a task (writes a run folder)")
    p.add_argument("model", nargs="?", help="model name (zoo list)")
    p.add_argument("--task", default=None, help=f"task name (default {d.task})")
    p.add_argument("--backend", choices=("torch", "jax"), default=None, help="default torch")
    p.add_argument("--fold", type=int, default=None, help="fold number (default 0)")
    p.add_argument("--seed", type=int, default=None, help="seed of init, shuffling and dropout (default 0)")
    p.add_argument("--resume", default=None, metavar="RUN_DIR", help="continue this run folder from its last checkpoint")
    _add_training_options(p, d)

    p = sub.add_parser("evaluate", help="score saved weights (a run folder or a .safetensors file) on a task fold")
    p.add_argument("path", help="run folder (its best weights) or weights file (.safetensors/.json stem)")
    p.add_argument("--task", default=None, help="task (default: the one the weights were trained on)")
    p.add_argument("--fold", type=int, default=None, help="fold (default: the one trained on)")
    p.add_argument("--backend", choices=("torch", "jax"), default="torch")
    p.add_argument("--split", choices=("test", "train"), default="test", help="test set, or the fold's train+validation data")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--no-progress", action="store_true")

    p = sub.add_parser("reproduce", help="train on every fold (per seed) and write the matbench results.json.gz + info.json")
    p.add_argument("task", help="task name, e.g. matbench_jdft2d")
    p.add_argument("--model", required=True)
    p.add_argument("--backend", choices=("torch", "jax"), required=True)
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--folds", type=int, nargs="+", default=None, help="only these folds (no submission is written then)")
    p.add_argument("--results", default="results", help="root of the results tree (default results/)")
    _add_training_options(p, d)

    p = sub.add_parser("demo", help=f"main job: {DEMO_MODEL} on {DEMO_TASK} fold 0, torch and jax, with plots")
    p.add_argument("--epochs", type=int, default=DEMO_EPOCHS)
    p.add_argument("--backends", nargs="+", choices=("torch", "jax"), default=["torch", "jax"])
    p.add_argument("--out", default="runs")
    p.add_argument("--task-arg", action="append", metavar="KEY=VALUE", help="task option, e.g. --task-arg n_crystals=300")
    p.add_argument("--no-progress", action="store_true")
    return parser


# ------------------------------------------------------------------------------------------ output
def _fmt(x: Any) -> str:
    if isinstance(x, float):
        return f"{x:.4g}"
    return str(x)


def _metric_table(summary: dict[str, Any], unit: str = "") -> str:
    test, floor = summary.get("test") or summary.get("val", {}), summary.get("floor", {})
    which = "test" if summary.get("test") else "val"
    base = floor.get(which, {})
    keys = [k for k in ("mae", "rmse", "r2", "max_error", "fnorm", "ewt25", "accuracy", "rocauc", "log_loss") if k in test]
    keys += [k for k in test if k not in keys and k != "n" and isinstance(test[k], (int, float))][: max(0, 8 - len(keys))]
    lines = [f"  {which} set (n={test.get('n', '?')}):  {'metric':<18}{'model':>12}{'floor':>12}"]
    for k in keys:
        lines.append(f"  {'':{len(which) + 14}}{k:<18}{_fmt(test[k]):>12}{_fmt(base.get(k, float('nan'))):>12}")
    lines.append(f"  (floor = always predict the training mean{'; units: ' + unit if unit else ''})")
    return "\n".join(lines)


def _print_result(res, unit: str = "") -> None:
    s = res.summary
    print(f"\n{s['model']} ({s['backend']}) on {s['task']} fold {s['fold']}: best epoch {s['best_epoch']} of {s['epochs_run']}"
          f"{' (early stop)' if s.get('stopped_early') else ''}, {s.get('time_s', {}).get('train', float('nan')):.1f} s training")
    print(_metric_table(s, unit))
    print(f"  run folder: {res.run_dir}")
    for p in s.get("plots", []):
        print(f"  plot: {Path(res.run_dir) / p}")


# ------------------------------------------------------------------------------------------ commands
def cmd_list(args) -> int:
    from zoo import tasks
    from zoo.models import get_family, list_models

    models = {m: {"outputs": list(get_family(m).outputs), "backends": sorted(get_family(m).backends), "description": get_family(m).description}
              for m in list_models()}
    task_names = tasks.list()
    specs = {t: tasks.spec(t) for t in task_names}
    if args.json:
        print(json.dumps({
            "models": models,
            "tasks": {t: {"version": s.version, "target": s.target.name, "kind": s.target.kind, "shape": list(s.target.shape),
                          "unit": s.target.unit, "folds": s.n_folds if s.split == "kfold" else 1} for t, s in specs.items()},
        }, indent=2))
        return 0
    print("models:")
    for m, e in models.items():
        print(f"  {m:<12} {'/'.join(e['backends']):<10} outputs: {', '.join(e['outputs']):<22} {e['description']}")
    print("tasks:")
    for t, s in specs.items():
        shape = f"{s.target.kind}" + (f" {'x'.join(map(str, s.target.shape))}" if s.target.shape else "")
        print(f"  {t:<34} {shape:<16} {s.target.unit:<14} {s.version}")
    return 0


def cmd_train(args) -> int:
    from zoo.training import train

    if args.resume:
        if args.model or args.task:
            raise CLIError("--resume continues a run with its own model and task: give only the run folder (and optionally --epochs)")
        res = train(resume=args.resume, epochs=args.epochs)
    else:
        if not args.model:
            raise CLIError("name a model (zoo list), e.g. `zoo train cgcnn --task embedded_dielectric_iso`")
        fixed: dict[str, Any] = {"model": args.model}
        for name in ("task", "backend", "fold", "seed"):
            v = getattr(args, name)
            if v is not None:
                fixed[name] = v
        res = train(_config_from_args(args, **fixed))
    _print_result(res, _unit(res.summary["task"]))
    return 0


def _unit(task_name: str) -> str:
    try:
        from zoo import tasks

        spec = tasks.spec(task_name)
    except KeyError:  # a task object that is not registered: the unit is only decoration
        return ""
    return spec.target.unit or spec.extra.get("unit_note", "")


def cmd_evaluate(args) -> int:
    from zoo.training import evaluate

    result = evaluate(args.path, task=args.task, fold=args.fold, backend=args.backend, data_dir=args.data_dir,
                      split=args.split, progress=not args.no_progress)
    print(json.dumps(result, indent=2, default=str))
    return 0


def results_dir(root: str | os.PathLike, task, model: str, backend: str, seed: int, seeds: Sequence[int]) -> Path:
    version = task.spec.version if task.spec.version == "matbench_v0.1" else "crystal-zoo"
    name = f"{model}-{backend}" + (f"-seed{seed}" if (len(seeds) > 1 or seed != 0) else "")
    return Path(root) / version / task.spec.name / name


def cmd_reproduce(args) -> int:
    from zoo import tasks
    from zoo.core.io import write_json
    from zoo.training import TrainConfig, train
    from zoo.training import runs as run_files

    base = _config_from_args(args, model=args.model, backend=args.backend, task=args.task)
    if len(set(args.seeds)) != len(args.seeds):
        raise CLIError(f"--seeds has duplicates: {args.seeds}")
    for seed in args.seeds:
        task = tasks.get(args.task, **({"data_dir": base.data_dir} if base.data_dir else {}), **base.task_kwargs)
        folds = list(task.folds) if args.folds is None else args.folds
        out = results_dir(args.results, task, args.model, args.backend, seed, args.seeds)
        if (out / "results.json.gz").exists():
            raise CLIError(f"{out}/results.json.gz already exists; results are never overwritten. Move it away, or pick other --seeds.")
        cfg = TrainConfig.from_dict({**base.to_dict(), "seed": seed})
        progress_path = out / "progress.json"
        progress = json.loads(progress_path.read_text()) if progress_path.exists() else {"config": cfg.to_dict(), "runs": {}}
        keep = {k: v for k, v in cfg.to_dict().items() if k not in ("fold", "progress", "data_dir")}
        old = {k: v for k, v in progress["config"].items() if k not in ("fold", "progress", "data_dir")}
        if old != keep:
            raise CLIError(f"{out} holds an unfinished reproduction with other settings "
                           f"({sorted(k for k in keep if keep[k] != old.get(k))} differ); move it away or use the same options")
        print(f"== {args.task}: {args.model} ({args.backend}), seed {seed}, folds {folds} -> {out}")
        for fold in folds:
            run_dir = progress["runs"].get(str(fold))
            if run_dir and (Path(run_dir) / "metrics.json").exists():
                print(f"   fold {fold}: done earlier in {run_dir}")
            elif run_dir and run_files.latest_checkpoint(run_dir) is not None:
                print(f"   fold {fold}: resuming {run_dir}")
                train(resume=run_dir, task=task)
            else:
                res = train(TrainConfig.from_dict({**cfg.to_dict(), "fold": fold}), task=task,
                            on_start=lambda run_dir, f=fold: _note_run(progress_path, progress, f, run_dir))
                run_dir = str(res.run_dir)
            progress["runs"][str(fold)] = str(run_dir)
            write_json(progress_path, progress)
            summary = json.loads((Path(run_dir) / "metrics.json").read_text())
            print(f"   fold {fold}: " + ", ".join(f"{k} {_fmt(v)}" for k, v in summary.get("test", {}).items() if k in ("mae", "rmse", "rocauc", "fnorm")))
        if args.folds is not None and set(folds) != set(task.folds):
            print(f"   only folds {folds}: no submission written (all of {list(task.folds)} are needed)")
            continue
        _write_results(task, out, progress, args, cfg)
    return 0


def _note_run(path: Path, progress: dict, fold: int, run_dir: Path) -> None:
    """Remember a fold's run folder as soon as it exists, so a killed reproduction resumes it."""
    from zoo.core.io import write_json

    progress["runs"][str(fold)] = str(run_dir)
    write_json(path, progress)


def archive_runs(out: Path, progress: dict) -> None:
    """Keep each fold's provenance next to the submission (run folders live in runs/, outside git):
    resolved config, environment (seeds, package versions, git commit, device) and metrics."""
    from zoo.core.io import write_text

    for fold, run_dir in sorted(progress["runs"].items()):
        for name in ("config.json", "env.json", "metrics.json"):
            src = Path(run_dir) / name
            if src.exists():
                write_text(out / "runs" / f"fold_{fold}" / name, src.read_text())


def _write_results(task, out: Path, progress: dict, args, cfg) -> None:
    import numpy as np

    from zoo.core.io import write_json
    from zoo.models import get_family
    from zoo.training import runs as run_files

    for fold in task.folds:
        run_dir = Path(progress["runs"][str(fold)])
        preds = run_files.read_predictions(run_dir / "predictions_test.csv", shape=task.spec.target.shape)
        inputs = task.get_test_data(fold, include_target=False)
        want = [str(i) for i in (inputs.index if hasattr(inputs, "index") else range(len(inputs)))]
        if preds["id"] != want:
            raise CLIError(f"{run_dir}/predictions_test.csv does not list fold {fold}'s test ids in the task's order")
        y = preds["y_pred"]
        values = [float(v) for v in y] if task.spec.target.kind != "tensor" else [np.asarray(v) for v in y]
        n_failed = int(sum(bool(v) for v in preds.get("graph_failed", [])))
        params = {"run": run_dir.name, "seed": cfg.seed, "backend": cfg.backend, "epochs": cfg.epochs,
                  "graph_failures_predicted_with_training_mean": n_failed}
        task.record(fold, values if task.spec.target.kind != "tensor" else np.stack(values), params=params)
    info = {
        "authors": "crystal-zoo",
        "algorithm": f"{cfg.model}-{cfg.backend}",
        "algorithm_long": (f"crystal-zoo {cfg.model} trained with the {cfg.backend} backend: {cfg.optimizer}, lr {cfg.lr}, "
                           f"{cfg.schedule} schedule, batch {cfg.batch_size}, up to {cfg.epochs} epochs, early stopping "
                           f"(patience {cfg.patience}) on a seeded {int(cfg.val_fraction * 100)} % validation split of each "
                           f"fold's training data, seed {cfg.seed}, {cfg.dtype}. Model options: {cfg.model_overrides or 'defaults'}."),
        "bibtex_refs": get_family(cfg.model).citation,
        "notes": f"Run folders: {', '.join(Path(progress['runs'][str(f)]).name for f in task.folds)}",
    }
    if task.spec.version == "matbench_v0.1":
        from zoo.tasks.matbench import write_submission

        paths = write_submission(task, out, info)
    else:
        task.to_file(out / "results.json.gz")
        write_json(out / "info.json", info)
        paths = {"results": out / "results.json.gz", "info": out / "info.json"}
    archive_runs(out, progress)
    scores = task.scores
    print(f"   scores over folds: " + ", ".join(f"{k} {v['mean']:.4g} ± {v['std']:.2g}" for k, v in scores.items()
                                            if k in ("mae", "rmse", "rocauc", "fnorm", "accuracy")))
    print(f"   wrote {paths['results']} and {paths['info']}")





def cmd_demo(args) -> int:
    from zoo.training import TrainConfig, train

    t0 = time.perf_counter()
    from zoo import tasks

    print(f"crystal-zoo demo: {DEMO_MODEL} on {DEMO_TASK} (fold 0), backends {', '.join(args.backends)}, {args.epochs} epochs each.")
    print("The data set is generated on this machine (no network); the first run builds and caches it.")
    task_kwargs = _pairs(args.task_arg, "--task-arg")
    task = tasks.get(DEMO_TASK, **task_kwargs)
    results = []
    for backend in args.backends:
        cfg = TrainConfig(model=DEMO_MODEL, task=DEMO_TASK, backend=backend, fold=0, epochs=args.epochs, lr=DEMO_LR,
                          patience=0, out=args.out, progress=not args.no_progress, model_overrides=dict(DEMO_MODEL_OVERRIDES),
                          task_kwargs=task_kwargs)
        res = train(cfg, task=task)
        results.append(res)
        _print_result(res, task.spec.target.unit or task.spec.extra.get("unit_note", ""))
    if len(results) == 2:
        a, b = (r.summary.get("test", {}).get("mae") for r in results)
        print(f"\ntest MAE: torch {_fmt(a)} vs jax {_fmt(b)} (independent inits and float32 arithmetic: close, not equal)")
    print(f"\ndemo finished in {time.perf_counter() - t0:.0f} s")
    return 0


COMMANDS = {"list": cmd_list, "train": cmd_train, "evaluate": cmd_evaluate, "reproduce": cmd_reproduce, "demo": cmd_demo}


def _calm_openmp() -> None:
    """Let idle OpenMP threads sleep instead of spin (unless the user chose otherwise).

    PyTorch's CPU kernels use OpenMP, whose threads spin-wait at every barrier by default. When any
    other process also wants the cores, a spinning thread holds a core its partner needs, and a
    CGCNN epoch became >10x slower on a 2-core machine with one other busy process (44 s vs 1.4 s
    per epoch with OMP_WAIT_POLICY=PASSIVE, same run). libgomp reads the variable when torch loads,
    which has not happened yet here: the commands import torch lazily.
    """
    if "torch" not in sys.modules:
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def main(argv: Sequence[str] | None = None) -> int:
    _calm_openmp()
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        return COMMANDS[args.command](args)
    except CLIError as exc:
        print(f"zoo {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except (KeyError, ValueError, FileNotFoundError, RuntimeError) as exc:
        if args.verbose:
            raise
        msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"zoo {args.command}: error: {msg}\n(run with -v for the traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
