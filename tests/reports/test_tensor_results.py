"""zoo.reports.tensor_results on fake run folders: values are carried, floors matched by task, version,
options and fold, CGCNN fold scores found, plots copied, unfinished or foreign folders refused."""
from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from zoo.reports import tensor_results as tr


def _tensor_metrics(scale: float) -> dict:
    return {"n": 10, "mae": 1.0 * scale, "rmse": 2.0 * scale, "fnorm": 3.0 * scale, "ewt25": 0.5 / scale,
            "ewt10": 0.2 / scale, "ewt5": 0.1 / scale, "sym_violation_mean": 1e-7 * scale, "sym_violation_median": 1e-8,
            "true_sym_violation_mean": 1e-4, "zero_constraints": 40.0}


def _make_run(root: Path, name: str, task: str, *, kind="tensor", backend="torch", fold=0, version="1",
              task_kwargs=None, finished=True, test=None, recipe=None) -> Path:
    d = root / name
    (d / "plots").mkdir(parents=True)
    target = {"name": "y", "kind": kind, "unit": "meV/atom" if kind == "scalar" else "", "rank": 2 if kind == "tensor" else 0,
              "formula": "ij=ji" if kind == "tensor" else None, "transform": None}
    test = test if test is not None else (_tensor_metrics(1.0) if kind == "tensor" else {"n": 10, "mae": 40.0, "rmse": 60.0, "r2": 0.3, "max_error": 200.0})
    floor = _tensor_metrics(4.0) if kind == "tensor" else {"n": 10, "mae": 55.0, "rmse": 70.0, "r2": -0.05}
    n = {"train": 80, "val": 10, "test": 10, "test_graph_failed": 2 if kind == "scalar" else 0}
    metrics = {"task": task, "fold": fold, "model": "tfn", "backend": backend, "dtype": "float32", "seed": 0,
               "best_epoch": 17, "epochs_run": 32, "epochs": 40, "stopped_early": True, "val": test,
               "floor": {"test": floor}, "n": n, "test": test,
               "plots": ["plots/learning_curve.png", "plots/parity_test.png"], "finished": finished,
               "time_s": {"train": 123.0}, "device": "cpu"}
    config = {"train": {"patience": 15, "task_kwargs": task_kwargs or {}, "recipe": recipe},
              "model": {"name": "tfn", "config": {"n_layers": 3}},
              "task": {"name": task, "version": version, "target": target, "fold": fold}}
    env = {"created_utc": "2026-11-25T18:00:00+00:00", "git": {"commit": "abcdef1234567890", "dirty": True}}
    for fname, obj in (("metrics", metrics), ("config", config), ("env", env)):
        (d / f"{fname}.json").write_text(json.dumps(obj))
    for p in ("learning_curve.png", "parity_test.png"):
        (d / "plots" / p).write_bytes(b"\x89PNG fake " + p.encode())
    return d


def _floors(path: Path) -> Path:
    def per_fold(scale):  # fold k gets scale*(k+1) so a wrong fold is visible
        return [_tensor_metrics(scale * (k + 1)) for k in range(5)]
    data = {"format": 1, "tasks": {
        "mp_dielectric_total": {"version": "1", "config": {"split_seed": 0},
                                "floors": {"mean": {"per_fold": per_fold(2.0)}, "element_linear": {"per_fold": per_fold(1.5)},
                                           "mean_nosym": {"per_fold": per_fold(9.0)}}},
        "embedded_dielectric": {"version": "embedded-1.data1", "config": {"n_crystals": 2000, "seed": 0},
                                "floors": {"mean": {"per_fold": per_fold(2.0)}, "element_linear": {"per_fold": per_fold(1.5)}}},
    }}
    path.write_text(json.dumps(data))
    return path


def _cgcnn_results(root: Path, fold_mae: float) -> Path:
    d = root / "matbench_v0.1" / "matbench_jdft2d" / "cgcnn-torch-seed0"
    d.mkdir(parents=True)
    res = {"tasks": {"matbench_jdft2d": {"results": {
        f"fold_{k}": {"scores": {"mae": fold_mae + k, "rmse": 2 * fold_mae}} for k in range(5)}}}}
    with gzip.open(d / "results.json.gz", "wt") as fh:
        json.dump(res, fh)
    return root


