"""Run folders: names and predictions files (zoo.training.runs)."""
from __future__ import annotations

import re

import numpy as np


def test_run_folders_are_never_reused(tmp_path):
    from zoo.training import runs

    a = runs.create_run_dir(tmp_path, "cgcnn", "torch", "toy_volume", 0)
    (a / "marker").write_text("keep me")
    b = runs.create_run_dir(tmp_path, "cgcnn", "torch", "toy_volume", 0)
    assert a != b and (a / "marker").read_text() == "keep me"
    assert re.fullmatch(r"\d{8}T\d{6}Z_cgcnn_torch_toy_volume_f0_[0-9a-f]{6}", a.name), a.name


def test_predictions_csv_round_trip_is_exact(tmp_path):
    from zoo.training import runs

    rng = np.random.default_rng(0)
    y, p = rng.normal(size=(5, 3, 3)) * 1e3, rng.normal(size=(5, 3, 3)) / 7
    runs.write_predictions(tmp_path / "p.csv", [f"id{i}" for i in range(5)], y, p, {"graph_failed": [False] * 4 + [True]})
    header = (tmp_path / "p.csv").read_text().splitlines()[0].split(",")
    assert header[:3] == ["id", "y_true_xx", "y_true_xy"] and "y_pred_zz" in header
    back = runs.read_predictions(tmp_path / "p.csv", shape=(3, 3))
    assert np.array_equal(back["y_true"], y) and np.array_equal(back["y_pred"], p)
    assert back["id"] == [f"id{i}" for i in range(5)] and back["graph_failed"] == [False] * 4 + [True]



def test_an_empty_tensor_set_writes_the_header(tmp_path):
    # zoo tune scores validation only: its runs predict an empty test set, of shape (0, 3, 3, 3) for a rank-3 target
    from zoo.training import runs

    runs.write_predictions(tmp_path / "p.csv", [], np.zeros((0, 3, 3, 3)), np.zeros((0, 3, 3, 3)), {"graph_failed": []})
    lines = (tmp_path / "p.csv").read_text().splitlines()
    assert len(lines) == 1 and lines[0].split(",")[:2] == ["id", "y_true_xxx"] and "y_pred_zzz" in lines[0]
