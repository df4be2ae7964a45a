"""``publish --cv-runs``: the k-fold figures of an entry taken from separate ``zoo train`` run folders (per
fold the median over seeds of each test score), refused when a run is not the published recipe, when the
folds are not 0 .. k-1 or when a run has no test scores; and the committed TFN jdft2d evaluation read this
way gives the figures of its own table."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from zoo.pretrained import PretrainedError
from zoo.pretrained.publish import _cross_validation_runs, publish

TRAIN = {"model": "tfn", "task": "matbench_jdft2d", "backend": "torch", "epochs": 40, "lr": 0.005, "loss": "l1",
         "batch_size": 64, "seed": 0, "fold": 0, "full_data": True, "out": "runs", "recipe": "tfn.scalar"}
JDFT2D_L1 = Path(__file__).parents[2] / "results" / "tfn" / "jdft2d_l1"


def _run(root: Path, fold: int, seed: int, mae: float, **train) -> str:
    d = root / f"f{fold}_s{seed}"
    d.mkdir()
    cfg = {**TRAIN, "fold": fold, "seed": seed, "full_data": False, "out": "elsewhere", **train}
    (d / "config.json").write_text(json.dumps({"train": cfg}))
    (d / "metrics.json").write_text(json.dumps({"test": {"mae": mae, "rmse": 2 * mae, "n": 10}}))
    return str(d)


def test_per_fold_median_over_seeds_and_mean(tmp_path):
    dirs = [_run(tmp_path, 0, 0, 10.0), _run(tmp_path, 0, 1, 40.0), _run(tmp_path, 0, 2, 13.0),
            _run(tmp_path, 1, 0, 30.0)]
    cv = _cross_validation_runs(dirs, TRAIN)
    assert cv["folds"] == {"fold_0": {"mae": 13.0, "rmse": 26.0}, "fold_1": {"mae": 30.0, "rmse": 60.0}}
    assert cv["mean"] == {"mae": 21.5, "rmse": 43.0}
    assert cv["seeds"] == {"fold_0": [0, 1, 2], "fold_1": [0]}
    assert cv["source"] == str(tmp_path)


@pytest.mark.parametrize("folds, message", [((0, 2), r"folds \[0, 2\] are not 0 \.\. k-1"),
                                            ((1,), r"folds \[1\] are not 0 \.\. k-1")])
def test_folds_must_be_all_of_the_task(tmp_path, folds, message):
    with pytest.raises(PretrainedError, match=message):
        _cross_validation_runs([_run(tmp_path, f, 0, 1.0) for f in folds], TRAIN)


def test_a_run_of_another_recipe_is_refused_naming_the_option(tmp_path):
    dirs = [_run(tmp_path, 0, 0, 1.0), _run(tmp_path, 1, 0, 1.0, lr=0.001)]
    with pytest.raises(PretrainedError, match=r"f1_s0: not the published run's recipe \(lr: 0.001 != 0.005\)"):
        _cross_validation_runs(dirs, TRAIN)


def test_an_option_missing_from_an_older_run_counts_as_its_default(tmp_path):
    # Older run folders predate some options (tensor_center): their default is what they trained with.
    dirs = [_run(tmp_path, 0, 0, 1.0), _run(tmp_path, 1, 0, 2.0)]
    assert _cross_validation_runs(dirs, {**TRAIN, "tensor_center": "none"})["mean"]["mae"] == 1.5
    with pytest.raises(PretrainedError, match="tensor_center: 'none' != 'isotropic'"):
        _cross_validation_runs(dirs, {**TRAIN, "tensor_center": "isotropic"})


def test_a_run_without_test_scores_is_refused(tmp_path):
    d = Path(_run(tmp_path, 0, 0, 1.0))
    (d / "metrics.json").write_text(json.dumps({"val": {"mae": 1.0}}))
    with pytest.raises(PretrainedError, match="f0_s0: no test scores"):
        _cross_validation_runs([str(d), _run(tmp_path, 1, 0, 1.0)], TRAIN)


def test_cv_and_cv_runs_together_are_refused_before_anything_is_read(tmp_path):
    with pytest.raises(PretrainedError, match="give --cv .* or --cv-runs .*, not both"):
        publish(tmp_path / "no_run", "x_v1", description="", weights_license="", data_license="", data_citation="",
                cv="some/reproduce", cv_runs=["a"])


def test_committed_tfn_jdft2d_runs_give_their_table():
    table = json.loads((JDFT2D_L1 / "results.json").read_text())
    full = json.loads((JDFT2D_L1 / "runs" / "tfn_l1_f2_s0" / "config.json").read_text())["train"]
    cv = _cross_validation_runs(sorted(str(d) for d in (JDFT2D_L1 / "runs").glob("tfn_l1_f*")), {**full, "full_data": True})
    assert {f: s["mae"] for f, s in cv["folds"].items()} == pytest.approx(
        {f"fold_{k}": v["median_test_mae"] for k, v in table["tfn"].items()}, rel=0, abs=1e-12)
    assert cv["mean"]["mae"] == pytest.approx(table["tfn_5fold_mean"], rel=0, abs=1e-12)
