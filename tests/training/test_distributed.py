"""Data-parallel training against the single-process run (``zoo.training.distributed``, ``parallel_jax``).

Two torch processes over loopback (gloo, the variables torchrun sets) and two XLA host devices, each on the
toy task in float64 with a tiny TFN (no batch norm: its loss is a mean over the batch's graphs only).
Tolerance: the global batch is the same set of graphs and the gradient is the global batch's mean in
both cases, so only the order of floating-point sums differs (per-rank partial sums, then the all-reduce):
in float64 that is ~1e-16 relative per operation, a few 1e-13 after three epochs of Adam; 1e-9 leaves
room for BLAS differences between processes and still catches any real change of the step (a graph
counted twice, a mean over a rank's half instead of the batch: those move the loss by > 1e-3).

This file is also the worker: ``python tests/training/test_distributed.py OUT EPOCHS [die-at-epoch]``.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
TINY_TFN = {"n_layers": 1, "lmax": 1, "embed_dim": 8, "radial_hidden": 8}
RTOL = 1e-9


def _config(out, epochs: int, backend: str = "torch", **kw):
    from zoo.training import TrainConfig

    return TrainConfig(model="tfn", backend=backend, epochs=epochs, batch_size=8, lr=3e-3, out=str(out), progress=False,
                       graph_cache=False, patience=0, dtype="float64", model_overrides=dict(TINY_TFN), **kw)


def _curve(run_dir) -> np.ndarray:
    from zoo.core.io import read_jsonl

    return np.array([[r["train_loss"], r["val_loss"]] for r in read_jsonl(Path(run_dir) / "metrics.jsonl")])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _launch(out: Path, epochs: int, world: int = 2, die_at: int = 0, timeout_s: float = 60.0) -> list[subprocess.CompletedProcess]:
    """``world`` worker processes with torchrun's variables (what torchrun would start)."""
    port = _free_port()
    procs = []
    for rank in range(world):
        env = {**os.environ, "RANK": str(rank), "WORLD_SIZE": str(world), "LOCAL_RANK": str(rank), "MASTER_ADDR": "127.0.0.1",
               "MASTER_PORT": str(port), "OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE"}
        args = [sys.executable, __file__, str(out), str(epochs), str(die_at if rank == 1 else 0), str(timeout_s)]
        procs.append(subprocess.Popen(args, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    return [subprocess.CompletedProcess(p.args, p.wait(timeout=600), p.stdout.read(), None) for p in procs]


def _worker(out: str, epochs: int, die_at: int, timeout_s: float) -> None:
    from tests.helpers import toy_task
    from zoo.training import train
    from zoo.training.config import TrainingError

    def die(record):
        if die_at and record["epoch"] == die_at:
            os._exit(3)  # a rank that vanishes: no cleanup, no goodbye to the process group

    try:
        res = train(_config(out, epochs, dist_timeout_s=timeout_s), task=toy_task(), on_epoch_end=die)
    except TrainingError as exc:
        print("TRAINING ERROR:", exc, flush=True)
        sys.exit(5)
    print("RESULT", json.dumps({"run_dir": str(res.run_dir), "test_mae": res.test_metrics.get("mae")}), flush=True)


def _result(proc: subprocess.CompletedProcess) -> dict:
    assert proc.returncode == 0, proc.stdout[-3000:]
    line = [s for s in proc.stdout.splitlines() if s.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT "):])


def test_two_torch_ranks_follow_the_single_process_run_and_resume_on_one(tmp_path, task):
    from zoo.training import train

    single = train(_config(tmp_path / "single", 3), task=task)
    procs = _launch(tmp_path / "ddp", 3)
    r0, r1 = _result(procs[0]), _result(procs[1])
    assert r0["run_dir"] == r1["run_dir"]  # rank 0 made the folder and told the others
    assert len(list((tmp_path / "ddp").iterdir())) == 1
    ddp = _curve(r0["run_dir"])
    np.testing.assert_allclose(ddp, _curve(single.run_dir), rtol=RTOL)
    np.testing.assert_allclose(r0["test_mae"], single.test_metrics["mae"], rtol=RTOL)

    # The 2-rank run's checkpoint continued by one process: the same as the single-process run continued.
    resumed = train(resume=r0["run_dir"], epochs=5, task=task)
    alone = train(resume=single.run_dir, epochs=5, task=task)
    np.testing.assert_allclose(_curve(resumed.run_dir), _curve(alone.run_dir), rtol=RTOL)
    assert _curve(resumed.run_dir).shape == (5, 2)


def test_a_rank_that_dies_stops_the_others_with_a_clear_error(tmp_path):
    procs = _launch(tmp_path / "ddp", 3, die_at=1, timeout_s=30)
    assert procs[1].returncode == 3
    assert procs[0].returncode == 5, procs[0].stdout[-3000:]
    msg = next(s for s in procs[0].stdout.splitlines() if s.startswith("TRAINING ERROR:"))
    assert "rank 0 of 2: lost contact with the other ranks" in msg and "zoo train --resume" in msg
    # rank 0 checkpointed epoch 1 before the loss of rank 1 showed: a resume (any number of ranks) goes on
    run_dir = next((tmp_path / "ddp").iterdir())
    assert (run_dir / "checkpoint" / "LATEST").exists()


JAX_SCRIPT = """
import json, sys
sys.path.insert(0, {root!r})
import jax
from tests.helpers import toy_task
from tests.training.test_distributed import _config, _curve
from zoo.training import train
from zoo.training.parallel_jax import ShardedJaxAdapter
assert len(jax.devices()) == 2
task = toy_task()
one = train(_config({out!r} + "/one", 3, backend="jax"), task=task)
two = train(_config({out!r} + "/two", 3, backend="jax", jax_devices=2), task=task)
adapter = ShardedJaxAdapter("tfn", None, _config("x", 1, backend="jax", jax_devices=2), "mse")
placed = adapter._place_batch({{"edge_index": jax.numpy.zeros((16, 2)), "graph_y": jax.numpy.zeros((9,))}})
print("RESULT", json.dumps({{"one": _curve(one.run_dir).tolist(), "two": _curve(two.run_dir).tolist(), "device": two.summary["device"],
    "edge_devices": len(placed["edge_index"].sharding.device_set), "edge_shard": placed["edge_index"].addressable_shards[0].data.shape[0],
    "graph_replicated": placed["graph_y"].sharding.is_fully_replicated}}))
"""


# slow: the heaviest default tests (30-75 s each on 2 cores); `make test-slow` runs them
@pytest.mark.slow
def test_two_xla_devices_follow_the_single_device_run(tmp_path):
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2", "OMP_WAIT_POLICY": "PASSIVE"}
    proc = subprocess.run([sys.executable, "-c", JAX_SCRIPT.format(root=str(ROOT), out=str(tmp_path))], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r = json.loads([s for s in proc.stdout.splitlines() if s.startswith("RESULT ")][-1][len("RESULT "):])
    np.testing.assert_allclose(np.array(r["two"]), np.array(r["one"]), rtol=RTOL)
    assert "2 devices" in r["device"]
    assert r["edge_devices"] == 2 and r["edge_shard"] == 8 and r["graph_replicated"]


def test_each_rank_takes_its_slice_and_the_scales_give_the_global_mean():
    from zoo.training.distributed import TorchProcessGroup

    batch, losses = np.arange(10, 15), np.array([1.0, 2.0, 4.0, 8.0, 16.0])
    for world in (1, 2, 3, 7):
        parts, averaged = [], 0.0
        for rank in range(world):
            ctx = TorchProcessGroup.__new__(TorchProcessGroup)  # no process group: only the slicing rule
            ctx.rank, ctx.world = rank, world
            mine, scale = ctx.local(batch)
            if scale:
                parts.append(mine)
            # what DDP does: average over ranks of each rank's scaled mean loss
            averaged += scale * losses[mine - 10].mean() / world
        np.testing.assert_array_equal(np.concatenate(parts), batch)  # every graph once, in order
        assert averaged == pytest.approx(losses.mean(), rel=1e-15)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    _worker(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]))
