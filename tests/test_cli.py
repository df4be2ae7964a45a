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
    # the recorded overrides: cgcnn.scalar's (the volume-per-atom input) under the --set ones
    assert json.loads((run_dir / "config.json").read_text())["train"]["model_overrides"] == {"density_basis": 8, **TINY}

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



# ----------------------------------------------------------------------------------- one line per error
def error_lines(err: str) -> list[str]:
    """The lines of stderr that are not log records (the command's own output)."""
    return [line for line in err.splitlines() if line.strip() and not line.startswith(("INFO ", "WARNING ", "DEBUG "))]


@pytest.mark.parametrize("argv, code, fragment", [
    (["--set", "n_cnv=2"], 2, "did you mean 'n_conv'"),
    (["--set", "n_conv=two"], 2, "--set n_conv='two' must be int"),
    (["--set", "radius=abc"], 2, "--set radius='abc' must be float"),
    (["--patience", "-3"], 2, "--patience): must be a finite number >= 0"),
    (["--lr", "inf"], 2, "lr must be a finite number > 0"),
    (["--lr", "nan"], 2, "lr must be a finite number > 0"),
    (["--task-arg", "n_crystal=30"], 2, f"task {TOY}_typed has no option 'n_crystal'"),
    (["--task-arg", "n_crystals=1.5"], 2, "--task-arg n_crystals=1.5 must be int, not float"),
    (["--task-arg", "n_crystals=abc"], 2, "--task-arg n_crystals='abc' must be int, not str"),
    (["--data-dir", "/nonexistent"], 2, "makes its own data: it reads no --data-dir"),
])
def test_user_errors_are_one_line_before_any_work(tmp_path, capsys, argv, code, fragment):
    from zoo import tasks

    def make(n_crystals: int = 40):  # a task factory with a typed option, as the embedded tasks have
        return toy_task(n=n_crystals, name=TOY + "_typed")

    tasks.register(toy_task(name=TOY + "_typed").spec, make)
    try:
        c, _, err = run(["train", "cgcnn", "--task", TOY + "_typed", "--epochs", 1, "--out", tmp_path / "runs", "--no-progress",
                         *SET_TINY, *argv], capsys)
    finally:
        tasks.TASKS.remove(TOY + "_typed")
    lines = error_lines(err)
    assert c == code and len(lines) == 1 and fragment in lines[0] and "Traceback" not in err, err
    assert not (tmp_path / "runs").exists()


def test_unknown_names_get_a_did_you_mean(tmp_path, capsys):
    for argv, fragment in ((["train", "cgcnnn", "--task", TOY, "--out", tmp_path], "did you mean 'cgcnn'"),
                           (["train", "cgcnn", "--task", TOY + "x", "--out", tmp_path], f"did you mean '{TOY}'"),
                           (["reproduce", TOY + "x", "--model", "cgcnn", "--backend", "torch", "--results", tmp_path], f"did you mean '{TOY}'"),
                           (["evaluate", tmp_path, "--task", TOY + "x"], f"did you mean '{TOY}'")):
        c, _, err = run(argv, capsys)
        assert c == 2 and len(error_lines(err)) == 1 and fragment in err and "Traceback" not in err


def test_debug_shows_the_traceback(tmp_path, capsys):
    from zoo.cli import CLIError

    with pytest.raises(CLIError, match="--patience"):  # the exception itself propagates: Python prints the traceback
        run(["--debug", "train", "cgcnn", "--task", TOY, "--patience", "-1", "--out", tmp_path], capsys)


def test_resume_refuses_options_it_would_ignore(tmp_path, capsys):
    c, _, err = run(["train", "--resume", tmp_path, "--lr", "0.1"], capsys)
    assert c == 2 and "--resume continues a run with its own options" in err and "--lr" in err


def test_a_full_disk_is_one_line_and_the_run_resumes(tmp_path, capsys, monkeypatch):
    """A disk that fills up during the first checkpoint: one line naming the file, nothing half-written,
    and the run folder continues once there is space."""
    import errno

    import zoo.core.io as io

    real_replace = io.os.replace
    full = {"on": True}

    def replace(src, dst):
        if full["on"] and str(dst).endswith(".safetensors"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_replace(src, dst)

    monkeypatch.setattr(io.os, "replace", replace)
    c, _, err = run(["train", "cgcnn", "--task", TOY, "--epochs", 2, "--batch-size", 8, "--out", tmp_path / "runs",
                     "--no-progress", *SET_TINY], capsys)
    lines = error_lines(err)
    assert c == 1 and len(lines) == 1 and "no space left on the disk of" in lines[0] and ".safetensors" in lines[0]
    (run_dir,) = list((tmp_path / "runs").iterdir())
    assert not list(run_dir.rglob("*.tmp"))
    full["on"] = False
    c, _, err = run(["train", "--resume", run_dir, "--no-progress"], capsys)
    assert c == 0, err
    assert json.loads((run_dir / "metrics.json").read_text())["epochs_run"] == 2


def test_a_missing_backend_is_named_with_its_pip_line_before_any_data():
    code = ("import sys; sys.modules['jax'] = None\nfrom zoo.cli import main\n"
            "sys.exit(main(['train', 'cgcnn', '--task', 'embedded_dielectric_iso', '--backend', 'jax', '--no-progress']))")
    env = dict(os.environ, PYTHONPATH=str(ROOT), ZOO_CACHE="/nonexistent/never-read")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert p.returncode == 2 and error_lines(p.stderr) == [line for line in p.stderr.splitlines() if line.strip()], p.stderr
    assert "jax backend is not installed" in p.stderr and "pip install 'crystal-zoo[jax]'" in p.stderr


def test_a_run_without_any_usable_checkpoint_is_refused_in_one_line(tmp_path, capsys):
    import shutil

    out_dir = tmp_path / "runs"
    c, _, err = run(["train", "cgcnn", "--task", TOY, "--epochs", 2, "--batch-size", 8, "--out", out_dir, "--no-progress",
                     *SET_TINY], capsys)
    (run_dir,) = list(out_dir.iterdir())
    ckpt = run_dir / "checkpoint" / (run_dir / "checkpoint" / "LATEST").read_text().strip() / "model.safetensors"
    ckpt.write_bytes(ckpt.read_bytes()[:100])  # truncated
    shutil.rmtree(run_dir / "checkpoint_previous")
    c, _, err = run(["train", "--resume", run_dir, "--epochs", 3, "--no-progress"], capsys)
    lines = error_lines(err)
    assert c == 1 and len(lines) == 1 and "no usable checkpoint" in lines[0] and "truncated" in lines[0]


def test_evaluate_refuses_another_task_in_one_line(tmp_path, capsys):
    out_dir = tmp_path / "runs"
    run(["train", "cgcnn", "--task", TOY, "--epochs", 1, "--batch-size", 8, "--out", out_dir, "--no-progress", *SET_TINY], capsys)
    (run_dir,) = list(out_dir.iterdir())
    c, _, err = run(["evaluate", run_dir, "--task", "embedded_dielectric_iso", "--no-progress"], capsys)
    assert c == 2 and "--allow-other-task" in err and len(error_lines(err)) == 1
