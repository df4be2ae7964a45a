"""Training and evaluation under hostile but fair use: weights scored only on their own data, options
checked before any work, NaN targets named, checkpoints that survive damage, one process per run and
per result folder, memory estimated before allocating, predict on one structure or a batch with skips."""
from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.helpers import TINY, toy_frame, toy_task
from tests.training.common import Kill, cfg, kill_after, rows_without_time
from zoo.tasks.spec import TargetSpec, TaskSpec

REGISTERED = "toy_reliability_volume"


@pytest.fixture(scope="module")
def registered():
    """A registered toy task whose factory takes a typed option (the size of the data set)."""
    from zoo import tasks

    def make(n: int = 40, seed: int = 0):
        return toy_task(n=n, seed=seed, name=REGISTERED)

    tasks.register(toy_task(name=REGISTERED).spec, make)
    yield REGISTERED
    tasks.TASKS.remove(REGISTERED)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, task):
    from zoo.training import train

    return train(cfg(tmp_path_factory.mktemp("trained"), epochs=2), task=task)


def no_run_folder(tmp_path) -> bool:
    runs = tmp_path / "runs"
    return not runs.exists() or not any(p for p in runs.iterdir())


# ------------------------------------------------------------------------------- evaluation's data
def test_evaluate_recreates_the_recorded_task_options_and_refuses_others(tmp_path, registered):
    """The probe: a run trained with --task-arg n_crystals=100 was scored on the default data set (exit 0)."""
    from zoo.training import UsageError, evaluate, train

    res = train(cfg(tmp_path, epochs=1, task=registered, task_kwargs={"n": 30}))
    recorded = json.loads((res.run_dir / "best.json").read_text())["data"]
    assert recorded["task_kwargs"] == {"n": 30} and recorded["fingerprint"]["test"]["n"] == res.summary["n"]["test"]
    out = evaluate(res.run_dir, progress=False)
    assert out["data_verified"] and out["n"] == len(toy_task(n=30).get_test_ids(0))
    assert out["metrics"]["mae"] == pytest.approx(res.summary["test"]["mae"], rel=1e-6)
    with pytest.raises(UsageError, match=r"test data differ .*\{'n': 30\} then, \{'n': 40\} now.*--allow-other-data"):
        evaluate(res.run_dir, task_kwargs={"n": 40}, progress=False)
    anyway = evaluate(res.run_dir, task_kwargs={"n": 40}, allow_other_data=True, progress=False, write=False)
    assert not anyway["data_verified"] and anyway["data_differences"]


def test_evaluate_refuses_data_that_differ_under_the_same_task_name(tmp_path, trained):
    from zoo.training import UsageError, evaluate

    other = toy_task(n=40, seed=1)  # same name and version, other crystals
    with pytest.raises(UsageError, match="test data differ.*same count but other ids, targets or structures"):
        evaluate(trained.run_dir, task=other, progress=False)


def test_evaluate_refuses_another_fold_whose_test_set_was_trained_on(trained, task):
    from zoo.training import UsageError, evaluate

    with pytest.raises(UsageError, match="fold 1's test structures were part of its training data.*drop --fold"):
        evaluate(trained.run_dir, task=task, fold=1, progress=False)


def test_evaluate_refuses_another_task_unless_told(trained):
    """Same kind and shape, another property: refused unless the user says so explicitly."""
    from zoo.training import UsageError, evaluate

    other = toy_task(name="toy_other_property")
    with pytest.raises(UsageError, match="trained on task 'toy_volume'.*--allow-other-task"):
        evaluate(trained.run_dir, task=other, progress=False)
    out = evaluate(trained.run_dir, task=other, allow_other_task=True, progress=False, write=False)
    assert out["other_task"] and not out["data_verified"]


