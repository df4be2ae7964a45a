"""The `zoo` command line, in-process (``zoo.cli.main(argv)``) on the tiny toy task of test_training."""
from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tests.helpers import ROOT, TINY, toy_task

TOY = "toy_cli_volume"
SET_TINY = [x for k, v in TINY.items() for x in ("--set", f"{k}={v}")]


@pytest.fixture(scope="module", autouse=True)
def registered_toy_task():
    from zoo import tasks

    t = toy_task(name=TOY)
    tasks.register(t.spec, lambda **kw: toy_task(name=TOY))
    yield


def run(argv, capsys):
    from zoo.cli import main

    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_list_names_models_and_tasks(capsys):
    code, out, _ = run(["list"], capsys)
    assert code == 0
    assert "cgcnn" in out and TOY in out
    code, out, _ = run(["list", "--json"], capsys)
    d = json.loads(out)
    assert d["models"]["cgcnn"]["outputs"] == ["scalar", "class"]
    assert d["tasks"][TOY]["kind"] == "scalar" and d["tasks"][TOY]["folds"] == 5


def test_entry_point_runs_as_a_program():
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    p = subprocess.run([sys.executable, "-m", "zoo.cli", "--help"], capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode == 0 and "reproduce" in p.stdout and "demo" in p.stdout


def test_train_then_resume_then_evaluate(tmp_path, capsys):
    out_dir = tmp_path / "runs"
    code, out, err = run(["train", "cgcnn", "--task", TOY, "--backend", "torch", "--epochs", 1, "--batch-size", 8,
                          "--out", out_dir, "--no-progress", *SET_TINY], capsys)
    assert code == 0, err
    (run_dir,) = list(out_dir.iterdir())
    assert f"run folder: {run_dir}" in out and "floor" in out and "learning_curve.png" in out
    assert json.loads((run_dir / "config.json").read_text())["train"]["model_overrides"] == TINY

    # --resume with more epochs extends the same run folder.
    code, out, err = run(["train", "--resume", run_dir, "--epochs", 2, "--no-progress"], capsys)
    assert code == 0, err
    assert list(out_dir.iterdir()) == [run_dir]
    assert json.loads((run_dir / "metrics.json").read_text())["epochs_run"] == 2

    code, out, err = run(["evaluate", run_dir, "--no-progress"], capsys)
    assert code == 0, err
    result = json.loads(out)
    assert result["task"] == TOY and result["metrics"]["mae"] == pytest.approx(
        json.loads((run_dir / "metrics.json").read_text())["test"]["mae"], rel=1e-6)


def test_user_errors_exit_nonzero_with_a_message(tmp_path, capsys):
    code, _, err = run(["train", "no_such_model", "--task", TOY, "--out", tmp_path], capsys)
    assert code != 0 and "no_such_model" in err
    code, _, err = run(["train", "cgcnn", "--task", TOY, "--set", "n_conv", "--out", tmp_path], capsys)
    assert code == 2 and "KEY=VALUE" in err
    code, _, err = run(["evaluate", tmp_path / "nothing_here"], capsys)
    assert code != 0 and "nothing_here" in err


def test_reproduce_writes_results_once_and_refuses_to_overwrite(tmp_path, capsys):
    args = ["reproduce", TOY, "--model", "cgcnn", "--backend", "torch", "--epochs", 1, "--batch-size", 8,
            "--out", tmp_path / "runs", "--results", tmp_path / "results", "--no-progress", *SET_TINY]
    code, out, err = run(args, capsys)
    assert code == 0, err
    # The task's headline scores (TaskSpec.metrics: mae, rmse for the toy task), per fold and over folds.
    assert "fold 4: mae " in out and ", rmse " in out and "scores over folds: mae " in out
    res_dir = tmp_path / "results" / "crystal-zoo" / TOY / "cgcnn-torch"
    with gzip.open(res_dir / "results.json.gz", "rt") as fh:
        results = json.load(fh)
    assert sorted(results["results"]) == [f"fold_{k}" for k in range(5)]
    info = json.loads((res_dir / "info.json").read_text())
    assert info["algorithm"] == "cgcnn-torch" and "Xie" in info["bibtex_refs"]
    # Each fold's recorded predictions are the run's test predictions, every test id included.
    progress = json.loads((res_dir / "progress.json").read_text())
    assert len(set(progress["runs"].values())) == 5
    t = toy_task(name=TOY)
    for k in range(5):
        data = results["results"][f"fold_{k}"]["data"]
        assert list(data) == t.get_test_ids(k)
        assert all(np.isfinite(v) for v in data.values())

    before = (res_dir / "results.json.gz").read_bytes()
    code, _, err = run(args, capsys)
    assert code == 2 and "never overwritten" in err
    assert (res_dir / "results.json.gz").read_bytes() == before


@pytest.mark.slow
def test_demo_smoke(tmp_path, capsys):
    """The main job, shrunk: both backends, 1 epoch, 60 generated crystals in a private cache."""
    code, out, err = run(["demo", "--epochs", 1, "--out", tmp_path / "runs", "--no-progress",
                          "--task-arg", "n_crystals=60", "--task-arg", f"cache_directory={tmp_path / 'cache'}"], capsys)
    assert code == 0, err
    assert out.count("run folder:") == 2 and "floor" in out and "demo finished" in out


def test_training_flags_are_the_config_fields(capsys):
    """Every TrainConfig field is a flag of `zoo train` (spelt from the field, typed by its annotation),
    so an option is declared once."""
    import dataclasses

    from zoo.cli import build_parser, config_from_args
    from zoo.training import TrainConfig

    with pytest.raises(SystemExit):
        run(["train", "--help"], capsys)
    train_help = capsys.readouterr().out
    for f in dataclasses.fields(TrainConfig):
        if f.name != "model":  # the positional argument
            assert f.metadata.get("flag", "--" + f.name.replace("_", "-")) in train_help, f.name
    parser = build_parser()
    args = parser.parse_args(["train", "cgcnn", "--grad-clip", "0.5", "--loss", "l1", "--no-graph-cache", "--val-fraction", "0.2",
                              "--set", "n_conv=2", "--task-arg", "n_crystals=30", "--device", "cpu"])
    c = config_from_args(args)
    assert c == TrainConfig(model="cgcnn", grad_clip=0.5, loss="l1", graph_cache=False, val_fraction=0.2,
                            model_overrides={"n_conv": 2}, task_kwargs={"n_crystals": 30}, device="cpu")
    with pytest.raises(SystemExit):  # a Literal's choices are argparse's choices
        parser.parse_args(["train", "cgcnn", "--schedule", "linear"])


def test_report_forwards_to_the_module_main(tmp_path, capsys, monkeypatch):
    """`zoo report NAME ARGS...` runs zoo.reports.NAME.main(ARGS): the reports are found, not listed by hand."""
    from zoo import reports

    (tmp_path / "toy_report.py").write_text('"""A toy report."""\n\n\ndef main(argv=None):\n    print("toy report got", list(argv))\n    return 3\n')
    (tmp_path / "toy_helpers.py").write_text('"""Shared by reports; not one itself."""\nX = 1\n')
    monkeypatch.setattr(reports, "__path__", [*reports.__path__, str(tmp_path)])
    code, out, _ = run(["report"], capsys)
    assert code == 0 and "toy_report" in out and "A toy report." in out and "toy_helpers" not in out
    code, out, _ = run(["report", "toy_report", "--flag", "x"], capsys)
    assert code == 3 and "toy report got ['--flag', 'x']" in out
    code, _, err = run(["report", "toy_helpers"], capsys)
    assert code == 2 and "no main" in err
    code, _, err = run(["report", "no_such_report"], capsys)
    assert code == 2 and "toy_report" in err
    for name in ("toy_report", "toy_helpers"):
        sys.modules.pop(f"zoo.reports.{name}", None)

