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


def _floors_file(tmp_path: Path, version: str = "7") -> Path:
    per_fold = lambda base: [{"fnorm": base + k, "mae": (base + k) / 5, "n": 300.0} for k in range(3)]  # noqa: E731
    doc = {"floors": {name: {"description": f"{name} floor"} for name in ("mean", "mean_nosym", "element_linear")},
           "tasks": {"embedded_dielectric": {"version": version, "floors": {
               "mean": {"per_fold": per_fold(10.0)}, "mean_nosym": {"per_fold": per_fold(11.0)},
               "element_linear": {"per_fold": per_fold(9.0)}}}}}
    path = tmp_path / "floors.json"
    path.write_text(json.dumps(doc))
    return path


def test_reference_floors_are_the_fold_s_of_the_same_task_version(tmp_path):
    from zoo.pretrained.publish import _reference_floors

    path, task = _floors_file(tmp_path), {"name": "embedded_dielectric", "version": "7"}
    ref = _reference_floors(path, task, {}, 1)
    assert ref["fold"] == 1 and ref["source"] == str(path)
    assert ref["floors"] == {"mean": {"fnorm": 11.0, "mae": 2.2, "n": 300.0}, "element_linear": {"fnorm": 10.0, "mae": 2.0, "n": 300.0}}
    assert ref["descriptions"] == {"mean": "mean floor", "element_linear": "element_linear floor"}
    # Floors of another task version, of the task with other options, or no floors file: none recorded.
    assert _reference_floors(path, {**task, "version": "8"}, {}, 1) is None
    assert _reference_floors(path, task, {"n_crystals": 500}, 1) is None
    assert _reference_floors(path, {**task, "name": "mp_elastic"}, {}, 1) is None
    assert _reference_floors(tmp_path / "none.json", task, {}, 1) is None


def test_card_shows_the_reference_floors_next_to_the_model(tmp_path):
    from zoo.pretrained.cards import _metric_rows
    from zoo.pretrained.publish import _reference_floors

    ref = _reference_floors(_floors_file(tmp_path), {"name": "embedded_dielectric", "version": "7"}, {}, 0)
    rows = _metric_rows({"fnorm": 9.5, "mae": 1.9, "n": 300}, {"fnorm": 10.3, "mae": 2.1}, ref)
    assert rows[0] == "| metric | model | floor (training mean) | mean floor | element_linear floor |"
    assert "| fnorm | 9.5 | 10.3 | 10 | 9 |" in rows and "| mae | 1.9 | 2.1 | 2 | 1.8 |" in rows
    assert _metric_rows({"fnorm": 9.5}, {"fnorm": 10.3})[0] == "| metric | model | floor (training mean) |"


def test_command_replays_the_run_with_or_without_a_recipe():
    """The replay never depends on today's recipes: the resolved fields are flags and the recipe is off."""
    from zoo.pretrained.publish import _command

    base = {"model": "pgnet", "task": "embedded_dielectric", "epochs": 20, "lr": 0.005, "out": "runs/x"}
    want = "zoo train pgnet --task embedded_dielectric --epochs 20 --lr 0.005 --recipe none"
    assert _command({**base, "recipe": None}, "pgnet") == want
    assert _command({**base, "recipe": "pgnet.scalar"}, "pgnet") == want
    # A run folder older than recipes has no such field; replayed today, it must not take one on either.
    assert _command(base, "pgnet") == want


def test_every_published_command_switches_the_recipe_off():
    from zoo.pretrained import get_entry, list_pretrained

    for name in list_pretrained():
        assert get_entry(name)["recipe"]["command"].endswith(" --recipe none"), name


def test_pgnet_jdft2d_entry_carries_the_committed_five_folds():
    from zoo.pretrained import get_entry

    folder = Path(__file__).parents[2] / "results" / "pgnet" / "jdft2d"
    table = json.loads((folder / "results.json").read_text())
    entry = get_entry("pgnet.matbench_jdft2d_v1")
    cv = _cross_validation_runs(sorted(str(d) for d in (folder / "runs").glob("pgnet_l1_f*")), entry["recipe"]["train"])
    assert {f: s["mae"] for f, s in cv["folds"].items()} == pytest.approx(
        {f"fold_{k}": v["median_test_mae"] for k, v in table["pgnet"].items()}, rel=0, abs=1e-12)
    assert entry["metrics"]["cross_validation"]["folds"] == cv["folds"]
    assert cv["mean"]["mae"] == pytest.approx(table["pgnet_5fold_mean"], rel=0, abs=1e-12)