def test_weights_without_a_data_record_are_not_scored_silently(tmp_path, trained, task):
    from zoo.core import weights
    from zoo.training import UsageError, evaluate

    state, meta = weights.load(trained.run_dir / "best")
    meta = {k: v for k, v in meta.items() if k not in ("data", "sha256", "file_size", "meta_sha256", "format")}
    weights.save(tmp_path / "old", state, meta)
    with pytest.raises(UsageError, match="record no fingerprint"):
        evaluate(tmp_path / "old.safetensors", task=task, progress=False)
    assert evaluate(tmp_path / "old.safetensors", task=task, allow_other_data=True, progress=False)["metrics"]["n"] > 0


def test_a_legacy_sidecar_that_disagrees_with_its_config_is_refused(tmp_path, trained):
    """Format-1 sidecars are not sealed: the featurisation is derived from the model config and checked."""
    from zoo.core.weights import WeightsError
    from zoo.training import load_trained

    for f in ("best.json", "best.safetensors"):
        shutil.copy(trained.run_dir / f, tmp_path / f)
    meta = json.loads((tmp_path / "best.json").read_text())
    meta.update(format=1)
    meta.pop("meta_sha256")
    meta["featurization"].update(radius=4.0, max_neighbors=4)
    (tmp_path / "best.json").write_text(json.dumps(meta))
    with pytest.raises(WeightsError, match="featurization disagrees with its model config.*radius: 4.0 vs 8.0"):
        load_trained(tmp_path)
    meta["featurization"].update(radius=8.0, max_neighbors=12)
    meta["normalizer"]["scale"] = -1.0
    (tmp_path / "best.json").write_text(json.dumps(meta))
    with pytest.raises(WeightsError, match="positive scale"):
        load_trained(tmp_path)


# ------------------------------------------------------------------------------- options
@pytest.mark.parametrize("bad, match", [
    ({"patience": -3}, "patience.*>= 0"), ({"lr": float("inf")}, "lr must be a finite number"),
    ({"lr": float("nan")}, "lr must be a finite number"), ({"lr": 0.0}, "lr must be"),
    ({"grad_clip": -1.0}, "grad_clip"), ({"weight_decay": float("nan")}, "weight_decay"), ({"fold": -1}, "fold"),
    ({"epochs": 2.5}, "epochs .* must be int"), ({"fold": True}, "fold .* must be int"), ({"device": 3}, "device"),
    ({"task_kwargs": [1]}, "task_kwargs .* must be dict"),
])
def test_options_are_checked_when_the_config_is_made(bad, match):
    from zoo.training import TrainConfig, UsageError

    with pytest.raises(UsageError, match=match):
        TrainConfig(**bad)


def test_task_and_model_options_are_checked_before_any_work(tmp_path, registered):
    from zoo.training import UsageError, train

    with pytest.raises(UsageError, match="--task-arg n='abc' must be int, not str"):
        train(cfg(tmp_path, task=registered, task_kwargs={"n": "abc"}))
    with pytest.raises(UsageError, match="no option 'nn'.*did you mean 'n'"):
        train(cfg(tmp_path, task=registered, task_kwargs={"nn": 30}))
    with pytest.raises(UsageError, match="no option 'n_cnv'.*did you mean 'n_conv'"):
        train(cfg(tmp_path, task=registered, model_overrides={"n_cnv": 2}))
    with pytest.raises(UsageError, match="--set atom_fea_len=8.5 must be int"):
        train(cfg(tmp_path, task=registered, model_overrides={"atom_fea_len": 8.5}))
    with pytest.raises(UsageError, match="not installed.*pip install 'crystal-zoo\\[torch\\]'"):
        from zoo.training import adapter

        saved = dict(adapter.ADAPTERS)
        adapter.ADAPTERS["torch"] = "zoo_no_such_backend_module:Adapter"
        try:
            train(cfg(tmp_path, task=registered))
        finally:
            adapter.ADAPTERS.update(saved)
    assert no_run_folder(tmp_path)


def test_device_without_cuda_is_refused_before_the_data(tmp_path):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    from zoo.training import UsageError, train

    class Untouchable:  # any data access would fail the test differently
        spec = property(lambda self: pytest.fail("the task was read before the device was checked"))

    with pytest.raises(UsageError, match="--device cuda: torch cannot use CUDA here.*--device cpu"):
        train(cfg(tmp_path, device="cuda"), task=Untouchable())


