"""Scoring saved weights (zoo.training.evaluate)."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.training.common import cfg


def test_evaluate_matches_the_run_and_writes_a_new_file(tmp_path, task):
    from zoo.training import evaluate, train

    res = train(cfg(tmp_path, epochs=1), task=task)
    out = evaluate(res.run_dir, task=task, progress=False)
    assert out["metrics"]["mae"] == pytest.approx(res.summary["test"]["mae"], rel=1e-6)
    out2 = evaluate(res.run_dir, task=task, progress=False)
    assert out["written_to"] != out2["written_to"] and Path(out["written_to"]).exists()
    # torch-trained weights scored by the jax model: the same numbers up to float32 round-off.
    out_jax = evaluate(res.run_dir / "best.safetensors", task=task, backend="jax", progress=False)
    assert "written_to" not in out_jax  # a bare weights file has no run folder to write into
    assert out_jax["metrics"]["mae"] == pytest.approx(out["metrics"]["mae"], rel=1e-5)