def test_table_values_floors_cgcnn_and_plots(tmp_path):
    runs = tmp_path / "runs"
    r_tensor = _make_run(runs, "run_a", "mp_dielectric_total", fold=1)
    r_emb = _make_run(runs, "run_b", "embedded_dielectric", backend="jax", version="embedded-1.data1",
                      task_kwargs={"n_crystals": 500})  # floors were computed on 2000 crystals
    r_scalar = _make_run(runs, "run_c", "matbench_jdft2d", kind="scalar", version="matbench_v0.1")
    floors = _floors(tmp_path / "floors.json")
    results_root = _cgcnn_results(tmp_path / "results", fold_mae=38.0)
    out = tmp_path / "out"
    assert tr.main([str(r_tensor), str(r_emb), str(r_scalar), "--floors", str(floors),
                    "--results-root", str(results_root), "--out", str(out)]) == 0

    res = json.loads((out / "results.json").read_text())
    a, b, c = res["rows"]
    assert a["test"]["fnorm"] == 3.0 and a["test"]["ewt25"] == 0.5 and a["fold"] == 1
    assert "zero_constraints" not in a["test"]  # only the reported keys are carried
    # fold 1's floors (scale * 2), not fold 0's, and the symmetrised ones only
    assert a["floors"]["mean"]["fnorm"] == pytest.approx(3.0 * 4.0)
    assert a["floors"]["element_linear"]["fnorm"] == pytest.approx(3.0 * 3.0)
    assert "mean_nosym" not in a["floors"]
    assert a["run_floor_test"]["fnorm"] == 12.0
    assert a["epochs_run"] == 32 and a["best_epoch"] == 17 and a["run_folder"] == "run_a"
    assert a["git"]["commit"] == "abcdef1234567890"
    # different task options than the floors: no floor numbers, a note instead
    assert "mean" not in b["floors"] and "not comparable" in b["floors"]["note"]
    assert c["kind"] == "scalar" and c["test"]["mae"] == 40.0
    assert [ref["mae"] for ref in c["cgcnn_reference"]] == [38.0]  # fold 0

    readme = (out / "README.md").read_text()
    assert "Folds present: 0, 1." in readme
    assert readme.startswith("# TFN: test results")  # the heading names the family of the runs
    assert "not as tuned leaderboard numbers" in readme
    # means over folds: one fold of mp_dielectric_total, Fnorm 3 against floors 12 / 9, better on 1 of 1
    assert "| mp_dielectric_total | tfn (torch) | 1 | **3** | 12 / 9 | 1/1 |" in readme
    (summary,) = [e for e in res["fold_summary"] if e["task"] == "mp_dielectric_total"]
    assert summary["folds"] == [1] and summary["fnorm"] == 3.0 and summary["folds_better_than_best_floor"] == 1
    assert "40 (patience 15)" in readme
    assert "cgcnn-torch-seed0" in readme and "38" in readme
    assert "run_a" in readme and "abcdef1234" in readme
    assert "| mp_dielectric_total | floor: mean (symmetrised) | – | 10 | 12 |" in readme
    # model Fnorm 3 against the best fold-1 floor (element-linear, 9): 67 % better, computed from the numbers
    assert "mp_dielectric_total (torch): Fnorm 3 is 67% below (better than) the element_linear floor's 9." in readme
    assert "embedded_dielectric (jax): no comparable floor" in readme
    assert "| 10 (+2 no graph) |" in readme  # the scalar run had two test structures without a graph

    plots = sorted(p.name for p in (out / "plots").iterdir())
    assert plots == ["embedded_dielectric_jax_learning_curve.png", "embedded_dielectric_jax_parity_test.png",
                     "matbench_jdft2d_torch_learning_curve.png", "matbench_jdft2d_torch_parity_test.png",
                     "mp_dielectric_total_torch_learning_curve.png", "mp_dielectric_total_torch_parity_test.png"]
    assert (out / "plots" / "mp_dielectric_total_torch_parity_test.png").read_bytes() == b"\x89PNG fake parity_test.png"
    assert not [p for p in out.rglob(".*.tmp")]  # atomic writes leave no temporary files


def test_runs_of_a_recipe_say_so(tmp_path):
    """Runs that record a family recipe are not called untuned: the README names the recipe(s)."""
    runs = tmp_path / "runs"
    a = _make_run(runs, "run_a", "mp_dielectric_total", fold=0, recipe="tfn.rank2")
    b = _make_run(runs, "run_b", "mp_dielectric_total", fold=1, recipe="tfn.rank2")
    out = tmp_path / "out"
    assert tr.main([str(a), str(b), "--floors", str(_floors(tmp_path / "floors.json")), "--out", str(out)]) == 0
    readme = (out / "README.md").read_text()
    assert "with the recipe(s) `tfn.rank2`" in readme and "not as tuned leaderboard numbers" not in readme


def test_version_mismatch_and_missing_cgcnn(tmp_path):
    run = tr.read_run(_make_run(tmp_path, "r", "mp_dielectric_total", version="2"))
    fl = tr.floor_values(json.loads(_floors(tmp_path / "f.json").read_text()), run)
    assert "mean" not in fl and "version" in fl["note"]
    assert tr.cgcnn_reference(tmp_path / "nothing", "matbench_jdft2d", 0) == []


def test_unfinished_and_foreign_folders_are_refused(tmp_path, capsys):
    unfinished = _make_run(tmp_path, "u", "mp_dielectric_total", finished=False)
    with pytest.raises(tr.RunFolderError, match="--resume"):
        tr.read_run(unfinished)
    empty = tmp_path / "empty"
    empty.mkdir()
    assert tr.main([str(empty), "--out", str(tmp_path / "o")]) == 2
    assert "missing" in capsys.readouterr().err
    assert not (tmp_path / "o" / "results.json").exists()


def test_rows_carry_training_options_and_plots_can_be_limited(tmp_path):
    """Each row keeps the run's training options (the leaderboard names a run's departures from its recipe
    with them); ``--plots first`` copies one run's plots per task and backend, ``none`` copies none."""
    runs = tmp_path / "runs"
    a = _make_run(runs, "run_x_aaaaaa", "mp_dielectric_total", fold=0, recipe="tfn.rank2")
    b = _make_run(runs, "run_y_bbbbbb", "mp_dielectric_total", fold=1, recipe="tfn.rank2")
    floors = str(_floors(tmp_path / "floors.json"))
    for plots, copied in (("first", [2, 0]), ("none", [0, 0]), ("all", [2, 2])):
        out = tmp_path / plots
        assert tr.main([str(a), str(b), "--floors", floors, "--out", str(out), "--plots", plots]) == 0
        rows = json.loads((out / "results.json").read_text())["rows"]
        assert [len(r["plots_copied"]) for r in rows] == copied
        assert len(list((out / "plots").glob("*.png")) if (out / "plots").exists() else []) == sum(copied)
        assert rows[0]["train"] == {"patience": 15, "task_kwargs": {}, "recipe": "tfn.rank2"}
