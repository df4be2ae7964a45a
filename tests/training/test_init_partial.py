"""Starting a run from another model's weights (zoo.training.loop: --init-weights, --init-partial) and the
TFN's tensor targets of every rank in the trainer.

Transfer between tasks: a TFN trained on a rank-2 target hands its trunk to a TFN for a rank-3 target; the
read-out, shaped by the target's irreps, keeps its random init. The toy tasks are the training tests'
two-atom cubic cells (``tests.helpers.toy_frame``) with random tensors of the right index symmetry: the
values need not be learnable, the trainer only has to run and start from the right weights.
"""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest

from tests.helpers import toy_frame, toy_task
from zoo.core import weights
from zoo.tasks.base import ArrayTask
from zoo.tasks.spec import TargetSpec, TaskSpec
from zoo.tensors import symmetrize_indices
from zoo.training import TrainConfig, train
from zoo.training.config import UsageError

pytest.importorskip("torch")

FORMULAS = {2: "ij=ji", 3: "ijk=ikj", 4: "ijkl=jikl=klij"}
TINY_TFN = {"hidden_irreps": "4x0e+2x1o+2x2e", "n_layers": 1}


def tensor_task(rank: int) -> ArrayTask:
    frame = toy_frame(24)
    rng = np.random.default_rng(rank)
    ys = [symmetrize_indices(rng.normal(size=(3,) * rank), FORMULAS[rank]) for _ in range(len(frame))]
    df = pd.DataFrame({"structure": frame["structure"], "t": ys}, index=frame.index)
    spec = TaskSpec(name=f"toy_rank{rank}", version="test-1", n_folds=5,
                    target=TargetSpec(name="t", kind="tensor", rank=rank, formula=FORMULAS[rank]))
    return ArrayTask.from_dataframe(spec, df, seed=0, val_fraction=0.25)


def tfn_config(tmp_path, name: str, **kw) -> TrainConfig:
    base = dict(model="tfn", backend="torch", epochs=1, batch_size=8, lr=1e-3, recipe="none", tensor_center="isotropic",
                out=str(tmp_path / name), progress=False, graph_cache=False, patience=0, model_overrides=dict(TINY_TFN))
    base.update(kw)
    return TrainConfig(**base)


@pytest.mark.parametrize("rank", [3, 4])
def test_tfn_trains_on_tensor_targets_of_every_rank(tmp_path, rank):
    """The trainer's read-out hook (``with_standardisation``) gets a centre of the target's shape; a rank-3
    or rank-4 target failed there ("only 0-dimensional arrays can be converted") before this test."""
    res = train(tfn_config(tmp_path, f"r{rank}", loss="fnorm"), task=tensor_task(rank))
    assert np.isfinite(res.summary["val"]["fnorm"])


def test_init_partial_moves_the_trunk_and_keeps_the_new_readout(tmp_path):
    """Pre-train on rank 2, fine-tune on rank 3: with --init-partial every tensor whose name and shape match
    starts from the pre-trained value, the others from the fine-tune's own random init (the same seed
    without --init-weights gives them), and init.json says which is which. Without --init-partial the shapes
    that differ are refused; --init-partial alone, or weights of another family, are refused."""
    pre = train(tfn_config(tmp_path, "pre"), task=tensor_task(2))
    stem = pre.run_dir / "best"
    given = weights.load(stem)[0]
    cfg = tfn_config(tmp_path, "fine", epochs=1, lr=1e-12, init_weights=str(stem), init_partial=True)
    fine = train(cfg, task=tensor_task(3))
    record = json.loads((fine.run_dir / "init.json").read_text())
    assert record["partial"] and record["sha256"] == json.loads(stem.with_suffix(".json").read_text())["sha256"]
    assert record["random_init"] and record["loaded"] and not set(record["loaded"]) & set(record["random_init"])
    assert set(record["not_used"]) == set(given) - set(record["loaded"])
    start = weights.load(fine.run_dir / "best")[0]  # lr 1e-12: one epoch leaves every weight where it started
    scratch = weights.load(train(dataclasses.replace(cfg, out=str(tmp_path / "scratch"), init_weights=None,
                                                     init_partial=False), task=tensor_task(3)).run_dir / "best")[0]
    for k in record["loaded"]:
        np.testing.assert_allclose(start[k], given[k], rtol=0, atol=1e-9)
    for k in record["random_init"]:
        np.testing.assert_allclose(start[k], scratch[k], rtol=0, atol=1e-9)
    assert any(not np.allclose(given[k], scratch[k]) for k in record["loaded"])  # the check above can fail

    with pytest.raises(Exception, match="readout"):
        train(dataclasses.replace(cfg, out=str(tmp_path / "strict"), init_partial=False), task=tensor_task(3))
    with pytest.raises(UsageError, match="--init-weights too"):
        TrainConfig(model="tfn", init_partial=True)
    cg = train(TrainConfig(model="cgcnn", epochs=1, batch_size=8, out=str(tmp_path / "cg"), progress=False, graph_cache=False,
                           patience=0, recipe="none", model_overrides={"atom_fea_len": 8, "n_conv": 1, "h_fea_len": 8}),
               task=toy_task(24))
    with pytest.raises(UsageError, match="no tensor matches"):
        train(dataclasses.replace(cfg, out=str(tmp_path / "other"), init_weights=str(cg.run_dir / "best")), task=tensor_task(3))
