"""The training loop end to end: run folders, checkpoints and resume, on the tiny toy task (both backends)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import ROOT, toy_frame, toy_task
from tests.training.common import Kill, cfg, kill_after, rows_without_time, toy_class_task
from zoo.tasks.base import ArrayTask
from zoo.tasks.spec import TargetSpec, TaskSpec


def test_train_torch_writes_a_complete_run_folder(tmp_path, task):
    from zoo.core import weights
    from zoo.training import DEFAULT_TASK, runs, train

    c = cfg(tmp_path)
    res = train(c, task=task)
    d = res.run_dir
    # No hidden side effect: the caller's config still names its own task; the run records the task's.
    assert c.task == DEFAULT_TASK and res.config.task == "toy_volume" and res.config.model_overrides == c.model_overrides
    for name in ("config.json", "env.json", "metrics.jsonl", "metrics.json", "failures.json", "predictions_val.csv",
                 "predictions_test.csv", "best.safetensors", "best.json", "checkpoint/LATEST"):
        assert (d / name).is_file(), name
    for png in ("learning_curve", "parity_val", "parity_test"):
        assert (d / "plots" / f"{png}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    config = json.loads((d / "config.json").read_text())
    assert config["train"]["seed"] == 0 and config["model"]["config"]["atom_fea_len"] == 8
    assert config["task"]["name"] == "toy_volume" and config["graph_spec"]["rule"] == "cgcnn"
    assert config["selection_metric"] == "val_mae"
    env = json.loads((d / "env.json").read_text())
    assert env["seeds"]["seed"] == 0 and env["packages"]["torch"] and env["device"].startswith("cpu")
    assert set(env["git"]) == {"commit", "dirty"}

    # The checkpoint: weights, best weights, optimiser + RNG arrays (0-d counters stay 0-d), trainer state.
    from safetensors.numpy import load_file

    ckpt = runs.latest_checkpoint(d)
    assert ckpt.name == "epoch_0003"
    assert {p.name for p in ckpt.iterdir()} == {f"{s}.{e}" for s in ("model", "best", "trainer") for e in ("safetensors", "json")}
    arrays = load_file(str(ckpt / "trainer.safetensors"))
    assert arrays["optimizer/state.0.step"].shape == () and float(arrays["optimizer/state.0.step"]) == 12  # 4 batches x 3 epochs
    assert arrays["rng/torch_cpu"].dtype == np.uint8
    trainer = json.loads((ckpt / "trainer.json").read_text())
    assert trainer["epoch"] == 3 and trainer["step"] == 12 and trainer["best_epoch"] >= 1

    rows = runs.read_predictions(d / "predictions_test.csv")
    assert rows["id"] == task.get_test_ids(0) and not any(rows["graph_failed"])
    summary = json.loads((d / "metrics.json").read_text())
    assert summary["finished"] and summary["epochs_run"] == 3 and 1 <= summary["best_epoch"] <= 3
    np.testing.assert_allclose(summary["test"]["mae"], np.mean(np.abs(rows["y_pred"] - rows["y_true"])), rtol=1e-9)
    # Model selection is on validation: the best epoch is the one with the lowest logged val_mae.
    log = rows_without_time(d)
    assert [r["epoch"] for r in log] == [1, 2, 3]
    assert summary["best_epoch"] == min(log, key=lambda r: r["val_mae"])["epoch"]

    # The best weights carry everything needed to rebuild the model: nothing else is read.
    state, meta = weights.load(d / "best")
    for key in ("model", "config", "featurization", "target", "normalizer", "task", "epoch"):
        assert key in meta
    assert meta["epoch"] == summary["best_epoch"] and meta["target"]["unit"] == "Å^3/atom"
    alone = tmp_path / "alone"
    alone.mkdir()
    for f in ("best.safetensors", "best.json"):
        shutil.copy(d / f, alone / f)
    from zoo.training import load_trained

    structures = list(task.get_test_data(0))
    pred = load_trained(alone / "best.safetensors").predict(structures, cache=False)
    np.testing.assert_allclose(pred, rows["y_pred"], rtol=1e-6)


def test_torch_learns_the_toy_target_beyond_the_floor(tmp_path, task):
    """Proves the loop optimises: after 25 epochs the test MAE is well below predicting the mean."""
    from zoo.training import train

    s = train(cfg(tmp_path, epochs=25, lr=1e-2), task=task).summary
    assert s["test"]["mae"] < 0.5 * s["floor"]["test"]["mae"], (s["test"], s["floor"]["test"])


def test_train_jax_end_to_end_and_weights_load_in_torch(tmp_path, task):
    from zoo.training import load_trained, runs, train

    res = train(cfg(tmp_path, backend="jax", epochs=2), task=task)
    d = res.run_dir
    log = rows_without_time(d)
    # Compilations happen in the first epoch (one per bucket, train and eval); none afterwards.
    assert log[0]["jit_compilations"] >= 2 and log[1]["jit_compilations"] == 0
    assert res.summary["jit_compilations"] >= log[0]["jit_compilations"]
    # Same weight format: the jax-trained weights predict the same numbers in torch.
    rows = runs.read_predictions(d / "predictions_test.csv")
    pred = load_trained(d, backend="torch").predict(list(task.get_test_data(0)), cache=False)
    np.testing.assert_allclose(pred, rows["y_pred"], rtol=2e-5, atol=2e-5)


def test_resume_after_kill_is_identical_torch_float64(tmp_path, task):
    from zoo.core.io import read_jsonl
    from zoo.training import runs, train

    c = cfg(tmp_path, epochs=4, dtype="float64", schedule="cosine")
    full = train(c, task=task)
    with pytest.raises(Kill):
        train(c, task=task, on_epoch_end=kill_after(2))
    killed = sorted(p for p in Path(c.out).iterdir() if p != full.run_dir)[-1]
    assert [r["epoch"] for r in read_jsonl(killed / "metrics.jsonl")] == [1, 2]
    assert not (killed / "metrics.json").exists()
    assert runs.latest_checkpoint(killed).name == "epoch_0002"

    resumed = train(resume=killed, task=task)
    assert resumed.run_dir == killed
    assert rows_without_time(killed) == rows_without_time(full.run_dir)  # float64: bit for bit
    a, b = (json.loads((p / "metrics.json").read_text()) for p in (full.run_dir, killed))
    assert a["test"] == b["test"] and a["val"] == b["val"] and a["best_epoch"] == b["best_epoch"]
    from zoo.core import weights

    wa, wb = weights.load(full.run_dir / "best")[0], weights.load(killed / "best")[0]
    assert all(np.array_equal(wa[k], wb[k]) for k in wa)


def test_classification_with_dropout_resumes_exactly(tmp_path):
    """CGCNN's classification head has dropout (torch's global RNG): the checkpoint restores that RNG,
    so a killed and resumed run draws the same dropout masks as an uninterrupted one."""
    from zoo.training import runs, train

    t = toy_class_task()
    c = cfg(tmp_path, epochs=3, dtype="float64")
    full = train(c, task=t)
    s = full.summary
    assert s["selection_metric"] == "val_log_loss" and {"accuracy", "rocauc", "log_loss"} <= set(s["test"])
    p = runs.read_predictions(full.run_dir / "predictions_test.csv")["y_pred"]
    assert np.all((p > 0) & (p < 1))  # probabilities of the positive class
    with pytest.raises(Kill):
        train(c, task=t, on_epoch_end=kill_after(1))
    killed = sorted(q for q in Path(c.out).iterdir() if q != full.run_dir)[-1]
    train(resume=killed, task=t)
    assert rows_without_time(killed) == rows_without_time(full.run_dir)


def test_resume_drops_epochs_logged_after_the_checkpoint(tmp_path, task):
    """A kill between the log line and the checkpoint: the extra line is dropped and the epoch redone."""
    from zoo.core.io import append_jsonl, read_jsonl
    from zoo.training import train

    c = cfg(tmp_path, epochs=3)
    with pytest.raises(Kill):
        train(c, task=task, on_epoch_end=kill_after(1))
    run = next(Path(c.out).iterdir())
    append_jsonl(run / "metrics.jsonl", {"epoch": 2, "train_loss": -1.0})
    # A checkpoint folder left half-written by the kill is ignored (LATEST still names epoch 1).
    (run / "checkpoint" / "epoch_0002").mkdir()
    train(resume=run, task=task)
    log = read_jsonl(run / "metrics.jsonl")
    assert [r["epoch"] for r in log] == [1, 2, 3] and all(r["train_loss"] > 0 for r in log)
    assert sorted(p.name for p in (run / "checkpoint").iterdir()) == ["LATEST", "epoch_0003"]
    # Resuming a finished run does nothing and returns its summary.
    again = train(resume=run, task=task)
    assert again.summary["epochs_run"] == 3 and len(read_jsonl(run / "metrics.jsonl")) == 3


@pytest.mark.slow
def test_resume_after_kill_is_identical_jax(tmp_path, task):
    from zoo.training import train

    c = cfg(tmp_path, backend="jax", epochs=3)
    full = train(c, task=task)
    with pytest.raises(Kill):
        train(c, task=task, on_epoch_end=kill_after(1))
    killed = sorted(p for p in Path(c.out).iterdir() if p != full.run_dir)[-1]
    train(resume=killed, task=task)
    # Same programs on the same restored state (0-d counters included): bit for bit in float32.
    # Only the compilation counts differ (the resumed process compiles again).
    def strip(rows):
        return [{k: v for k, v in r.items() if k != "jit_compilations"} for r in rows]

    assert strip(rows_without_time(killed)) == strip(rows_without_time(full.run_dir))


def test_graph_failures_are_listed_and_do_not_lose_other_results(tmp_path):
    from zoo.training import runs, train

    # The split depends on the ids only, so the good task tells which id lands in fold 0's test set.
    bad_id = toy_task(n=30, name="toy_bad").get_test_ids(0)[1]
    bad_task = toy_task(n=30, bad=int(bad_id.split("-")[1]), name="toy_bad")
    res = train(cfg(tmp_path, epochs=1), task=bad_task)
    failures = json.loads((res.run_dir / "failures.json").read_text())
    assert list(failures) == [bad_id]
    rows = runs.read_predictions(res.run_dir / "predictions_test.csv")
    assert rows["id"] == bad_task.get_test_ids(0)
    flagged = [i for i, f in zip(rows["id"], rows["graph_failed"]) if f]
    assert flagged == [bad_id]
    # The failed structure is predicted with the floor (training mean); the others by the model.
    i = rows["id"].index(bad_id)
    train_mean = json.loads((res.run_dir / "config.json").read_text())["normalizer"]["mean"]
    assert rows["y_pred"][i] == pytest.approx(train_mean, rel=1e-9)
    assert res.summary["n"]["test"] == len(rows["id"]) - 1 and res.summary["n"]["test_graph_failed"] == 1
    assert "test_all" in res.summary


def test_wrong_target_kind_is_refused(tmp_path):
    from zoo.training import TrainingError, train

    spec = TaskSpec(name="toy_tensor", version="t", target=TargetSpec("eps", kind="tensor", rank=2, formula="ij=ji"))
    frame = toy_frame(12)
    frame = frame.rename(columns={"volume_per_atom": "eps"})
    frame["eps"] = [np.eye(3) * v for v in frame["eps"]]
    t = ArrayTask.from_dataframe(spec, frame, seed=0)
    with pytest.raises((TrainingError, ValueError), match="tensor"):
        train(cfg(tmp_path), task=t)
    assert not Path(tmp_path / "runs").exists() or not any(Path(tmp_path / "runs").iterdir())


def test_nonfinite_loss_names_the_fix(tmp_path, task):
    from zoo.training import TrainingError, train

    with pytest.raises(TrainingError, match="lower --lr"):
        train(cfg(tmp_path, epochs=2, lr=1e30), task=task)


def test_resume_after_a_real_sigkill(tmp_path):
    """Kill -9 a training process mid-run, then resume: every finished epoch survives, none is repeated."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from zoo.core.io import read_jsonl
    from zoo.training import runs, train

    out = tmp_path / "runs"
    script = f"""
import sys
sys.path.insert(0, {str(ROOT)!r})
from tests.helpers import toy_task, TINY
from zoo.training import TrainConfig, train
train(TrainConfig(model="cgcnn", epochs=400, batch_size=4, out={str(out)!r}, progress=False, patience=0,
                  model_overrides=dict(TINY)), task=toy_task())
"""
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    proc = subprocess.Popen([sys.executable, "-c", script], env=env)
    try:
        deadline = time.time() + 240
        while time.time() < deadline:
            dirs = list(out.iterdir()) if out.exists() else []
            ckpt = runs.latest_checkpoint(dirs[0]) if dirs and (dirs[0] / "checkpoint" / "LATEST").exists() else None
            if ckpt is not None and int(ckpt.name.split("_")[1]) >= 3:
                break
            time.sleep(0.2)
        else:
            pytest.fail("the training process wrote no checkpoint in time")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    (run,) = list(out.iterdir())
    done = runs.latest_checkpoint(run).name
    res = train(resume=run, task=toy_task(), epochs=int(done.split("_")[1]) + 2)
    epochs = [r["epoch"] for r in read_jsonl(run / "metrics.jsonl")]
    assert epochs == list(range(1, len(epochs) + 1)) and res.summary["epochs_run"] == epochs[-1]


