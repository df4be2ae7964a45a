"""``zoo``: the command line of crystal-zoo.

    zoo list                                   models and tasks
    zoo train MODEL --task TASK --backend torch|jax [--fold K] [--epochs N] ...
    zoo train --resume RUN_DIR                 continue a killed run from its last checkpoint
    zoo evaluate RUN_DIR|WEIGHTS [--task TASK] [--fold K] [--backend B]
    zoo reproduce TASK --model MODEL --backend B [--seeds 0 1 2]   every fold -> results.json.gz + info.json
    zoo tune MODEL --task TASK --grid lr=1e-3,5e-3 loss=mse,l1     recipe search on validation folds (zoo.training.tune)
    zoo demo                                   the main job: CGCNN on the embedded dielectric task, both backends
    zoo report [NAME [ARGS...]]                a report of zoo.reports (no NAME: list them)
    zoo list --pretrained                      the pretrained models (zoo.pretrained)
    zoo download NAME... | --all               fetch and verify pretrained weights into ZOO_HOME
    zoo predict NAME file.cif ... [--backend B]   predictions of a pretrained model, in the task's units
    zoo bench [gate] [...]                     every family x backend, one table | the performance gate

``train``, ``reproduce`` and ``tune`` start from the model family's recipe for the task's kind
(``zoo.training.recipes``; ``--recipe none`` switches it off); the flags given override it.

The training options of ``train`` and ``reproduce`` are not written here: each is a field of
``zoo.training.TrainConfig`` (its flag, type, choices and help come from the field), so a new option is
one new field. The commands only parse, call ``zoo.training`` and print.

Errors: every error a user can make ends the command with ONE line on stderr, ``zoo CMD: error: what,
which input, how to fix``, and a non-zero exit status (2: options that cannot work; 1: anything else,
e.g. data, files, a locked run folder, a full disk; 130: interrupted). ``--debug`` shows the traceback
instead. An error that is not a user error (a bug) is still one line, marked as such.
"""
from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import logging
import os
import pkgutil
import sys
import time
import typing
from pathlib import Path
from typing import Any, Literal, Sequence