class NaNTask:
    """A task object with matbench's interface and one missing target (in the training or the test part)."""

    def __init__(self, kind: str, where: int):
        shape = (3, 3) if kind == "tensor" else ()
        self.spec = TaskSpec(name=f"nan_{kind}", version="1", target=TargetSpec("y", kind=kind, rank=len(shape), formula="ij=ji" if shape else None),
                             task_type="classification" if kind == "class" else "regression",
                             metrics=("accuracy",) if kind == "class" else ("mae",))
        frame = toy_frame(40)
        y = frame.pop("volume_per_atom")
        if kind == "tensor":  # an isotropic 3x3 tensor per crystal; the missing one is a NaN component
            values = [v * np.eye(3) for v in y]
            values[where] = np.where(np.eye(3) > 0, np.nan, 0.0) * values[where]
            frame["y"] = pd.Series(values, index=frame.index, dtype=object)
        else:
            frame["y"] = (y > 32).astype(object) if kind == "class" else y
            frame.loc[frame.index[where], "y"] = float("nan")
        self.df, self.folds = frame, [0]

    def get_train_and_val_data(self, fold):
        return self.df["structure"].iloc[8:], self.df["y"].iloc[8:]

    def get_test_data(self, fold, include_target=False):
        return (self.df["structure"].iloc[:8], self.df["y"].iloc[:8]) if include_target else self.df["structure"].iloc[:8]

    def get_validation_ids(self, fold):
        return None


@pytest.mark.parametrize("kind", ["scalar", "class", "tensor"])
@pytest.mark.parametrize("where, part", [(3, "test"), (20, "training")])
def test_nan_targets_are_named_before_training(tmp_path, kind, where, part):
    """Before: a NaN training target read 'training loss became nan ... lower --lr'; a NaN test class
    target trained and scored silently; a NaN component of a test tensor trained, then failed in scoring."""
    from zoo.training import TrainingError, train

    model = {"model": "tfn", "model_overrides": {}} if kind == "tensor" else {}
    with pytest.raises(TrainingError, match=f"{part} targets: 1 of .*'toy-{where:03d}'"):
        train(cfg(tmp_path, **model), task=NaNTask(kind, where))
    assert no_run_folder(tmp_path)


# ------------------------------------------------------------------------------- checkpoints
@pytest.fixture
def killed_after_3(tmp_path, task):
    """A run killed after epoch 3 of 5 (checkpoints of epochs 3 and 2 kept), and the uninterrupted run."""
    from zoo.training import train

    c = cfg(tmp_path, epochs=5, dtype="float64")
    full = train(c, task=task)
    with pytest.raises(Kill):
        train(c, task=task, on_epoch_end=kill_after(3))
    run = sorted(p for p in Path(c.out).iterdir() if p != full.run_dir)[-1]
    return run, full.run_dir


def test_the_two_newest_checkpoints_are_kept(killed_after_3):
    run, _ = killed_after_3
    assert sorted(p.name for p in (run / "checkpoint").iterdir()) == ["LATEST", "epoch_0003"]
    assert [p.name for p in (run / "checkpoint_previous").iterdir()] == ["epoch_0002"]


@pytest.mark.parametrize("damage", ["truncated weights", "corrupt trainer state", "missing folder"])
def test_resume_falls_back_to_the_previous_checkpoint(killed_after_3, task, caplog, damage):
    """Before: a missing checkpoint folder silently restarted at epoch 0 and rewrote the history; a
    truncated file ended the resume."""
    from zoo.training import train

    run, full = killed_after_3
    newest = run / "checkpoint" / "epoch_0003"
    if damage == "truncated weights":
        (newest / "model.safetensors").write_bytes((newest / "model.safetensors").read_bytes()[:500])
    elif damage == "corrupt trainer state":
        data = bytearray((newest / "trainer.safetensors").read_bytes())
        data[-5] ^= 0x10
        (newest / "trainer.safetensors").write_bytes(bytes(data))
    else:
        shutil.rmtree(run / "checkpoint")
    with caplog.at_level(logging.WARNING, logger="zoo.training"):
        train(resume=run, task=task)
    assert "fallback checkpoint checkpoint_previous/epoch_0002" in caplog.text
    # Epoch 3 is trained again from the state of epoch 2: the history equals the uninterrupted run's.
    assert rows_without_time(run) == rows_without_time(full)