def scalar_task_selecting(metric: str) -> ArrayTask:
    spec = TaskSpec(name=f"toy_by_{metric}", version="test-1", target=TargetSpec("volume_per_atom", unit="Å^3/atom"),
                    selection_metric=metric)
    return ArrayTask.from_dataframe(spec, toy_frame(40), seed=0)


def test_best_epoch_and_early_stop_follow_a_score_where_higher_is_better(tmp_path):
    """The task spec decides the selection score and its direction: with r2 the best epoch is the one
    of the *largest* validation r2, and early stopping counts epochs without a larger one."""
    from zoo.training import train

    # patience_lr_fraction=1: patience counts from epoch 1, so a stop comes exactly 2 epochs after the best
    res = train(cfg(tmp_path, epochs=8, patience=2, lr=1e-2, patience_lr_fraction=1.0), task=scalar_task_selecting("r2"))
    s, log = res.summary, rows_without_time(res.run_dir)
    assert s["selection_metric"] == "val_r2"
    assert json.loads((res.run_dir / "config.json").read_text())["selection_higher_is_better"] is True
    best = max(log, key=lambda r: r["val_r2"])
    assert s["best_epoch"] == best["epoch"] and [r["epoch"] for r in log if r["best"]][-1] == best["epoch"]
    assert all(r["best"] == (r["val_r2"] > max([q["val_r2"] for q in log if q["epoch"] < r["epoch"]], default=-np.inf)) for r in log)
    if s["stopped_early"]:
        assert s["epochs_run"] == s["best_epoch"] + 2
    else:
        assert s["epochs_run"] == 8 and s["best_epoch"] >= 7