from zoo import reports, tasks
from zoo.core.io import DISK_FULL
from zoo.models import get_family, list_models
from zoo.training import TrainConfig, UsageError, evaluate, reproduce, train
from zoo.training.adapter import check_backend
from zoo.training.config import field_types, parse_value
from zoo.training.data import build_task

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
def _pairs(items: Sequence[str] | None, what: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items or ():
        if "=" not in item:
            raise CLIError(f"{what} expects KEY=VALUE, got {item!r} (e.g. {what} n_conv=4)")
        k, v = item.split("=", 1)
        out[k.strip().replace("-", "_")] = parse_value(v)
    return out


def _flag(f: dataclasses.Field) -> str:
    return f.metadata.get("flag", "--" + f.name.replace("_", "-"))


def _value_type(annotation) -> type:
    """What argparse converts a flag's text to: ``int | None`` -> int, ``Literal["a", "b"]`` -> str."""
    origin = typing.get_origin(annotation)
    if origin is Literal:
        return type(typing.get_args(annotation)[0])
    if origin is not None:  # X | None, dict[str, Any]
        return origin if origin is dict else next(a for a in typing.get_args(annotation) if a is not type(None))
    return annotation


def add_config_options(p: argparse.ArgumentParser, *, exclude: Sequence[str] = (), required: Sequence[str] = (),
                       only: Sequence[str] | None = None) -> None:
    """One flag per ``TrainConfig`` field (see ``zoo.training.config``). Every flag defaults to None, so
    the config's own default applies to whatever the user did not set (``config_from_args``)."""
    types = field_types()
    for f in dataclasses.fields(TrainConfig):
        if f.name in exclude or (only is not None and f.name not in only):
            continue
        kind, text = _value_type(types[f.name]), f.metadata["help"]
        if kind is bool:  # a switch that turns the default (True) off, e.g. --no-progress
            p.add_argument(_flag(f), dest=f.name, action="store_const", const=not f.default, default=None, help=text)
        elif kind is dict:
            p.add_argument(_flag(f), dest=f.name, action="append", metavar="KEY=VALUE", help=text)
        else:
            choices = typing.get_args(types[f.name]) if typing.get_origin(types[f.name]) is Literal else None
            if f.default is not None and f.name not in required:
                text += f" (default {f.default})"
            p.add_argument(_flag(f), dest=f.name, type=kind, choices=choices, default=None, required=f.name in required, help=text)


def explicit_options(args: argparse.Namespace) -> dict[str, Any]:
    """``{field: value}`` of the ``TrainConfig`` fields the user set (positional arguments named like a field too)."""
    kw: dict[str, Any] = {}
    for f in dataclasses.fields(TrainConfig):
        value = getattr(args, f.name, None)
        if value is None:
            continue
        kw[f.name] = _pairs(value, _flag(f)) if _value_type(field_types()[f.name]) is dict else value
    return kw


def config_from_args(args: argparse.Namespace, *, recipe: str = "none", **fixed: Any) -> TrainConfig:
    """The ``TrainConfig`` of parsed arguments: the fields the user set (positional arguments named like
    a field count too), ``fixed`` on top, then the family's recipe (``--recipe``, else ``recipe``: "auto"
    for the task's kind, "none"; ``zoo.training.recipes``), the config's defaults for the rest."""
    kw = {**explicit_options(args), **fixed}
    from zoo.training import recipes

    try:
        return recipes.resolve(kw, kw.pop("recipe", None) or recipe)
    except (TypeError, ValueError) as exc:
        raise CLIError(str(exc)) from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="zoo", description="crystal-zoo: train, evaluate and benchmark crystal property models (PyTorch + JAX)")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("--debug", action="store_true", help="on an error, show the traceback instead of one line")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("list", help="list the models and tasks")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--pretrained", action="store_true", help="list the pretrained models instead (zoo predict / zoo download NAME)")

    p = sub.add_parser("train", help="train a model on one fold of a task (writes a run folder)")
    p.add_argument("model", nargs="?", help="model name (zoo list)")
    p.add_argument("--resume", default=None, metavar="RUN_DIR", help="continue this run folder from its last checkpoint")
    add_config_options(p, exclude=("model",))

    p = sub.add_parser("evaluate", help="score saved weights (a run folder or a .safetensors file) on a task fold")
    p.add_argument("path", help="run folder (its best weights) or weights file (.safetensors/.json stem)")
    p.add_argument("--task", default=None, help="task (default: the one the weights were trained on)")
    p.add_argument("--fold", type=int, default=None, help="fold (default: the one trained on)")
    p.add_argument("--backend", choices=typing.get_args(field_types()["backend"]), default="torch")
    p.add_argument("--split", choices=("test", "train"), default="test", help="test set, or the fold's train+validation data")
    p.add_argument("--allow-other-task", action="store_true",
                   help="score on a task other than the one trained on (another property, even in the same units)")
    p.add_argument("--allow-other-data", action="store_true",
                   help="score on data other than those recorded with the weights (other task options, files or fold)")
    add_config_options(p, only=("data_dir", "progress", "task_kwargs"))

    p = sub.add_parser("reproduce", help="train on every fold (per seed) and write the matbench results.json.gz + info.json")
    p.add_argument("task", help="task name, e.g. matbench_jdft2d")
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--folds", type=int, nargs="+", default=None, help="only these folds (no submission is written then)")
    p.add_argument("--results", default="results", help="root of the results tree (default results/)")
    add_config_options(p, exclude=("task", "fold", "seed"), required=("model", "backend"))

    p = sub.add_parser("tune", help="grid search of a family's training recipe on validation folds (never the test split)")
    p.add_argument("model", help="model family (zoo list)")
    p.add_argument("--grid", nargs="+", required=True, metavar="KEY=V1,V2",
                   help="values to search, e.g. lr=1e-3,5e-3 loss=mse,l1 set.n_layers=2,3 (recipe options; set.KEY: model)")
    p.add_argument("--folds", type=int, nargs="+", default=[0], help="folds whose validation split scores (default 0)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0], help="seeds per fold (default 0); ranked by the median")
    p.add_argument("--budget-minutes", type=float, default=None, help="start no run after this many minutes")
    p.add_argument("--write", action="store_true", help="write the best recipe into the family's recipes.json")
    p.add_argument("--out", dest="tune_out", default="runs/tune", help="root of the search folders (default runs/tune); a search called "
                   "again there skips finished runs")
    add_config_options(p, exclude=("model", "fold", "seed", "out"))

    p = sub.add_parser("demo", help=f"main job: {DEMO_MODEL} on {DEMO_TASK} fold 0, torch and jax, with plots")
    p.add_argument("--epochs", type=int, default=DEMO_EPOCHS, help=f"training epochs (default {DEMO_EPOCHS})")
    p.add_argument("--backends", nargs="+", choices=typing.get_args(field_types()["backend"]), default=["torch", "jax"])
    add_config_options(p, only=("out", "task_kwargs", "progress"))

    p = sub.add_parser("report", help="run a report of zoo.reports: zoo report NAME [ARGS...] (no NAME: list them)")
    p.add_argument("name", nargs="?", help="report name (zoo report lists them)")
    p.add_argument("args", nargs=argparse.REMAINDER, help="the report's own arguments (zoo report NAME --help)")

    # prefix_chars="+": every argument after `bench`, options included, goes to zoo.bench's own parser
    p = sub.add_parser("bench", add_help=False, prefix_chars="+", help="main job: every family x backend on the embedded tasks, one table "
                       "(zoo bench --help); zoo bench gate: the performance gate")
    p.add_argument("args", nargs=argparse.REMAINDER, help="zoo bench's own arguments (zoo bench --help, zoo bench gate --help)")

    p = sub.add_parser("download", help="fetch and verify pretrained weights into ZOO_HOME (zoo list --pretrained)")
    p.add_argument("names", nargs="*", help="pretrained names (family.tag, or a family for its default)")
    p.add_argument("--all", action="store_true", help="every pretrained model")
    p = sub.add_parser("predict", help="predict with a pretrained model: zoo predict NAME file.cif ...")
    p.add_argument("name", help="pretrained name (family.tag, or a family for its default; zoo list --pretrained)")
    p.add_argument("files", nargs="+", help="structure files (CIF, or anything pymatgen reads)")
    p.add_argument("--backend", choices=typing.get_args(field_types()["backend"]), default="torch")
    p.add_argument("--dtype", choices=typing.get_args(field_types()["dtype"]), default=None, help="default: the training one")
    p.add_argument("--json", action="store_true", help="machine-readable output")
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
    if args.pretrained:
        return _list_pretrained(args)
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
    if args.resume:
        # Any other option would be silently ignored (the run keeps the options it started with): refuse it.
        given = [_flag(f) for f in dataclasses.fields(TrainConfig)
                 if f.name not in ("epochs", "progress") and getattr(args, f.name, None) not in (None, [])]
        if args.model or given:
            raise CLIError("--resume continues a run with its own options: give only the run folder (and optionally "
                           f"--epochs), not {['model'] if args.model else given}")
        res = train(resume=args.resume, epochs=args.epochs)
    else:
        if not args.model:
            raise CLIError("name a model (zoo list), e.g. `zoo train cgcnn --task embedded_dielectric_iso`")
        _check_names(args.model, args.task)
        config = config_from_args(args, recipe="auto")
        _print_recipe(config)
        res = train(config)
    _print_result(res, _unit(res.summary["task"]))
    return 0


def _print_recipe(config: TrainConfig) -> None:
    from zoo.training import recipes

    if config.recipe is not None:
        values = ", ".join(f"{k}={v}" for k, v in recipes.applied(config).items())
        print(f"recipe {config.recipe} ({values}); flags given here override it, --recipe none switches it off")


def _unit(task_name: str) -> str:
    try:
        spec = tasks.spec(task_name)
    except KeyError:  # a task object that is not registered: the unit is only decoration
        return ""
    return spec.target.unit or spec.extra.get("unit_note", "")


def _check_names(model: str | None, task: str | None) -> None:
    """An unknown model or task name is an option that cannot work (exit 2), refused with a did-you-mean
    before anything is loaded."""
    try:
        if model:
            get_family(model)
        if task:
            tasks.spec(task)
    except KeyError as exc:
        raise CLIError(error_line(exc)) from None


def cmd_evaluate(args) -> int:
    _check_names(None, args.task)
    result = evaluate(args.path, task=args.task, fold=args.fold, backend=args.backend, data_dir=args.data_dir,
                      split=args.split, progress=args.progress is not False,
                      task_kwargs=_pairs(args.task_kwargs, "--task-arg") or None,
                      allow_other_task=args.allow_other_task, allow_other_data=args.allow_other_data)
    print(json.dumps(result, indent=2, default=str))
    return 0


def cmd_reproduce(args) -> int:
    _check_names(args.model, args.task)
    config = config_from_args(args, recipe="auto")
    _print_recipe(config)
    reproduce(config, seeds=args.seeds, folds=args.folds, results=args.results)
    return 0


def cmd_tune(args) -> int:
    from zoo.training import tune

    _check_names(args.model, args.task)
    base = explicit_options(args)
    recipe = base.pop("recipe", None) or "auto"
    tune.tune(base, tune.parse_grid(args.grid), folds=args.folds, seeds=args.seeds, out=args.tune_out, recipe=recipe,
              budget_minutes=args.budget_minutes, command=" ".join(["zoo", *args.argv]), write=args.write)
    return 0


def cmd_demo(args) -> int:
    t0 = time.perf_counter()
    print(f"crystal-zoo demo: {DEMO_MODEL} on {DEMO_TASK} (fold 0), backends {', '.join(args.backends)}, {args.epochs} epochs each.")
    print("The data set is generated on this machine (no network); the first run builds and caches it.")
    base = config_from_args(args, model=DEMO_MODEL, task=DEMO_TASK, fold=0, lr=DEMO_LR, patience=0,
                            model_overrides=dict(DEMO_MODEL_OVERRIDES))
    for backend in args.backends:  # a backend that is not installed is refused before the data are made
        check_backend(backend, None)
    task = build_task(DEMO_TASK, base.task_kwargs)
    results = []
    for backend in args.backends:
        res = train(dataclasses.replace(base, backend=backend), task=task)
        results.append(res)
        _print_result(res, task.spec.target.unit or task.spec.extra.get("unit_note", ""))
    if len(results) == 2:
        a, b = (r.summary.get("test", {}).get("mae") for r in results)
        print(f"\ntest MAE: torch {_fmt(a)} vs jax {_fmt(b)} (independent inits and float32 arithmetic: close, not equal)")
    print(f"\ndemo finished in {time.perf_counter() - t0:.0f} s")
    return 0


def report_modules() -> dict[str, Any]:
    """``{name: module}`` of every module of ``zoo.reports`` that defines ``main(argv)`` (found by
    pkgutil, so a new report is its module and nothing else)."""
    found = {}
    for info in pkgutil.iter_modules(reports.__path__):
        module = importlib.import_module(f"{reports.__name__}.{info.name}")
        if callable(getattr(module, "main", None)):
            found[info.name] = module
    return found


def cmd_report(args) -> int:
    if args.name is None:
        print("reports (zoo report NAME --help):")
        for name, module in report_modules().items():
            doc = (module.__doc__ or "").strip()
            print(f"  {name:<22} {doc.splitlines()[0] if doc else ''}")
        return 0
    names = [m.name for m in pkgutil.iter_modules(reports.__path__)]
    if args.name not in names:
        raise CLIError(f"no report {args.name!r}; choose one of {sorted(report_modules())}")
    module = importlib.import_module(f"{reports.__name__}.{args.name}")
    if not callable(getattr(module, "main", None)):
        raise CLIError(f"{module.__name__} is not a report (it has no main); choose one of {sorted(report_modules())}")
    return int(module.main(list(args.args)) or 0)


def cmd_bench(args) -> int:
    """``zoo bench [...]`` runs ``zoo.bench.run``, ``zoo bench gate [...]`` ``zoo.bench.gate`` (imported here:
    the other commands do not pay for them)."""
    rest = list(args.args)
    if rest and rest[0] == "gate":
        from zoo.bench import gate

        return int(gate.main(rest[1:]) or 0)
    from zoo.bench import run

    return int(run.main(rest) or 0)


def _pretrained_entry(name: str):
    from zoo import pretrained

    try:
        return pretrained.get_entry(name)
    except KeyError as exc:  # an unknown name is an option that cannot work (exit 2), with a did-you-mean
        raise CLIError(error_line(exc)) from None


def _list_pretrained(args) -> int:
    from zoo import pretrained

    rows = [pretrained.describe(pretrained.get_entry(n)) for n in pretrained.list_pretrained()]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for r in rows:
        scores = ", ".join(f"{k} {_fmt(r['metrics'][k])}" for k in ("mae", "fnorm") if k in r["metrics"])
        print(f"  {r['name']:<40}{' *' if r['default'] else '  '} {r['task']:<26} {r['target']} ({r['unit'] or '-'}): "
              f"{scores} on {r['split']}; {r['n_params']:,} parameters, {r['size'] / 1e6:.2f} MB")
    print("(* = the family's default; cards: docs/pretrained/)")
    return 0


def cmd_download(args) -> int:
    from zoo import pretrained

    if not args.names and not args.all:
        raise CLIError("name the models to download (zoo list --pretrained), or --all")
    for name in pretrained.list_pretrained() if args.all else args.names:
        entry = _pretrained_entry(name)
        print(f"{entry.name}: {pretrained.fetch(entry).with_suffix('.safetensors')}")
    return 0


def cmd_predict(args) -> int:
    import numpy as np

    from zoo import pretrained

    entry = _pretrained_entry(args.name)
    check_backend(args.backend, None)
    missing = [f for f in args.files if not Path(f).is_file()]
    if missing:
        raise CLIError(f"no such file: {', '.join(missing)}")
    model = pretrained.load(entry.name, backend=args.backend, dtype=args.dtype)
    pred = model.predict(list(args.files), progress=False)
    target = model.target
    if args.json:
        print(json.dumps({"model": entry.name, "backend": args.backend, "target": target.name, "unit": target.unit,
                          "predictions": {f: np.asarray(v).tolist() for f, v in zip(args.files, pred)}}, indent=2))
        return 0
    print(f"{entry.name} ({args.backend}): {target.name}" + (f" [{target.unit}]" if target.unit else ""))
    for f, v in zip(args.files, pred):
        print(f"{f}: {np.array2string(np.asarray(v), precision=6, separator=', ') if np.ndim(v) else f'{float(v):.6g}'}")
    return 0


COMMANDS = {"list": cmd_list, "train": cmd_train, "evaluate": cmd_evaluate, "reproduce": cmd_reproduce, "demo": cmd_demo,
            "report": cmd_report, "download": cmd_download, "predict": cmd_predict}
COMMANDS["bench"] = cmd_bench
COMMANDS["tune"] = cmd_tune


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


def error_line(exc: BaseException) -> str:
    """One line for the user: the exception's message (a ``KeyError`` without its quotes, an ``OSError``
    with its file and what to do), its lines joined."""
    if isinstance(exc, KeyError) and exc.args:
        msg = str(exc.args[0])
    elif isinstance(exc, OSError) and exc.errno in DISK_FULL:
        msg = (f"no space left on the disk of {exc.filename or 'an output file'}: nothing was half-written (files are "
               "replaced atomically); free some space, or write elsewhere (--out, --results, ZOO_CACHE), then run the "
               "command again (a training continues with `zoo train --resume RUN_DIR`)")
    elif isinstance(exc, PermissionError):
        msg = f"{exc.strerror or exc}: {exc.filename}; choose a folder you can write to" if exc.filename else str(exc)
    elif isinstance(exc, OSError) and exc.filename and exc.strerror and not isinstance(exc, FileNotFoundError):
        msg = f"{exc.strerror}: {exc.filename}"
    else:
        msg = str(exc) or type(exc).__name__
    return " ".join(line.strip() for line in msg.splitlines() if line.strip())


# Exceptions that report a user's input (options, data, files, folders), whatever layer raised them.
USER_ERRORS = (KeyError, ValueError, OSError, RuntimeError, ImportError, EOFError, MemoryError)


def main(argv: Sequence[str] | None = None) -> int:
    _calm_openmp()
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # as typed, for records (zoo tune's table)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        return COMMANDS[args.command](args)
    except KeyboardInterrupt:
        if args.debug:
            raise
        print(f"zoo {args.command}: interrupted", file=sys.stderr)
        return 130
    except (CLIError, UsageError) as exc:
        if args.debug:
            raise
        print(f"zoo {args.command}: error: {error_line(exc)}", file=sys.stderr)
        return 2
    except USER_ERRORS as exc:
        if args.debug:
            raise
        print(f"zoo {args.command}: error: {error_line(exc)} [--debug shows the traceback]", file=sys.stderr)
        return 1
    except Exception as exc:  # noqa: BLE001 - a bug, not a user error: still one line, and how to learn more
        if args.debug:
            raise
        print(f"zoo {args.command}: unexpected error ({type(exc).__name__}: {error_line(exc)}); run again with --debug "
              "for the traceback and report it", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