def test_resume_without_a_usable_checkpoint_keeps_the_history(killed_after_3, task):
    from zoo.training import TrainingError, train

    run, _ = killed_after_3
    before = (run / "metrics.jsonl").read_text()
    shutil.rmtree(run / "checkpoint")
    (run / "checkpoint_previous" / "epoch_0002" / "trainer.json").write_text("{truncated")
    with pytest.raises(TrainingError, match="no usable checkpoint.*trainer.json.*3 logged epoch.*rewrite that history"):
        train(resume=run, task=task)
    assert (run / "metrics.jsonl").read_text() == before


# ------------------------------------------------------------------------------- locks
def test_a_run_folder_is_trained_by_one_process_at_a_time(killed_after_3, task):
    """Before: two --resume of one run interleaved their epochs in metrics.jsonl (1, 2, 3, 5, 4, 6, 5 ...)."""
    from zoo.core.lock import LockedError
    from zoo.training import runs, train

    run, full = killed_after_3
    with runs.lock_run(run):  # stands in for the other process (the lock is per open file, not per process)
        with pytest.raises(LockedError, match="in use by another process.*wait for that process"):
            train(resume=run, task=task)
    train(resume=run, task=task)
    assert rows_without_time(run) == rows_without_time(full)


def test_one_reproduction_at_a_time_writes_a_result_folder(tmp_path, registered):
    """Before: two `zoo reproduce` with the same options both trained every fold and wrote results.json.gz."""
    from zoo.core.lock import LockedError, hold
    from zoo.training import reproduce

    base = cfg(tmp_path, epochs=1, task=registered, task_kwargs={"n": 30})
    out = tmp_path / "results" / "crystal-zoo" / registered / "cgcnn-torch"
    with hold(out, "x", "y"):
        with pytest.raises(LockedError, match="result folder .* is in use by another process"):
            reproduce(base, folds=[0], results=tmp_path / "results")
    assert no_run_folder(tmp_path)


# ------------------------------------------------------------------------------- memory
@pytest.mark.parametrize("backend", ["torch", "jax"])
def test_a_run_that_cannot_fit_in_memory_is_refused_before_allocating(tmp_path, task, backend, monkeypatch):
    """A Gaussian basis of 8 million centres (--set step=1e-6): 19 GB requested at the first batch before.
    Its floor is ~15 GiB, so the limit is pinned (a machine with more memory would rightly let it run)."""
    if backend == "jax":
        pytest.importorskip("jax")
    from zoo.training import UsageError, train

    monkeypatch.setenv("ZOO_MEMORY_LIMIT_GB", "4")
    with pytest.raises(UsageError, match="needs at least .* GiB for one training step.*--batch-size"):
        train(cfg(tmp_path, backend=backend, model_overrides={**TINY, "step": 1e-6}), task=task)
    assert no_run_folder(tmp_path)


def test_the_memory_limit_variable_lowers_the_limit_and_is_checked(monkeypatch):
    from zoo.training import UsageError
    from zoo.training.budget import host_memory_bytes

    monkeypatch.delenv("ZOO_MEMORY_LIMIT_GB", raising=False)
    physical = host_memory_bytes()
    monkeypatch.setenv("ZOO_MEMORY_LIMIT_GB", "0.5")
    assert host_memory_bytes() == min(physical, 2**29)
    monkeypatch.setenv("ZOO_MEMORY_LIMIT_GB", "1e9")  # above the machine's: the machine's stands
    assert host_memory_bytes() == physical
    for bad in ("-1", "nan", "lots"):
        monkeypatch.setenv("ZOO_MEMORY_LIMIT_GB", bad)
        with pytest.raises(UsageError, match="ZOO_MEMORY_LIMIT_GB=.*positive number of GiB"):
            host_memory_bytes()


