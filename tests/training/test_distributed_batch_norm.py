"""Cross-rank batch norm (``zoo.training.sync_batch_norm``): two gloo processes on loopback against one process.

Tolerance as in ``test_distributed``: the same rows enter the same statistics, only the order of the
floating-point sums differs (per-rank partial sums, then the all-reduce), ~1e-16 relative per operation in
float64; rtol 1e-9 still catches a real change (per-rank statistics moved CGCNN's loss by 6e-2, a placeholder
graph in the statistics or a biased running variance move the figures by > 1e-3).

This file is also the worker: ``python tests/training/test_distributed_batch_norm.py MODE OUT``.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from tests.training.test_distributed import RTOL, _curve, _free_port

ROOT = Path(__file__).resolve().parents[2]
TINY_CGCNN = {"atom_fea_len": 8, "n_conv": 2, "h_fea_len": 8}
ROWS, SPLIT, FEATURES = 13, 7, 5  # rank 0 holds rows [0, 7), rank 1 rows [7, 13)


def _rows(seed: int = 0):
    """Rows far from zero mean (mean ~50, std ~1): a one-pass variance would lose digits here."""
    rng = np.random.default_rng(seed)
    x = 50.0 + rng.normal(size=(ROWS, FEATURES))
    mask = rng.random(ROWS) > 0.3
    return x, mask, rng.normal(size=(ROWS, FEATURES)), rng.normal(size=FEATURES), rng.normal(size=FEATURES)


def _batch_norm_calls(norm, rows: slice, contributes: bool = True) -> dict:
    """y, new statistics and gradients (x, weight, bias) of sum(y * c) for the rows of this process, with and
    without a mask; ``norm`` is masked_batch_norm (one process) or a CrossRankBatchNorm (one rank)."""
    import torch

    from zoo.backend import torch as xp
    from zoo.nn.norm import RunningStats

    x_all, mask_all, c_all, w0, b0 = _rows()
    stats = RunningStats(torch.full((FEATURES,), 0.5, dtype=torch.float64), torch.full((FEATURES,), 2.0, dtype=torch.float64),
                         torch.tensor(3))
    out = {}
    for name, mask in (("plain", None), ("masked", torch.from_numpy(mask_all[rows]))):
        x = torch.tensor(x_all[rows], requires_grad=True)
        w, b = torch.tensor(w0, requires_grad=True), torch.tensor(b0, requires_grad=True)
        y, new = norm(x, w, b, stats, mask=mask, train=True, xp=xp)
        (y * torch.from_numpy(c_all[rows])).sum().backward()
        out[name] = {"y": y.detach().tolist(), "running_mean": new.running_mean.tolist(), "running_var": new.running_var.tolist(),
                     "tracked": int(new.num_batches_tracked), "grad_x": x.grad.tolist(), "grad_w": w.grad.tolist(), "grad_b": b.grad.tolist()}
    return out


def _unit_worker(out: str) -> None:
    import torch.distributed as dist

    from zoo.nn.norm import masked_batch_norm
    from zoo.training.sync_batch_norm import CrossRankBatchNorm

    dist.init_process_group("gloo")
    rank = dist.get_rank()
    norm = CrossRankBatchNorm(masked_batch_norm)
    result = {"split": _batch_norm_calls(norm, slice(0, SPLIT) if rank == 0 else slice(SPLIT, ROWS))}
    # rank 1 on a zero-weight step: it joins the collectives with a placeholder row that must not count
    norm.contributes = rank == 0
    result["rank0_only"] = _batch_norm_calls(norm, slice(0, ROWS) if rank == 0 else slice(0, 1))
    Path(out, f"rank{rank}.json").write_text(json.dumps(result))
    dist.destroy_process_group()


def _train_worker(out: str) -> None:
    from tests.helpers import toy_task
    from zoo.training import train

    res = train(_config(out), task=toy_task())
    print("RESULT", json.dumps({"run_dir": str(res.run_dir)}), flush=True)


def _config(out):
    from zoo.training import TrainConfig

    # batch 9 on the toy task's training split leaves a last batch of one graph: rank 1 then steps with
    # weight 0 on a placeholder, which must stay out of the batch-norm statistics.
    return TrainConfig(model="cgcnn", backend="torch", epochs=2, batch_size=9, lr=3e-3, out=str(out), progress=False,
                       graph_cache=False, patience=0, dtype="float64", model_overrides=dict(TINY_CGCNN))


def _launch(mode: str, out: Path) -> list[subprocess.CompletedProcess]:
    port = _free_port()
    procs = []
    for rank in range(2):
        env = {**os.environ, "RANK": str(rank), "WORLD_SIZE": "2", "LOCAL_RANK": str(rank), "MASTER_ADDR": "127.0.0.1",
               "MASTER_PORT": str(port), "OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE",
               "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}  # the worker imports tests.*
        procs.append(subprocess.Popen([sys.executable, __file__, mode, str(out)], env=env, cwd=ROOT, stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, text=True))
    done = [subprocess.CompletedProcess(p.args, p.wait(timeout=600), p.stdout.read(), None) for p in procs]
    for p in done:
        assert p.returncode == 0, p.stdout[-3000:]
    return done


def test_cross_rank_batch_norm_is_the_batch_norm_of_the_whole_batch(tmp_path):
    from zoo.nn.norm import masked_batch_norm

    _launch("unit", tmp_path)
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    whole = _batch_norm_calls(masked_batch_norm, slice(0, ROWS))
    for case in ("plain", "masked"):
        want, got = whole[case], [r["split"][case] for r in ranks]
        for key in ("y", "grad_x"):  # each rank's rows; the gradient reaches x through the other rank's loss too
            np.testing.assert_allclose(np.concatenate([g[key] for g in got]), want[key], rtol=RTOL, atol=1e-12, err_msg=f"{case} {key}")
        for key in ("grad_w", "grad_b"):  # DDP sums (then averages) the ranks' parameter gradients
            np.testing.assert_allclose(np.sum([g[key] for g in got], axis=0), want[key], rtol=RTOL, err_msg=f"{case} {key}")
        for g in got:  # every rank ends the step with the single process's running statistics
            np.testing.assert_allclose(g["running_mean"], want["running_mean"], rtol=RTOL)
            np.testing.assert_allclose(g["running_var"], want["running_var"], rtol=RTOL)
            assert g["tracked"] == want["tracked"] == 4
    # rank 1 contributing nothing: rank 0's rows alone are the batch, on both ranks
    for case in ("plain", "masked"):
        want, got = whole[case], [r["rank0_only"][case] for r in ranks]
        np.testing.assert_allclose(got[0]["y"], want["y"], rtol=RTOL, atol=1e-12)
        np.testing.assert_allclose(got[1]["running_var"], want["running_var"], rtol=RTOL)


def test_two_torch_ranks_train_cgcnn_like_one_process(tmp_path, task):
    from zoo.core import weights
    from zoo.training import train

    single = train(_config(tmp_path / "single"), task=task)
    assert single.summary["n"]["train"] % 9 == 1  # the one-graph last batch of _config
    proc = _launch("train", tmp_path / "ddp")[0]
    run_dir = json.loads([s for s in proc.stdout.splitlines() if s.startswith("RESULT ")][-1][len("RESULT "):])["run_dir"]
    np.testing.assert_allclose(_curve(run_dir), _curve(single.run_dir), rtol=RTOL)
    ddp_state, one_state = weights.load(Path(run_dir) / "best.safetensors")[0], weights.load(single.run_dir / "best.safetensors")[0]
    stats = [k for k in one_state if k.endswith(("running_mean", "running_var"))]
    assert len(stats) == 2 * 2 * TINY_CGCNN["n_conv"]
    for k in stats:  # a running mean is a sum of rows of size ~max|mean| that cancel to near 0: compare on that scale
        scale = float(np.abs(one_state[k]).max())
        np.testing.assert_allclose(ddp_state[k], one_state[k], rtol=RTOL, atol=RTOL * scale, err_msg=k)


if __name__ == "__main__":
    {"unit": _unit_worker, "train": _train_worker}[sys.argv[1]](sys.argv[2])