def test_selection_score_must_be_a_validation_score(tmp_path):
    from zoo.training import TrainingError, train

    with pytest.raises(TrainingError, match="sym_violation_mean"):
        train(cfg(tmp_path), task=scalar_task_selecting("sym_violation_mean"))
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


# slow: the heaviest default tests (30-75 s each on 2 cores); `make test-slow` runs them
@pytest.mark.slow
def test_jax_float64_is_scoped_and_trains_as_with_the_global_flag(tmp_path, task):
    """float64 in JAX is switched on around the adapter's work only: the process-wide flag is unchanged
    after a float64 run, and the run gives the same numbers, bit for bit, as one made with the flag on
    for the whole process (the previous behaviour)."""
    jax = pytest.importorskip("jax")
    from zoo.core import weights
    from zoo.training import load_trained, runs, train

    assert not jax.config.jax_enable_x64
    scoped = train(cfg(tmp_path / "scoped", backend="jax", epochs=2, dtype="float64"), task=task)
    assert not jax.config.jax_enable_x64
    assert all(v.dtype == np.float64 for v in weights.load(scoped.run_dir / "best")[0].values() if v.dtype.kind == "f")
    # Loading the float64 weights for prediction is scoped too (other batch sizes: equal to round-off).
    pred = load_trained(scoped.run_dir, backend="jax").predict(list(task.get_test_data(0)), cache=False)
    assert not jax.config.jax_enable_x64
    np.testing.assert_allclose(pred, runs.read_predictions(scoped.run_dir / "predictions_test.csv")["y_pred"], rtol=1e-12, atol=0)
    jax.config.update("jax_enable_x64", True)  # the conftest fixture turns it off again after the test
    everywhere = train(cfg(tmp_path / "global", backend="jax", epochs=2, dtype="float64"), task=task)

    def strip(rows):
        return [{k: v for k, v in r.items() if k != "jit_compilations"} for r in rows]

    assert strip(rows_without_time(scoped.run_dir)) == strip(rows_without_time(everywhere.run_dir))
    assert scoped.summary["test"] == everywhere.summary["test"]