def test_the_memory_floor_is_below_what_a_small_run_uses(task):
    from zoo.training.budget import estimate, largest_batch
    from zoo.training.data import load_fold
    from zoo.training.torch import TorchAdapter
    from zoo.models import make_config
    from zoo.training import TrainConfig

    c = TrainConfig(model="cgcnn", model_overrides=dict(TINY), graph_cache=False, progress=False, batch_size=8)
    mc = make_config("cgcnn", **TINY).with_target(task.spec.target)
    data = load_fold(task, 0, c, mc.graph_spec())
    shapes = TorchAdapter("cgcnn", mc, c, "mse")._parameter_shapes()
    nodes, edges = largest_batch(data.train.graphs, 8)
    e = estimate(shapes, nodes, edges, 4)
    assert 0 < e["total_bytes"] < 50e6 and e["widest"] == 92  # the atom feature table is the widest input


# ------------------------------------------------------------------------------- predict
def test_predict_takes_one_structure_or_a_path_and_names_the_bad_one(tmp_path, trained, task):
    from pymatgen.core import Lattice, Structure

    from zoo.graphs import StructureError
    from zoo.training import load_trained

    model = load_trained(trained.run_dir)
    structures = list(task.get_test_data(0))
    batch = model.predict(structures, cache=False)
    one = model.predict(structures[0], cache=False)
    assert np.shape(one) == () and one == pytest.approx(batch[0], rel=1e-6)
    structures[0].to(filename=str(tmp_path / "good.cif"))
    assert model.predict(str(tmp_path / "good.cif"), cache=False) == pytest.approx(batch[0], rel=1e-4)
    bad = Structure(Lattice.cubic(4.0), ["Na", "Cl"], [[0, 0, 0], [0.01, 0, 0]], validate_proximity=False)
    bad.to(filename=str(tmp_path / "bad.cif"))
    with pytest.raises(StructureError, match="bad.cif.*overlapping"):
        model.predict([str(tmp_path / "good.cif"), str(tmp_path / "bad.cif")], cache=False)
    pred, failures = model.predict([structures[0], bad, structures[1]], cache=False, on_error="skip")
    assert list(failures) == ["1"] and np.isnan(pred[1])
    np.testing.assert_allclose(pred[[0, 2]], batch[:2], rtol=1e-6)


def test_resume_refuses_other_data(tmp_path, registered):
    """A resumed run continues only on the data it started with (the fingerprint, not just the name)."""
    from zoo.training import TrainingError, train

    c = cfg(tmp_path, epochs=3, task=registered, task_kwargs={"n": 30})
    with pytest.raises(Kill):
        train(c, on_epoch_end=kill_after(1))
    run = next((tmp_path / "runs").iterdir())
    with pytest.raises(TrainingError, match="data differ from the ones the run started with"):
        train(resume=run, task=toy_task(n=30, seed=1, name=registered))


def test_the_memory_estimate_prints_nothing_on_stderr():
    """Estimating torch's parameter shapes walks the live objects; a deprecation warning it set off was a
    stray stderr line in front of the CLI's one error line."""
    import subprocess
    import sys

    pytest.importorskip("torch")
    code = "import torch.distributed\nfrom zoo.training.torch import _lru_caches\n_lru_caches()"
    p = subprocess.run([sys.executable, "-W", "default", "-c", code], capture_output=True, text=True, timeout=300,
                       cwd=Path(__file__).resolve().parents[2])
    assert p.returncode == 0 and p.stderr == "", p.stderr


def test_a_basis_beyond_its_limit_is_refused_before_a_run_folder_exists(tmp_path, task):
    """--set step=1e-7: 8e7 Gaussian centres, built in a Python loop for minutes before any check ran."""
    from zoo.training import train

    with pytest.raises(ValueError, match="8e\\+07 centres.*--set step=0.2"):
        train(cfg(tmp_path, model_overrides={**TINY, "step": 1e-7}), task=task)
    assert no_run_folder(tmp_path)
