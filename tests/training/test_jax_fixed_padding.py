"""``TrainConfig.jax_padding="fixed"``: a JAX run compiles its training step and its prediction step once
each (``zoo.graphs.batch.FixedPolicy``; the bucketed padding adds a shape for the short batches, see
tests/graphs/test_fixed_policy.py), and the option is recorded in the run's config."""
from __future__ import annotations

import json

import pytest

from tests.training.common import cfg

jax = pytest.importorskip("jax")


def test_fixed_padding_compiles_each_step_once(tmp_path, task):
    from zoo.training import train

    records = []
    # 40 crystals, 8 per batch: full batches and short ones (the validation split and the last batch)
    res = train(cfg(tmp_path, backend="jax", epochs=2, jax_padding="fixed"), task=task, on_epoch_end=records.append)
    assert [r["jit_compilations"] for r in records] == [2, 0]  # train step + predict step, in the first epoch
    assert res.summary["jit_compilations"] == 2  # the best weights' test predictions reuse the shape too
    assert json.loads((res.run_dir / "config.json").read_text())["train"]["jax_padding"] == "fixed"