def test_log_target_refuses_a_bad_validation_target_before_training(tmp_path, monkeypatch):
    """--target-transform log: a validation target with no logarithm stops the run before its first epoch
    (no epoch logged), naming the crystal; with every target positive the same run trains."""
    from tests.helpers import TINY
    from zoo.models import get_family
    from zoo.training import train
    from zoo.training.data import load_fold

    spec = TaskSpec(name="toy_log", version="t", target=TargetSpec("volume_per_atom", kind="scalar"), n_folds=5)
    frame = toy_frame(30)
    config = cfg(tmp_path, epochs=1, target_transform="log")
    graph_spec = get_family("cgcnn").config(**TINY).graph_spec()
    val_id = load_fold(ArrayTask.from_dataframe(spec, frame, seed=0), 0, config, graph_spec).val.ids[0]
    frame.loc[val_id, "volume_per_atom"] = -1.0

    def no_training(*args, **kwargs):
        raise AssertionError("an epoch was trained before the validation targets were checked")

    with monkeypatch.context() as m:
        m.setattr("zoo.training.loop._train_epoch", no_training)
        with pytest.raises(ValueError, match=f"'{val_id}'.*not positive"):
            train(config, task=ArrayTask.from_dataframe(spec, frame, seed=0))
    frame.loc[val_id, "volume_per_atom"] = 20.0
    ok = train(cfg(tmp_path / "ok", epochs=1, target_transform="log"), task=ArrayTask.from_dataframe(spec, frame, seed=0))
    assert json.loads((ok.run_dir / "config.json").read_text())["normalizer"]["transform"] == "log"


def test_clipped_run_records_the_training_range_and_predicts_inside_it(tmp_path, task):
    """--clip-predictions train_range end to end: the run's normaliser record holds [min, max] of the fold's
    training targets, and every validation and test prediction in the run folder lies inside it."""
    from tests.helpers import TINY
    from zoo.models import get_family
    from zoo.training import runs, train
    from zoo.training.data import load_fold

    res = train(cfg(tmp_path, epochs=1, clip_predictions="train_range"), task=task)
    record = json.loads((res.run_dir / "config.json").read_text())
    assert record["train"]["clip_predictions"] == "train_range"
    y_train = load_fold(task, 0, res.config, get_family("cgcnn").config(**TINY).graph_spec()).train.y
    assert record["normalizer"]["clip"] == pytest.approx([float(np.min(y_train)), float(np.max(y_train))], rel=1e-15)
    lo, hi = record["normalizer"]["clip"]
    for split in ("val", "test"):
        pred = np.asarray(runs.read_predictions(res.run_dir / f"predictions_{split}.csv")["y_pred"], dtype=float)
        assert len(pred) and np.all((pred >= lo) & (pred <= hi)), split
